"""The world assistant's stage-1 sets."""

import json

from llmga.data.world_chat import colour_shapes, held_out_pairs
from llmga.data.world_sets import KINDS, build_world_sets
from llmga.images import read_metadata
from llmga.protocol import parse_reply
from llmga.train.chat_data import ChatEncoder
from llmga.world import Scene, parse_detailed


def test_the_world_sets_are_deterministic_cover_every_kind_and_avoid_held_out_pairs(tiny, tmp_path):
    from transformers import AutoProcessor

    first = build_world_sets(tmp_path / "a" / "d.json", n=150, seed=0)
    second = build_world_sets(tmp_path / "b" / "d.json", n=150, seed=0)
    records = json.loads(first.read_text())
    assert records == json.loads(second.read_text())
    assert {r["kind"] for r in records} == set(KINDS)
    held = held_out_pairs(0)
    for record in records:
        request, answer = (turn["value"] for turn in record["conversations"])
        reply = parse_reply(answer)
        if reply.prompts:
            assert not colour_shapes(parse_detailed(reply.prompts[0])) & held
        assert not any(f"{c} {s}" in request for c, s in held)
        if "image" in record:
            assert reply.tasks == ([record["kind"]] if reply.prompts else [])  # the tags say what to do
            assert (first.parent / record["image"]).read_bytes() == (second.parent / record["image"]).read_bytes()
            assert not colour_shapes(Scene.from_dict(read_metadata(first.parent / record["image"])["scene"])) & held
            assert request.startswith("<image>\n")
    processor = AutoProcessor.from_pretrained(tiny.world_llava())
    encoder = ChatEncoder(processor.tokenizer, processor)
    for record in records:  # every record is a valid stage-1 sample (its picture included)
        encoder.encode(record, first.parent)
