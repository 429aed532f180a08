"""The miniature world: procedural scenes whose every picture has known captions, masks and edits.

- :mod:`.scene`: vocabularies, :class:`Scene` and the seeded :func:`sample_scene`.
- :mod:`.render`: :func:`render` a scene to a small RGB picture.
- :mod:`.captions`: short and detailed captions, :func:`parse_detailed`, :func:`oracle_paint`.
- :mod:`.tasks`: inpainting/outpainting masks and instruction edit pairs.
- :mod:`.judge`: :class:`Judge`, a small CNN that reads pictures back into scenes (imports torch).
- :mod:`.assistant`: the text-only refinement set; :mod:`.llava` and :mod:`.llava_data`: the
  LLaVA-format world assistant (SmolLM2 + the world CLIP's vision tower), its four stage-1 sets and
  its measurement (imported on demand).
- :mod:`.clip`, :mod:`.painter`: the world's CLIP (text + vision towers, contrastive) and the
  Stable-Diffusion-format world painter (VAE, UNet, inpainting UNet) trained on rendered scenes.
- :mod:`.evaluate`: requests and whether a picture shows them; :mod:`.bench`: ``llmga world bench``.
"""

from .captions import (
    CaptionParseError,
    ParsedCaption,
    detailed_caption,
    oracle_paint,
    parse_caption,
    parse_detailed,
    short_caption,
)
from .render import render, render_array, render_batch
from .scene import (
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    TERRAINS,
    TIMES,
    VOCAB,
    Background,
    Obj,
    Scene,
    WorldError,
    sample_scene,
)
from .tasks import (
    EDIT_KINDS,
    EditPair,
    SceneMask,
    cell_mask,
    outpaint_mask,
    random_mask,
    sample_edit,
    sample_edit_chain,
    scene_masks,
)

_LAZY = {"Judge", "JudgeConfig", "train_judge", "evaluate_judge"}


def __getattr__(name: str):
    """Load the judge (and torch) only when it is asked for."""
    if name in _LAZY:
        from . import judge

        return getattr(judge, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "COLOURS",
    "EDIT_KINDS",
    "POSITIONS",
    "SHAPES",
    "SIZES",
    "TERRAINS",
    "TIMES",
    "VOCAB",
    "Background",
    "CaptionParseError",
    "EditPair",
    "Judge",
    "JudgeConfig",
    "Obj",
    "ParsedCaption",
    "Scene",
    "SceneMask",
    "WorldError",
    "cell_mask",
    "detailed_caption",
    "evaluate_judge",
    "oracle_paint",
    "outpaint_mask",
    "parse_caption",
    "parse_detailed",
    "random_mask",
    "render",
    "render_array",
    "render_batch",
    "sample_edit",
    "sample_edit_chain",
    "sample_scene",
    "scene_masks",
    "short_caption",
    "train_judge",
]
