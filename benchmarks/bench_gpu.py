"""GPU benchmark at full size, random weights (speed and memory do not depend on the weights' values).

Measures, through llmga's own loading and painting code on one CUDA GPU:
SD 1.5 512x512 30 steps, SDXL 1024x1024 30 steps, SD 1.5 inpainting and an
instruction edit at 512, a 7B LLaVA-shaped brain's decoding speed in float16
and 4-bit, and a whole text-to-image turn (the brain writes a 64-token prompt,
SD 1.5 paints it) against the raw brain's ``generate`` plus the raw diffusers
pipeline call on the same prompt: absolute seconds, peak GPU memory, and
``ratio: turn / (raw brain + raw diffusers)`` last.

Targets on an H100/H200: SD 1.5 512² 30 steps <= 0.8 s, SDXL 1024² 30 steps
<= 3.5 s, turn overhead <= 2 % (ratio <= 1.02).

    python benchmarks/bench_gpu.py --root /scratch/bench     # needs CUDA; writes ~30 GB of random weights once
    python benchmarks/bench_gpu.py --smoke                   # tiny models on the CPU: checks the script runs

Without a CUDA GPU and without --smoke it stops at once and says so.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from llmga.assistant import Assistant
from llmga.brain import BrainRequest, complete, load_brain
from llmga.conversation import Conversation
from llmga.painter.edit import EditPainter, EditSettings
from llmga.painter.inpaint import InpaintPainter
from llmga.painter.text_to_image import TextToImagePainter
from llmga.settings import PaintSettings, RuntimeSettings, SamplingSettings

PROMPT = "a red apple on a wooden table, soft morning light, detailed, photograph"


def timed(fn: Any, repeats: int, device: str) -> tuple[float, Any]:
    """Median seconds of ``repeats`` calls after one warm-up call; the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def peak_gb(device: str) -> float:
    return round(torch.cuda.max_memory_allocated() / 1e9, 2) if device == "cuda" else float("nan")


def fresh(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


class Models:
    """Where each benchmarked model comes from: random full-size weights (GPU) or tiny stacks (--smoke)."""

    def __init__(self, root: Path, smoke: bool) -> None:
        self.root, self.smoke = root, smoke

    def painter(self, family: str) -> Path:
        folder = self.root / family
        if (folder / "model_index.json").is_file():
            return folder
        if self.smoke:
            from llmga.testing import build_tiny_sd

            return build_tiny_sd(folder, variant=family)
        from llmga.testing.fullsize import write_random_pipeline

        share = self.painter(family.removesuffix("-inpaint")) if family.endswith("-inpaint") else None
        write_random_pipeline(family, folder, share)
        return folder

    def brain(self) -> Path:
        folder = self.root / "brain"
        if (folder / "config.json").is_file():
            return folder
        if self.smoke:
            from llmga.testing import build_tiny_causal_lm

            build_tiny_causal_lm(folder, width=128)
            config = json.loads((folder / "config.json").read_text())  # room for the system prompt
            (folder / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 2048}))
            return folder
        return write_random_llava_7b(folder)


def write_random_llava_7b(folder: Path) -> Path:
    """The 7B LLaVA-shaped brain with random float16 weights, built on the GPU and saved once."""
    from transformers import LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip import CLIPImageProcessorPil

    from llmga.testing.fullsize import llava_7b_config
    from llmga.testing.tiny import CHAT_TEMPLATE, _chat_tokenizer

    tokenizer = _chat_tokenizer()
    config = llava_7b_config()
    config.image_token_index = tokenizer.convert_tokens_to_ids("<image>")
    torch.set_default_dtype(torch.float16)
    with torch.device("cuda"):
        model = LlavaForConditionalGeneration(config)
    torch.set_default_dtype(torch.float32)
    # the small tokenizer knows 400 tokens: never sample past them
    model.generation_config.suppress_tokens = list(range(len(tokenizer), config.text_config.vocab_size))
    model.save_pretrained(folder, safe_serialization=True)
    del model
    LlavaProcessor(image_processor=CLIPImageProcessorPil(size={"shortest_edge": 336},
                                                         crop_size={"height": 336, "width": 336}),
                   tokenizer=tokenizer, patch_size=14, vision_feature_select_strategy="default",
                   num_additional_image_tokens=1, image_token="<image>", chat_template=CHAT_TEMPLATE).save_pretrained(folder)
    return folder


def bench_painters(models: Models, device: str, dtype: str, side: int, xl_side: int, steps: int, repeats: int,
                   out: dict[str, Any]) -> None:
    runtime = RuntimeSettings(painter_device=device, dtype=dtype)
    settings = PaintSettings(seed=0, steps=steps, width=side, height=side)
    for family, edge in (("sd15", side), ("sdxl", xl_side)):
        fresh(device)
        painter = TextToImagePainter.load(models.painter(family), runtime=runtime)
        s = PaintSettings(seed=0, steps=steps, width=edge, height=edge)
        out[f"{family} {edge}² {steps} steps (s)"], _ = timed(lambda p=painter, s=s: p.paint(PROMPT, s), repeats, device)
        out[f"{family} peak GPU GB"] = peak_gb(device)
        if family == "sd15":
            source = painter.paint(PROMPT, settings).images[0]
            edit = EditPainter.from_painter(painter)
            edit_settings = EditSettings(steps=steps, resolution=side)
            out[f"edit {side}² {steps} steps (s)"], _ = timed(
                lambda: edit.edit(source, PROMPT, PROMPT.replace("red", "green"), edit_settings), repeats, device)
        del painter
    fresh(device)
    inpaint = InpaintPainter.load(models.painter("sd15-inpaint"), runtime=runtime, working_side=side)
    mask = Image.new("L", (side, side))
    mask.paste(255, (side // 4, side // 4, side * 3 // 4, side * 3 // 4))
    picture = Image.new("RGB", (side, side), "gray")
    out[f"inpaint {side}² {steps} steps (s)"], _ = timed(lambda: inpaint.paint(picture, mask, PROMPT, settings),
                                                         repeats, device)
    out["inpaint peak GPU GB"] = peak_gb(device)


def decode_speed(brain: Any, tokens: int, device: str) -> float:
    """Tokens per second writing ``tokens`` tokens after a short prompt (end token ignored)."""
    brain.model.generation_config.eos_token_id = None
    conv = Conversation()
    conv.add_user("Describe a red apple on a wooden table.")
    messages, _ = conv.to_messages(brain.multimodal)
    request = BrainRequest(messages, settings=SamplingSettings(temperature=0, max_new_tokens=tokens))
    short = BrainRequest(messages, settings=SamplingSettings(temperature=0, max_new_tokens=1))
    one, _ = timed(lambda: complete(brain, short), 2, device)
    many, _ = timed(lambda: complete(brain, request), 2, device)
    return round((tokens - 1) / (many - one), 2)


def bench_brain_and_turn(models: Models, device: str, dtype: str, side: int, steps: int, tokens: int,
                         out: dict[str, Any]) -> float:
    import importlib.util

    path = str(models.brain())
    if importlib.util.find_spec("bitsandbytes") is not None:
        fresh(device)
        small = load_brain(path, runtime=RuntimeSettings(brain_device=device, brain_quantize="4bit"))
        out["brain 4-bit tokens/s"] = decode_speed(small, tokens, device)
        out["brain 4-bit peak GPU GB"] = peak_gb(device)
        del small
    else:
        out["brain 4-bit tokens/s"] = "bitsandbytes not installed"
    fresh(device)
    brain = load_brain(path, runtime=RuntimeSettings(brain_device=device, dtype=dtype))
    out[f"brain {dtype or 'float32'} tokens/s"] = decode_speed(brain, tokens, device)
    painter = TextToImagePainter.load(models.painter("sd15"), runtime=RuntimeSettings(painter_device=device,
                                                                                     dtype=dtype))
    settings = PaintSettings(seed=0, steps=steps, width=side, height=side)
    sampling = SamplingSettings(temperature=0, max_new_tokens=tokens)
    assistant = Assistant(brain, painter, sampling=sampling, paint=settings)
    turn, result = timed(lambda: assistant.generate("a red apple", refine=True), 3, device)
    prompt = result.reply.prompts[0] if result.reply.prompts else PROMPT
    conv = Conversation()
    conv.add_user("Generate an image: a red apple")
    messages, images = conv.to_messages(brain.multimodal)
    inputs = brain._inputs(messages, images, "<gen_img>")

    def raw_brain():
        with torch.inference_mode():
            return brain.model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)

    def raw_pipe():
        return painter.pipeline(prompt=prompt, num_inference_steps=steps, width=side, height=side,
                                generator=torch.Generator("cpu").manual_seed(0))

    t_brain, _ = timed(raw_brain, 3, device)
    t_pipe, _ = timed(raw_pipe, 3, device)
    out.update({"turn (s)": round(turn, 3), "raw brain generate (s)": round(t_brain, 3),
                "raw diffusers call (s)": round(t_pipe, 3), "turn peak GPU GB": peak_gb(device)})
    return turn / (t_brain + t_pipe)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, help="where the random-weight models are written (kept for reruns)")
    parser.add_argument("--smoke", action="store_true", help="tiny models on the CPU, to check the script runs")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not args.smoke and not torch.cuda.is_available():
        sys.exit("bench_gpu.py measures a CUDA GPU and none is visible here (torch.cuda.is_available() is False); "
                 "run it on a GPU machine, or with --smoke to check the script on tiny CPU models")
    device = "cpu" if args.smoke else "cuda"
    dtype = None if args.smoke else "float16"
    root = args.root or Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    models = Models(root, args.smoke)
    side, xl_side, steps, repeats, tokens = (64, 64, 2, 1, 8) if args.smoke else (512, 1024, 30, 3, 64)
    out: dict[str, Any] = {"machine": torch.cuda.get_device_name() if device == "cuda" else "CPU (smoke)"}
    bench_painters(models, device, dtype, side, xl_side, steps, repeats, out)
    ratio = bench_brain_and_turn(models, device, dtype, side, steps, tokens, out)
    for key, value in out.items():
        print(f"{key}: {round(value, 3) if isinstance(value, float) else value}")
    if args.json:
        args.json.write_text(json.dumps({**out, "ratio": ratio}, indent=2))
    print(f"ratio: {ratio:.3f}")


if __name__ == "__main__":
    main()
