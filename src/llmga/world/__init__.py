"""The miniature world: procedural scenes whose every picture has known captions, masks and edits.

- :mod:`.scene`: vocabularies, :class:`Scene` and the seeded :func:`sample_scene`.
- :mod:`.render`: :func:`render` a scene to a small RGB picture.
- :mod:`.captions`: short and detailed captions, :func:`parse_detailed`, :func:`oracle_paint`.
- :mod:`.regions`: inpainting/outpainting masks of a scene's picture; :mod:`.edits`: instruction edit pairs.
- :mod:`.requests`: what a user asked for, and whether a reading of a picture shows it.
- :mod:`.judge`: :class:`Judge`, a small CNN that reads pictures back into scenes (imports torch).

The world's models are trained by :mod:`llmga.train` (``world_clip``, ``world_vae``,
``world_painter``, ``world_judge``, ``world_llava``), its data sets built by :mod:`llmga.data`
(``world_chat``, ``world_sets``) and its measurements made by :mod:`llmga.eval`
(``world_bench``, ``world_prompts``, ``world_success``, ``judge_accuracy``).
"""

from .captions import (
    CaptionParseError,
    ParsedCaption,
    absolute_prompt,
    detailed_caption,
    oracle_paint,
    ordered_caption,
    parse_caption,
    parse_detailed,
    relative_caption,
    short_caption,
)
from .edits import EDIT_KINDS, EditPair, sample_edit, sample_edit_chain
from .regions import SceneMask, cell_mask, outpaint_mask, random_mask, scene_masks
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

_LAZY = {"Judge", "JudgeConfig"}


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
    "absolute_prompt",
    "detailed_caption",
    "oracle_paint",
    "ordered_caption",
    "outpaint_mask",
    "parse_caption",
    "parse_detailed",
    "relative_caption",
    "random_mask",
    "render",
    "render_array",
    "render_batch",
    "sample_edit",
    "sample_edit_chain",
    "sample_scene",
    "scene_masks",
    "short_caption",
]
