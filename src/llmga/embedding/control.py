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
#: ``--library gallery``: retrieve from the studio's own pictures
GALLERY = "gallery"


def check_control_model(spec: str | Path) -> Path:
    """The folder of the embedding-control model ``spec``, checked before anything loads."""
    folder = control_folder(spec)
    read_config(folder)
    return folder


def load_embedding_control(spec: str | Path, painters: PainterSuite, runtime: RuntimeSettings | None = None,
                           library: str | Path | None = None, image_frequency: float = 1.0,
                           retrieval_frequency: float = 1.0, gallery: str | Path | None = None,
                           ) -> tuple[EmbeddingBrain, EmbeddingPainters]:
    """The embedding-control brain ``spec`` and the painters that paint its ``[IMG]`` groups on ``painters``'
    text-to-image painter (refused if its width is not the model's), retrieving from ``library`` if given.

    ``library`` :data:`GALLERY` is the picture folder ``gallery`` (the studio's images), indexed live in the
    model's retrieval space."""
    from ..errors import InvalidInputError
    from ..library import ImageLibrary, open_gallery

    brain = load_control_brain(spec, runtime, image_frequency)
    if library == GALLERY:
        if gallery is None:
            raise InvalidInputError("--library gallery retrieves from the studio's own pictures: use it with "
                                    "llmga serve, or give a picture folder")
        if brain.config.retrieval_clip is None:
            raise InvalidInputError(f"the embedding-control model {brain.name} has no retrieval head (it was "
                                    "trained without --retrieval-clip), so it cannot search a library")
        shelf = open_gallery(gallery, brain.config.retrieval_clip)
    else:
        shelf = ImageLibrary.open(library) if library else None
    return brain, embedding_painters(painters, brain, shelf, retrieval_frequency)
