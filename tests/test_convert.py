"""Converting an original-layout LLaVA/LLMGA checkpoint to the transformers LLaVA format."""

import json
import shutil

import pytest
import torch
from PIL import Image

from llmga.brain import BrainRequest, complete, load_brain
from llmga.convert import convert_llava_checkpoint
from llmga.errors import InvalidInputError, ModelNotFoundError
from llmga.settings import SamplingSettings


@pytest.fixture(scope="module")
def original(tiny, tmp_path_factory):
    """A tiny checkpoint written as the original LLaVA code writes one, plus a CLIP vision tower dir."""
    from transformers import AutoModelForCausalLM, CLIPVisionConfig, CLIPVisionModel

    root = tmp_path_factory.mktemp("orig")
    lm_dir = tiny.causal_lm()
    lm = AutoModelForCausalLM.from_pretrained(lm_dir)
    torch.manual_seed(1)
    vision = CLIPVisionModel(CLIPVisionConfig(hidden_size=24, intermediate_size=32, num_hidden_layers=3,
                                              num_attention_heads=4, image_size=32, patch_size=8))
    vision.save_pretrained(root / "clip")
    hidden = lm.config.hidden_size
    weights = dict(lm.state_dict())
    weights.update({
        "model.mm_projector.0.weight": torch.randn(hidden, 24), "model.mm_projector.0.bias": torch.randn(hidden),
        "model.mm_projector.2.weight": torch.randn(hidden, hidden), "model.mm_projector.2.bias": torch.randn(hidden),
    })
    ckpt = root / "llmga-tiny"
    ckpt.mkdir()
    torch.save(weights, ckpt / "pytorch_model.bin")
    config = lm.config.to_dict()
    config.update(architectures=["LlavaLlamaForCausalLM"], model_type="llava_llama",
                  mm_vision_tower="openai/clip-vit-large-patch14-336", mm_hidden_size=24,
                  mm_projector_type="mlp2x_gelu", mm_vision_select_layer=-2, mm_vision_select_feature="patch",
                  mm_use_im_start_end=False, image_aspect_ratio="pad", tune_mm_mlp_adapter=False)
    (ckpt / "config.json").write_text(json.dumps(config))
    for f in lm_dir.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            shutil.copy(f, ckpt / f.name)
    return {"ckpt": ckpt, "clip": root / "clip", "weights": weights, "vision": vision}


def test_converted_model_carries_every_weight_and_sees_the_image(original, tmp_path):
    dst = convert_llava_checkpoint(original["ckpt"], original["clip"], tmp_path / "hf", template="vicuna_v1")
    brain = load_brain(str(dst))
    assert brain.multimodal
    model, w = brain.model, original["weights"]
    torch.testing.assert_close(model.lm_head.weight[: w["lm_head.weight"].shape[0]], w["lm_head.weight"])
    torch.testing.assert_close(model.model.language_model.layers[1].mlp.up_proj.weight,
                               w["model.layers.1.mlp.up_proj.weight"])

    # image features as the original code computes them: CLIP penultimate layer, CLS dropped, MLP projector
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        feats = original["vision"](pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
        x = torch.nn.functional.gelu(feats @ w["model.mm_projector.0.weight"].T + w["model.mm_projector.0.bias"])
        expected = x @ w["model.mm_projector.2.weight"].T + w["model.mm_projector.2.bias"]
        got = model.model.get_image_features(pixel_values=pixels)
    got = getattr(got, "pooler_output", got)  # an output object in newer transformers, a tensor in older
    got = torch.stack(list(got)) if isinstance(got, (list, tuple)) else got
    torch.testing.assert_close(got.reshape(expected.shape), expected, atol=1e-5, rtol=1e-4)

    conv_messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what is it?"}]}]
    text = brain.processor.apply_chat_template(conv_messages, add_generation_prompt=True, tokenize=False)
    assert text.startswith("A chat between a curious human") and text.endswith("USER: <image>\nwhat is it? ASSISTANT:")
    reply = complete(brain, BrainRequest(conv_messages, [Image.new("RGB", (50, 40), "red")],
                     SamplingSettings(temperature=0, max_new_tokens=4)))
    assert isinstance(reply, str)


def test_bad_inputs_are_named(original, tiny, tmp_path):
    with pytest.raises(InvalidInputError, match="unknown chat template 'chatgpt'"):
        convert_llava_checkpoint(original["ckpt"], original["clip"], tmp_path / "x", template="chatgpt")
    with pytest.raises(ModelNotFoundError, match="vision tower"):
        convert_llava_checkpoint(original["ckpt"], tmp_path / "no-clip", tmp_path / "x", template="vicuna_v1")
    plain = tiny.causal_lm()
    with pytest.raises(InvalidInputError, match="not an original-layout LLaVA"):
        convert_llava_checkpoint(plain, original["clip"], tmp_path / "x", template="vicuna_v1")


@pytest.mark.parametrize("name", sorted(__import__("llmga.convert", fromlist=["CHAT_TEMPLATES"]).CHAT_TEMPLATES))
def test_each_template_renders_a_whole_conversation(name):
    from jinja2 import Environment

    from llmga.conversation import Conversation
    from llmga.convert import CHAT_TEMPLATES

    conv = Conversation(system_prompt="SYSTEM-TEXT")
    conv.add_user("first question", [Image.new("RGB", (4, 4))])
    conv.add_assistant("first answer")
    conv.add_user("second question")
    messages, _ = conv.to_messages(multimodal=True)
    env = Environment(trim_blocks=True, lstrip_blocks=True)
    text = env.from_string(CHAT_TEMPLATES[name]).render(messages=messages, add_generation_prompt=True)
    order = [text.index(s) for s in ("SYSTEM-TEXT", "<image>", "first question", "first answer", "second question")]
    assert order == sorted(order)


def test_convert_command(original, tmp_path):
    from typer.testing import CliRunner

    from llmga.cli import app

    result = CliRunner().invoke(app, ["convert-llava", str(original["ckpt"]), str(tmp_path / "out"),
                                      "--vision-tower", str(original["clip"]), "--template", "llama_2"])
    assert result.exit_code == 0, result.output
    assert load_brain(str(tmp_path / "out")).multimodal
