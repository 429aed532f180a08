"""Single-file Stable Diffusion checkpoints (``.safetensors``/``.ckpt`` as model sites share them), loaded offline.

:func:`sniff_family` reads the file's key names (and one shape) to tell SD 1.x,
SD 2.x and SDXL apart, text-to-image or inpainting (a 9-channel UNet), and
names what it is otherwise (a LoRA, SD3, Flux, …). :func:`load_single_file`
then builds the pipeline with diffusers' ``from_single_file`` from a local
config folder: the one given, else one written once from the published
configs llmga ships (:mod:`.model_configs`). diffusers would otherwise fetch
that folder from a hub; here nothing is fetched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..checkpoints import cache_dir
from ..errors import InvalidInputError, ModelNotFoundError
from .model_configs import FAMILIES, write_pipeline_config

SUFFIXES = (".safetensors", ".ckpt")
_UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"


def is_single_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SUFFIXES


def read_keys(path: Path) -> dict[str, tuple[int, ...]]:
    """The tensor names of a checkpoint file and their shapes, without loading the tensors (safetensors)."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    state = state.get("state_dict", state)
    return {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}


def sniff_family(path: Path) -> str:
    """Which family (a key of :data:`~llmga.painter.model_configs.FAMILIES`) a single-file checkpoint is."""
    keys = read_keys(path)
    if _UNET_IN not in keys:
        names = " ".join(list(keys)[:200]).lower()
        what = ("a LoRA (give it with --lora)" if "lora" in names else
                "a Flux model" if "double_blocks" in names else
                "an SD3 model" if "joint_blocks" in names else
                "a VAE (give it with --vae)" if "encoder.down.0" in names or "decoder.up.0" in names else
                "of an unknown architecture")
        raise InvalidInputError(f"{path} is not a Stable Diffusion 1.x/2.x/XL checkpoint: it looks {what}")
    inpaint = "-inpaint" if keys[_UNET_IN][1] == 9 else ""
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "sdxl" + inpaint
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        if inpaint:
            raise InvalidInputError(f"{path} is an SD 2.x inpainting checkpoint; convert it to a diffusers folder first")
        return "sd21"
    return "sd15" + inpaint


def config_folder(family: str) -> Path:
    """The shipped config folder of ``family``, written once under the llmga cache."""
    out = cache_dir() / "single-file-configs" / family
    if not (out / "model_index.json").is_file():
        write_pipeline_config(family, out.with_name(f".{family}.partial"))
        out.with_name(f".{family}.partial").replace(out)
    return out


def load_single_file(path: str | Path, dtype: Any, config: str | Path | None = None) -> Any:
    """The pipeline of a single-file checkpoint, built offline (``config``: a local diffusers folder to take
    the configs from, e.g. the same model in diffusers format; default: the family's shipped configs)."""
    import diffusers

    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(f"checkpoint file {path} does not exist")
    family = sniff_family(path)
    folder = Path(config) if config else config_folder(family)
    if not (folder / "model_index.json").is_file():
        raise ModelNotFoundError(f"config folder {folder} has no model_index.json (it must be a diffusers pipeline "
                                 "folder of the same family, weights not needed)")
    cls = getattr(diffusers, FAMILIES[family].pipeline)
    extra = {"safety_checker": None, "feature_extractor": None} if "safety_checker" in cls._optional_components else {}
    return cls.from_single_file(str(path), config=str(folder), local_files_only=True, torch_dtype=dtype, **extra)


def load_vae(path: str | Path, dtype: Any) -> Any:
    """A VAE from a diffusers AutoencoderKL folder or a single file (original or diffusers key names)."""
    from diffusers import AutoencoderKL

    path = Path(path).expanduser()
    if path.is_dir():
        return AutoencoderKL.from_pretrained(path, local_files_only=True, torch_dtype=dtype)
    if not path.is_file():
        raise ModelNotFoundError(f"VAE {path} does not exist (give an AutoencoderKL folder or a .safetensors file)")
    return AutoencoderKL.from_single_file(str(path), config=str(config_folder("sd15")), subfolder="vae",
                                          local_files_only=True, torch_dtype=dtype)
