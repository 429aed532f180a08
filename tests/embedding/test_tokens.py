"""The [IMG] tokens in training replies and in token ids."""

import torch

from llmga.embedding.heads import ControlConfig
from llmga.embedding.tokens import control_record, group_starts

RECORD = {"id": "x", "conversations": [
    {"from": "human", "value": "Draw a red star and a blue moon."},
    {"from": "gpt", "value": "Sure! <gen_img>a red star</gen_img> and <gen_image>a blue moon</gen_image>"},
    {"from": "human", "value": "What is 2 plus 2?"}, {"from": "gpt", "value": "4."}]}


def test_tagged_replies_keep_their_words_and_put_the_tokens_in_the_tags():
    config = ControlConfig(base="b", hidden=8, width=8, tokens=2)
    changed, prompts = control_record(RECORD, config)
    assert prompts == ["a red star", "a blue moon"]
    assert changed["conversations"][1]["value"] == \
        "Sure! <gen_img>[IMG1][IMG2]</gen_img> and <gen_img>[IMG1][IMG2]</gen_img>"
    assert changed["conversations"][3]["value"] == "4."  # a plain answer stays
    assert RECORD["conversations"][1]["value"].startswith("Sure! <gen_img>a red")  # the record is not changed


def test_bare_replies_are_the_tokens_alone():
    config = ControlConfig(base="b", hidden=8, width=8, tokens=2, style="bare")
    changed, prompts = control_record(RECORD, config)
    assert changed["conversations"][1]["value"] == "[IMG1][IMG2] [IMG1][IMG2]" and len(prompts) == 2


def test_only_whole_groups_are_found():
    ids = [7, 8, 9]
    sequence = torch.tensor([1, 7, 8, 9, 2, 7, 8, 3, 7, 8, 9])
    assert group_starts(sequence, ids) == [1, 8]
