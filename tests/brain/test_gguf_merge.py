"""World assistants on llama.cpp: a merged model written back as GGUF, and when llmga runs it that way."""

import importlib.util
import json

import numpy as np
import pytest

from llmga.brain import BrainSpec, _adapter_engine
from llmga.brain.gguf_merge import merge_lora_gguf
from llmga.checkpoints import smollm2_gguf
from llmga.errors import InvalidInputError
from llmga.settings import RuntimeSettings
from tests.support import save_random_adapter

needs_llama_cpp = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="needs llama-cpp-python")


@needs_llama_cpp
def test_llama_cpp_runs_the_merged_file_as_transformers_runs_the_adapter_merged_with_peft(tmp_path):
    import torch
    from llama_cpp import Llama
    from peft import PeftModel

    from llmga.brain import load_brain

    brain = load_brain("smollm2", runtime=RuntimeSettings(brain_engine="transformers"))
    ids = brain.tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        base = brain.model(ids).logits[0, -1].numpy()
    # far from the base, as a trained adapter may be; the query and key projections are stored permuted
    adapter = save_random_adapter(brain.model, tmp_path / "adapter", "smollm2",
                                  ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], std=0.5)
    merged = PeftModel.from_pretrained(load_brain("smollm2", runtime=RuntimeSettings(
        brain_engine="transformers")).model, adapter).merge_and_unload()
    with torch.inference_mode():
        changed = merged(ids).logits[0, -1].numpy()
    (tmp_path / "out").mkdir()
    file = merge_lora_gguf(adapter, smollm2_gguf(), tmp_path / "out" / "m.gguf", quant="F16")
    assert list(file.parent.iterdir()) == [file]  # the file alone, nothing beside it

    llm = Llama(str(file), n_ctx=64, logits_all=True, verbose=False)
    llm.eval(ids[0].tolist())
    read = np.asarray(llm.scores[ids.shape[1] - 1])
    assert np.corrcoef(read, changed)[0, 1] > 0.99 and read.argmax() == changed.argmax()
    assert np.corrcoef(read, base)[0, 1] < 0.6  # the adapter's weights, not the base's


def _adapter_config(folder, **settings):
    """An adapter folder holding ``adapter_config.json`` (a plain LoRA but for ``settings``) and no weights."""
    folder.mkdir(exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 4,
                                                            **settings}))
    (folder / "adapter_model.safetensors").write_bytes(b"")
    return folder


def test_an_architecture_llmga_cannot_write_is_refused(tmp_path):
    import gguf

    base = tmp_path / "base.gguf"
    writer = gguf.GGUFWriter(base, "mamba")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    with pytest.raises(ValueError, match="cannot write a mamba model"):
        merge_lora_gguf(_adapter_config(tmp_path / "adapter"), base, tmp_path / "m.gguf")
    assert not (tmp_path / "m.gguf").exists()


@pytest.mark.parametrize(("settings", "reason"), [
    ({"use_dora": True}, "use_dora"),
    ({"modules_to_save": ["lm_head"], "rank_pattern": {"q_proj": 4}}, "rank_pattern, modules_to_save"),
    ({"peft_type": "IA3"}, "peft_type"),
])
def test_an_adapter_that_is_not_a_plain_lora_stays_on_transformers_with_the_reason(tmp_path, settings, reason):
    adapter = _adapter_config(tmp_path / "adapter", **settings)
    assert _adapter_engine(SMOLLM2, RuntimeSettings(), adapter=adapter) == "transformers"
    with pytest.raises(InvalidInputError, match=rf"cannot run on llama.cpp: it is not a plain LoRA \({reason}\)"):
        _adapter_engine(SMOLLM2, RuntimeSettings(brain_engine="llama.cpp"), adapter=adapter)
    with pytest.raises(ValueError, match=rf"cannot be merged into a GGUF file: it is not a plain LoRA \({reason}\)"):
        merge_lora_gguf(adapter, smollm2_gguf(), tmp_path / "m.gguf")


def _gguf_with_keys(file, pairs):
    """A GGUF file (version 3, no tensors) holding the string keys ``pairs`` in that order."""
    import struct

    def text(value):
        return struct.pack("<Q", len(value.encode())) + value.encode()

    body = b"".join(text(key) + struct.pack("<I", 8) + text(value) for key, value in pairs)
    file.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(pairs)) + body)
    return file


@pytest.mark.parametrize(("pairs", "header_only"), [
    ([("general.architecture", "gemma3"), ("general.name", "g")], True),  # as writers put it
    ([("general.name", "g"), ("general.architecture", "gemma3")], False),  # another key first: read whole
])
def test_the_architecture_of_a_gguf_file_is_read_wherever_its_key_is(tmp_path, monkeypatch, pairs, header_only):
    import gguf

    from llmga.brain.gguf_merge import base_architecture

    file = _gguf_with_keys(tmp_path / "m.gguf", pairs)
    if header_only:
        monkeypatch.setattr(gguf, "GGUFReader", None)  # the header alone answers
        assert base_architecture(smollm2_gguf()) == "llama"
    assert base_architecture(file) == "gemma3"


SMOLLM2 = BrainSpec("gguf", str(smollm2_gguf()), backend="transformers")


@needs_llama_cpp
@pytest.mark.parametrize(("runtime", "engine"), [
    (RuntimeSettings(), "llama.cpp"),
    (RuntimeSettings(brain_device="cpu"), "llama.cpp"),
    (RuntimeSettings(brain_engine="llama.cpp", brain_device="cuda"), "llama.cpp"),
    (RuntimeSettings(brain_engine="transformers"), "transformers"),
    (RuntimeSettings(brain_device="cuda"), "transformers"),
    (RuntimeSettings(dtype="bfloat16"), "transformers"),
])
def test_auto_runs_an_adapter_on_a_gguf_base_on_llama_cpp_unless_asked_otherwise(runtime, engine):
    assert _adapter_engine(SMOLLM2, runtime) == engine


def test_llama_cpp_for_an_adapter_on_a_transformers_base_is_refused_with_the_reason(tmp_path):
    base = BrainSpec("multimodal", str(tmp_path))
    assert _adapter_engine(base, RuntimeSettings()) == "transformers"
    with pytest.raises(InvalidInputError, match="cannot run on llama.cpp: its base is not a GGUF file"):
        _adapter_engine(base, RuntimeSettings(brain_engine="llama.cpp"))


def test_an_unknown_engine_is_refused():
    with pytest.raises(InvalidInputError, match="brain_engine must be one of auto, llama.cpp, transformers"):
        RuntimeSettings(brain_engine="vllm")


@pytest.fixture(scope="session")
def smollm2_dequantized():
    """The packaged SmolLM2 GGUF de-quantized once into the default cache, as other tests load it."""
    from llmga.brain.transformers_brain import materialize_gguf
    from llmga.checkpoints import cache_dir

    return materialize_gguf(smollm2_gguf(), cache_dir())


@pytest.fixture
def smollm2_adapter(tmp_path, monkeypatch, smollm2_dequantized):
    """A small LoRA adapter on the packaged SmolLM2 GGUF base, with a system prompt of its own; the test's
    cache is empty but for the de-quantized base (merges and written GGUF files start from nothing)."""
    from llmga.brain import load_brain

    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / smollm2_dequantized.name).symlink_to(smollm2_dequantized, target_is_directory=True)
    monkeypatch.setenv("LLMGA_CACHE", str(tmp_path / "cache"))
    model = load_brain("smollm2", runtime=RuntimeSettings(brain_engine="transformers")).model
    folder = save_random_adapter(model, tmp_path / "adapter", "smollm2", ["q_proj", "v_proj"], std=0.01)
    (folder / "system_prompt.txt").write_text("You draw shapes.")
    return folder


def test_a_server_or_a_gguf_file_on_llama_cpp_loads_without_torch_and_transformers_models_do_not(tmp_path):
    from llmga.brain import loads_without_torch

    assert loads_without_torch(BrainSpec("server", "http://localhost:8000/v1"))
    assert loads_without_torch(BrainSpec("gguf", str(smollm2_gguf()), backend="llama.cpp"))
    assert not loads_without_torch(SMOLLM2)  # de-quantized into transformers
    assert not loads_without_torch(BrainSpec("causal", str(tmp_path)))


@needs_llama_cpp
def test_an_adapter_on_a_gguf_base_is_written_once_and_runs_on_llama_cpp(smollm2_adapter, tmp_path, monkeypatch):
    import llmga.brain as brains
    from llmga.brain import BrainRequest, complete, load_brain
    from llmga.brain.llama_cpp_brain import LlamaCppBrain
    from llmga.settings import SamplingSettings

    spec = brains.resolve_brain(str(smollm2_adapter))
    assert brains.loads_without_torch(spec)  # the merge reads the adapter with numpy: a painter can import beside
    brain = load_brain(str(smollm2_adapter))
    assert isinstance(brain, LlamaCppBrain) and brain.system_prompt == "You draw shapes."
    assert not brains.loads_without_torch(spec, RuntimeSettings(brain_engine="transformers"))
    assert "llama.cpp" in brain.describe() and "adapter" in brain.describe()
    written = list((tmp_path / "cache" / "merged").glob("*-gguf/model.gguf"))
    assert len(written) == 1
    assert list((tmp_path / "cache" / "merged").iterdir()) == [written[0].parent]  # no transformers copy beside it

    def merge_again(*args):
        raise AssertionError("merged again")

    monkeypatch.setattr(brains, "_merged_model", merge_again)  # the second load reads the written file
    again = load_brain(str(smollm2_adapter))
    request = BrainRequest([{"role": "user", "content": "hi"}], settings=SamplingSettings(temperature=0,
                                                                                          max_new_tokens=8))
    assert complete(again, request).strip()


@needs_llama_cpp
@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"),  # a full cache
                                     ValueError("no GGUF name for model.extra.weight")])  # weights it cannot place
def test_a_gguf_file_that_cannot_be_written_leaves_the_adapter_on_transformers(smollm2_adapter, tmp_path,
                                                                                monkeypatch, failure):
    import llmga.brain.gguf_merge as export
    from llmga.brain import load_brain
    from llmga.brain.transformers_brain import TransformersBrain

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(export, "merge_lora_gguf", fail)
    brain = load_brain(str(smollm2_adapter))
    assert isinstance(brain, TransformersBrain) and brain.system_prompt == "You draw shapes."
    assert not list((tmp_path / "cache" / "merged").glob("*gguf*"))  # nothing half-written left
