"""The world's refinement set and the oracle measurement of the assistant."""

import json
import re

from llmga.protocol import parse_reply
from llmga.world.assistant import build_refine_set, held_out_pairs, measure_assistant
from llmga.world.captions import parse_detailed
from test_assistant import ScriptedBrain


def test_training_requests_avoid_the_held_out_pairs_and_answers_parse(tmp_path):
    held = held_out_pairs(0)
    assert held
    records = json.loads(build_refine_set(tmp_path / "d.json", n=300, seed=0).read_text())
    for record in records:
        question, answer = (t["value"] for t in record["conversations"])
        reply = parse_reply(answer)
        if reply.prompts:
            scene = parse_detailed(reply.prompts[0])
            assert all((o.colour, o.shape) not in held for o in scene.objects)
            assert all(f"{o.colour} {o.shape}" in question for o in scene.objects)
        else:
            assert "<gen_img>" not in answer


class Echo(ScriptedBrain):
    """Answers every request with a world caption of what was asked (a perfect assistant), or plainly."""

    multimodal = False

    def stream(self, messages, images=(), settings=None, prefill=""):
        text = messages[-1]["content"]
        words = re.findall(r"[a-z]+", text.lower())
        for i in range(len(words) - 2):
            if words[i] in ("a", "an") and words[i + 2] in ("circle", "square", "triangle", "star", "diamond", "cross"):
                yield f"<gen_img>a small {words[i + 1]} {words[i + 2]} at the center, on grass under a day sky</gen_img>"
                return
        yield "It is 4."


def test_a_perfect_assistant_scores_full_marks_and_a_wrong_one_none():
    scores = measure_assistant(Echo(), n=30, seed=0)
    assert scores.requests > 0 and (scores.well_formed, scores.faithful_oracle) == (1.0, 1.0)

    class Wrong(Echo):
        def stream(self, messages, images=(), settings=None, prefill=""):
            yield "<gen_img>a small red star at the center, on grass under a day sky</gen_img>"

    wrong = measure_assistant(Wrong(), n=30, seed=0)
    assert wrong.faithful_oracle < 0.5


def test_the_shipped_world_assistant_asks_for_what_was_requested():
    """`smollm2-world`: its prompt for a blue square renders (oracle) as a blue square, as the judge reads it."""
    from llmga.brain import SamplingSettings, complete, load_brain
    from llmga.conversation import Conversation
    from llmga.world.captions import oracle_paint
    from llmga.world.judge import Judge

    brain = load_brain("smollm2-world")
    conv = Conversation()
    conv.add_user("Draw a blue square.")
    messages, _ = conv.to_messages(False)
    reply = parse_reply(complete(brain, messages, settings=SamplingSettings(temperature=0, max_new_tokens=60)),
                        brain.end_markers)
    assert len(reply.prompts) == 1
    seen = Judge.load().read([oracle_paint(reply.prompts[0])])[0]
    assert [(o.colour, o.shape) for o in seen.objects] == [("blue", "square")]
