"""Instruction-based editing: regenerate an image with a target prompt, keeping what the instruction leaves alone.

The assistant turns "replace the cat with a dog" into two descriptions: one of
the input image (source) and one of the edited image (target). The painter
inverts the image with the source prompt, then samples the target prompt along
the inversion. Two routes:

- ``ddim``, the paper's (sec. 3.1, 4.2): DDIM inversion with the source prompt;
  Direct Inversion (Ju et al., arXiv 2310.01506) keeps the source branch exactly
  on the inversion trajectory at every step, and prompt-to-prompt
  (:mod:`llmga.painter.attention`) carries the source branch's cross- and
  self-attention into the target branch for the first steps. With
  ``correct_target`` the target branch gets the same per-step corrections (the
  Direct Inversion authors' reconstruction variant): the source prompt then
  regenerates the input exactly.
- ``ddpm``, the released code's: edit-friendly DDPM inversion
  (Huberman-Spiegelglas et al., arXiv 2304.06140). Noisy latents at every level
  are drawn independently, and the noise maps that make the DDPM sampler
  (eta 1) pass exactly through them with the source prompt are kept; the target
  prompt is then sampled with the same noise maps.

The default is ``ddpm``. Its noise maps regenerate the input exactly whatever
the two prompts are, so what the instruction does not touch stays without
relying on a word-by-word alignment of the prompts; prompt-to-prompt rests on
that alignment, and LLMGA's assistant rewrites a whole detailed caption, often
over 75 tokens, where it is weakest. It is what the released LLMGA code ships,
its inversion has no step-to-step dependency (the levels run in a few batched
UNet calls) and it costs no more than the ddim route. ``ddim`` remains for the
paper's protocol (its MagicBrush numbers) and short word-swap edits.

Both routes share the options where they make sense: prompt-to-prompt
(``cross_replace``/``self_replace``, on by default for ddim only), re-weighting
of target words, and ``blend``, a mask from where the changed words'
cross-attention falls (the released code masks its edits so), outside which the
source trajectory is kept. Any image size or mode is edited at a working size
(multiples of 8, about the model's native area) and returned at its own size,
with its alpha channel if it had one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image

from ..errors import InvalidInputError, PromptTooLongError
from ..settings import DEFAULT_MAX_PROMPT_TOKENS, PaintSettings
from .attention import (
    SPAN,
    AlignmentMode,
    EditControl,
    align_tokens,
    attention_control,
    split_words,
    token_weights,
)
from .long_prompt import LongPromptEncoder
from .runtime import ProgressCallback, load_pipeline
from .text_to_image import Painting, TextToImagePainter

Method = Literal["ddpm", "ddim"]
METHODS: tuple[str, ...] = ("ddpm", "ddim")
#: per route: source guidance, prompt-to-prompt fractions, whether the target branch gets the per-step corrections
ROUTE_DEFAULTS: dict[str, dict[str, Any]] = {
    "ddpm": {"source_guidance": 3.5, "cross_replace": 0.0, "self_replace": 0.0, "correct_target": True},
    "ddim": {"source_guidance": 1.0, "cross_replace": 0.8, "self_replace": 0.4, "correct_target": False},
}
_CHUNK = 4  # ddpm inversion: noise levels per batched UNet call


@dataclass(frozen=True)
class EditSettings:
    """Settings for one edit; None takes the route's default (:data:`ROUTE_DEFAULTS`).

    - ``method``: ``"ddpm"`` (edit-friendly DDPM inversion) or ``"ddim"`` (DDIM
      inversion + Direct Inversion + prompt-to-prompt).
    - ``steps``: denoising steps; ``skip`` the fraction of the noisiest ones left
      out (the edit starts from the inverted latent there: more keeps more).
    - ``source_guidance``: guidance of the source prompt while inverting (ddpm 3.5
      as released; ddim 1, as Direct Inversion inverts). ``target_guidance``: of the target.
    - ``cross_replace``/``self_replace``: fractions of the steps with
      prompt-to-prompt cross-attention replacement / self-attention injection
      (ddim 0.8/0.4, ddpm 0). ``alignment``: how target words take the source
      words' attention: ``"auto"``, ``"replace"`` (word swap, as many words) or ``"refine"``.
    - ``reweight``: target words or phrases and their attention weights, e.g. ``{"snowy": 2.0}``.
    - ``blend``: None, or the threshold (0-1) of a mask from the changed words'
      attention; outside it the source is kept.
    - ``correct_target``: add the per-step corrections that keep the source
      branch on the inversion trajectory to the target branch too (ddpm: always,
      they are its noise maps; ddim: off, as in Direct Inversion, on as in its
      authors' reconstruction: the same prompt then regenerates the input exactly).
    - ``seed``: the ddpm route's noise. ``resolution``: side of the square whose
      area the working size has (None: the model's native size).
    """

    method: Method = "ddpm"
    steps: int = 50
    source_guidance: float | None = None
    target_guidance: float = 7.5
    cross_replace: float | None = None
    self_replace: float | None = None
    alignment: AlignmentMode = "auto"
    reweight: Mapping[str, float] | tuple[tuple[str, float], ...] = ()
    blend: float | None = None
    correct_target: bool | None = None
    skip: float = 0.0
    seed: int = 0
    resolution: int | None = None

    def __post_init__(self) -> None:
        try:
            reweight = tuple((str(k), float(w)) for k, w in dict(self.reweight).items())
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"reweight must map words to weights, got {self.reweight!r}") from exc
        object.__setattr__(self, "reweight", reweight)
        problems = []
        if self.method not in METHODS:
            problems.append(f"method must be one of {METHODS}, got {self.method!r}")
        if not 1 <= self.steps <= 1000:
            problems.append(f"steps must be in 1..1000, got {self.steps}")
        for name in ("source_guidance", "target_guidance"):
            value = getattr(self, name)
            if value is not None and not value >= 1:
                problems.append(f"{name} must be >= 1 (1 turns guidance off), got {value}")
        for name in ("cross_replace", "self_replace"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                problems.append(f"{name} must be a fraction in [0, 1], got {value}")
        if self.alignment not in ("auto", "replace", "refine"):
            problems.append(f"alignment must be 'auto', 'replace' or 'refine', got {self.alignment!r}")
        if any(not k.strip() or not 0 <= w < math.inf for k, w in self.reweight):
            problems.append(f"reweight needs non-empty words with finite weights >= 0, got {dict(self.reweight)}")
        if self.blend is not None and not 0 < self.blend < 1:
            problems.append(f"blend must be a threshold in (0, 1), got {self.blend}")
        if not 0 <= self.skip < 1 or self.steps - round(self.skip * self.steps) < 1:
            problems.append(f"skip must be in [0, 1) and leave at least one of the {self.steps} steps, got {self.skip}")
        if self.resolution is not None and (self.resolution < 8 or self.resolution % 8):
            problems.append(f"resolution must be a positive multiple of 8, got {self.resolution}")
        if problems:
            raise InvalidInputError("invalid edit settings: " + "; ".join(problems))

    @property
    def start(self) -> int:
        """Index of the first step run (``skip`` of ``steps``)."""
        return round(self.skip * self.steps)

    @property
    def run_steps(self) -> int:
        return self.steps - self.start

    @property
    def inversion_steps(self) -> int:
        """UNet steps an inversion takes: the ddim trajectory, then the corrections if the target gets them."""
        return self.run_steps * ((self.method == "ddim") + bool(self.correct_target))

    @classmethod
    def from_paint(cls, settings: PaintSettings) -> EditSettings:
        """The edit settings a turn's paint settings stand for (steps, guidance of the target, seed)."""
        return cls(steps=settings.steps, target_guidance=settings.guidance, seed=settings.seed)

    def resolved(self) -> EditSettings:
        """These settings with the route's defaults filled in, checked for options that cannot apply."""
        defaults = {k: v for k, v in ROUTE_DEFAULTS[self.method].items() if getattr(self, k) is None}
        out = replace(self, **defaults)
        if out.alignment != "auto" and out.cross_replace == 0 and out.blend is None:
            raise InvalidInputError(
                f"alignment={out.alignment!r} has no effect: it maps words for prompt-to-prompt's cross-attention "
                "replacement, which is off (cross_replace=0). Set cross_replace > 0 or leave alignment at 'auto'."
            )
        if out.method == "ddpm" and not out.correct_target:
            raise InvalidInputError("correct_target=False does not apply to the ddpm route: its noise maps are the "
                                    "corrections, and the target always gets them. Use method='ddim' for that.")
        return out

    def as_metadata(self) -> dict[str, Any]:
        """The settings as plain values, for image metadata."""
        return {**asdict(self), "reweight": dict(self.reweight)}


def _inversion_fields(settings: EditSettings) -> dict[str, Any]:
    """The settings that shape an inversion (a regeneration must use the same)."""
    keys = ("method", "steps", "skip", "source_guidance", "resolution", "correct_target")
    keys += ("seed",) if settings.method == "ddpm" else ()
    return {k: getattr(settings, k) for k in keys}


@dataclass
class Inversion:
    """An image inverted with its source prompt: what :meth:`EditPainter.regenerate` samples along.

    ``trajectory`` (run_steps + 1, C, h, w): latents from the first level run to
    the clean latent (last). ``residuals`` (run_steps, C, h, w): what each step
    of the sampler with the source prompt misses the next latent by (the ddpm
    route's noise maps times sigma; Direct Inversion's corrections), None where
    the target does not get them.
    """

    source_prompt: str
    settings: EditSettings
    trajectory: torch.Tensor
    residuals: torch.Tensor | None
    size: tuple[int, int]
    alpha: Image.Image | None = None

    @property
    def latent(self) -> torch.Tensor:
        """The input image's clean latent (1, C, h, w)."""
        return self.trajectory[-1:]


@dataclass
class EditPainting(Painting):
    """An edited image: ``prompt`` is the target prompt, ``source_prompt`` described the input."""

    source_prompt: str = ""

    def metadata(self, index: int = 0) -> dict[str, Any]:
        return {**super().metadata(index), "task": "edit", "source_prompt": self.source_prompt}


@dataclass
class _Cond:
    """One prompt's conditioning: embeddings (1, L, D) and, for SDXL, the pooled embedding."""

    embeds: torch.Tensor
    pooled: torch.Tensor | None = None


class _Schedule:
    """The pipeline's noise schedule over ``steps`` DDIM timesteps.

    Level i (0..steps-1) is the latent at timestep ``timesteps[i]`` (descending);
    level ``steps`` is the clean latent.
    """

    def __init__(self, scheduler_config: Any, steps: int, device: torch.device) -> None:
        from diffusers import DDIMScheduler

        ddim = DDIMScheduler.from_config(scheduler_config)
        ddim.set_timesteps(steps)
        self.timesteps = ddim.timesteps
        final = torch.as_tensor(ddim.final_alpha_cumprod, dtype=torch.float32).reshape(1)
        self.alphas = torch.cat([ddim.alphas_cumprod[ddim.timesteps].float(), final]).to(device)
        self.v_prediction = ddim.config.prediction_type == "v_prediction"

    def toward(
        self, output: torch.Tensor, x: torch.Tensor, at: int | torch.Tensor, to: int | torch.Tensor, eta: float = 0.0
    ) -> torch.Tensor:
        """DDIM step of ``x`` (at level ``at``, UNet ``output``) to level ``to``; ``eta`` 1: the DDPM mean."""
        a_at, a_to = (self.alphas[torch.as_tensor(level)].reshape(-1, 1, 1, 1) for level in (at, to))
        if self.v_prediction:
            x0 = a_at.sqrt() * x - (1 - a_at).sqrt() * output
            eps = a_at.sqrt() * output + (1 - a_at).sqrt() * x
        else:
            eps = output
            x0 = (x - (1 - a_at).sqrt() * eps) / a_at.sqrt()
        variance = eta**2 * (1 - a_to) / (1 - a_at) * (1 - a_at / a_to) if eta else 0.0
        return a_to.sqrt() * x0 + (1 - a_to - variance).clamp(min=0).sqrt() * eps


class EditPainter:
    """Edits images with a Stable Diffusion (1.x/2.x or XL) text-to-image pipeline."""

    def __init__(self, pipeline: Any, name: str = "", max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS) -> None:
        self.xl = _check_pipeline(pipeline)
        self.pipeline = pipeline
        self.name = name or type(pipeline).__name__
        self.encoder = LongPromptEncoder.from_pipeline(pipeline, max_tokens=max_prompt_tokens)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None, runtime: Any = None, **kwargs: Any) -> EditPainter:
        """Load a Stable Diffusion (1.x/2.x or XL) pipeline directory (checked before anything loads)."""
        return cls(load_pipeline("text2image", path, device, runtime), name=str(Path(path)), **kwargs)

    @classmethod
    def from_painter(cls, painter: TextToImagePainter) -> EditPainter:
        """An edit painter sharing a text-to-image painter's pipeline."""
        return cls(painter.pipeline, name=painter.name, max_prompt_tokens=painter.encoder.max_tokens)

    def describe(self) -> str:
        return f"{self.name} ({type(self.pipeline).__name__}, {self.pipeline.device}, editing)"

    def edit(
        self,
        image: Image.Image,
        source_prompt: str,
        target_prompt: str,
        settings: EditSettings = EditSettings(),
        progress: ProgressCallback | None = None,
    ) -> EditPainting:
        """Edit ``image`` (described by ``source_prompt``) into what ``target_prompt`` describes.

        ``progress`` gets (step, total) over the inversion and the regeneration.
        """
        settings = _edit_settings(settings)
        self._check_prompt(target_prompt, "target")  # before the inversion's work
        first, total = settings.inversion_steps, settings.inversion_steps + settings.run_steps
        inversion = self.invert(image, source_prompt, settings, _shifted(progress, 0, total))
        latents = self.regenerate(inversion, target_prompt, settings, _shifted(progress, first, total))
        return EditPainting(
            [self.to_image(latents, inversion)], target_prompt, settings, self.name,
            prompt_tokens=self.encoder.count_tokens(target_prompt), source_prompt=source_prompt,
        )

    @torch.no_grad()
    def invert(
        self,
        image: Image.Image,
        source_prompt: str,
        settings: EditSettings = EditSettings(),
        progress: ProgressCallback | None = None,
    ) -> Inversion:
        """Invert ``image`` with ``source_prompt``: the trajectory (and ddpm noise maps) that regenerate it."""
        settings = _edit_settings(settings)
        self._check_prompt(source_prompt, "source")
        pixels, alpha = self._prepare(image, settings)
        x0 = self._encode_image(pixels)
        source, _, uncond = self._conditions(source_prompt)
        schedule = _Schedule(self.pipeline.scheduler.config, settings.steps, x0.device)
        if settings.method == "ddim":
            trajectory = self._ddim_trajectory(x0, schedule, settings, source, uncond, progress)
        else:
            trajectory = _noisy_trajectory(x0, schedule, settings)
        residuals = None
        if settings.correct_target:
            done = settings.inversion_steps - settings.run_steps
            residuals = self._residuals(trajectory, schedule, settings, source, uncond,
                                        _shifted(progress, done, settings.inversion_steps))
        return Inversion(source_prompt, settings, trajectory, residuals, image.size, alpha)

    @torch.no_grad()
    def regenerate(
        self,
        inversion: Inversion,
        target_prompt: str,
        settings: EditSettings | None = None,
        progress: ProgressCallback | None = None,
    ) -> torch.Tensor:
        """Sample ``target_prompt`` along ``inversion``; returns the edited clean latent (1, C, h, w).

        ``settings`` (default: the inversion's) may change the target side
        (guidance, prompt-to-prompt, reweight, blend) but not what shaped the inversion.
        """
        settings = inversion.settings if settings is None else _matching(_edit_settings(settings), inversion)
        self._check_prompt(target_prompt, "target")
        source, target, uncond = self._conditions(inversion.source_prompt, target_prompt)
        control = self._control(inversion, target_prompt, settings, windows=source.embeds.shape[1])
        schedule = _Schedule(self.pipeline.scheduler.config, settings.steps, inversion.trajectory.device)
        trajectory, residuals, guidance = inversion.trajectory, inversion.residuals, settings.target_guidance
        y = trajectory[:1]
        with attention_control(self.pipeline.unet, control):
            for j in range(settings.run_steps):
                i = settings.start + j
                with_source = control.needs_source(j)
                rows = [(y, uncond)] * (guidance != 1) + [(trajectory[j : j + 1], source)] * with_source + [(y, target)]
                control.begin_step(j, len(rows) - 2 if with_source else None, len(rows) - 1)
                out = self._unet(torch.cat([r[0] for r in rows]), schedule.timesteps[i], [r[1] for r in rows])
                prediction = out[-1:] if guidance == 1 else out[:1] + guidance * (out[-1:] - out[:1])
                y = schedule.toward(prediction, y, at=i, to=i + 1, eta=_eta(settings))
                if residuals is not None:
                    y = y + residuals[j : j + 1]
                if settings.blend is not None:  # outside the changed words' attention, keep the source
                    kept = trajectory[j + 1 : j + 2]
                    y = kept + control.blend_mask(settings.blend).to(y) * (y - kept)
                _report(progress, j + 1, settings.run_steps)
        return y

    @torch.no_grad()
    def to_image(self, latents: torch.Tensor, inversion: Inversion) -> Image.Image:
        """Decode latents at the inversion's working size; return them at the input's size (and alpha)."""
        vae = self.pipeline.vae
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        with _vae_upcast(vae):
            pixels = vae.decode((latents / vae.config.scaling_factor + shift).to(vae.dtype)).sample
        image = self.pipeline.image_processor.postprocess(pixels.float(), output_type="pil")[0]
        if image.size != inversion.size:
            image = image.resize(inversion.size, Image.Resampling.LANCZOS)
        if inversion.alpha is not None:
            image.putalpha(inversion.alpha)
        return image

    # -- inversion routes -------------------------------------------------------------

    def _ddim_trajectory(
        self, x0: torch.Tensor, schedule: _Schedule, settings: EditSettings, source: _Cond, uncond: _Cond,
        progress: ProgressCallback | None,
    ) -> torch.Tensor:
        """DDIM inversion from the clean latent up to the first level run (returned first to clean)."""
        levels = [x0]
        for k, i in enumerate(reversed(range(settings.start, settings.steps))):
            out = self._guided(levels[-1], schedule.timesteps[i : i + 1], source, uncond, settings.source_guidance)
            levels.append(schedule.toward(out, levels[-1], at=i + 1, to=i))
            _report(progress, k + 1, settings.inversion_steps)
        return torch.cat(levels[::-1])

    def _residuals(
        self, trajectory: torch.Tensor, schedule: _Schedule, settings: EditSettings, source: _Cond, uncond: _Cond,
        progress: ProgressCallback | None,
    ) -> torch.Tensor:
        """What each sampler step with the source prompt misses the next latent of ``trajectory`` by.

        The levels are known up front, so they run a few at a time in batched UNet calls.
        """
        run, start = settings.run_steps, settings.start
        residuals = []
        for first in range(0, run, _CHUNK):
            idx = torch.arange(first, min(first + _CHUNK, run))
            levels = idx + start
            out = self._guided(trajectory[idx], schedule.timesteps[levels], source, uncond, settings.source_guidance)
            step = schedule.toward(out, trajectory[idx], at=levels, to=levels + 1, eta=_eta(settings))
            residuals.append(trajectory[idx + 1] - step)
            _report(progress, int(idx[-1]) + 1, run)
        return torch.cat(residuals)

    # -- model calls --------------------------------------------------------------------

    def _guided(
        self, latents: torch.Tensor, timesteps: torch.Tensor, cond: _Cond, uncond: _Cond, guidance: float
    ) -> torch.Tensor:
        """Classifier-free guided UNet output for a batch of latents under one prompt."""
        n = len(latents)
        if guidance == 1:
            return self._unet(latents, timesteps, [cond] * n)
        out = self._unet(torch.cat([latents, latents]), torch.cat([timesteps, timesteps]), [uncond] * n + [cond] * n)
        u, c = out.chunk(2)
        return u + guidance * (c - u)

    def _unet(self, latents: torch.Tensor, timesteps: torch.Tensor, conds: list[_Cond]) -> torch.Tensor:
        """UNet output (float32) for rows of latents, timesteps (one or one per row) and prompts."""
        unet = self.pipeline.unet
        embeds = torch.cat([c.embeds for c in conds])
        timesteps = timesteps.to(unet.device).expand(len(latents))
        kwargs: dict[str, Any] = {}
        if self.xl:  # SDXL: pooled embedding and size conditioning (original size, crop, target size)
            h, w = (d * self.pipeline.vae_scale_factor for d in latents.shape[-2:])
            time_ids = torch.tensor([[h, w, 0, 0, h, w]], dtype=embeds.dtype, device=unet.device)
            kwargs["added_cond_kwargs"] = {
                "text_embeds": torch.cat([c.pooled for c in conds]),
                "time_ids": time_ids.expand(len(latents), -1),
            }
        out = unet(latents.to(unet.dtype), timesteps, encoder_hidden_states=embeds, **kwargs).sample
        return out.float()

    def _encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        vae = self.pipeline.vae
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        with _vae_upcast(vae):
            latents = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist.mode()
        return ((latents - shift) * vae.config.scaling_factor).float()

    # -- inputs -------------------------------------------------------------------------

    def _check_prompt(self, prompt: str, what: str) -> None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidInputError(f"the {what} prompt is empty; editing needs a description of the "
                                    f"{'input' if what == 'source' else 'edited'} image")
        n = self.encoder.count_tokens(prompt)
        if n > self.encoder.max_tokens:
            raise PromptTooLongError(f"the {what} prompt is {n} tokens long; the limit is {self.encoder.max_tokens}. "
                                     "Shorten it or raise the limit (--max-prompt-tokens).")

    def _conditions(self, source: str, target: str | None = None) -> tuple[_Cond, _Cond | None, _Cond]:
        """Source, target and unconditional embeddings, all with the same number of windows."""
        # the target rides in the negative slot: the encoder pads both to the same windows
        both = self.encoder.encode(source, target if target is not None else "")
        empty = self.encoder.encode("")  # the unconditional window, as the pipeline makes it
        uncond = _Cond(empty.negative_prompt_embeds.repeat(1, both.windows, 1), empty.negative_pooled_prompt_embeds)
        other = _Cond(both.negative_prompt_embeds, both.negative_pooled_prompt_embeds)
        return _Cond(both.prompt_embeds, both.pooled_prompt_embeds), other if target is not None else None, uncond

    def _control(self, inversion: Inversion, target_prompt: str, settings: EditSettings, windows: int) -> EditControl:
        """Prompt-to-prompt, reweight and blend set-up for a regeneration."""
        tokenizer = self.encoder.tokenizers[0]

        def tokenize(text: str) -> list[int]:
            return self.encoder.token_ids(text, tokenizer)

        run = settings.run_steps
        windows //= SPAN
        target_ids = tokenize(target_prompt)
        alignment = None
        if settings.cross_replace > 0 or settings.blend is not None:
            alignment = align_tokens(split_words(tokenize(inversion.source_prompt), tokenizer),
                                     split_words(target_ids, tokenizer), windows, settings.alignment)
        weights = token_weights(target_ids, dict(settings.reweight), tokenize, windows) if settings.reweight else None
        return EditControl(alignment, weights, cross_steps=round(settings.cross_replace * run),
                           self_steps=round(settings.self_replace * run), record=settings.blend is not None,
                           latent_size=tuple(inversion.trajectory.shape[-2:]))

    def _prepare(self, image: Image.Image, settings: EditSettings) -> tuple[torch.Tensor, Image.Image | None]:
        """RGB pixels (1, 3, h, w) in [-1, 1] at the working size, and the alpha channel if any."""
        if not isinstance(image, Image.Image):
            raise InvalidInputError(f"the image to edit must be a PIL image, got {type(image).__name__}")
        if min(image.size) < 1:
            raise InvalidInputError(f"the image to edit is empty ({image.size[0]}x{image.size[1]})")
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        alpha = image.convert("RGBA").getchannel("A") if has_alpha else None
        rgb = (image.convert("RGBA") if has_alpha else image).convert("RGB")
        size = self._working_size(image.size, settings.resolution)
        rgb = rgb.resize(size, Image.Resampling.LANCZOS) if rgb.size != size else rgb
        return self.pipeline.image_processor.preprocess(rgb), alpha

    def _working_size(self, size: tuple[int, int], resolution: int | None) -> tuple[int, int]:
        """About ``resolution``² pixels (default: the model's native size) at the input's aspect ratio."""
        native = self.pipeline.unet.config.sample_size
        side = resolution or (native if isinstance(native, int) else max(native)) * self.pipeline.vae_scale_factor
        multiple = max(8, self.pipeline.vae_scale_factor)
        scale = side / math.sqrt(size[0] * size[1])
        return tuple(max(multiple, round(d * scale / multiple) * multiple) for d in size)



def _check_pipeline(pipe: Any) -> bool:
    """Refuse pipelines the edit cannot drive; return whether it is SDXL."""
    kind = type(pipe).__name__
    missing = [n for n in ("unet", "vae", "scheduler", "tokenizer", "image_processor") if getattr(pipe, n, None) is None]
    if missing:
        raise InvalidInputError(f"{kind} cannot edit: it has no {', '.join(missing)}")
    unet, vae = pipe.unet.config, pipe.vae.config
    if unet.in_channels != vae.latent_channels:
        raise InvalidInputError(
            f"{kind}'s UNet takes {unet.in_channels}-channel input (an inpainting or otherwise conditioned model); "
            "editing needs a text-to-image Stable Diffusion pipeline"
        )
    prediction = pipe.scheduler.config.get("prediction_type", "epsilon")
    if prediction not in ("epsilon", "v_prediction"):
        raise InvalidInputError(f"{kind} predicts {prediction!r}; editing supports epsilon and v-prediction models")
    embed = getattr(unet, "addition_embed_type", None)
    if embed is None:
        return False
    pooled = getattr(getattr(pipe, "text_encoder_2", None), "config", None)
    if embed != "text_time" or pooled is None or (
        unet.projection_class_embeddings_input_dim != 6 * unet.addition_time_embed_dim + pooled.projection_dim
    ):
        raise InvalidInputError(f"{kind} is not a Stable Diffusion 1.x/2.x or SDXL base model; editing cannot drive it")
    return True


def _noisy_trajectory(x0: torch.Tensor, schedule: _Schedule, settings: EditSettings) -> torch.Tensor:
    """Edit-friendly DDPM inversion's latents: ``x0`` noised to each level with independent noise."""
    generator = torch.Generator("cpu").manual_seed(settings.seed)
    noise = torch.randn((settings.run_steps, *x0.shape[1:]), generator=generator).to(x0)
    alphas = schedule.alphas[settings.start : settings.steps].reshape(-1, 1, 1, 1)
    return torch.cat([alphas.sqrt() * x0 + (1 - alphas).sqrt() * noise, x0])


def _eta(settings: EditSettings) -> float:
    """The sampler's noise share: 1 (DDPM) for the ddpm route, 0 (DDIM) for ddim."""
    return 1.0 if settings.method == "ddpm" else 0.0


def _edit_settings(settings: Any) -> EditSettings:
    if not isinstance(settings, EditSettings):
        raise InvalidInputError(f"editing takes EditSettings, got {type(settings).__name__}")
    return settings.resolved()


def _matching(settings: EditSettings, inversion: Inversion) -> EditSettings:
    """``settings``, checked against what shaped ``inversion``."""
    wanted, made = _inversion_fields(settings), _inversion_fields(inversion.settings)
    if wanted != made:
        diff = ", ".join(f"{k}={made[k]!r} (not {wanted[k]!r})" for k in made if made[k] != wanted.get(k))
        raise InvalidInputError(f"these settings do not match the inversion, which was made with {diff}; "
                                "regenerate with the settings the inversion was made with")
    return settings


def _report(progress: ProgressCallback | None, step: int, total: int) -> None:
    if progress is not None:
        progress(step, total)


def _shifted(progress: ProgressCallback | None, offset: int, total: int) -> ProgressCallback | None:
    """A progress callback that reports one phase of a longer job."""
    return None if progress is None else (lambda step, _n: progress(offset + step, total))


@contextmanager
def _vae_upcast(vae: Any) -> Iterator[None]:
    """Run a float16 VAE that asks for it (SDXL's) in float32, as the pipelines do."""
    upcast = vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False)
    if upcast:
        vae.to(torch.float32)
    try:
        yield
    finally:
        if upcast:
            vae.to(torch.float16)
