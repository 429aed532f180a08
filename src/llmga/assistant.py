"""One turn of the assistant loop: conversation → brain → protocol → painter.

:class:`Assistant` is the Python API behind ``llmga chat`` and
``llmga generate``. It owns a :class:`~llmga.conversation.Conversation`; the
brain only sees messages, the painter only sees prompts.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .brain.base import Brain, SamplingSettings
from .conversation import Conversation
from .errors import LLMGAError
from .painter.images import save_png
from .painter.text_to_image import Painting, PaintSettings, ProgressCallback, TextToImagePainter
from .protocol import OPEN_TAG, Reply, ReplyParser, assemble

TextCallback = Callable[[str], None]

REFINE_REQUEST = "Generate an image: {text}"


@dataclass
class TurnResult:
    """What one turn produced: the parsed reply, the paintings and saved files, and notices.

    ``notices`` are things the user should know that are not failures (an empty
    prompt was skipped, no painter is configured); ``errors`` are failures of
    single prompts (the turn itself still counts).
    """

    reply: Reply
    paintings: list[Painting] = field(default_factory=list)
    saved: list[Path] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Assistant:
    """Chats with the user and paints the generation prompts the brain writes."""

    def __init__(
        self,
        brain: Brain,
        painter: TextToImagePainter | None = None,
        sampling: SamplingSettings = SamplingSettings(),
        paint: PaintSettings = PaintSettings(),
        out_dir: str | Path | None = None,
        conversation: Conversation | None = None,
    ) -> None:
        self.brain = brain
        self.painter = painter
        self.sampling = sampling
        self.paint_settings = paint
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.conversation = conversation or Conversation()

    def chat(
        self,
        text: str,
        images: Sequence[Image.Image] = (),
        on_text: TextCallback | None = None,
        on_prompt: TextCallback | None = None,
        progress: ProgressCallback | None = None,
    ) -> TurnResult:
        """Send the user's ``text`` (and images); stream the reply; paint its prompts.

        ``on_text`` receives the visible reply as it streams, ``on_prompt`` each
        generation prompt once it is complete. If the brain fails, the user's
        turn is taken back out of the conversation, so it can be sent again.
        """
        self.conversation.add_user(text, list(images))
        try:
            raw, reply = self._ask(on_text, on_prompt)
        except BaseException:
            self.conversation.turns.pop()
            raise
        self.conversation.add_assistant(raw, reply.prompts)
        return self._paint(reply, progress)

    def generate(
        self,
        text: str,
        refine: bool = True,
        on_text: TextCallback | None = None,
        on_prompt: TextCallback | None = None,
        progress: ProgressCallback | None = None,
    ) -> TurnResult:
        """One shot: the brain turns ``text`` into a detailed prompt, then it is painted.

        With ``refine=False`` the text is painted as it is. A local brain's reply
        is started inside a generation tag, so it always writes a prompt; if a
        brain still writes none, the user's text is painted and a notice says so.
        """
        if not refine:
            reply = Reply(text="", prompts=[" ".join(text.split())], raw=text)
            if on_prompt:
                on_prompt(reply.prompts[0])
            self.conversation.add_user(text)
            self.conversation.add_assistant(reply.raw, reply.prompts)
            return self._paint(reply, progress)
        self.conversation.add_user(REFINE_REQUEST.format(text=text))
        try:
            raw, reply = self._ask(on_text, on_prompt, prefill=OPEN_TAG)
        except BaseException:
            self.conversation.turns.pop()
            raise
        notices = []
        if not reply.prompts:
            notices.append("the assistant wrote no generation prompt; painting your text as it is")
            reply.prompts = [" ".join(text.split())]
            if on_prompt:
                on_prompt(reply.prompts[0])
        self.conversation.add_assistant(raw, reply.prompts)
        result = self._paint(reply, progress)
        result.notices[:0] = notices
        return result

    def _ask(
        self, on_text: TextCallback | None, on_prompt: TextCallback | None, prefill: str = ""
    ) -> tuple[str, Reply]:
        messages, images = self.conversation.to_messages(self.brain.multimodal)
        parser = ReplyParser(self.brain.end_markers)
        pieces, raw_parts = [], []
        for chunk in itertools.chain(self.brain.stream(messages, images, self.sampling, prefill=prefill), [None]):
            new = parser.close() if chunk is None else parser.feed(chunk)
            raw_parts.append(chunk or "")
            for piece in new:
                if piece.kind == "text" and on_text:
                    on_text(piece.text)
                elif piece.kind == "prompt_end" and piece.text and on_prompt:
                    on_prompt(piece.text)
            pieces.extend(new)
        raw = "".join(raw_parts)
        return raw, assemble(pieces, raw=raw)

    def _paint(self, reply: Reply, progress: ProgressCallback | None) -> TurnResult:
        result = TurnResult(reply)
        if reply.empty_prompts:
            result.notices.append(f"{reply.empty_prompts} empty generation prompt(s) skipped")
        if not reply.prompts:
            return result
        if self.painter is None:
            result.notices.append("no painter is configured, so no image was painted (see --painter)")
            return result
        images: list[Image.Image] = []
        for prompt in reply.prompts:
            try:
                painting = self.painter.paint(prompt, self.paint_settings, progress)
            except LLMGAError as exc:
                result.errors.append(f"prompt {len(result.paintings) + len(result.errors) + 1}: {exc}")
                continue
            result.paintings.append(painting)
            images.extend(painting.images)
            if self.out_dir is not None:
                result.saved.extend(
                    save_png(image, self.out_dir, painting.metadata(i)) for i, image in enumerate(painting.images)
                )
        self.conversation.attach_generated(images)
        return result
