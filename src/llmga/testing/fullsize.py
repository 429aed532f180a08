"""Full-size architecture checks: the published model shapes with random weights, loaded as users load them.

Speed and memory do not depend on the weights' values, so a random-weight
model at the published size shows whether llmga loads it, steps it and what it
costs. Each check writes a model folder with random bfloat16 weights from the
published configs (:mod:`llmga.painter.model_configs`; the 7B brain's below),
loads it through the same code a user runs (``TextToImagePainter.load``,
``InpaintPainter.load``, ``PainterSuite.load`` with a ControlNet,
``load_brain``), takes one step, and reports parameters, load time, step time
and the process's peak resident memory. Each check runs in its own process,
one model at a time.

The 7B LLaVA-shaped brain is counted without allocating it
(``accelerate.init_empty_weights``); the step runs on the same model cut to 2
of its 32 decoder layers at full width, and its time is scaled to 32 layers
(said so in the report).

    python -m llmga.testing.fullsize --root /tmp/fullsize [--side 256] [--only sd15,sdxl] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

CHECKS = ("sd15", "sd21", "sdxl", "sd15-inpaint", "sdxl-inpaint", "controlnet-sd15", "llava-7b")
#: published parameter counts (diffusers/transformers model cards and configs), for the checks to meet
PUBLISHED = {"sd15/unet": 859_520_964, "sdxl/unet": 2_567_463_684, "sd15/vae": 83_653_863,
             "sd15/text_encoder": 123_060_480, "sdxl/text_encoder_2": 694_659_840, "sd21/unet": 865_910_724}
#: LLaVA-1.5-7B: CLIP ViT-L/14-336 vision tower, 2-layer projector, Llama-2-7B / Vicuna-7B
LLAVA_7B_TEXT = dict(vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                     num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5)
CLIP_L_336 = dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=24,
                  image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu")


@contextmanager
def _default_dtype(dtype: torch.dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _save(model: Any, out: Path) -> int:
    """Save a module's weights and config; its parameter count."""
    count = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out, safe_serialization=True)
    return count


def write_random_pipeline(family: str, out: Path, share: Path | None = None) -> dict[str, int]:
    """A diffusers folder of ``family`` at full size with random bfloat16 weights; parameters per part.

    With ``share`` (a folder of the same family written before) only the UNet is new; the other parts link there.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from ..painter.model_configs import FAMILIES, TEXT_ENCODERS, UNETS, VAES, write_pipeline_config

    spec = FAMILIES[family]
    write_pipeline_config(family, out)
    makers = {"unet": lambda: UNet2DConditionModel.from_config(UNETS[spec.unet]),
              "vae": lambda: AutoencoderKL.from_config(VAES[spec.vae])}
    for i, text in enumerate(spec.text):
        cls = CLIPTextModelWithProjection if i else CLIPTextModel
        makers["text_encoder" + ("" if i == 0 else f"_{i + 1}")] = (
            lambda cls=cls, text=text: cls(CLIPTextConfig(**TEXT_ENCODERS[text])))
    counts = {}
    for part, make in makers.items():
        if share is not None and part != "unet":
            target = out / part
            if target.exists():
                import shutil

                shutil.rmtree(target)
            target.symlink_to((share / part).resolve(), target_is_directory=True)
            continue
        with _default_dtype(torch.bfloat16):
            counts[part] = _save(make(), out / part)
        gc.collect()
    return counts


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def run_check(name: str, root: Path, side: int = 256) -> dict[str, Any]:
    """One check in this process: build (once, under ``root``), load as users do, take one step."""
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    if name == "llava-7b":
        return _check_llava(root / name)
    from PIL import Image

    from ..painter.inpaint import InpaintPainter
    from ..painter.suite import PainterSuite
    from ..painter.text_to_image import TextToImagePainter
    from ..settings import PaintSettings, RuntimeSettings

    runtime = RuntimeSettings(painter_device="cpu", dtype="bfloat16")
    settings = PaintSettings(steps=1, width=side, height=side, seed=0)
    report: dict[str, Any] = {"check": name, "dtype": "bfloat16", "side": side, "steps": 1}
    if name == "controlnet-sd15":
        from diffusers import ControlNetModel

        from ..painter.model_configs import CONTROLNET_SD15

        base = _folder(root, "sd15", report)
        net = root / "sd15-controlnet-canny"
        if not (net / "config.json").is_file():
            with _default_dtype(torch.bfloat16):
                report["params"] = {"controlnet": _save(ControlNetModel.from_config(CONTROLNET_SD15), net)}
        suite, report["load_s"] = _timed(lambda: PainterSuite.load(base, controlnet=[net], runtime=runtime))
        control = Image.new("RGB", (side, side))
        _, report["step_s"] = _timed(lambda: suite.controlnet.paint(control, "a red apple", settings, from_photo=True))
    elif name.endswith("inpaint"):
        folder = _folder(root, name, report)
        painter, report["load_s"] = _timed(lambda: InpaintPainter.load(folder, runtime=runtime, working_side=side))
        mask = Image.new("L", (side, side))
        mask.paste(255, (side // 4, side // 4, side * 3 // 4, side * 3 // 4))
        _, report["step_s"] = _timed(lambda: painter.paint(Image.new("RGB", (side, side)), mask, "a red apple",
                                                           settings))
    else:
        folder = _folder(root, name, report)
        painter, report["load_s"] = _timed(lambda: TextToImagePainter.load(folder, runtime=runtime))
        report["loaded_params"] = sum(p.numel() for part in ("unet", "vae", "text_encoder", "text_encoder_2")
                                      if getattr(painter.pipeline, part, None) is not None
                                      for p in getattr(painter.pipeline, part).parameters())
        _, report["step_s"] = _timed(lambda: painter.paint("a red apple on a wooden table", settings))
    report["peak_rss_gb"] = round(_peak_gb(), 2)
    return report


def _folder(root: Path, family: str, report: dict[str, Any]) -> Path:
    """The random-weight folder of ``family`` under ``root``, written if missing (inpainting shares its base's
    text encoders and VAE)."""
    folder = root / family
    if not (folder / "unet" / "config.json").is_file():
        share = None
        if family.endswith("-inpaint"):
            share = _folder(root, family.removesuffix("-inpaint"), {})
        report["params"], report["build_s"] = _timed(lambda: write_random_pipeline(family, folder, share))
    else:
        report["params"] = _param_counts(folder)
    return folder


def _param_counts(folder: Path) -> dict[str, int]:
    from safetensors import safe_open

    counts = {}
    for part in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = list(part.glob("*.safetensors"))
        if files:
            total = 0
            for file in files:
                with safe_open(file, framework="pt") as f:
                    total += sum(_numel(f.get_slice(k).get_shape()) for k in f.keys())
            counts[part.name] = total
    return counts


def _numel(shape: Any) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def llava_7b_config(layers: int = 32) -> Any:
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    return LlavaConfig(vision_config=CLIPVisionConfig(**CLIP_L_336),
                       text_config=LlamaConfig(**{**LLAVA_7B_TEXT, "num_hidden_layers": layers}),
                       image_token_index=32000, vision_feature_layer=-2, vision_feature_select_strategy="default",
                       projector_hidden_act="gelu")


def llava_7b_sizes() -> dict[str, Any]:
    """Parameters of the full 7B LLaVA (counted on the meta device) and the bytes it needs per precision."""
    from accelerate import init_empty_weights
    from transformers import LlavaForConditionalGeneration

    with init_empty_weights():
        model = LlavaForConditionalGeneration(llava_7b_config())
    total = sum(p.numel() for p in model.parameters())
    language = sum(p.numel() for p in model.model.language_model.parameters())
    decoder_linear = sum(m.weight.numel() for m in model.model.language_model.layers.modules()
                         if isinstance(m, torch.nn.Linear))
    rest = total - decoder_linear
    return {"params": total, "language_params": language, "decoder_linear_params": decoder_linear,
            "gb_fp16": round(total * 2 / 1e9, 2),
            # NF4 with double quantization: ~4.13 bits per weight in the decoder's linear layers, the rest in fp16
            "gb_4bit": round((decoder_linear * 4.13 / 8 + rest * 2) / 1e9, 2),
            "gb_8bit": round((decoder_linear * 1.0 + rest * 2) / 1e9, 2)}


def _check_llava(folder: Path) -> dict[str, Any]:
    """Count the 7B brain; load its 2-layer cut as users load a brain; prefill an image turn and decode."""
    from PIL import Image
    from transformers import LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip import CLIPImageProcessorPil

    from ..brain import BrainRequest, complete, load_brain
    from ..conversation import Conversation
    from ..settings import RuntimeSettings, SamplingSettings
    from .tiny import CHAT_TEMPLATE, _chat_tokenizer

    report: dict[str, Any] = {"check": "llava-7b", "dtype": "bfloat16", **llava_7b_sizes()}
    layers = 2
    if not (folder / "config.json").is_file():
        tokenizer = _chat_tokenizer()
        config = llava_7b_config(layers)
        config.image_token_index = tokenizer.convert_tokens_to_ids("<image>")
        with _default_dtype(torch.bfloat16):
            _save(LlavaForConditionalGeneration(config), folder)
        LlavaProcessor(image_processor=CLIPImageProcessorPil(size={"shortest_edge": 336},
                                                             crop_size={"height": 336, "width": 336}),
                       tokenizer=tokenizer, patch_size=14, vision_feature_select_strategy="default",
                       num_additional_image_tokens=1, image_token="<image>",
                       chat_template=CHAT_TEMPLATE).save_pretrained(folder)
        gc.collect()
    runtime = RuntimeSettings(brain_device="cpu", dtype="bfloat16")
    brain, report["load_s_2_layers"] = _timed(lambda: load_brain(str(folder), runtime=runtime))
    conv = Conversation()
    conv.add_user("Describe this picture.", [Image.new("RGB", (336, 336), "red")])
    messages, images = conv.to_messages(multimodal=True)
    one = SamplingSettings(temperature=0, max_new_tokens=1)
    _, prefill = _timed(lambda: complete(brain, BrainRequest(messages, images, one)))
    eight = SamplingSettings(temperature=0, max_new_tokens=9)
    brain.model.generation_config.eos_token_id = None  # decode all 9 tokens
    _, nine = _timed(lambda: complete(brain, BrainRequest(messages, images, eight)))
    scale = LLAVA_7B_TEXT["num_hidden_layers"] / layers
    report.update(layers_run=layers, prefill_s_2_layers=round(prefill, 2),
                  decode_s_per_token_2_layers=round((nine - prefill) / 8, 3),
                  decode_tokens_per_s_32_layers_extrapolated=round(8 / ((nine - prefill) * scale), 2),
                  peak_rss_gb=round(_peak_gb(), 2))
    return report


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="where the random-weight models are written")
    parser.add_argument("--side", type=int, default=256, help="picture side for the one step (default 256)")
    parser.add_argument("--only", default=",".join(CHECKS), help="comma-separated checks")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="write the reports here")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_check(args.one, args.root, args.side)))
        return []
    reports = []
    for name in args.only.split(","):
        done = subprocess.run([sys.executable, "-m", "llmga.testing.fullsize", "--root", str(args.root), "--side",
                               str(args.side), "--one", name], capture_output=True, text=True)
        if done.returncode:
            reports.append({"check": name, "error": done.stderr.strip().splitlines()[-1:]})
        else:
            reports.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(reports[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2))
    return reports


if __name__ == "__main__":
    main()
