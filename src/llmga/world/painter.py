"""The world painter: a Stable-Diffusion-format pipeline trained from scratch on rendered scenes.

Three steps, each resumable and each writing standard diffusers/transformers
directories, so the result loads exactly as real SD 1.5 does::

    llmga world train-clip    --out runs/world/clip           # text + vision encoders
    llmga world train-vae     --out runs/world/vae            # 32 px <-> 16x16x4 latents
    llmga world train-painter --out runs/world/painter --clip runs/world/clip --vae runs/world/vae

The UNet trains on pictures rendered on the fly (no dataset on disk) with the
project's training loop (accelerate, checkpoints that resume, EMA, min-SNR,
classifier-free dropout). Every ``eval_every`` steps the EMA UNet paints a
fixed set of one-object requests and the judge scores them: ``curve.jsonl``
is the success curve, and ``latest/`` the pipeline as it was measured. ``--inpaint`` fine-tunes an inpainting UNet
from a trained text-to-image one; ``--captions detailed`` is the world's
stage 2 (the assistant's detailed prompts only).
"""

from __future__ import annotations

import json
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InvalidInputError
from ..models import check_diffusers_dir
from ..train.loop import latest_step, start, train
from ..train.stage2 import denoising_loss, masked_inputs, new_ema
from .captions import detailed_caption, short_caption
from .clip import pixels
from .evaluate import EVERYTHING, SHORT, painter_success, single_object_requests
from .render import render_batch
from .scene import Scene, sample_scene
from .tasks import random_mask

CAPTION_MIXES = ("mixed", "detailed", "short")


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


def new_unet(cross_attention_dim: int, latent_channels: int = LATENT_CHANNELS,
             widths: tuple[int, ...] = (32, 64, 64)) -> Any:
    """An untrained ``UNet2DConditionModel`` for 16x16 latents, with cross-attention at every resolution."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16, in_channels=latent_channels, out_channels=latent_channels, block_out_channels=widths,
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D",) * len(widths), up_block_types=("CrossAttnUpBlock2D",) * len(widths),
        attention_head_dim=4, cross_attention_dim=cross_attention_dim, norm_num_groups=32)


PREDICTIONS = ("epsilon", "v_prediction")


def new_scheduler(prediction: str = "v_prediction") -> Any:
    """The noise schedule: cosine betas (suited to small pictures), DDIM sampling.

    The cosine schedule's last steps carry almost no signal (alpha-bar near 0 at t=999), where an
    epsilon model's estimate of the clean latents blows up: sampling from t=999 ("trailing") gave
    pure coloured noise, so sampling starts at the "leading" timestep (t=951 for 20 steps).
    """
    from diffusers import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type=prediction,
                         clip_sample=False, set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading")


def train_vae(out: str | Path, steps: int = 1000, batch_size: int = 32, lr: float = 2e-3, seed: int = 0,
              decoder_of: str | Path | None = None, log=print) -> Path:
    """Train the world VAE on rendered scenes; save it to ``out`` with its latent scaling factor.

    ``decoder_of`` (a trained world VAE) trains only that VAE's decoder further:
    its encoder, and so the latents a UNet was trained on, stay as they are.
    ``out/report.json`` gives the reconstruction error and the judge's accuracy
    on reconstructions of held-out scenes (the latents must keep every attribute).
    """
    from diffusers import AutoencoderKL

    from .judge import Judge

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
    held = [sample_scene(random.Random(10_000 + i), 3, min_objects=0) for i in range(512)]
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


def with_decoder(pipeline: str | Path, vae: str | Path, out: str | Path) -> Path:
    """Save ``pipeline`` with the VAE ``vae`` (a decoder-only refinement of its own) to ``out``.

    Refuses a VAE whose encoder differs: the UNet was trained on the old encoder's latents.
    """
    from diffusers import AutoencoderKL, DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(check_diffusers_dir(pipeline), local_files_only=True)
    new = AutoencoderKL.from_pretrained(vae, local_files_only=True)
    old_state, new_state = pipe.vae.state_dict(), new.state_dict()
    encoder = [k for k in old_state if k.startswith(("encoder.", "quant_conv."))]
    if any(not torch.equal(old_state[k], new_state[k]) for k in encoder) or (
            new.config.scaling_factor != pipe.vae.config.scaling_factor):
        raise InvalidInputError(f"{vae} encodes differently from {pipeline}'s VAE; only a retrained decoder fits")
    pipe.vae = new
    pipe.register_to_config(requires_safety_checker=False)  # world painters have none; loading would warn
    pipe.save_pretrained(out, safe_serialization=True)
    return Path(out)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """NCHW pictures in [-1, 1] as uint8 NHWC arrays."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def assemble(out: str | Path, clip: str | Path, vae: str | Path, seed: int = 0) -> Path:
    """Write an SD-format pipeline directory: the world CLIP's text tower and tokenizer, the VAE, a fresh UNet."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline
    from transformers import CLIPTextModel, CLIPTokenizer

    clip = Path(clip)
    text_encoder = CLIPTextModel.from_pretrained(clip / "text_encoder", local_files_only=True)
    autoencoder = AutoencoderKL.from_pretrained(vae, local_files_only=True)
    torch.manual_seed(seed)
    pipe = StableDiffusionPipeline(
        vae=autoencoder,
        text_encoder=text_encoder,
        tokenizer=CLIPTokenizer.from_pretrained(clip / "tokenizer", local_files_only=True),
        unet=new_unet(text_encoder.config.hidden_size, autoencoder.config.latent_channels),
        scheduler=new_scheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out, safe_serialization=True)
    return Path(out)


@dataclass
class PainterConfig:
    """A world UNet training run (text-to-image, or inpainting with ``inpaint``)."""

    out: str
    pipeline: str | None = None
    clip: str | None = None
    vae: str | None = None
    inpaint: bool = False
    captions: str = "mixed"
    max_objects: int = 1
    steps: int = 20_000
    batch_size: int = 32
    lr: float = 5e-4
    warmup_steps: int = 200
    uncond_prob: float = 0.1
    prediction: str = "v_prediction"
    snr_gamma: float | None = None
    object_weight: float = 0.0
    train_text_encoder: bool = False
    ema_decay: float = 0.999
    save_every: int = 250
    eval_every: int = 500
    eval_n: int = 64
    guidance: float = 4.0
    eval_steps: int = 20
    seed: int = 0
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.captions not in CAPTION_MIXES:
            raise InvalidInputError(f"captions must be one of {', '.join(CAPTION_MIXES)}, got {self.captions!r}")
        if self.prediction not in PREDICTIONS:
            raise InvalidInputError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {self.prediction!r}")


def training_caption(scene: Scene, rng: random.Random, mix: str) -> str:
    """The prompt a training picture is paired with: short, detailed, or half and half."""
    if mix == "short" or (mix == "mixed" and rng.random() < 0.5):
        return short_caption(scene)
    return detailed_caption(scene)


Batch = tuple[torch.Tensor, list[str], list[Scene]]


def rendered_batches(config: PainterConfig, rng: random.Random) -> Iterator[Batch]:
    """Endless batches of freshly rendered pictures (NCHW in [-1, 1]), their prompts and scenes."""
    while True:
        scenes = [sample_scene(rng, config.max_objects) for _ in range(config.batch_size)]
        yield pixels(render_batch(scenes)), [training_caption(s, rng, config.captions) for s in scenes], scenes


def _load_start(config: PainterConfig) -> Any:
    """The pipeline the run starts from: ``--pipeline`` (a world painter's directory or shipped name, e.g.
    "world") or one assembled from ``--clip`` and ``--vae``."""
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

    out = Path(config.out)
    source = config.pipeline
    if source is None:
        if not (config.clip and config.vae):
            raise InvalidInputError("give --pipeline (a world painter to continue from) or both --clip and --vae")
        source = assemble(out / "start", config.clip, config.vae, config.seed)
    pipe = StableDiffusionPipeline.from_pretrained(check_diffusers_dir(source), local_files_only=True)
    if pipe.scheduler.config.prediction_type != config.prediction:
        # Continuing an epsilon painter as a v-prediction one (or back): the saved scheduler says which it is.
        pipe.scheduler = type(pipe.scheduler).from_config({**pipe.scheduler.config,
                                                           "prediction_type": config.prediction})
    if config.inpaint:
        if pipe.unet.config.in_channels == pipe.unet.config.out_channels:
            pipe.unet = widen_for_inpainting(pipe.unet)
        pipe = StableDiffusionInpaintPipeline(**pipe.components, requires_safety_checker=False)
    return pipe


def widen_for_inpainting(unet: Any) -> Any:
    """An inpainting copy of a text-to-image UNet (latents + mask + masked-image latents in).

    The new input channels start at zero, so it begins as exactly the text-to-image UNet.
    """
    from diffusers import UNet2DConditionModel

    latent = unet.config.in_channels
    wide = UNet2DConditionModel.from_config({**unet.config, "in_channels": 2 * latent + 1})
    state = unet.state_dict()
    weight = state["conv_in.weight"]
    extra = weight.new_zeros(weight.shape[0], latent + 1, *weight.shape[2:])
    state["conv_in.weight"] = torch.cat([weight, extra], dim=1)
    wide.load_state_dict(state)
    return wide


def train_painter(config: PainterConfig, log=print) -> Path:
    """Train a world UNet; checkpoints resume; return the directory of the saved pipeline (``out/final``)."""
    from diffusers import DDPMScheduler
    from transformers import get_constant_schedule_with_warmup

    from .judge import Judge

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    accelerator = start(out, 1, "no", config.seed, config.threads)
    pipe = _load_start(config)
    unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    vae.requires_grad_(False)
    text_encoder.requires_grad_(config.train_text_encoder)
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    trained_params = [*unet.parameters(), *(text_encoder.parameters() if config.train_text_encoder else ())]
    optimizer = torch.optim.AdamW(trained_params, lr=config.lr)
    scheduler = get_constant_schedule_with_warmup(optimizer, config.warmup_steps)
    ema = new_ema(unet, config.ema_decay)
    accelerator.register_for_checkpointing(ema)
    if config.train_text_encoder:  # trained with the UNet, saved as trained (the EMA is the UNet's only)
        text_encoder = accelerator.prepare(text_encoder)
        pipe.text_encoder = accelerator.unwrap_model(text_encoder)
    unet, optimizer, scheduler = accelerator.prepare(unet, optimizer, scheduler)
    # A resumed run draws new pictures rather than repeating the ones it has seen.
    first_step = latest_step(out)
    rng = random.Random(f"{config.seed}-{first_step}")
    generator = torch.Generator().manual_seed(config.seed + first_step)
    judge = Judge.load()
    requests = {"short": single_object_requests(config.eval_n, seed=1, attributes=SHORT),
                "detailed": single_object_requests(config.eval_n, seed=2, attributes=EVERYTHING)}
    scale = vae.config.scaling_factor
    # The frozen encoders' outputs repeat (a one-object world has 9072 scenes): computed once, kept
    # (the text encoder's only while it is frozen).
    def encode(captions: list[str]) -> torch.Tensor:
        return _encode(text_encoder, tokenizer, captions)

    text_states = encode if config.train_text_encoder else BatchCache(encode, TEXT_CACHE)
    posteriors = BatchCache(lambda scenes: _posterior(vae, scenes), LATENT_CACHE)

    def loss_fn(model: Any, batch: Batch) -> torch.Tensor:
        x, captions, scenes = batch
        drop = torch.rand(len(captions), generator=generator) < config.uncond_prob
        captions = ["" if dropped else caption for caption, dropped in zip(captions, drop.tolist(), strict=True)]
        with torch.set_grad_enabled(config.train_text_encoder):
            cond = text_states(captions)
        with torch.no_grad():
            mean, std = posteriors(scenes).unbind(1)
            latents = (mean + std * torch.randn(mean.shape, generator=generator)) * scale
            extra = masked_inputs(x, _world_masks(x, scenes, rng), vae, generator) if config.inpaint else ()
            where = object_weights(x, scenes, latents.shape[-1], config.object_weight)
        return denoising_loss(model, latents, cond, noise_scheduler, config.snr_gamma, extra, generator, where)

    started = time.time()
    step = first_step

    def after_step() -> None:
        nonlocal step
        ema.step(unet.parameters())
        step += 1
        if config.inpaint or step % config.eval_every:
            return
        point = {"step": step, "samples": step * config.batch_size,
                 "seconds_this_run": round(time.time() - started, 1)}
        with ema_weights(ema, unet):
            painter = _Sampler(pipe, accelerator.unwrap_model(unet), config)
            for kind, batch in requests.items():
                point[f"success_{kind}"] = painter_success(painter, batch, judge)
            painter.pipeline.save_pretrained(out / "latest", safe_serialization=True)
        log(f"curve: {point}")
        with (out / "curve.jsonl").open("a") as f:
            f.write(json.dumps(point) + "\n")
        unet.train()

    train(accelerator, unet, optimizer, scheduler, rendered_batches(config, rng), loss_fn, total=config.steps,
          out=out, save_every=config.save_every, desc="world unet", after_step=after_step, keep_last=2)
    final = out / "final"
    trained = accelerator.unwrap_model(unet)
    ema.copy_to(trained.parameters())
    pipe.unet = trained
    pipe.save_pretrained(final, safe_serialization=True)
    return final


@contextmanager
def ema_weights(ema: Any, unet: Any) -> Iterator[None]:
    """Swap the EMA weights into ``unet`` for the duration of a ``with`` block."""
    ema.store(unet.parameters())
    ema.copy_to(unet.parameters())
    try:
        yield
    finally:
        ema.restore(unet.parameters())


#: How many captions' text states and scenes' latent posteriors a training run keeps (about 0.4 GB in all).
TEXT_CACHE, LATENT_CACHE = 8_000, 20_000


class BatchCache:
    """A batched function's results per key, for the ``size`` keys used last: ``cache(keys)`` stacks them.

    Only the keys not yet kept are computed, in one batch.
    """

    def __init__(self, compute: Callable[[list], torch.Tensor], size: int) -> None:
        self.compute, self.size = compute, size
        self.kept: OrderedDict[Any, torch.Tensor] = OrderedDict()

    def __call__(self, keys: list) -> torch.Tensor:
        missing = [k for k in dict.fromkeys(keys) if k not in self.kept]
        if missing:
            self.kept.update(zip(missing, self.compute(missing), strict=True))
        out = torch.stack([self.kept[k] for k in keys])
        for key in keys:
            self.kept.move_to_end(key)
        while len(self.kept) > self.size:
            self.kept.popitem(last=False)
        return out


def _posterior(vae: Any, scenes: list[Scene]) -> torch.Tensor:
    """The VAE's posterior mean and standard deviation for each scene's picture, ``(n, 2, c, h, w)``."""
    posterior = vae.encode(pixels(render_batch(scenes))).latent_dist
    return torch.stack([posterior.mean, posterior.std], 1)


def _encode(text_encoder: Any, tokenizer: Any, captions: list[str]) -> torch.Tensor:
    """Last hidden states for prompts that fit one 77-token window (as the painter encodes them)."""
    tokens = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt")
    if tokens.input_ids.shape[1] > tokenizer.model_max_length:
        raise InvalidInputError("a training caption is longer than one 77-token window; lower --max-objects")
    return text_encoder(tokens.input_ids)[0]


def object_weights(x: torch.Tensor, scenes: list[Scene], size: int, weight: float) -> torch.Tensor | None:
    """Loss weights per latent pixel: ``1 + weight`` where an object is drawn, 1 elsewhere (None if weight is 0).

    Objects cover a small share of a world picture, and the background is learnt first;
    weighing their pixels more gives shape and place a larger share of the gradient.
    """
    if not weight:
        return None
    return 1 + weight * torch.nn.functional.adaptive_max_pool2d(drawn_objects(x, scenes), size)


def drawn_objects(x: torch.Tensor, scenes: list[Scene]) -> torch.Tensor:
    """1 where the scenes' pictures ``x`` (NCHW) differ from their backgrounds alone (an object is drawn), else 0."""
    return (x != pixels(render_batch([s.with_objects(()) for s in scenes]))).any(1, keepdim=True).float()


def _world_masks(x: torch.Tensor, scenes: list[Scene], rng: random.Random) -> torch.Tensor:
    """A world mask per picture (an object's cell, a box, or outpainting borders; 1 = repaint), ``(n, 1, h, w)``."""
    masks = [np.asarray(random_mask(scene, rng, x.shape[-1]).image) > 127 for scene in scenes]
    return torch.from_numpy(np.stack(masks))[:, None].float()


class _Sampler:
    """Paints lists of prompts with the UNet being trained (evaluation during training)."""

    def __init__(self, pipe: Any, unet: Any, config: PainterConfig) -> None:
        from diffusers import StableDiffusionPipeline

        self.pipeline = StableDiffusionPipeline(**{**pipe.components, "unet": unet}, requires_safety_checker=False)
        self.pipeline.set_progress_bar_config(disable=True)
        self.config = config

    def __call__(self, prompts: list[str]) -> list:
        """The pictures for ``prompts`` as uint8 arrays."""
        self.pipeline.unet.eval()
        with torch.no_grad():
            result = self.pipeline(prompts, height=32, width=32, num_inference_steps=self.config.eval_steps,
                                   guidance_scale=self.config.guidance, output_type="np",
                                   generator=torch.Generator().manual_seed(self.config.seed))
        return list((result.images * 255).round().astype(np.uint8))
