"""Helpers for embedding-control tests: world-like records and a few-step ``llmga train gill`` on the tiny stacks."""

import json

from llmga.protocol import tag_prompt

CAPTIONS = ["a small red star at the top left, on grass under a day sky",
            "a large blue circle at the center, on snow under a night sky",
            "a small green square at the bottom right, on sand under a sunset sky"]


def records(n=6):
    out = []
    for i in range(n):
        caption = CAPTIONS[i % len(CAPTIONS)]
        out.append({"id": f"r{i}", "conversations": [
            {"from": "human", "value": f"Draw {caption}."}, {"from": "gpt", "value": f"Sure! {tag_prompt(caption)}"}]})
    out.append({"id": "qa", "conversations": [{"from": "human", "value": "What is 2 plus 2?"},
                                              {"from": "gpt", "value": "2 plus 2 is 4."}]})
    return out


def write_records(path, n=6):
    path.write_text(json.dumps(records(n)))
    return path


def train(tiny, data, out, painter="sd15", **options):
    """A few steps of ``llmga train gill`` with a small mapper on the tiny LM and the tiny ``painter``."""
    from llmga.train.gill import GillConfig, train_gill

    settings = dict(max_steps=2, batch_size=4, lr=1e-3, warmup_steps=0, save_every=100, threads=1,
                    mapper_inner=32, mapper_layers=1, mapper_heads=2)
    return train_gill(GillConfig(model=str(tiny.causal_lm()), painter=str(tiny.sd(painter)), data=[str(data)],
                                 out=str(out), **{**settings, **options}))
