"""The world painter: a Stable-Diffusion-format pipeline trained from scratch on rendered scenes.

Three steps, each resumable and each writing standard diffusers/transformers
directories, so the result loads exactly as real SD 1.5 does::

    llmga train clip    --out runs/world/clip           # text + vision encoders
    llmga train vae     --out runs/world/vae            # 32 px <-> 16x16x4 latents
    llmga train painter --out runs/world/painter --clip runs/world/clip --vae runs/world/vae

The UNet trains on pictures rendered on the fly (no dataset on disk) with the
project's training loop (accelerate, checkpoints that resume, EMA, min-SNR,
classifier-free dropout). Every ``eval_every`` steps the EMA UNet paints a
fixed set of one-object requests and the judge scores them: ``curve.jsonl``
is the success curve, and ``latest/`` the pipeline as it was measured.
``--inpaint`` fine-tunes an inpainting UNet from a trained text-to-image one;
``--captions detailed`` is the world's stage 2 (the assistant's detailed
prompts only); ``--train-text-encoder`` fine-tunes the text encoder with the
UNet (frozen otherwise, as SD's is), and ``--caption-loss`` makes it keep
every attribute a caption names, the cell included (:class:`CaptionHead`;
``--object-heads``: each object's from its own words, for scenes of several
objects).
"""

from __future__ import annotations

import json
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoints import check_diffusers_dir
from ..errors import InvalidInputError
from ..eval.world_success import painter_scores
from ..world.captions import detailed_caption, object_phrase, short_caption
from ..world.regions import random_mask
from ..world.render import render_batch
from ..world.requests import (BACKGROUND_ATTRIBUTES, EVERYTHING, OBJECT_ATTRIBUTES, SHORT, Request,
                              single_object_requests)
from ..world.scene import VOCAB, Background, Obj, Scene, sample_scene, sub_world
from .run_state import latest_step
from .loop import start, train
from .stage2 import denoising_loss, hole_weights, masked_inputs, new_ema
from .world_clip import pixels
from .world_vae import LATENT_CHANNELS, save_world_painter

CAPTION_MIXES = ("mixed", "detailed", "short")


def new_unet(cross_attention_dim: int, latent_channels: int = LATENT_CHANNELS,
             widths: tuple[int, ...] = (32, 64, 64), layers_per_block: int = 1, conv_in_kernel: int = 3) -> Any:
    """An untrained ``UNet2DConditionModel`` for 16x16 latents, with cross-attention at every resolution
    (each width a resolution: three give 16, 8 and 4 pixels, four go down to 2); ``conv_in_kernel``
    (odd) is the first convolution's size (:func:`enlarge_conv_in`)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16, in_channels=latent_channels, out_channels=latent_channels, block_out_channels=widths,
        layers_per_block=layers_per_block, conv_in_kernel=conv_in_kernel,
        down_block_types=("CrossAttnDownBlock2D",) * len(widths), up_block_types=("CrossAttnUpBlock2D",) * len(widths),
        attention_head_dim=4, cross_attention_dim=cross_attention_dim, norm_num_groups=32)


PREDICTIONS = ("epsilon", "v_prediction")


def new_scheduler(prediction: str = "epsilon") -> Any:
    """The noise schedule: cosine betas (suited to small pictures), DDIM sampling.

    The cosine schedule's last steps carry almost no signal (alpha-bar near 0 at t=999), where an
    epsilon model's estimate of the clean latents blows up: sampling from t=999 ("trailing") gave
    pure coloured noise, so sampling starts at the "leading" timestep (t=951 for 20 steps).
    """
    from diffusers import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type=prediction,
                         clip_sample=False, set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading")


def assemble(out: str | Path, clip: str | Path, vae: str | Path, seed: int = 0,
             widths: tuple[int, ...] = (32, 64, 64), layers_per_block: int = 1, conv_in_kernel: int = 3) -> Path:
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
        unet=new_unet(text_encoder.config.hidden_size, autoencoder.config.latent_channels, widths, layers_per_block,
                      conv_in_kernel),
        scheduler=new_scheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    save_world_painter(pipe, out)
    return Path(out)


@dataclass
class PainterConfig:
    """A world UNet training run (text-to-image, or inpainting with ``inpaint``)."""

    out: str
    pipeline: str | None = None
    clip: str | None = None
    vae: str | None = None
    #: the UNet's widths, one per resolution, and layers per block (a new painter only)
    widths: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    #: the first convolution's size (odd); a continued painter's grows to it (:func:`enlarge_conv_in`)
    conv_in_kernel: int | None = None
    inpaint: bool = False
    #: an inpainting run's loss weight on the hole, relative to the rest of the picture
    hole_weight: float = 1.0
    captions: str = "mixed"
    max_objects: int = 1
    #: a part of the world to train on: attribute -> the values allowed (all where not named)
    only: dict[str, tuple[str, ...]] = field(default_factory=dict)
    steps: int = 20_000
    batch_size: int = 32
    lr: float = 5e-4
    warmup_steps: int = 200
    uncond_prob: float = 0.1
    prediction: str = "epsilon"
    snr_gamma: float | None = 5.0
    train_text_encoder: bool = False
    #: with ``train_text_encoder``: the weight of :class:`CaptionHead`'s loss
    caption_loss: float = 0.0
    #: how many times each other attribute the cell counts in that loss
    cell_weight: float = 1.0
    #: the heads read each object from its own words, in captions of any number of objects
    object_heads: bool = False
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
        if self.caption_loss and not self.train_text_encoder:
            raise InvalidInputError("--caption-loss trains the text encoder: add --train-text-encoder")
        if self.object_heads and not self.caption_loss:
            raise InvalidInputError("--object-heads shapes the caption heads: add --caption-loss")


def training_caption(scene: Scene, rng: random.Random, mix: str) -> str:
    """The prompt a training picture is paired with: short, detailed, or half and half."""
    if mix == "short" or (mix == "mixed" and rng.random() < 0.5):
        return short_caption(scene)
    return detailed_caption(scene)


Batch = tuple[torch.Tensor, list[str], list[Scene]]


def rendered_batches(config: PainterConfig, rng: random.Random) -> Iterator[Batch]:
    """Endless batches of freshly rendered pictures (NCHW in [-1, 1]), their prompts and scenes."""
    while True:
        choices = sub_world(config.only)
        scenes = [sample_scene(rng, config.max_objects, **choices) for _ in range(config.batch_size)]
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
        source = assemble(out / "start", config.clip, config.vae, config.seed, tuple(config.widths),
                          config.layers_per_block, config.conv_in_kernel or 3)
    pipe = StableDiffusionPipeline.from_pretrained(check_diffusers_dir(source), local_files_only=True)
    if pipe.scheduler.config.prediction_type != config.prediction:
        # Continuing an epsilon painter as a v-prediction one (or back): the saved scheduler says which it is.
        pipe.scheduler = type(pipe.scheduler).from_config({**pipe.scheduler.config,
                                                           "prediction_type": config.prediction})
    if config.conv_in_kernel and config.conv_in_kernel != pipe.unet.config.conv_in_kernel:
        pipe.unet = enlarge_conv_in(pipe.unet, config.conv_in_kernel)
    if config.inpaint:
        if pipe.unet.config.in_channels == pipe.unet.config.out_channels:
            pipe.unet = widen_for_inpainting(pipe.unet)
        pipe = StableDiffusionInpaintPipeline(**pipe.components, requires_safety_checker=False)
    return pipe


def enlarge_conv_in(unet: Any, kernel: int) -> Any:
    """A copy of ``unet`` whose first convolution is ``kernel`` pixels wide (odd), computing exactly what it did.

    Why: a UNet's convolutions and attention carry no sense of where in the picture they are, except
    what zero padding at the borders lets them infer, and at 16x16 latents little of that reaches the
    middle: the world painter learnt up from down (the sky and the ground say it) but not left from
    right. A first convolution as wide as the latents sees the borders from every pixel, so the
    network can learn absolute place; it stays a standard diffusers UNet (``conv_in_kernel``). The old
    kernel sits at the centre of the new one and the rest starts at zero.
    """
    from diffusers import UNet2DConditionModel

    old = unet.config.conv_in_kernel
    if kernel % 2 == 0 or kernel < old:
        raise InvalidInputError(f"the first convolution can grow to an odd size of at least {old}, not {kernel}")
    wide = UNet2DConditionModel.from_config({**unet.config, "conv_in_kernel": kernel})
    state = unet.state_dict()
    weight = state["conv_in.weight"]
    grown = weight.new_zeros(*weight.shape[:2], kernel, kernel)
    edge = (kernel - old) // 2
    grown[:, :, edge : edge + old, edge : edge + old] = weight
    state["conv_in.weight"] = grown
    wide.load_state_dict(state)
    return wide


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

    from ..world.judge import Judge

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    accelerator = start(out, 1, "no", config.seed, config.threads)
    pipe = _load_start(config)
    unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    vae.requires_grad_(False)
    text_encoder.requires_grad_(config.train_text_encoder)
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    head = (CaptionHead(text_encoder.config.hidden_size, config.cell_weight,
                        tokenizer if config.object_heads else None) if config.caption_loss else None)
    trained_params = [*unet.parameters(), *(text_encoder.parameters() if config.train_text_encoder else ()),
                      *(head.parameters() if head else ())]
    optimizer = torch.optim.AdamW(trained_params, lr=config.lr)
    scheduler = get_constant_schedule_with_warmup(optimizer, config.warmup_steps)
    ema = new_ema(unet, config.ema_decay)
    accelerator.register_for_checkpointing(ema)
    if config.train_text_encoder:  # trained with the UNet, saved as trained (the EMA is the UNet's only)
        text_encoder = accelerator.prepare(text_encoder)
        pipe.text_encoder = accelerator.unwrap_model(text_encoder)
    if head is not None:  # trained and checkpointed with the text encoder, dropped from the saved pipeline
        head = accelerator.prepare(head)
    unet, optimizer, scheduler = accelerator.prepare(unet, optimizer, scheduler)
    # A resumed run draws new pictures rather than repeating the ones it has seen.
    first_step = latest_step(out)
    rng = random.Random(f"{config.seed}-{first_step}")
    generator = torch.Generator().manual_seed(config.seed + first_step)
    judge = Judge.load()
    choices = sub_world(config.only)
    requests = {"short": single_object_requests(config.eval_n, seed=1, attributes=SHORT, **choices),
                "detailed": single_object_requests(config.eval_n, seed=2, attributes=EVERYTHING, **choices)}
    if config.max_objects > 1:  # and the whole scene of two-object detailed captions
        two = random.Random(3)
        requests["two"] = [Request(sample_scene(two, 2, min_objects=2, **choices), EVERYTHING)
                           for _ in range(config.eval_n)]
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
        weights = hole_weights(extra[0], config.hole_weight) if extra and config.hole_weight != 1 else None
        loss = denoising_loss(model, latents, cond, noise_scheduler, config.snr_gamma, extra, generator, weights)
        if head is not None:
            loss = loss + config.caption_loss * head.loss(cond, captions, scenes)
        return loss

    started = time.time()
    step = first_step

    def after_step() -> None:
        nonlocal step
        ema.step(unet.parameters())
        step += 1
        if config.inpaint or step % config.eval_every:
            return
        point = {"step": step, "samples": step * config.batch_size,
                 "seconds_this_run": round(time.time() - started, 1),
                 "text_column_separation": column_separation(pipe.text_encoder, tokenizer)}
        with ema_weights(ema, unet):
            painter = _Sampler(pipe, accelerator.unwrap_model(unet), config)
            for kind, batch in requests.items():
                scores = painter_scores(painter, batch, judge)
                point[f"success_{kind}"] = scores.pop("success")
                if kind == "detailed":
                    point["detailed_agreement"] = scores
            save_world_painter(painter.pipeline, out / "latest")
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
    save_world_painter(pipe, final)
    return final


class CaptionHead(torch.nn.Module):
    """Linear heads that must read, from the text encoder's states alone, every attribute a caption names.

    Why: the world CLIP's text tower, and the painter's after fine-tuning with the UNet, write "top left"
    and "top right" almost alike (:func:`column_separation`: 2-4%, against 50-60% for top against
    bottom), so no UNet can tell left from right from them. Trained with the text encoder on detailed
    captions, the heads keep the column in its states, and every other attribute too: a head for the cell
    alone made the encoder write day and night alike (17% apart before, 2% after). They are dropped
    afterwards.

    By default they read one-object captions from the caption's mean state. Given the ``tokenizer``
    (``--object-heads``) they read each object's shape, colour, size and cell from the states of that
    object's own words (:func:`object_spans`), in captions of any number of objects, so each object's
    words must say where that object is: what a UNet needs to paint two objects each in its own cell.
    """

    def __init__(self, hidden: int, cell_weight: float = 1.0, tokenizer: Any = None) -> None:
        super().__init__()
        self.heads = torch.nn.ModuleDict({name: torch.nn.Linear(hidden, len(values))
                                          for name, values in VOCAB.items()})
        self.weights = {name: cell_weight if name == "position" else 1.0 for name in VOCAB}
        self.tokenizer = tokenizer

    def loss(self, states: torch.Tensor, captions: list[str], scenes: list[Scene]) -> torch.Tensor:
        """Cross-entropy of each attribute read from each detailed caption, averaged with the cell counted
        ``cell_weight`` times (0 if there is no such caption)."""
        many = self.tokenizer is not None
        named = [i for i, (caption, scene) in enumerate(zip(captions, scenes, strict=True))
                 if caption == detailed_caption(scene) and (len(scene.objects) == 1 or many and scene.objects)]
        if not named:
            return states.new_zeros(())
        reads: dict[str, list[torch.Tensor]] = {name: [] for name in VOCAB}  # the states each head reads
        truths: dict[str, list[int]] = {name: [] for name in VOCAB}
        for i in named:
            scene, whole = scenes[i], states[i].mean(0)
            if many:
                objects = [(obj, states[i, start:end].mean(0))
                           for obj, (start, end) in zip(scene.objects, object_spans(self.tokenizer, scene), strict=True)]
            else:
                objects = [(scene.objects[0], whole)]
            parts = [(BACKGROUND_ATTRIBUTES, scene.background, whole),
                     *((OBJECT_ATTRIBUTES, obj, read) for obj, read in objects)]
            for names, owner, read in parts:
                for name in names:
                    reads[name].append(read)
                    truths[name].append(VOCAB[name].index(getattr(owner, name)))
        total = states.new_zeros(())
        for name, head in self.heads.items():
            logits = head(torch.stack(reads[name]))
            total = total + self.weights[name] * torch.nn.functional.cross_entropy(logits, torch.tensor(truths[name]))
        return total / sum(self.weights.values())


def object_spans(tokenizer: Any, scene: Scene) -> list[tuple[int, int]]:
    """Where each object's words lie among a detailed caption's tokens: ``(start, end)`` per object, counted
    from the start token at 0 (the second object's span begins at its "and")."""
    spans, start, words = [], 1, ""
    for obj in scene.objects:
        words = f"{words} and {object_phrase(obj)}" if words else object_phrase(obj)
        end = 1 + len(tokenizer(words, add_special_tokens=False).input_ids)
        spans.append((start, end))
        start = end
    return spans


def column_separation(text_encoder: Any, tokenizer: Any) -> float:
    """How far apart the text encoder writes the same caption in the left and the right column (the
    relative distance of its states, averaged over the three rows): near 0, a UNet cannot tell them apart."""
    def states(position: str) -> torch.Tensor:
        caption = detailed_caption(Scene((Obj("circle", "red", "large", position),), Background("day", "grass")))
        tokens = tokenizer([caption], return_tensors="pt").input_ids
        with torch.no_grad():
            return text_encoder(tokens)[0][0]

    gaps = []
    for row in ("top", "middle", "bottom"):
        left, right = states(f"{row} left"), states(f"{row} right")
        gaps.append(((left - right).norm() / left.norm()).item())
    return round(sum(gaps) / len(gaps), 4)


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
