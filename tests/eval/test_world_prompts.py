"""The oracle measurement of the LLaVA-format world assistant: a perfect brain scores full marks, a wrong one none."""

from dataclasses import replace

from llmga.data.world_chat import colour_shapes, held_out_pairs
from llmga.data.world_sets import KINDS, held_out_items
from llmga.eval.world_prompts import measure_llava
from llmga.protocol import parse_reply, tag_prompt
from llmga.testing.doubles import ScriptedBrain, last_user_text
from llmga.world import COLOURS, TIMES, detailed_caption, parse_detailed

def following(vocabulary, value):
    return vocabulary[(vocabulary.index(value) + 1) % len(vocabulary)]


def oracle(items, wrong=False):
    """A brain answering each held-out item with the reply it was built with; ``wrong``: right format, wrong
    picture (every colour and the time of day changed; plain answers say nothing)."""
    answers = {(item.request, item.image.tobytes() if item.image is not None else None): item.reply for item in items}

    def reply(request):
        key = (last_user_text(request), request.images[0].tobytes() if request.images else None)
        answer = answers[key]
        if not wrong:
            return answer
        prompts = parse_reply(answer).prompts
        if not prompts:
            return "I cannot tell."
        scene = parse_detailed(prompts[0])
        changed = scene.with_objects(replace(o, colour=following(COLOURS, o.colour)) for o in scene.objects)
        changed = changed.with_background(time=following(TIMES, scene.background.time))
        return f"Here. {tag_prompt(detailed_caption(changed))}"

    return ScriptedBrain(reply)


def test_a_perfect_llava_assistant_scores_full_marks_and_a_wrong_one_none():
    items = held_out_items(n=6, seed=0)
    assert all(colour_shapes(*item.scenes) & held_out_pairs(0) for item in items if item.kind != "question")
    perfect = measure_llava(oracle(items), n=6, seed=0)
    assert set(perfect) == set(KINDS)
    assert all((s.items, s.well_formed, s.faithful) == (6, 1.0, 1.0) for s in perfect.values()), perfect
    pictured = {"similar", "inpaint", "outpaint", "edit"}
    assert pictured <= {k for k, s in perfect.items() if s.aspects}  # (a refine request may name everything)
    assert all(share == 1.0 for k in pictured for share in perfect[k].aspects.values())
    wrong = measure_llava(oracle(items, wrong=True), n=6, seed=0)
    assert all(s.faithful == 0.0 for s in wrong.values()), wrong
    assert wrong["edit"].well_formed == 1.0
    # The wrong brain moves nothing: it is right about where objects stand, wrong about sky and colours.
    assert all(wrong[k].aspects == {"background": 0.0, "looks": 0.0, "positions": 1.0} for k in pictured), wrong
