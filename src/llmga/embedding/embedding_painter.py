"""The painter side of embedding control: paint from the ``[IMG]`` embeddings, or retrieve from a library.

:class:`EmbeddingPainter` is a text-to-image painter on the same pipeline.
When the prompt it is asked to paint is an ``[IMG]`` group, it takes that
group's embeddings from the brain; with a library it first searches it with
the retrieval query and lets the calibrated decision (:mod:`.decision`)
choose between the picture found and a new painting. Either way a notice says
what happened (retrieved, from where; or painted). Any other prompt is
painted as text. A model built for another painter's width is refused by name.

:class:`EmbeddingPainters` is the painter suite of embedding control: it
paints new pictures only (GILL's scope); the tasks that rework an image
(inpainting, outpainting, editing, ControlNet) need a language prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidInputError, ModelNotFoundError
from ..painter.long_prompt import PromptEmbeddings
from ..painter.suite import PainterSuite
from ..painter.text_to_image import Painting, TextToImagePainter
from ..settings import PaintSettings
from .decision import Decision
from .embedding_brain import EmbeddingBrain, ImageEmbeddings


def painter_widths(painter: TextToImagePainter) -> tuple[int, int | None]:
    """The width of the prompt embeddings a painter reads, and of its pooled embedding (SDXL; else None)."""
    pipeline = painter.pipeline
    second = getattr(pipeline, "text_encoder_2", None)
    return pipeline.unet.config.cross_attention_dim, (second.config.projection_dim if second is not None else None)


def check_painter(brain: EmbeddingBrain, painter: TextToImagePainter) -> None:
    """Refuse, naming both, a painter whose prompt-embedding width is not the one the model's mapper writes."""
    config = brain.config
    width, pooled = painter_widths(painter)
    if (width, pooled) != (config.width, config.pooled):
        def say(w, p):
            return f"{w}-wide prompt embeddings" + (f" and a {p}-wide pooled embedding" if p else "")

        raise InvalidInputError(
            f"the embedding-control model {brain.name} maps into {say(config.width, config.pooled)} (it was built "
            f"for the painter {config.painter or '?'}), but the painter {painter.name} reads "
            f"{say(width, pooled)}; train a mapper for it: llmga train gill --painter {painter.name} ...")


class EmbeddingPainter(TextToImagePainter):
    """Paints ``[IMG]`` groups from their embeddings (or retrieves them), other prompts as text."""

    def __init__(self, painter: TextToImagePainter, brain: EmbeddingBrain, library=None,
                 decision: Decision | None = None, retrieval_frequency: float = 1.0) -> None:
        check_painter(brain, painter)
        if retrieval_frequency < 0:
            raise InvalidInputError(f"the retrieval frequency multiplier must be >= 0, got {retrieval_frequency}")
        self.pipeline, self.name, self.encoder = painter.pipeline, painter.name, painter.encoder
        self.brain, self.library, self.decision = brain, library, decision
        self.retrieval_frequency = retrieval_frequency
        self.notices: list[str] = []
        if library is not None:
            check_library(brain, library, decision)

    def describe(self) -> str:
        shelf = f", or retrieves from {self.library.root} ({len(self.library)} pictures)" if self.library else ""
        return f"{super().describe()}: paints [IMG] embeddings{shelf}"

    def paint(self, prompt: str, settings: PaintSettings = PaintSettings(), progress=None) -> Painting:
        if prompt != self.brain.config.group:
            return super().paint(prompt, settings, progress)
        if not self.brain.images:
            raise InvalidInputError("no [IMG] embeddings wait for this image: an [IMG] group reaches the painter "
                                    "only from the embedding-control brain's reply")
        image = self.brain.images.popleft()
        choice = self.choose(image)
        if choice.retrieve:
            from ..images import load_image

            self.notices.append(f"retrieved {choice.hit.path} from the library {self.library.root} "
                                f"(similarity {choice.hit.score:.2f}, P(retrieve) {choice.probability:.2f})")
            return Painting([load_image(choice.hit.path)], prompt, settings, f"retrieved from {choice.hit.path}")
        painting = self.paint_encoded(prompt, lambda: self.embeddings(image, settings), settings, progress)
        self.notices.append(f"painted from the [IMG] embeddings{choice.why}")
        return painting

    def choose(self, image: ImageEmbeddings) -> Choice:
        """Retrieve or generate, for one image's embeddings."""
        if self.library is None:
            return Choice(False)
        hits = self.library.search(image.query.detach().cpu().numpy()[None], k=1)[0]
        if not hits:
            return Choice(False, why=" (the library is empty)")
        hit = hits[0]
        probability = self.decision.probability(hit.score, self.retrieval_frequency)
        if self.decision.retrieve(hit.score, self.retrieval_frequency):
            return Choice(True, hit, probability)
        return Choice(False, hit, probability, f" (the library's best match, {hit.path}, scored {hit.score:.2f}: "
                                               f"P(retrieve) {probability:.2f})")

    def embeddings(self, image: ImageEmbeddings, settings: PaintSettings) -> PromptEmbeddings:
        """The image's prompt embeddings beside the negative prompt's, as the pipeline takes them."""
        negative = self.encoder.encode("", settings.negative_prompt)
        if negative.windows > 1:
            raise InvalidInputError("with embedding control the negative prompt must fit one 75-token window")
        like = negative.negative_prompt_embeds
        pooled = None if image.pooled is None else image.pooled.to(like)
        return PromptEmbeddings(image.prompt_embeds.to(like), like, pooled, negative.negative_pooled_prompt_embeds)


@dataclass
class Choice:
    """What :meth:`EmbeddingPainter.choose` decided, and why."""

    retrieve: bool
    hit: object = None
    probability: float = 0.0
    why: str = ""


def check_library(brain: EmbeddingBrain, library, decision: Decision | None, need_decision: bool = True) -> None:
    """Refuse a library the model cannot search: no retrieval head, another CLIP space, or no calibration."""
    from pathlib import Path

    from ..library import clip_folder

    config = brain.config
    if config.retrieval_dim is None:
        raise InvalidInputError(f"the embedding-control model {brain.name} has no retrieval head (it was trained "
                                "without --retrieval-clip), so it cannot search a library")
    same = library.info.dim == config.retrieval_dim and (
        Path(clip_folder(library.info.clip)).resolve() == Path(clip_folder(config.retrieval_clip)).resolve())
    if not same:
        raise InvalidInputError(f"the library {library.root} holds pictures in the space of the CLIP "
                                f"{library.info.clip}, but the retrieval head of {brain.name} maps into the space "
                                f"of {config.retrieval_clip}; rebuild the library with llmga index build "
                                f"{library.root} --clip {config.retrieval_clip}")
    if decision is None and need_decision:
        raise ModelNotFoundError(f"the embedding-control model {brain.name} has no calibrated retrieve-or-generate "
                                 "decision (decision.json); make one with llmga eval decision --save")


class EmbeddingPainters(PainterSuite):
    """Embedding control's painters: new pictures only."""

    def _refuse(self, task: str):
        raise InvalidInputError(f"embedding control paints new pictures from [IMG] embeddings; {task} needs a "
                                "language prompt (use --control language)")

    @property
    def inpaint(self):
        self._refuse("inpainting and outpainting")

    @property
    def edit(self):
        self._refuse("instruction editing")

    @property
    def controlnet(self):
        self._refuse("ControlNet")


def embedding_painters(painters: PainterSuite, brain: EmbeddingBrain, library=None,
                       retrieval_frequency: float = 1.0) -> EmbeddingPainters:
    """The suite for ``brain``: its text-to-image painter paints the ``[IMG]`` embeddings (or retrieves)."""
    painter = EmbeddingPainter(painters.base("embedding control"), brain, library,
                               Decision.load(brain.folder) if brain.folder else None, retrieval_frequency)
    suite = EmbeddingPainters(text_to_image=painter, max_prompt_tokens=painters.max_prompt_tokens,
                              runtime=painters.runtime)
    painter.notices = suite.notices
    return suite
