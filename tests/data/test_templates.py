"""Instruction template pools: many distinct phrasings, each with exactly its fields."""

import random

import pytest

from llmga.data.templates import POOLS, REPLIES, Pool, as_sentence, join_sides


@pytest.mark.parametrize("pool", POOLS, ids=lambda p: p.name)
def test_each_instruction_pool_has_twenty_distinct_phrasings(pool):
    assert len(pool.templates) >= 20
    fields = {name: f"<{name}>" for name in pool.fields}
    filled = {template.format(**fields) for template in pool.templates}
    assert len(filled) == len(pool.templates)
    assert all(value in text for text in filled for value in fields.values())


def test_replies_exist_for_every_tagged_task():
    assert set(REPLIES) == {"generate", "similar", "inpaint", "outpaint", "edit"}
    assert all(len(pool.templates) >= 10 for pool in REPLIES.values())


def test_a_template_with_the_wrong_fields_is_refused():
    with pytest.raises(ValueError, match="uses"):
        Pool("bad", frozenset({"caption"}), ("Draw it.",))
    with pytest.raises(ValueError, match="repeats"):
        Pool("bad", frozenset(), ("Draw it.", "Draw it."))


def test_pick_is_seeded_and_helpers_format_text():
    pool = POOLS[0]
    assert pool.pick(random.Random(5), caption="X.") == pool.pick(random.Random(5), caption="X.")
    assert as_sentence("  a cat   on a mat ") == "A cat on a mat."
    assert as_sentence("Is it red?") == "Is it red?"
    assert join_sides(["left"]) == "the left"
    assert join_sides(["left", "top", "bottom"]) == "the left, the top and the bottom"
