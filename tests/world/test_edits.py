"""Masks and edit pairs: geometry, and edits that change exactly what they say."""

import itertools
import json
import random

import pytest

from llmga.world import (
    EDIT_KINDS,
    Background,
    Obj,
    Scene,
    WorldError,
    detailed_caption,
    parse_detailed,
    sample_edit,
    sample_edit_chain,
    sample_scene,
)
from llmga.world.edits import (
    add_object,
    change_time,
    move,
    possible_edits,
    recolour,
    refer,
    remove_object,
    replace_shape,
    resize,
)
from llmga.world.scene import POSITIONS


def _diff(edit):
    src, tgt = edit.source, edit.target
    gone = [o for o in src.objects if o not in tgt.objects]
    new = [o for o in tgt.objects if o not in src.objects]
    return gone, new


def _refers_to(scene, phrase):
    """The objects of ``scene`` that ``phrase`` ("the star", "the red star", "the star at the top left") fits."""
    words = phrase.removeprefix("the ").split(" at the ")
    kind, where = words[0].split(), (words[1] if len(words) > 1 else None)
    return [
        o
        for o in scene.objects
        if o.shape == kind[-1]
        and (len(kind) == 1 or o.colour == kind[0])
        and (where is None or o.position == where)
    ]


def test_every_edit_changes_exactly_the_requested_attribute():
    rng = random.Random(1)
    seen = set()
    for _ in range(600):
        scene = sample_scene(rng, 3, min_objects=0)
        edit = sample_edit(scene, rng, max_objects=3)
        seen.add(edit.kind)
        gone, new = _diff(edit)
        src_bg, tgt_bg = edit.source.background, edit.target.background
        assert parse_detailed(edit.target_caption) == edit.target
        assert edit.source_caption == detailed_caption(scene)
        if edit.kind in ("recolour", "replace"):
            (old,), (now,) = gone, new
            changed = {
                f for f in ("shape", "colour", "size", "position") if getattr(old, f) != getattr(now, f)
            }
            assert changed == {"colour" if edit.kind == "recolour" else "shape"}
            phrase = (
                edit.instruction.split(" ", 1)[1].rsplit(" ", 1)[0]
                if edit.kind == "recolour"
                else edit.instruction.removeprefix("replace ").split(" with ")[0]
            )
            assert _refers_to(scene, phrase) == [old]
            assert (now.colour if edit.kind == "recolour" else now.shape) in edit.instruction
        elif edit.kind == "add":
            assert gone == [] and len(new) == 1 and len(edit.target.objects) <= 3
            o = new[0]
            assert edit.instruction == f"add a {o.size} {o.colour} {o.shape} at the {o.position}"
        elif edit.kind == "remove":
            assert new == [] and len(gone) == 1
            assert _refers_to(scene, edit.instruction.removeprefix("remove ")) == gone
        elif edit.kind in ("resize", "move"):
            (old,), (now,) = gone, new
            changed = {f for f in ("shape", "colour", "size", "position") if getattr(old, f) != getattr(now, f)}
            assert changed == {"size" if edit.kind == "resize" else "position"}
            if edit.kind == "resize":
                assert edit.instruction == f"make {refer(scene, old)} {now.size}"
            else:
                assert now.position in scene.free_positions
                assert edit.instruction == f"move {refer(scene, old)} to the {now.position}"
            assert _refers_to(scene, refer(scene, old)) == [old]
        else:
            assert gone == new == []
            changed = {f for f in ("time", "terrain") if getattr(src_bg, f) != getattr(tgt_bg, f)}
            assert changed == {edit.kind}
        if edit.kind not in ("time", "terrain"):
            assert src_bg == tgt_bg
    assert seen == set(EDIT_KINDS)


def test_instruction_examples_and_references():
    star = Obj("star", "red", "large", "top left")
    circle = Obj("circle", "blue", "small", "center")
    scene = Scene((star, circle), Background("day", "grass"))
    assert recolour(scene, 0, colour="blue").instruction in ("make the star blue", "make the circle blue")
    assert (
        replace_shape(Scene((circle,)), 0, shape="square").instruction == "replace the circle with a square"
    )
    assert remove_object(Scene((star,)), 0).instruction == "remove the star"
    assert change_time(scene, 0, time="night").instruction == "make it night"
    assert resize(Scene((star,)), 0).instruction == "make the star small"
    moved = move(scene, 0, position="bottom right")
    assert moved.instruction in ("move the star to the bottom right", "move the circle to the bottom right")
    assert {o.position for o in moved.target.objects} - {o.position for o in scene.objects} == {"bottom right"}
    two_stars = Scene(
        (star, Obj("star", "blue", "small", "center"), Obj("star", "blue", "large", "bottom left"))
    )
    assert refer(two_stars, star) == "the red star"
    assert refer(two_stars, two_stars.objects[1]) == "the star at the center"


def test_edits_that_cannot_apply_say_so():
    with pytest.raises(WorldError, match="needs an object"):
        recolour(Scene(), 0)
    full = sample_scene(0, 3, min_objects=3)
    with pytest.raises(WorldError, match="cannot add"):
        add_object(full, 0, max_objects=3)
    with pytest.raises(WorldError, match="not free"):
        move(full, 0, position=full.objects[0].position)
    crowded = Scene(tuple(Obj("star", "red", "small", p) for p in POSITIONS))
    assert "move" not in possible_edits(crowded, max_objects=9) and "resize" in possible_edits(crowded)
    with pytest.raises(WorldError, match="none of the edits"):
        sample_edit(Scene(), 0, kinds=("recolour", "remove"))
    with pytest.raises(WorldError, match="unknown edit"):
        sample_edit(full, 0, kinds=("blur",))


def test_edit_chain_follows_on():
    chain = sample_edit_chain(sample_scene(4, 2), 5, turns=5)
    assert len(chain) == 5
    for before, after in itertools.pairwise(chain):
        assert after.source == before.target
    json.dumps([e.to_dict() for e in chain])
