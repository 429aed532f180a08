"""The shipped world-llava assistant."""

import pytest

from llmga.brain import load_brain
from llmga.data.world_chat import held_out_pairs
from llmga.eval.replies import answers
from llmga.protocol import parse_reply
from llmga.world import parse_detailed, render

pytestmark = [pytest.mark.shipped, pytest.mark.xdist_group("gemma3-world")]  # one worker prepares it


def test_the_shipped_world_llava_reads_the_background_and_objects_of_a_picture():
    """`world-llava`, asked for a picture like a rendered one, names its background and its objects' looks."""
    brain = load_brain("world-llava")
    assert brain.multimodal
    held = held_out_pairs(0)
    for caption in ("a large green circle at the center, on snow under a day sky",
                    "a small blue square at the top left and a large red star at the bottom right, "
                    "on sand under a night sky"):
        scene = parse_detailed(caption)
        assert all((o.colour, o.shape) not in held for o in scene.objects)
        reply = parse_reply(answers(brain, ["Make a picture like this one."], [render(scene)])[0], brain.end_markers)
        seen = parse_detailed(reply.prompts[0])
        assert seen.background == scene.background
        looks = sorted((o.colour, o.shape, o.size) for o in seen.objects)
        assert looks == sorted((o.colour, o.shape, o.size) for o in scene.objects), reply.prompts[0]


def test_the_shipped_world_llava_answers_a_request_without_a_picture_as_gemma3_world_does():
    """Its text turns are `gemma3-world`'s (the eye's training moved the language model; `llmga.brain.picture_gate`)."""
    request = ["Could you draw a tiny purple triangle in the top-right corner at sunset?"]
    brain = load_brain("world-llava")
    said = answers(brain, request)[0]
    assert said == answers(load_brain("gemma3-world"), request)[0]
    assert "purple triangle" in parse_reply(said, brain.end_markers).prompts[0]
    assert brain._eye is None  # no picture, so the eye was never loaded
