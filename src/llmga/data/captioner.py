"""Detailed image descriptions from a captioner brain, asked once and cached.

The captioner is any llmga :class:`~llmga.brain.Brain`: a local LLaVA-format
model or an OpenAI-compatible server (GPT-4V in the paper). A multimodal brain
sees the image and its short caption; a text-only brain sees the caption alone
(it can only elaborate on the words, so a build notes it). Answers persist in
an :class:`~llmga.data.cache.AnswerCache` keyed by the image's pixels, the
caption, the captioner's identity, the instruction and the sampling settings:
nothing is asked twice, and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import re

from ..brain import Brain, BrainRequest, complete
from ..protocol import parse_reply
from ..settings import SamplingSettings
from .cache import AnswerCache, CachedBrain
from .report import BrokenSampleError
from .sources import Sample

SYSTEM = (
    "You write detailed descriptions of images for a text-to-image model. Describe what is there, "
    "never what is not; answer with the description only, as one paragraph."
)

IMAGE_INSTRUCTION = (
    "Describe this image in detail: every main subject with its attributes (kind, colour, size, pose, "
    "clothing), what they do, where they are, the background, lighting, colours, composition and style. "
    'A short caption of it: "{caption}"'
)

TEXT_INSTRUCTION = (
    'Here is a short caption of a photograph: "{caption}". Write a detailed description of that photograph: '
    "every subject in the caption with plausible attributes (colour, size, pose, clothing), what they do, "
    "where they are, the background, lighting, colours, composition and style. "
    "Keep every fact of the caption."
)

_LABEL = re.compile(r"^\s*(detailed description|description)\s*:\s*", re.IGNORECASE)


class Captioner:
    """Writes the detailed description of a sample's image, through an answer cache.

    ``identity`` names the captioner in the cache key (default: the model's name).
    """

    def __init__(
        self,
        brain: Brain,
        cache: AnswerCache | None = None,
        settings: SamplingSettings = SamplingSettings(temperature=0.2, max_new_tokens=300),
        identity: str | None = None,
    ) -> None:
        self.brain = CachedBrain(brain, cache, identity)
        self.settings = settings

    @property
    def sees_images(self) -> bool:
        """Whether the captioner reads the image (else it elaborates on the caption alone)."""
        return self.brain.multimodal

    @property
    def asked(self) -> int:
        """Descriptions requested from the brain (cache misses)."""
        return self.brain.asked

    @property
    def reused(self) -> int:
        """Descriptions answered from the cache."""
        return self.brain.reused

    def describe(self, sample: Sample) -> str:
        """The detailed description of ``sample`` (its image must be loaded when the brain sees images).

        Raises :class:`BrokenSampleError` for an empty answer (forgotten by the cache, so a rerun asks again).
        """
        if self.sees_images:
            if sample.image is None:
                raise BrokenSampleError(sample.id, "its image is not loaded (check it with Source.samples)")
            text = IMAGE_INSTRUCTION.format(caption=sample.caption)
            user = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}
            images = [sample.image]
        else:
            user = {"role": "user", "content": TEXT_INSTRUCTION.format(caption=sample.caption)}
            images = []
        messages = [{"role": "system", "content": SYSTEM}, user]
        request = BrainRequest(messages, images, self.settings)
        raw = complete(self.brain, request)
        description = clean_description(raw, self.brain.end_markers)
        if not description:
            self.brain.forget(request)
            raise BrokenSampleError(
                sample.id, f"the captioner returned no description (raw answer {raw[:80]!r})"
            )
        return description


def clean_description(raw: str, end_markers: tuple[str, ...] = ()) -> str:
    """The description in a captioner's answer: no tags, end tokens, label or surrounding quotes."""
    reply = parse_reply(raw, end_markers)
    text = reply.text or " ".join(reply.prompts)
    text = _LABEL.sub("", " ".join(text.split()))
    return text.strip().strip('"').strip()
