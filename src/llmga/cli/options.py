"""The options every command that builds an assistant takes (``--brain``, ``--painter``, settings, ...)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import InvalidInputError
from .root import shared_options


def _option(flag: str, help: str) -> Any:
    return typer.Option(flag, help=help, show_default=False)


@dataclass
class AssistantOptions:
    """The shared command-line options; None means "as the profile says"."""

    profile: Annotated[Optional[str], _option("--profile", "Named profile from the config file.")] = None
    config: Annotated[Optional[Path], _option(
        "--config", "Config file (default: $LLMGA_CONFIG, else ~/.config/llmga/config.toml; with none, the "
        "shipped offline world).")] = None
    brain: Annotated[Optional[str], _option(
        "--brain", "Model directory, .gguf file, shipped name ('gemma3-world', 'smollm2-world', "
        "'smollm2-refine', 'world-llava'), or OpenAI-compatible server URL. Default: the profile's; with no "
        "config, the offline world assistant.")] = None
    brain_model: Annotated[Optional[str], _option("--brain-model", "Model name on an OpenAI-compatible server.")] = None
    painter: Annotated[Optional[str], _option(
        "--painter", "Stable Diffusion (1.x/2.x/XL) diffusers directory, a shipped painter ('world'), or 'none'. "
        "Default: the profile's; with no config, the offline world painter.")] = None
    inpaint_painter: Annotated[Optional[str], _option(
        "--inpaint-painter", "Inpainting SD directory (else the painter's legacy inpainting).")] = None
    edit_painter: Annotated[Optional[str], _option(
        "--edit-painter", "SD directory for instruction edits (else the painter).")] = None
    controlnet: Annotated[Optional[list[str]], _option(
        "--controlnet", "ControlNet directory made for the painter; repeat it for several at once.")] = None
    restorer: Annotated[Optional[str], _option(
        "--restorer", "DiffRIR restorer (folder, released .pth or shipped name 'world-restore') that repairs the "
        "seams of inpainting, outpainting and growth; on by default when the profile names one.")] = None
    no_restore: Annotated[bool, typer.Option("--no-restore", help="Keep paintings as painted (no restorer).",
                                             show_default=False)] = False
    out: Annotated[Optional[Path], _option(
        "--out", "Folder for the painted images (default: the profile's, else ./outputs).")] = None
    temperature: Annotated[Optional[float], _option("--temperature", "Brain sampling temperature (0: greedy).")] = None
    max_new_tokens: Annotated[Optional[int], _option("--max-new-tokens", "Most tokens the brain may write.")] = None
    seed: Annotated[Optional[int], _option("--seed", "Seed for the brain and the painter.")] = None
    steps: Annotated[Optional[int], _option("--steps", "Denoising steps.")] = None
    guidance: Annotated[Optional[float], _option("--guidance", "Classifier-free guidance scale.")] = None
    width: Annotated[Optional[int], _option("--width", "Image width (multiple of 8).")] = None
    height: Annotated[Optional[int], _option("--height", "Image height (multiple of 8).")] = None
    negative: Annotated[Optional[str], _option("--negative", "Negative prompt.")] = None
    num_images: Annotated[Optional[int], _option("--num-images", "Images per prompt.")] = None
    max_prompt_tokens: Annotated[Optional[int], _option(
        "--max-prompt-tokens", "Refuse generation prompts longer than this.")] = None
    sampler: Annotated[Optional[str], _option(
        "--sampler", "Sampler: ddim, ddpm, pndm, lms, euler, euler_a, heun, dpm2, dpm2_a, dpm++_2m, dpm++_2m_sde, "
        "dpm++_2s, unipc, deis, lcm or tcd (default: the painter's own scheduler).")] = None
    karras: Annotated[Optional[bool], typer.Option("--karras/--no-karras", help="Karras sigmas for the sampler.",
                                                   show_default=False)] = None
    timestep_spacing: Annotated[Optional[str], _option(
        "--timestep-spacing", "leading, trailing or linspace (few-step models want trailing).")] = None
    fast: Annotated[Optional[str], _option(
        "--fast", "Few-step model settings: lcm (LCM/LCM-LoRA: 4 steps, guidance 1), turbo (SD/SDXL-Turbo: 1 step, "
        "no guidance), lightning (SDXL-Lightning: 4 steps) or hyper (Hyper-SD: 8 steps); --steps etc. still win.")] = None
    lora: Annotated[Optional[list[str]], _option(
        "--lora", "LoRA for the painter (.safetensors, diffusers or kohya/A1111 format), PATH or PATH:SCALE; "
        "repeat for several.")] = None
    vae: Annotated[Optional[str], _option("--vae", "Replacement VAE: AutoencoderKL folder or .safetensors.")] = None
    model_config: Annotated[Optional[str], _option(
        "--model-config", "Diffusers folder whose configs a single-file painter is built with (default: shipped).")] = None
    brain_device: Annotated[Optional[str], _option("--brain-device", "Device of the brain: cuda, cuda:1, cpu.")] = None
    brain_quantize: Annotated[Optional[str], _option(
        "--brain-quantize", "Quantize a transformers brain as it loads: 4bit or 8bit (bitsandbytes).")] = None
    brain_engine: Annotated[Optional[str], _option(
        "--brain-engine", "What runs a world assistant (an adapter on a GGUF base): llama.cpp, transformers or "
        "auto (llama.cpp where it can).")] = None
    painter_device: Annotated[Optional[str], _option("--painter-device", "Device of the painters.")] = None
    offload: Annotated[Optional[str], _option(
        "--offload", "Painter CPU offload: none, model (parts move to the GPU when used) or sequential.")] = None
    dtype: Annotated[Optional[str], _option(
        "--dtype", "Weights' precision for both models: float16, bfloat16 or float32 (default: half on CUDA).")] = None
    vae_tiling: Annotated[Optional[bool], typer.Option("--vae-tiling/--no-vae-tiling", show_default=False,
                                                       help="Decode big images tile by tile.")] = None
    brain_timeout: Annotated[Optional[float], _option(
        "--brain-timeout", "Seconds the brain may take for a reply before it is stopped (default: no limit; "
        "a server brain waits at most 60 s for each piece).")] = None
    control: Annotated[Optional[str], _option(
        "--control", "How the brain drives the painter: language (a generation prompt in words, the default) or "
        "embedding ([IMG] tokens mapped to prompt embeddings, GILL-style; needs --control-model).")] = None
    control_model: Annotated[Optional[str], _option(
        "--control-model", "The embedding-control model (made by llmga train gill; it names its own base brain, "
        "so --brain is not used).")] = None
    library: Annotated[Optional[str], _option(
        "--library", "With embedding control: a picture folder indexed by llmga index build, or 'gallery' (the "
        "studio's own pictures, indexed as they come); each image is "
        "retrieved from it when the calibrated decision says so, else painted.")] = None
    image_frequency: Annotated[Optional[float], _option(
        "--image-frequency", "With embedding control: multiplies the odds that the brain answers with an "
        "image.")] = None
    retrieval_frequency: Annotated[Optional[float], _option(
        "--retrieval-frequency", "With --library: multiplies the odds of retrieving a picture rather than "
        "painting one (0: always paint).")] = None

    def build(self, need_brain: bool = True, saves: bool = True, gallery: Path | None = None, lazy: bool = True):
        """Build an Assistant from the profile with these overrides (``gallery``: the studio's picture folder,
        the library ``--library gallery`` names; ``lazy``: the text-to-image painter loads on first use).

        The output folder (when it ``saves`` images) is checked to be writable and
        both models are checked before either loads, so any of these fails at once. The brain loads first.
        """
        from ..brain import load_brain, loads_without_torch, resolve_brain
        from ..checkpoints import check_diffusers_dir
        from ..images import check_writable
        from ..painter.samplers import check_sampler
        from ..profiles import load_profile

        prof = load_profile(self.profile, self.config)
        out_dir = check_writable(self.out or Path(prof.out_dir)) if saves else None
        sampling = _override(prof.sampling, temperature=self.temperature, max_new_tokens=self.max_new_tokens,
                             seed=self.seed)
        paint = prof.paint.with_preset(self.fast) if self.fast else prof.paint
        paint = _override(paint, seed=self.seed, steps=self.steps, guidance=self.guidance, width=self.width,
                          height=self.height, negative_prompt=self.negative, num_images=self.num_images,
                          sampler=self.sampler, karras=self.karras, timestep_spacing=self.timestep_spacing,
                          loras=tuple(self.lora) if self.lora else None)
        runtime = _override(prof.runtime, brain_device=self.brain_device, brain_quantize=self.brain_quantize,
                            brain_engine=self.brain_engine,
                            painter_device=self.painter_device, offload=self.offload, vae_tiling=self.vae_tiling,
                            vae=self.vae, model_config=self.model_config, dtype=self.dtype)
        check_sampler(paint)
        painter_spec = _given(self.painter if self.painter is not None else prof.painter)
        # A profile's inpainting and edit painters belong with its painter: --painter alone replaces them all.
        inpaint_spec = _given(self.inpaint_painter or (prof.inpaint_painter if self.painter is None else None))
        edit_spec = _given(self.edit_painter or (prof.edit_painter if self.painter is None else None))
        restorer_spec = None if self.no_restore else _given(
            self.restorer or (prof.restorer if self.painter is None else None))
        controls = self.controlnet or prof.controlnet or []
        control_specs = [c for c in ([controls] if isinstance(controls, str) else controls) if _given(c)]
        painter_dir = check_diffusers_dir(painter_spec) if painter_spec else None
        for spec in (inpaint_spec, edit_spec):
            if spec:
                check_diffusers_dir(spec)
        if control_specs:
            from ..painter.controlnet import check_controlnet_dir

            for spec in control_specs:
                check_controlnet_dir(spec)
        control = self.control or prof.control
        embedding = control == "embedding" and need_brain
        if control not in ("language", "embedding"):
            raise InvalidInputError(f"unknown control {control!r}; choose language or embedding")
        if embedding:
            control_model = self._control_model(prof)
        brain_spec = resolve_brain(self.brain or prof.brain) if need_brain and not embedding else None

        # A lazy painter's libraries (seconds of torch, diffusers and transformers) are imported in another
        # thread while the brain loads and answers. The two threads must never import the same libraries at
        # once, so a brain that loads with torch or transformers loads first.
        lazy = lazy and not embedding  # the embedding control loads with transformers once the painters are in
        painter_first = lazy and (brain_spec is None or loads_without_torch(brain_spec, runtime))
        if painter_first:
            _import_painter_libraries(painter_dir)
        brain = None
        if brain_spec is not None:
            brain = load_brain(brain_spec, model=self.brain_model or prof.brain_model, api_key=prof.api_key,
                               runtime=runtime, timeout=self.brain_timeout)
        if lazy and not painter_first:
            _import_painter_libraries(painter_dir)
        from ..assistant import Assistant
        from ..painter.suite import PainterSuite

        painters = PainterSuite.load(painter_spec, inpaint_spec, control_specs, edit=edit_spec, runtime=runtime,
                                     max_prompt_tokens=self.max_prompt_tokens or prof.max_prompt_tokens,
                                     restorer=restorer_spec, lazy=lazy)
        if embedding:
            from ..embedding.control import load_embedding_control

            brain, painters = load_embedding_control(
                control_model, painters, runtime, self.library or prof.library,
                _first(self.image_frequency, prof.image_frequency),
                _first(self.retrieval_frequency, prof.retrieval_frequency), gallery)
        return Assistant(brain, painters, sampling=sampling, paint=paint, out_dir=out_dir,
                         brain_seconds=self.brain_timeout)

    def _control_model(self, prof) -> Path:
        """The embedding-control model, checked; a language brain given instead is named in the refusal."""
        from ..embedding.control import check_control_model

        spec = self.control_model or prof.control_model
        if spec is None:
            raise InvalidInputError("--control embedding needs an embedding-control model: --control-model DIR "
                                    "(made by llmga train gill), or control_model in the profile")
        return check_control_model(spec)


#: decorator: the command takes every :class:`AssistantOptions` option and receives them as ``opts``
assistant_options = shared_options(AssistantOptions)


def _import_painter_libraries(painter_dir: Path | None) -> None:
    """Start importing the checked text-to-image painter's libraries in the background (none: nothing to do)."""
    if painter_dir is not None:
        from ..painter.preload import import_in_background

        import_in_background("text2image", painter_dir)


def _given(spec: str | None) -> str | None:
    """A model spec, or None where none is given ("none" or empty says so explicitly)."""
    return None if spec in (None, "", "none") else spec


def _first(value, default):
    return default if value is None else value


def _override(settings, **changes):
    return dataclasses.replace(settings, **{k: v for k, v in changes.items() if v is not None})
