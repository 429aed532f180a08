"""The world's refinement set."""

import json

from llmga.data.world_refine import build_refine_set, held_out_pairs
from llmga.protocol import parse_reply
from llmga.world.captions import parse_detailed


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
