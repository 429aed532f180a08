"""The world's scenes: validation, canonical order, JSON form, the seeded generator."""

import random

import pytest

from llmga.errors import InvalidInputError
from llmga.world import POSITIONS, VOCAB, Background, Obj, Scene, WorldError, sample_scene


def test_vocabularies_are_distinct_words():
    words = [w for name, vocab in VOCAB.items() if name != "position" for w in vocab]
    assert len(words) == len(set(words)), "a word must name one attribute only (the parser relies on it)"
    assert len(POSITIONS) == 9 and POSITIONS[4] == "center"


@pytest.mark.parametrize(
    "field,value", [("shape", "hexagon"), ("colour", "teal"), ("size", "huge"), ("position", "far away")]
)
def test_unknown_attribute_is_refused_with_the_vocabulary(field, value):
    kwargs = {"shape": "star", "colour": "red", "size": "small", "position": "center", field: value}
    with pytest.raises(WorldError, match=value) as info:
        Obj(**kwargs)
    assert isinstance(info.value, InvalidInputError)
    assert VOCAB[field][0] in str(info.value)


def test_bad_background_and_shared_cell_are_refused():
    with pytest.raises(WorldError, match="dawn"):
        Background("dawn", "grass")
    a, b = Obj("star", "red", "small", "center"), Obj("circle", "blue", "large", "center")
    with pytest.raises(WorldError, match="two objects at the center"):
        Scene((a, b))


def test_objects_are_kept_in_reading_order_so_equal_scenes_compare_equal():
    a, b = Obj("star", "red", "small", "bottom right"), Obj("circle", "blue", "large", "top left")
    assert Scene((a, b)) == Scene((b, a))
    assert Scene((a, b)).objects == (b, a)
    assert hash(Scene((a, b))) == hash(Scene((b, a)))


def test_dict_round_trip_and_bad_dict():
    scene = sample_scene(3, 4)
    assert Scene.from_dict(scene.to_dict()) == scene
    with pytest.raises(WorldError, match="not a scene"):
        Scene.from_dict({"objects": [{"shape": "star"}]})


def test_sample_scene_is_seeded_and_respects_limits():
    assert sample_scene(7, 3) == sample_scene(7, 3) == sample_scene(random.Random(7), 3)
    rng = random.Random(0)
    counts = set()
    for _ in range(300):
        scene = sample_scene(rng, 3, min_objects=0)
        counts.add(len(scene.objects))
        assert len({o.position for o in scene.objects}) == len(scene.objects)
    assert counts == {0, 1, 2, 3}
    only = sample_scene(1, 1, colours=("blue",), shapes=("square",), positions=("center",), times=("night",))
    assert only.objects == (Obj("square", "blue", only.objects[0].size, "center"),)
    assert only.background.time == "night"


def test_sample_scene_refuses_impossible_settings():
    with pytest.raises(WorldError, match="max_objects"):
        sample_scene(0, 2, positions=("center",))
    with pytest.raises(WorldError, match="colour"):
        sample_scene(0, colours=("teal",))


def test_scene_helpers():
    scene = Scene((Obj("star", "red", "small", "center"),), Background("day", "sand"))
    assert scene.object_at("center").shape == "star" and scene.object_at("top left") is None
    assert "center" not in scene.free_positions and len(scene.free_positions) == 8
    assert scene.with_background(time="night").background == Background("night", "sand")
    assert Obj("star", "red", "small", "middle right").row_col == (1, 2)


def test_a_sub_world_restricts_sampling_and_refuses_what_the_world_has_not():
    from llmga.world.requests import single_object_requests
    from llmga.world.scene import WorldError, sub_world

    choices = sub_world({"shape": ("circle",), "position": ("top left", "center")})
    assert choices == {"shapes": ("circle",), "positions": ("top left", "center")}
    requests = single_object_requests(20, seed=0, **choices)
    assert {r.scene.objects[0].shape for r in requests} == {"circle"}
    assert {r.scene.objects[0].position for r in requests} == {"top left", "center"}
    with pytest.raises(WorldError, match="unknown attribute mood"):
        sub_world({"mood": ("happy",)})
    with pytest.raises(WorldError, match="unknown shape 'heart'"):
        sub_world({"shape": ("heart",)})
