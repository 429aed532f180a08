"""Converting original-layout LLaVA/LLMGA checkpoints, family by family, against the original computation.

The reference below is the original code's inference path written out small:
``conv.get_prompt()`` of the conversation template, ``tokenizer_image_token``
(the prompt split at ``<image>``, each piece tokenized alone, a sentinel id
between), the image squared as ``image_aspect_ratio`` says and put through
CLIP's resize/crop/normalise, CLIP's penultimate layer without the CLS token
through the projector, spliced into the embeddings at the sentinel, and the
family's plain causal LM on top (``Llava<Family>ForCausalLM`` is that LM plus
the splice).
"""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from llmga.brain import BrainRequest, complete, load_brain
from llmga.conversation import Conversation
from llmga.convert import CHAT_FORMATS, CHAT_TEMPLATES, convert_llava_checkpoint
from llmga.errors import InvalidInputError, ModelNotFoundError
from llmga.settings import SamplingSettings
from llmga.testing.tiny_original import ORIGINAL_FAMILIES, build_tiny_original_llava

SENTINEL = -200  # IMAGE_TOKEN_INDEX of the original code
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
# The original templates' roles and separators (llava/conversation.py); the system texts are CHAT_FORMATS'.
ORIGINAL = {
    "vicuna_v1": ("TWO", ("USER", "ASSISTANT"), " ", "</s>"),
    "llava_v1": ("TWO", ("USER", "ASSISTANT"), " ", "</s>"),
    "llava_llama_2": ("LLAMA_2", ("USER", "ASSISTANT"), "<s>", "</s>"),
    "llama_2": ("LLAMA_2", ("USER", "ASSISTANT"), "<s>", "</s>"),
    "mistral_instruct": ("LLAMA_2", ("USER", "ASSISTANT"), "<s>", "</s>"),
    "llama_3": ("LLAMA_3", ("<|start_header_id|>user<|end_header_id|>\n\n",
                            "<|start_header_id|>system<|end_header_id|>\n\n"), "<|eot_id|>", None),
    "qwen_2": ("QWEN2", ("<|im_start|>user\n", "<|im_start|>assistant\n"), "<|im_end|>", None),
    "phi_3": ("Phi3", ("<|user|>", "<|assistant|>"), "<|end|>", None),
    "gemma": ("GEMMA", ("user", "model"), "", "<eos>"),
}


def original_prompt(template, messages):
    """``conv.get_prompt()`` for ``messages`` [(role index, text or None)], as the original code writes it."""
    style, roles, sep, sep2 = ORIGINAL[template]
    system = CHAT_FORMATS[template].system
    if style == "LLAMA_2":
        ret = ""
        for i, (r, msg) in enumerate(messages):
            if msg is None:
                continue
            if i == 0:
                msg = f"<<SYS>>\n{system}\n<</SYS>>\n\n" + msg
            ret += sep + f"[INST] {msg} [/INST]" if i % 2 == 0 else " " + msg + " " + sep2
        return ret.lstrip(sep)
    if style == "Phi3":
        return "".join(roles[r] + "\n" + (msg + sep + "\n" if msg is not None else "") for r, msg in messages)
    if style == "GEMMA":
        seps = [sep, sep2]
        return system + sep + "".join(
            f"<start_of_turn>{roles[r]}\n" + (msg + "<end_of_turn>\n" + seps[i % 2] if msg is not None else "")
            for i, (r, msg) in enumerate(messages))
    if style == "TWO":
        seps = [sep, sep2]
        return system + sep + "".join(roles[r] + (": " + msg + seps[i % 2] if msg is not None else ":")
                                      for i, (r, msg) in enumerate(messages))
    return system + sep + "".join(roles[r] + (msg + sep if msg is not None else "") for r, msg in messages)


def original_ids(prompt, tokenizer):
    """``tokenizer_image_token``: each piece between ``<image>`` tokenized alone, the sentinel between them."""
    chunks = [tokenizer(chunk).input_ids for chunk in prompt.split("<image>")]
    ids, offset = [], 0
    if chunks[0] and chunks[0][0] == tokenizer.bos_token_id:
        offset = 1
        ids.append(chunks[0][0])
    for i, chunk in enumerate(chunks):
        if i:
            ids.extend([SENTINEL] * (offset + 1))
        ids.extend(chunk[offset:])
    return [t for i, t in enumerate(ids) if not (t == SENTINEL and i and ids[i - 1] == SENTINEL)]


def original_pixels(image, mode, size=32):
    """The image as the original code feeds it: squared (pad or stretch), then CLIP's resize/crop/normalise."""
    w, h = image.size
    if mode == "pad":  # expand2square with the CLIP mean colour
        square = Image.new("RGB", (max(w, h),) * 2, tuple(int(x * 255) for x in CLIP_MEAN))
        square.paste(image, ((max(w, h) - w) // 2, (max(w, h) - h) // 2))
        image = square
    elif mode == "resizesquare":  # LLMGA's serving code: stretch to the longer side
        image = image.resize((max(w, h),) * 2, Image.Resampling.LANCZOS)
    w, h = image.size
    scale = size / min(w, h)
    image = image.resize((max(size, int(w * scale)), max(size, int(h * scale))), Image.Resampling.BICUBIC)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    image = image.crop((left, top, left + size, top + size))
    x = (np.asarray(image, dtype=np.float32) / 255 - np.array(CLIP_MEAN, np.float32)) / np.array(CLIP_STD, np.float32)
    return torch.from_numpy(x).permute(2, 0, 1)[None].float()


def original_logits(tiny, template, messages, image):
    """Next-token logits of the original model: CLIP features -> projector -> spliced into the family's causal LM."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer, CLIPVisionModel

    files = list(tiny.path.glob("*.safetensors"))
    weights = load_file(files[0]) if files else torch.load(tiny.path / "pytorch_model.bin", weights_only=True)
    tokenizer = AutoTokenizer.from_pretrained(tiny.path)
    lm = AutoModelForCausalLM.from_config(tiny.lm_config).eval()
    lm.load_state_dict({k: v for k, v in weights.items() if "mm_projector" not in k}, strict=not tiny.spec.tied)
    lm.tie_weights()
    vision = CLIPVisionModel.from_pretrained(tiny.vision_tower).eval()
    ids = torch.tensor(original_ids(original_prompt(template, messages), tokenizer))
    with torch.no_grad():
        feats = vision(original_pixels(image, tiny.spec.image_aspect_ratio), output_hidden_states=True)
        feats = feats.hidden_states[-2][0, 1:]
        if tiny.spec.projector == "linear":
            feats = feats @ weights["model.mm_projector.weight"].T + weights["model.mm_projector.bias"]
        else:
            feats = torch.nn.functional.gelu(feats @ weights["model.mm_projector.0.weight"].T
                                             + weights["model.mm_projector.0.bias"])
            feats = feats @ weights["model.mm_projector.2.weight"].T + weights["model.mm_projector.2.bias"]
        at = int((ids == SENTINEL).nonzero()[0])
        embed = lm.get_input_embeddings()
        spliced = torch.cat([embed(ids[:at]), feats, embed(ids[at + 1 :])])[None]
        return lm(inputs_embeds=spliced).logits[0, -1, : len(tokenizer)]


@pytest.fixture(scope="module", params=sorted(ORIGINAL_FAMILIES))
def converted(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"orig-{request.param}")
    tiny = build_tiny_original_llava(root, request.param)
    dst = convert_llava_checkpoint(tiny.path, tiny.vision_tower, root / "hf", template=tiny.spec.template)
    return tiny, load_brain(str(dst))


def test_converted_model_gives_the_original_next_token_logits(converted):
    """Two rounds with an image in the first: the family's template, tokenization, image handling and
    projector all meet the original computation at the logits."""
    tiny, brain = converted
    # a square picture: LLMGA's stretch is then exact (see the next test for other shapes)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    if tiny.spec.image_aspect_ratio == "pad":
        image = image.crop((0, 0, 40, 24))
    conv = Conversation(system_prompt="a system message the model never saw is left out")
    conv.add_user("please draw a red fox in the snow.", [image])
    conv.add_assistant("Sure! <gen_image>a red fox in the snow</gen_image>")
    conv.add_user("make it night.")
    messages, images = conv.to_messages(multimodal=True)
    inputs = brain._inputs(messages, images, "")
    with torch.no_grad():
        got = brain.model(**inputs).logits[0, -1]
    turns = [(0, "<image>\nplease draw a red fox in the snow."), (1, "Sure! <gen_image>a red fox in the snow</gen_image>"),
             (0, "make it night."), (1, None)]
    expected = original_logits(tiny, tiny.spec.template, turns, image)
    torch.testing.assert_close(got[: expected.shape[0]], expected, atol=1e-4, rtol=1e-4)


def test_generation_stops_at_the_family_end_token(converted):
    """The converted generation config ends the turn at the template's end-of-turn token."""
    tiny, brain = converted
    stop = CHAT_FORMATS[tiny.spec.template].stops[0]
    stop_id = brain.tokenizer.convert_tokens_to_ids(stop)
    assert stop_id in brain.model.generation_config.eos_token_id
    conv = Conversation()
    conv.add_user("please draw a red fox.")
    messages, _ = conv.to_messages(multimodal=True)
    inputs = brain._inputs(messages, [], "")
    with torch.no_grad():  # make the end token the model's first choice
        last = brain.model(**inputs, output_hidden_states=True).hidden_states[-1][0, -1]
        head = brain.model.lm_head.weight
        saved = head[stop_id].clone()
        head[stop_id] = last * 100 / last.norm() ** 2 * head.norm(dim=1).max()
        try:
            out = brain.model.generate(**inputs, max_new_tokens=5, do_sample=False)
            reply = complete(brain, BrainRequest(messages, [], SamplingSettings(temperature=0, max_new_tokens=5)))
        finally:
            head[stop_id] = saved
    assert out[0, inputs["input_ids"].shape[1]:].tolist() == [stop_id] and reply in ("", stop)


def test_llava_1_5_pads_to_a_square_with_the_mean_colour_exactly(tmp_path):
    from transformers import AutoProcessor

    tiny = build_tiny_original_llava(tmp_path / "o", "llava_1.5")
    processor = AutoProcessor.from_pretrained(convert_llava_checkpoint(tiny.path, tiny.vision_tower, tmp_path / "hf",
                                                                       "llava_v1"))
    for size in [(50, 20), (17, 61), (33, 33)]:
        image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
        got = processor.image_processor(image, return_tensors="pt")["pixel_values"]
        torch.testing.assert_close(got, original_pixels(image, "pad"), atol=1e-6, rtol=0)


def test_llmga_stretch_to_a_square_is_one_resize_close_to_the_original_two(converted):
    """LLMGA stretched the picture to its longer side (Lanczos) and then CLIP resized it; the converted
    processor stretches in one bicubic resize: the same picture to within a few grey levels."""
    tiny, brain = converted
    if tiny.spec.image_aspect_ratio != "resizesquare":
        pytest.skip("pads or crops")
    image = Image.fromarray(np.random.default_rng(2).integers(0, 255, (24, 60, 3), dtype=np.uint8)).resize((120, 48))
    got = brain.processor.image_processor(image, return_tensors="pt")["pixel_values"]
    assert got.shape == (1, 3, 32, 32)
    diff = ((got - original_pixels(image, "resizesquare")) * torch.tensor(CLIP_STD)[:, None, None] * 255).abs()
    assert diff.mean() < 3 and diff.max() < 40


def test_the_family_template_is_taken_from_the_checkpoint(tmp_path):
    tiny = build_tiny_original_llava(tmp_path / "q", "qwen2")
    dst = convert_llava_checkpoint(tiny.path, tiny.vision_tower, tmp_path / "hf")
    assert json.loads((dst / "llmga_conversion.json").read_text())["template"] == "qwen_2"
    llama = build_tiny_original_llava(tmp_path / "v", "vicuna")
    with pytest.raises(InvalidInputError, match="give --template: llava_llama_2"):
        convert_llava_checkpoint(llama.path, llama.vision_tower, tmp_path / "x")


def test_bad_inputs_are_named(tiny, tmp_path):
    original = build_tiny_original_llava(tmp_path / "o", "vicuna")
    with pytest.raises(InvalidInputError, match="unknown chat template 'chatgpt'"):
        convert_llava_checkpoint(original.path, original.vision_tower, tmp_path / "x", template="chatgpt")
    with pytest.raises(ModelNotFoundError, match="vision tower"):
        convert_llava_checkpoint(original.path, tmp_path / "no-clip", tmp_path / "x", template="vicuna_v1")
    with pytest.raises(InvalidInputError, match="not an original-layout LLaVA"):
        convert_llava_checkpoint(tiny.causal_lm(), original.vision_tower, tmp_path / "x", template="vicuna_v1")
    config = json.loads((original.path / "config.json").read_text())
    for change, message in [({"mm_projector_type": "mlp3x_gelu"}, "projector type 'mlp3x_gelu'"),
                            ({"model_type": "llava_mpt"}, "unsupported LLaVA model_type 'llava_mpt'"),
                            ({"image_aspect_ratio": "anyres"}, "LLaVA-NeXT")]:
        (original.path / "config.json").write_text(json.dumps({**config, **change}))
        with pytest.raises(InvalidInputError, match=message):
            convert_llava_checkpoint(original.path, original.vision_tower, tmp_path / "x", template="vicuna_v1")


@pytest.mark.parametrize("name", sorted(CHAT_TEMPLATES))
def test_each_template_renders_a_whole_conversation_as_the_original(name):
    from jinja2 import Environment

    conv = Conversation(system_prompt="SYSTEM-TEXT")
    conv.add_user("first question", [Image.new("RGB", (4, 4))])
    conv.add_assistant("first answer")
    conv.add_user("second question")
    messages, _ = conv.to_messages(multimodal=True)
    env = Environment(trim_blocks=True, lstrip_blocks=True)
    text = env.from_string(CHAT_TEMPLATES[name]).render(messages=messages, add_generation_prompt=True)
    turns = [(0, "<image>\nfirst question"), (1, "first answer"), (0, "second question"), (1, None)]
    assert text == original_prompt(name, turns) and "SYSTEM-TEXT" not in text


def test_released_system_prompts():
    assert CHAT_FORMATS["vicuna_v1"].system.startswith("A chat between a curious user and an artificial")
    assert CHAT_FORMATS["llava_llama_2"].system.startswith("You are LLMGA, a useful language and vision")
    assert CHAT_FORMATS["qwen_2"].system.endswith("The assistant gives helpful and honest answers.")
    assert CHAT_FORMATS["llama_3"].system.startswith("<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful")


def test_convert_command(tmp_path):
    from typer.testing import CliRunner

    from llmga.cli import app

    original = build_tiny_original_llava(tmp_path / "o", "gemma")
    result = CliRunner().invoke(app, ["convert-llava", str(original.path), str(tmp_path / "out"),
                                      "--vision-tower", str(original.vision_tower)])
    assert result.exit_code == 0, result.output
    assert load_brain(str(tmp_path / "out")).multimodal
