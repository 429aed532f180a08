"""Example scenes the world tests share."""

from llmga.world import Background, Obj, Scene

#: two objects at sunset on grass: "a large red star at the top left and a small blue circle at the center, ..."
SUNSET_SCENE = Scene((Obj("star", "red", "large", "top left"), Obj("circle", "blue", "small", "center")),
                     Background("sunset", "grass"))
#: two objects at night on snow
NIGHT_SCENE = Scene((Obj("star", "red", "large", "top left"), Obj("square", "blue", "small", "center")),
                    Background("night", "snow"))
