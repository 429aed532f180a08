"""Brains as people run them: llava-hf models as they are, 4/8-bit in process, GGUF files through llama.cpp,
on the device asked for."""

import importlib.util

import pytest
from PIL import Image

from llmga.brain import BrainRequest, complete, load_brain
from llmga.brain.llama_cpp_brain import LlamaCppBrain
from llmga.checkpoints import smollm2_gguf
from llmga.conversation import Conversation
from llmga.errors import BrainError, InvalidInputError
from llmga.settings import RuntimeSettings, SamplingSettings
from llmga.testing import build_tiny_causal_lm

GREEDY = SamplingSettings(temperature=0, max_new_tokens=8)


def ask(text, images=(), multimodal=False):
    conv = Conversation(system_prompt="You are a helpful assistant.")
    conv.add_user(text, list(images))
    return conv.to_messages(multimodal)


def test_a_llava_next_model_loads_directly_as_a_brain(tmp_path):
    from llmga.testing.tiny_native import build_tiny_llava_next

    brain = load_brain(str(build_tiny_llava_next(tmp_path / "next")), runtime=RuntimeSettings(brain_device="cpu"))
    assert brain.multimodal and type(brain.model).__name__ == "LlavaNextForConditionalGeneration"
    messages, _ = ask("what is it?", [Image.new("RGB", (70, 30))], multimodal=True)
    inputs = brain._inputs(messages, [Image.new("RGB", (70, 30), "red")], "")
    assert inputs["pixel_values"].shape[1] > 1  # tiles of the wide picture, as LLaVA-NeXT reads it
    assert isinstance(complete(brain, BrainRequest(messages, [Image.new("RGB", (70, 30))], GREEDY)), str)


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None, reason="bitsandbytes is not installed")
@pytest.mark.parametrize("bits,layer", [("8bit", "Linear8bitLt"), ("4bit", "Linear4bit")])
def test_a_brain_quantized_in_process_answers_from_fewer_bytes(tmp_path, bits, layer):
    path = build_tiny_causal_lm(tmp_path / "lm", width=128)
    full = load_brain(str(path), runtime=RuntimeSettings(brain_device="cpu"))
    small = load_brain(str(path), runtime=RuntimeSettings(brain_device="cpu", brain_quantize=bits))
    assert type(small.model.model.layers[0].mlp.up_proj).__name__ == layer
    assert small.model.get_memory_footprint() < 0.6 * full.model.get_memory_footprint()
    messages, _ = ask("draw a red fox")
    assert isinstance(complete(small, BrainRequest(messages, settings=GREEDY)), str)


def test_quantizing_what_cannot_be_is_refused(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(InvalidInputError, match="quantized already"):
        load_brain(str(gguf), runtime=RuntimeSettings(brain_quantize="4bit"))
    with pytest.raises(InvalidInputError, match="brain_quantize must be one of"):
        RuntimeSettings(brain_quantize="3bit")


@pytest.fixture(scope="module")
def gguf_brain():
    return load_brain(str(smollm2_gguf()), runtime=RuntimeSettings(brain_device="cpu"))


def test_a_gguf_file_runs_on_llama_cpp_quantized_as_it_is(gguf_brain):
    assert isinstance(gguf_brain, LlamaCppBrain) and "llama.cpp" in gguf_brain.describe()
    messages, _ = ask("What is the capital city of France?")  # a 4-bit 135M model: "capital of France?" starts "La femme"
    prompt = gguf_brain.prompt(messages)
    assert prompt.endswith("<|im_start|>assistant\n") and "What is the capital city of France?" in prompt
    assert prompt.startswith("<|im_start|>system\n")  # its begin token is the template's first turn marker
    reply = complete(gguf_brain, BrainRequest(messages, settings=SamplingSettings(temperature=0, max_new_tokens=12)))
    assert "Paris" in reply
    again = complete(gguf_brain, BrainRequest(messages, settings=SamplingSettings(temperature=0, max_new_tokens=12)))
    assert again == reply
    prefilled = complete(gguf_brain, BrainRequest(messages, settings=SamplingSettings(temperature=0, max_new_tokens=3),
                                                  prefill="Sure! <gen_img>"))
    assert prefilled.startswith("Sure! <gen_img>")
    with pytest.raises(BrainError, match="cannot read images"):
        complete(gguf_brain, BrainRequest(messages, [Image.new("RGB", (4, 4))], GREEDY))


def test_the_packaged_smollm2_base_loads_in_transformers_and_a_gguf_file_on_llama_cpp():
    from llmga.brain import resolve_brain

    assert resolve_brain("smollm2").backend == "transformers"
    assert resolve_brain(str(smollm2_gguf())).backend == "llama.cpp"


def test_a_long_chat_on_llama_cpp_keeps_its_newest_turns_and_a_message_too_long_alone_is_a_clear_error():
    brain = LlamaCppBrain(smollm2_gguf(), n_ctx=256, device="cpu")
    conv = Conversation(system_prompt="You are a helpful assistant.")
    for i in range(30):  # about 900 tokens all together
        conv.add_user(f"message {i} " + "word " * 20)
        conv.add_assistant(f"answer {i}")
    conv.add_user("What is the capital city of France?")
    messages, _ = conv.to_messages(False)
    seen = []
    original = brain.prompt
    brain.prompt = lambda m, prefill="": seen.append(list(m)) or original(m, prefill)
    reply = complete(brain, BrainRequest(messages, settings=GREEDY))
    kept = seen[-1]
    assert isinstance(reply, str)
    assert kept[0] == messages[0] and kept[-1] == messages[-1] and 3 <= len(kept) < len(messages)
    assert kept[1:] == messages[len(messages) - len(kept) + 1:]  # the newest exchanges, whole
    assert len(brain.llm.tokenize(original(kept).encode(), add_bos=False, special=True)) + GREEDY.max_new_tokens <= 256
    with pytest.raises(BrainError, match="beyond the 256-token context"):
        complete(brain, BrainRequest(ask("word " * 1000)[0], settings=GREEDY))


def test_a_reply_on_llama_cpp_depends_on_the_conversation_not_on_what_the_brain_said_before():
    """llama.cpp decodes a reply's own tokens one at a time, which gives slightly different numbers from
    reading the same tokens in a prompt; each turn of a chat must be answered as a fresh brain answers it."""
    settings = SamplingSettings(temperature=0.0, max_new_tokens=24)
    talking, fresh = (LlamaCppBrain(smollm2_gguf(), n_ctx=1024, device="cpu") for _ in range(2))
    conv = Conversation(system_prompt="You are a helpful assistant.")
    for asked in ["Hi!", "Name a colour.", "Thanks!"]:
        conv.add_user(asked)
        messages = conv.to_messages(False)[0]
        reply = complete(talking, BrainRequest(messages, settings=settings))
        fresh.llm.reset()
        assert reply == complete(fresh, BrainRequest(messages, settings=settings)), asked
        assert complete(talking, BrainRequest(messages, settings=settings)) == reply  # asked again at once
        conv.add_assistant(reply)
