"""Requests and whether a reading shows them."""



from llmga.world.requests import EVERYTHING, SHORT, Request, shows, single_object_requests
from llmga.world.scene import Background, Obj, Scene, sample_scene


def test_a_request_is_shown_only_when_every_named_attribute_is_read():
    red_star = Scene((Obj("star", "red", "large", "center"),), Background("day", "grass"))
    moved = Scene((Obj("star", "red", "small", "top left"),), Background("night", "snow"))
    recoloured = Scene((Obj("star", "blue", "large", "center"),), Background("day", "grass"))
    assert shows(moved, Request(red_star, SHORT))  # "a red star": size, place and sky were not asked for
    assert not shows(moved, Request(red_star, EVERYTHING))
    assert not shows(recoloured, Request(red_star, SHORT))
    assert shows(red_star, Request(red_star, EVERYTHING))
    assert not shows(Scene((), red_star.background), Request(red_star, SHORT))
    crowded = red_star.with_objects([*red_star.objects, Obj("circle", "blue", "small", "top left")])
    assert not shows(crowded, Request(red_star, SHORT))  # "a red star" is one object, not a red star among others


def test_single_object_requests_are_seeded():
    assert single_object_requests(5, seed=3) == single_object_requests(5, seed=3)
    assert all(len(q.scene.objects) == 1 for q in single_object_requests(20, seed=1))
    assert single_object_requests(1, seed=1)[0].prompt.count(" ") == 2  # "a red star"
    assert sample_scene(1) == sample_scene(1)
