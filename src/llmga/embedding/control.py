"""Embedding control assembled: the brain and painters an :class:`~llmga.assistant.Assistant` runs with.

``llmga chat --control embedding --control-model MODEL [--library FOLDER]``
builds its assistant here; so do the evaluation's embedding rows.
"""

from __future__ import annotations

from pathlib import Path

from ..painter.suite import PainterSuite
from ..settings import RuntimeSettings
from .embedding_brain import EmbeddingBrain, control_folder, load_control_brain
from .embedding_painter import EmbeddingPainters, embedding_painters
from .heads import read_config

CONTROLS = ("language", "embedding")


def check_control_model(spec: str | Path) -> Path:
    """The folder of the embedding-control model ``spec``, checked before anything loads."""
    folder = control_folder(spec)
    read_config(folder)
    return folder


def load_embedding_control(spec: str | Path, painters: PainterSuite, runtime: RuntimeSettings | None = None,
                           library: str | Path | None = None, image_frequency: float = 1.0,
                           retrieval_frequency: float = 1.0) -> tuple[EmbeddingBrain, EmbeddingPainters]:
    """The embedding-control brain ``spec`` and the painters that paint its ``[IMG]`` groups on ``painters``'
    text-to-image painter (refused if its width is not the model's), retrieving from ``library`` if given."""
    from ..library import ImageLibrary

    brain = load_control_brain(spec, runtime, image_frequency)
    shelf = ImageLibrary.open(library) if library else None
    return brain, embedding_painters(painters, brain, shelf, retrieval_frequency)
