"""Samplers by name: the common diffusers schedulers, built from the painter's own scheduler config.

A sampler replaces the pipeline's scheduler for one call (``PaintSettings.sampler``);
it keeps the model's noise schedule (betas, prediction type) from the
checkpoint's scheduler config and changes only how it steps. ``karras`` turns on
Karras sigmas where the scheduler has them; ``timestep_spacing`` ("leading",
"trailing", "linspace") is what few-step models were distilled with.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError
from ..settings import PaintSettings

#: name -> (diffusers scheduler class, extra config); names as the common UIs say them
SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "dpm2": ("KDPM2DiscreteScheduler", {}),
    "dpm2_a": ("KDPM2AncestralDiscreteScheduler", {}),
    "dpm++_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpm++_2m_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}),
    "dpm++_2s": ("DPMSolverSinglestepScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "deis": ("DEISMultistepScheduler", {}),
    "lcm": ("LCMScheduler", {}),
    "tcd": ("TCDScheduler", {}),
}


def check_sampler(settings: PaintSettings) -> None:
    """Refuse an unknown sampler, or Karras sigmas on a sampler without them, before anything runs."""
    if settings.sampler is None:
        return
    if settings.sampler not in SAMPLERS:
        raise InvalidInputError(f"unknown sampler {settings.sampler!r}; known: {', '.join(SAMPLERS)}")
    missing = missing_libraries(settings.sampler)
    if missing:
        raise InvalidInputError(f"the {settings.sampler} sampler needs {' and '.join(missing)}, which llmga does "
                                f"not install: pip install {' '.join(missing)}")
    if settings.karras and not _has_karras(_scheduler_class(settings.sampler)):
        karras = [n for n in SAMPLERS if not missing_libraries(n) and _has_karras(_scheduler_class(n))]
        raise InvalidInputError(f"the {settings.sampler} sampler has no Karras sigmas; drop --karras or pick one of "
                                f"{', '.join(karras)}")


def scheduler_for(settings: PaintSettings, current: Any) -> Any:
    """The scheduler a call with ``settings`` runs: ``current`` itself when nothing changes, else a new one."""
    check_sampler(settings)
    if settings.sampler is None and not settings.karras and settings.timestep_spacing is None:
        return current
    cls = _scheduler_class(settings.sampler) if settings.sampler else type(current)
    changes = dict(SAMPLERS[settings.sampler][1]) if settings.sampler else {}
    if settings.karras:
        if not _has_karras(cls):
            raise InvalidInputError(f"the painter's scheduler {cls.__name__} has no Karras sigmas; pick a --sampler")
        changes["use_karras_sigmas"] = True
    if settings.timestep_spacing is not None:
        changes["timestep_spacing"] = settings.timestep_spacing
    return cls.from_config(current.config, **changes)


def missing_libraries(name: str) -> list[str]:
    """What sampler ``name`` needs and this environment lacks (diffusers gives a placeholder class then;
    LMS needs scipy, kept out of llmga's dependencies because transformers and diffusers import it at start)."""
    from diffusers.utils import import_utils

    needs = getattr(_scheduler_class(name), "_backends", [])
    return [lib for lib in needs if not getattr(import_utils, f"is_{lib}_available", lambda: True)()]


def _scheduler_class(name: str) -> Any:
    import diffusers

    return getattr(diffusers, SAMPLERS[name][0])


def _has_karras(cls: Any) -> bool:
    return "use_karras_sigmas" in cls._get_init_keys(cls)
