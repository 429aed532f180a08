"""Edit pairs from an LLM: the fixed answer format, and cleaning that counts what it drops."""

from llmga.data import AnswerCache, EditPair, EditPairWriter, clean_pairs, parse_pairs
from tests.data.support import ScriptedBrain

SOURCE = "A cat is lying on the ground."


def test_the_papers_format_parses_in_its_common_variants():
    answer = (
        "1. Instruction: Replace the cat with a dog., Target caption: A dog is lying on the ground.\n"
        "2. Instruction: Put it in room 101., Target caption: A cat is lying on the floor of room 101.\n"
        "3. instruction: make it night; target caption: a cat is lying on the ground at night\n"
        'Instruction: Add a hat.\nTarget caption: "A cat in a hat is lying on the ground."'
    )
    pairs, malformed = parse_pairs(answer, SOURCE)
    assert malformed == 0
    assert pairs == [
        EditPair(SOURCE, "Replace the cat with a dog.", "A dog is lying on the ground."),
        EditPair(SOURCE, "Put it in room 101.", "A cat is lying on the floor of room 101."),
        EditPair(SOURCE, "Make it night.", "A cat is lying on the ground at night."),
        EditPair(SOURCE, "Add a hat.", "A cat in a hat is lying on the ground."),
    ]


def test_malformed_pairs_are_counted():
    pairs, malformed = parse_pairs(
        "Instruction: Make it red.\nInstruction: , Target caption: x\n"
        "Instruction: Add a dog., Target caption:",
        SOURCE,
    )
    assert pairs == [] and malformed == 3
    assert parse_pairs("Sure! Here are some edits you might like.", SOURCE) == ([], 1)


def test_cleaning_drops_unchanged_and_repeated_pairs_and_counts_them():
    pairs = [
        EditPair(SOURCE, "Keep it.", "a cat is lying on the ground"),  # unchanged, up to case and punctuation
        EditPair(SOURCE, "Make it snow.", "A cat is lying on the snowy ground."),
        EditPair(SOURCE, "Make it snow!", "A cat is lying on the snowy ground"),  # a repeat
        EditPair(SOURCE, "Replace the cat with a dog.", "A dog is lying on the ground."),
    ]
    kept, counts = clean_pairs(pairs)
    assert [p.instruction for p in kept] == ["Make it snow.", "Replace the cat with a dog."]
    assert counts == {"kept": 2, "unchanged": 1, "duplicate": 1}


def test_the_writer_asks_once_per_caption_with_a_few_shot_prompt_and_reports_counts(tmp_path):
    brain = ScriptedBrain(
        "Instruction: Make it red., Target caption: A red cat is lying on the ground.\n"
        "Instruction: Do nothing., Target caption: A cat is lying on the ground.\n"
        "Instruction: Target caption: nothing\n<|im_end|>"
    )
    writer = EditPairWriter(brain, AnswerCache(tmp_path / "c.sqlite"), pairs_per_caption=3)
    kept, counts = writer.pairs(SOURCE)
    assert [p.target for p in kept] == ["A red cat is lying on the ground."]
    assert counts == {"kept": 1, "unchanged": 1, "malformed": 1}
    messages = brain.requests[0].messages
    assert "3 different" in messages[0]["content"] and messages[-1]["content"] == f"Caption: {SOURCE}"
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    writer.pairs(SOURCE)
    assert len(brain.requests) == 1
