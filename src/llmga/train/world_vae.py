"""The world VAE: 32 px pictures to 16x16x4 latents, trained on rendered scenes (``llmga train vae``).

``--decoder-of`` trains a trained VAE's decoder alone further (its latents stay,
so a UNet trained on them still fits), and :func:`ship_painter` puts such a
sharper decoder into a painter (``llmga train ship-painter``).
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoints import check_diffusers_dir
from ..errors import InvalidInputError
from ..painter.suite import PAINTER_INFO_FILE
from ..world.render import render_batch
from ..world.scene import Scene, sample_scene
from .world_clip import pixels

#: Latent channels, as SD's: diffusers' inpainting pipeline takes only 4-channel latents.
LATENT_CHANNELS = 4
#: How much more an object's pixels count than the background's in the VAE's loss: objects are a
#: small share of the picture but all the judge (and the user) cares about.
OBJECT_WEIGHT = 10.0


def new_vae() -> Any:
    """An untrained ``AutoencoderKL``: 32x32 RGB to 16x16x4 latents (one downsampling)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=LATENT_CHANNELS, block_out_channels=(32, 64),
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         layers_per_block=1, norm_num_groups=32, sample_size=32)


def train_vae(out: str | Path, steps: int = 1000, batch_size: int = 32, lr: float = 2e-3, seed: int = 0,
              decoder_of: str | Path | None = None, eval_n: int = 512, log=print) -> Path:
    """Train the world VAE on rendered scenes; save it to ``out`` with its latent scaling factor.

    ``decoder_of`` (a trained world VAE) trains only that VAE's decoder further:
    its encoder, and so the latents a UNet was trained on, stay as they are.
    ``out/report.json`` gives the reconstruction error and the judge's accuracy
    on reconstructions of ``eval_n`` held-out scenes (the latents must keep every attribute).
    """
    from diffusers import AutoencoderKL

    from ..world.judge import Judge

    out = Path(out)
    torch.manual_seed(seed)
    if decoder_of:
        vae = AutoencoderKL.from_pretrained(decoder_of, local_files_only=True)
        vae.requires_grad_(False)
        vae.post_quant_conv.requires_grad_(True)
        vae.decoder.requires_grad_(True)
    else:
        vae = new_vae()
        _start_with_little_noise(vae)
    trained = [p for p in vae.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    rng = random.Random(f"{seed}-{decoder_of}")
    started = time.time()
    for step in range(1, steps + 1):
        scenes = [sample_scene(rng, 3, min_objects=0) for _ in range(batch_size)]
        x = pixels(render_batch(scenes))
        weight = 1 + OBJECT_WEIGHT * drawn_objects(x, scenes)
        with torch.set_grad_enabled(not decoder_of):
            posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        error = (recon - x).abs() + (recon - x).pow(2)
        loss = (weight * error).mean() / weight.mean() + 1e-6 * posterior.kl().mean()
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 100 == 0 or step == steps:
            log(f"vae step {step}/{steps} loss {loss.item():.4f} ({time.time() - started:.0f} s)")
    vae.eval()
    held = [sample_scene(random.Random(10_000 + i), 3, min_objects=0) for i in range(eval_n)]
    with torch.no_grad():
        x = pixels(render_batch(held))
        latents = vae.encode(x).latent_dist.mode()
        recon = vae.decode(latents).sample.clamp(-1, 1)
    if not decoder_of:
        vae.register_to_config(scaling_factor=round(float(1 / latents.std()), 5))
    vae.save_pretrained(out, safe_serialization=True)
    read = Judge.load().read(to_uint8(recon))
    report = {"steps": steps, "decoder_of": str(decoder_of) if decoder_of else None,
              "seconds": round(time.time() - started, 1),
              "mean_abs_error_255": round(float((recon - x).abs().mean() * 127.5), 3),
              "judge_reads_scene_exactly": float(np.mean([r == s for r, s in zip(read, held, strict=True)])),
              "scaling_factor": vae.config.scaling_factor}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    log(f"vae report: {report}")
    return out


def _start_with_little_noise(vae: Any) -> None:
    """Start the posterior's log-variance at -10 (std 0.007) rather than 0 (std 1).

    With a tiny KL weight nothing else pulls the variance down, and sampling
    noise of std 1 would drown the latents for most of a short run.
    """
    latent = vae.config.latent_channels
    with torch.no_grad():
        vae.quant_conv.weight[latent:] = 0
        vae.quant_conv.bias[latent:] = -10


def ship_painter(pipeline: str | Path, out: str | Path, vae: str | Path | None = None, half: bool = False) -> Path:
    """Save ``pipeline`` for shipping to ``out``: with the VAE ``vae`` (a decoder-only refinement of its own) if
    given, and its UNet and VAE stored in float16 with ``half`` (half the size; loaders cast them back).

    Refuses a VAE whose encoder differs: the UNet was trained on the old encoder's latents. The text
    encoder stays in float32: transformers loads a float16 one as float16 unless told otherwise.
    """
    from diffusers import AutoencoderKL, DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(check_diffusers_dir(pipeline), local_files_only=True)
    if vae is not None:
        new = AutoencoderKL.from_pretrained(vae, local_files_only=True)
        old_state, new_state = pipe.vae.state_dict(), new.state_dict()
        encoder = [k for k in old_state if k.startswith(("encoder.", "quant_conv."))]
        if any(not torch.equal(old_state[k], new_state[k]) for k in encoder) or (
                new.config.scaling_factor != pipe.vae.config.scaling_factor):
            raise InvalidInputError(f"{vae} encodes differently from {pipeline}'s VAE; only a retrained decoder fits")
        pipe.vae = new
    if half:
        pipe.unet.half()
        pipe.vae.half()
    pipe.register_to_config(requires_safety_checker=False)  # world painters have none; loading would warn
    save_world_painter(pipe, out)
    return Path(out)


def save_world_painter(pipe: Any, folder: str | Path) -> None:
    """Save a world painter's pipeline to ``folder`` with its ``llmga_painter.json``: it reads world captions
    (each object in a cell; :data:`llmga.registry.PROMPT_READERS`)."""
    pipe.save_pretrained(folder, safe_serialization=True)
    (Path(folder) / PAINTER_INFO_FILE).write_text(json.dumps({"prompts": "world"}) + "\n")


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """NCHW pictures in [-1, 1] as uint8 NHWC arrays."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def drawn_objects(x: torch.Tensor, scenes: list[Scene]) -> torch.Tensor:
    """1 where the scenes' pictures ``x`` (NCHW) differ from their backgrounds alone (an object is drawn), else 0."""
    return (x != pixels(render_batch([s.with_objects(()) for s in scenes]))).any(1, keepdim=True).float()
