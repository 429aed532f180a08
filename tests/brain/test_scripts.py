"""Keeping a reply to its conversation's scripts: which tokens are masked, and the local brains keeping to them."""

import copy

import pytest

from llmga.brain import BrainRequest, complete, load_brain, transformers_brain
from llmga.brain.scripts import TABLE_VERSION, ScriptMask, token_scripts
from llmga.brain.transformers_brain import TransformersBrain, vocabulary_key
from llmga.checkpoints import smollm2_gguf
from llmga.retry import scripts
from llmga.settings import RuntimeSettings, SamplingSettings

LATIN = frozenset({"LATIN"})


def test_a_token_is_judged_by_its_letters_and_by_the_letters_its_unfinished_last_one_may_be():
    assert token_scripts(" can".encode()).outside(LATIN) is False
    assert token_scripts("אים".encode()).outside(LATIN)
    assert token_scripts("П".encode()[:1]).outside(LATIN)  # half a Cyrillic letter
    assert token_scripts("想".encode()[:2]).outside(LATIN) and not token_scripts("想".encode()[:2]).outside(
        frozenset({"LATIN", "CJK"}))
    assert not token_scripts("é".encode()[:1]).outside(LATIN)  # begins Latin letters too
    assert not token_scripts("—".encode()[:1]).outside(LATIN)  # punctuation's lead byte also begins Latin ones
    assert not token_scripts(b"\x83").outside(LATIN)  # a letter's last byte: judged with its lead


def test_a_mask_covers_the_logits_even_where_they_outnumber_the_tokens():
    mask = ScriptMask(lambda: [b"a", "П".encode(), b"!", "好".encode()])
    assert mask.banned(LATIN, 6).tolist() == [False, True, False, True, False, False]
    assert mask.banned(frozenset({"LATIN", "CJK"}), 3).tolist() == [False, True, False]


def test_a_stored_mask_is_read_back_by_the_next_process_without_reading_the_vocabulary(tmp_path):
    vocabulary = [b"a", "П".encode(), b"!", "好".encode(), "想".encode()[:2]]
    store = tmp_path / "cache" / "scripts.npz"
    first = ScriptMask(lambda: vocabulary, store=lambda: store)
    wanted = [first.banned(allowed, 6).tolist() for allowed in (LATIN, frozenset({"LATIN", "CJK"}))]
    assert store.is_file()

    def unread():
        raise AssertionError("the vocabulary was read again")

    again = ScriptMask(unread, store=lambda: store)
    assert [again.banned(allowed, 6).tolist() for allowed in (LATIN, frozenset({"LATIN", "CJK"}))] == wanted


def test_a_damaged_or_unwritable_store_only_costs_reading_the_vocabulary(tmp_path):
    damaged = tmp_path / "scripts.npz"
    damaged.write_bytes(b"not a table")
    assert ScriptMask(lambda: [b"a", "П".encode()], store=lambda: damaged).banned(LATIN, 2).tolist() == [False, True]
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    mask = ScriptMask(lambda: [b"a", "П".encode()], store=lambda: blocked / "scripts.npz")  # its folder cannot be made
    assert mask.banned(LATIN, 2).tolist() == [False, True] and not (blocked / "scripts.npz").exists()


def test_the_transformers_engine_stores_its_table_under_its_tokenizers_digest(tmp_path, monkeypatch):
    brain = load_brain("smollm2")
    monkeypatch.setenv("LLMGA_CACHE", str(tmp_path))
    size = len(brain.tokenizer)
    wanted = brain._script_mask.banned(LATIN, size)
    assert [p.name for p in (tmp_path / "token-scripts").iterdir()] == [f"{vocabulary_key(brain.tokenizer)}-v{TABLE_VERSION}.npz"]

    def unread(tokenizer):
        raise AssertionError("the vocabulary was read again")

    monkeypatch.setattr(transformers_brain, "_token_bytes", unread)
    assert (TransformersBrain(brain.model, brain.tokenizer)._script_mask.banned(LATIN, size) == wanted).all()
    grown = copy.deepcopy(brain.tokenizer)
    grown.add_tokens(["Привет"])
    assert vocabulary_key(grown) != vocabulary_key(brain.tokenizer)  # another vocabulary is not read from it


@pytest.mark.parametrize("engine", ["llama.cpp", "transformers"])
def test_a_local_brain_kept_to_latin_letters_writes_none_of_another_script(engine):
    brain = load_brain(str(smollm2_gguf()), runtime=RuntimeSettings(brain_device="cpu")) if engine == "llama.cpp" \
        else load_brain("smollm2")
    messages = [{"role": "user", "content": "Say hello in Russian, Greek and Chinese."}]
    settings = SamplingSettings(temperature=0, max_new_tokens=24)

    def reply(kept_to):
        return complete(brain, BrainRequest(messages, settings=settings, prefill="Привет", scripts=kept_to))[6:]

    assert "CYRILLIC" in scripts(reply(None))  # it goes on in Russian when free to
    kept = reply(LATIN)
    assert scripts(kept) == {"LATIN"}
