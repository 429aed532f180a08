"""Stage 2: fine-tune the Stable Diffusion UNet on the assistant's long prompts.

The paper (section 3.3): the MLLM writes a detailed description of each
training image; those prompts are recorded once (here: the captioner's answer
cache, so nothing is asked twice and a run resumes), encoded with the same
long-prompt encoder inference uses, and only the UNet trains; the text
encoder, the VAE and the MLLM stay frozen. A 9-channel (inpainting) UNet
trains on random masks with the masked image as extra input::

    llmga train stage2 --painter sd15/ --source coco.json --images coco/ --brain llava/ --out runs/s2

Epsilon and v-prediction (from the scheduler's config), optional EMA and
min-SNR weighting; checkpoints resume; the result is a diffusers pipeline
directory the painter loads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import InvalidInputError
from ..settings import DEFAULT_MAX_PROMPT_TOKENS
from .loop import start, train


@dataclass
class Stage2Config:
    """Everything a stage-2 run needs; the CLI fills it from options."""

    painter: str
    source: str
    out: str
    images: str | None = None
    source_format: str = "auto"
    brain: str | None = None
    prompt_cache: str | None = None
    resolution: int = 512
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 4
    grad_accum: int = 1
    lr: float = 1e-5
    warmup_steps: int = 0
    mixed_precision: str = "no"
    save_every: int = 500
    seed: int = 0
    ema_decay: float | None = None
    snr_gamma: float | None = None
    uncond_prob: float = 0.0
    max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.resolution % 8:
            raise InvalidInputError(f"resolution must be a multiple of 8, got {self.resolution}")
        if not 0 <= self.uncond_prob < 1:
            raise InvalidInputError(f"uncond_prob must be in [0, 1), got {self.uncond_prob}")


@dataclass
class PromptReport:
    """Where the training prompts came from."""

    samples: int
    skipped: int
    asked: int = 0
    reused: int = 0


def collect_prompts(config: Stage2Config) -> tuple[list[Image.Image], list[str], PromptReport]:
    """Images and their generation prompts: the captioner brain's (cached) or the source's captions."""
    from ..data.report import Problems
    from ..data.sources import open_source

    source = open_source(config.source, config.source_format, config.images)
    problems = Problems()
    captioner = None
    if config.brain:
        from ..brain import load_brain
        from ..data.cache import AnswerCache
        from ..data.captioner import Captioner

        cache = AnswerCache(config.prompt_cache or Path(config.out) / "prompts.sqlite")
        captioner = Captioner(load_brain(config.brain), cache)
    def pair(sample: Any) -> tuple[Image.Image, str]:
        return sample.image, captioner.describe(sample) if captioner else sample.caption

    pairs = list(problems.each(source.samples(problems), pair))
    images, prompts = [im for im, _ in pairs], [p for _, p in pairs]
    report = PromptReport(len(images), len(problems.skipped))
    if captioner is not None:
        report.asked, report.reused = captioner.asked, captioner.reused
    return images, prompts, report


class PromptBank:
    """Long-prompt embeddings of the training prompts, encoded once (the text encoder is frozen)."""

    def __init__(self, encoder: Any, prompts: list[str]) -> None:
        self.embeddings = [encoder.encode(p).prompt_embeds[0] for p in prompts]
        self.empty = encoder.encode("").prompt_embeds[0]

    def batch(self, indices: list[int], drop: torch.Tensor) -> torch.Tensor:
        """Embeddings for a batch, padded with empty windows to the longest; ``drop`` rows get the empty prompt."""
        rows = [self.empty if d else self.embeddings[i] for i, d in zip(indices, drop.tolist())]
        length = max(r.shape[0] for r in rows)
        window = self.empty.shape[0]
        return torch.stack([torch.cat([r, self.empty.repeat((length - r.shape[0]) // window, 1)]) for r in rows])


def train_stage2(config: Stage2Config) -> Path:
    """Run stage-2 training; return the directory of the saved pipeline."""
    from diffusers import DDPMScheduler, DiffusionPipeline
    from transformers import get_cosine_schedule_with_warmup

    from ..checkpoints import check_diffusers_dir
    from ..painter.long_prompt import LongPromptEncoder

    out = Path(config.out)
    accelerator = start(out, config.grad_accum, config.mixed_precision, config.seed, config.threads)
    pipe = DiffusionPipeline.from_pretrained(check_diffusers_dir(config.painter), local_files_only=True)
    if hasattr(pipe, "text_encoder_2"):
        raise InvalidInputError("stage 2 trains SD 1.x/2.x UNets; SDXL is not supported yet")
    unet, vae = pipe.unet, pipe.vae
    vae.requires_grad_(False)
    pipe.text_encoder.requires_grad_(False)
    inpaint = unet.config.in_channels == 9

    images, prompts, report = collect_prompts(config)
    accelerator.print(f"{report.samples} samples, {report.skipped} skipped; prompts asked {report.asked}, "
                      f"from the cache {report.reused}")
    if not images:
        raise InvalidInputError("no usable training samples")
    bank = PromptBank(LongPromptEncoder.from_pipeline(pipe, max_tokens=config.max_prompt_tokens), prompts)
    loader = torch.utils.data.DataLoader(list(range(len(images))), batch_size=config.batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(config.seed))
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    total = config.max_steps or math.ceil(len(loader) / config.grad_accum) * config.epochs
    optimizer = torch.optim.AdamW(unet.parameters(), lr=config.lr)
    scheduler = get_cosine_schedule_with_warmup(optimizer, min(config.warmup_steps, total), total)
    ema = new_ema(unet, config.ema_decay)
    if ema is not None:
        accelerator.register_for_checkpointing(ema)
    unet, optimizer, loader, scheduler = accelerator.prepare(unet, optimizer, loader, scheduler)
    vae.to(accelerator.device)
    accelerator.init_trackers("stage2")
    generator = torch.Generator().manual_seed(config.seed)

    def loss_fn(model: Any, indices: torch.Tensor) -> torch.Tensor:
        batch = torch.stack([_to_tensor(images[i], config.resolution) for i in indices.tolist()])
        batch = batch.to(accelerator.device)
        drop = torch.rand(len(indices), generator=generator) < config.uncond_prob
        cond = bank.batch(indices.tolist(), drop).to(accelerator.device)
        latents = vae.encode(batch).latent_dist.sample() * vae.config.scaling_factor
        extra = masked_inputs(batch, _box_masks(batch, generator), vae) if inpaint else ()
        return denoising_loss(model, latents, cond, noise_scheduler, config.snr_gamma, extra)

    train(accelerator, unet, optimizer, scheduler, loader, loss_fn, total=total, out=out,
          save_every=config.save_every, desc="stage 2", after_step=(lambda: ema.step(unet.parameters())) if ema else None)
    final = out / "final"
    if accelerator.is_main_process:
        trained = accelerator.unwrap_model(unet)
        if ema is not None:
            ema.copy_to(trained.parameters())
        pipe.unet = trained
        pipe.save_pretrained(final, safe_serialization=True)
    accelerator.wait_for_everyone()
    return final


def _to_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """Resize the shorter side to ``size``, centre-crop, scale to [-1, 1]."""
    w, h = image.size
    scale = size / min(w, h)
    image = image.convert("RGB").resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    image = image.crop((left, top, left + size, top + size))
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).reshape(size, size, 3)
    return data.permute(2, 0, 1).float() / 127.5 - 1


def denoising_loss(model: Any, latents: torch.Tensor, cond: torch.Tensor, noise_scheduler: Any,
                   snr_gamma: float | None, extra: tuple[torch.Tensor, ...] = (),
                   generator: torch.Generator | None = None, pixel_weights: torch.Tensor | None = None) -> torch.Tensor:
    """The UNet's loss on ``latents`` noised at random timesteps (epsilon or v target, per the scheduler).

    ``extra`` is concatenated to the noisy latents (an inpainting UNet's mask and masked-image latents);
    ``pixel_weights`` (``(n, 1, h, w)``) weigh each latent pixel's error (:func:`hole_weights`).
    """
    noise = torch.randn(latents.shape, generator=generator, dtype=latents.dtype, device=latents.device)
    t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(latents),), generator=generator,
                      device=latents.device)
    model_input = torch.cat([noise_scheduler.add_noise(latents, noise, t), *extra], dim=1)
    prediction = model(model_input, t, encoder_hidden_states=cond).sample
    target = noise_scheduler.get_velocity(latents, noise, t) if _v_prediction(noise_scheduler) else noise
    return weighted_mse(prediction, target, noise_scheduler, t, snr_gamma, pixel_weights)


def hole_weights(latent_mask: torch.Tensor, hole_weight: float) -> torch.Tensor:
    """Per-pixel loss weights that count the hole (``latent_mask`` 1) ``hole_weight`` times the rest.

    An inpainting UNet can copy most of its picture from the masked-image latents, so with equal weights
    the hole (what it must paint from the prompt) is a small part of its loss.
    """
    return 1 + (hole_weight - 1) * latent_mask


def _box_masks(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random box mask per image (1 = repaint), ``(n, 1, h, w)``."""
    n, _, h, w = batch.shape
    mask = torch.zeros(n, 1, h, w, device=batch.device)
    def pick(low: int, high: int) -> int:
        return int(torch.randint(low, high, (1,), generator=generator))

    for i in range(n):
        bh, bw = pick(h // 4, h), pick(w // 4, w)
        top, left = pick(0, h - bh + 1), pick(0, w - bw + 1)
        mask[i, :, top : top + bh, left : left + bw] = 1
    return mask


def masked_inputs(batch: torch.Tensor, mask: torch.Tensor, vae: Any,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """An inpainting UNet's extra inputs: ``mask`` (1 = repaint) at latent size, and the masked images' latents."""
    masked_latents = vae.encode(batch * (1 - mask)).latent_dist.sample(generator) * vae.config.scaling_factor
    return F.interpolate(mask, size=masked_latents.shape[-2:]), masked_latents


def _v_prediction(scheduler: Any) -> bool:
    return scheduler.config.prediction_type == "v_prediction"


def weighted_mse(prediction: torch.Tensor, target: torch.Tensor, scheduler: Any, t: torch.Tensor,
                 snr_gamma: float | None, pixel_weights: torch.Tensor | None = None) -> torch.Tensor:
    """MSE, optionally with min-SNR-gamma weights per sample (Hang et al. 2023) and a weighted mean over
    each sample's pixels (``pixel_weights``, ``(n, 1, h, w)``)."""
    error = F.mse_loss(prediction.float(), target.float(), reduction="none")
    if pixel_weights is None:
        loss = error.mean(dim=(1, 2, 3))
    else:
        weights = pixel_weights.expand_as(error)
        loss = (error * weights).sum(dim=(1, 2, 3)) / weights.sum(dim=(1, 2, 3))
    if snr_gamma is None:
        return loss.mean()
    from diffusers.training_utils import compute_snr

    snr = compute_snr(scheduler, t)
    weights = torch.clamp(snr, max=snr_gamma) / (snr + 1 if _v_prediction(scheduler) else snr)
    return (loss * weights).mean()


def new_ema(unet: Any, decay: float | None) -> Any:
    """diffusers' ``EMAModel`` of the UNet's parameters, or None without a decay."""
    if decay is None:
        return None
    from diffusers.training_utils import EMAModel

    return EMAModel(unet.parameters(), decay=decay)
