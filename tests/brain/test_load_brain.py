"""Transformers brains: tiny text-only and LLaVA models, and the real SmolLM2."""

import json

import pytest
import torch
from PIL import Image

from llmga.brain import BrainRequest, complete, load_brain
from llmga.brain.transformers_brain import TransformersBrain
from llmga.conversation import Conversation
from llmga.errors import BrainError, ModelNotFoundError
from llmga.settings import SamplingSettings
from llmga.testing import build_tiny_causal_lm

GREEDY = SamplingSettings(temperature=0, max_new_tokens=12)


@pytest.fixture(scope="module")
def causal(tiny):
    return load_brain(str(tiny.causal_lm()))


@pytest.fixture(scope="module")
def llava(tiny):
    return load_brain(str(tiny.llava()))


def ask(text, images=(), multimodal=False):
    conv = Conversation()
    conv.add_user(text, list(images))
    return conv.to_messages(multimodal)


def test_directory_kind_decides_the_backend(causal, llava):
    assert isinstance(causal, TransformersBrain) and not causal.multimodal
    assert llava.multimodal and "multimodal" in llava.describe()


def test_stream_pieces_join_to_the_greedy_reply(causal):
    messages, _ = ask("draw a fox")
    pieces = list(causal.stream(BrainRequest(messages, settings=GREEDY)))
    assert len(pieces) > 1
    assert "".join(pieces) == complete(causal, BrainRequest(messages, settings=GREEDY))


def test_seeded_sampling_repeats_and_seed_matters(causal):
    messages, _ = ask("draw a fox")
    hot = SamplingSettings(temperature=1.5, max_new_tokens=16, seed=1)
    a, b = complete(causal, BrainRequest(messages, settings=hot)), complete(causal, BrainRequest(messages, settings=hot))
    others = {complete(causal, BrainRequest(messages, settings=SamplingSettings(temperature=1.5, max_new_tokens=16, seed=s)))
              for s in range(2, 6)}
    assert a == b
    assert others - {a}


def test_max_new_tokens_bounds_the_reply(causal):
    messages, _ = ask("hello")
    short = complete(causal, BrainRequest(messages, settings=SamplingSettings(temperature=0, max_new_tokens=3)))
    longer = complete(causal, BrainRequest(messages, settings=SamplingSettings(temperature=0, max_new_tokens=12)))
    assert len(short) < len(longer) and longer.startswith(short.rstrip("\ufffd"))


def test_prefill_starts_the_reply(causal):
    messages, _ = ask("draw a fox")
    assert complete(causal, BrainRequest(messages, settings=GREEDY, prefill="<gen_img>")).startswith("<gen_img>")


def test_llava_reads_the_image(llava):
    logits = []
    for color in ("red", "blue"):
        messages, images = ask("what is this?", [Image.new("RGB", (40, 30), color)], multimodal=True)
        assert complete(llava, BrainRequest(messages, images, GREEDY))
        inputs = llava._inputs(messages, images, prefill="")
        assert (inputs["input_ids"] == llava.model.config.image_token_id).sum() == 16  # image expanded
        with torch.no_grad():
            logits.append(llava.model(**inputs).logits[0, -1])
    assert not torch.allclose(*logits)  # the pixels reach the language model


def test_images_to_a_text_only_brain_are_an_error(causal):
    messages, _ = ask("hi")
    with pytest.raises(BrainError, match="text-only"):
        complete(causal, BrainRequest(messages, [Image.new("RGB", (8, 8))], GREEDY))


def test_a_conversation_beyond_the_context_is_a_clear_error(causal):
    messages, _ = ask("word " * 10_000)
    with pytest.raises(BrainError, match="beyond the 1024-token context"):
        complete(causal, BrainRequest(messages, settings=GREEDY))


def test_a_long_conversation_is_trimmed_to_the_context_not_refused(llava):
    conv = Conversation()
    conv.add_user("an old picture", [Image.new("RGB", (8, 8), "red")])
    conv.add_assistant("old answer")
    for i in range(40):  # far beyond the 512-token context all together
        conv.add_user(f"message {i} " + "word " * 20)
        conv.add_assistant(f"answer {i}")
    conv.add_user("the newest question", [Image.new("RGB", (8, 8), "blue")])
    messages, images = conv.to_messages(True, max_images=2)
    assert len(images) == 2
    seen = []
    original = llava._inputs
    llava._inputs = lambda m, i, p: seen.append((list(m), list(i))) or original(m, i, p)
    try:
        reply = complete(llava, BrainRequest(messages, images, GREEDY))
    finally:
        del llava._inputs
    kept, kept_images = seen[-1]
    assert isinstance(reply, str) and kept[0]["role"] == "system" and kept[-1] == messages[-1]
    assert len(kept) < len(messages) and len(kept_images) == 1  # the old picture left with its message


def test_model_without_chat_template_is_refused(tmp_path):
    path = build_tiny_causal_lm(tmp_path / "lm")
    cfg_file = path / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg.pop("chat_template", None)
    cfg_file.write_text(json.dumps(cfg))
    (path / "chat_template.jinja").unlink(missing_ok=True)
    with pytest.raises(BrainError, match="no chat_template"):
        load_brain(str(path))


def test_missing_or_incomplete_models_fail_naming_the_problem(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_brain(str(tmp_path / "missing"))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_brain(str(tmp_path / "missing.gguf"))
    path = build_tiny_causal_lm(tmp_path / "lm")
    for weights in path.glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(ModelNotFoundError, match="no weights"):
        load_brain(str(path))




