"""One turn of the assistant loop: conversation → brain → protocol → painter.

:class:`Assistant` is the Python API behind ``llmga chat`` and the one-shot
commands. It owns a :class:`~llmga.conversation.Conversation`; the brain only
sees messages, the painters only see a task, its inputs and a prompt (which
they read their own way: :meth:`~llmga.painter.suite.PainterSuite.read`). Each
turn is routed to a task (:mod:`llmga.routing`) from what the user gave and
said; the route is part of the result and can be overridden.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from . import registry
from .brain.base import Brain, BrainRequest, keeps_scripts, stream_within
from .conversation import Conversation, check_message
from .retry import RETRIES, allowed_scripts, ask_again, ask_again_in_scripts, edit_kept, followed_text, foreign_scripts, unchanged
from .errors import BrainError, InvalidInputError, LLMGAError
from .images import save_png
from .painter.suite import PainterSuite
from .painter.text_to_image import Painting, ProgressCallback, TextToImagePainter
from .protocol import OPEN_TAG, Reply, ReplyParser, assemble, parse_reply, tag_prompt
from .routing import Route, Task, route, settle
from .settings import PaintSettings, SamplingSettings
from .tasks import TurnRequest, masked_view, paint_prompt

TextCallback = Callable[[str], None]

REFINE_REQUEST = "Generate an image: {text}"
DESCRIBE_REQUEST = "Describe this image in detail."
LOCAL_CAPTION_REQUEST = (
    "We are growing a picture step by step. The whole picture shows: {caption}. "
    "Write the prompt for part {step} of {total}, continuing what is already there."
)


@dataclass
class TurnResult:
    """What one turn produced: the parsed reply, the paintings and saved files, and notices.

    ``notices`` are things the user should know that are not failures (an empty
    prompt was skipped, no painter is configured); ``errors`` are failures of
    single prompts (the turn itself still counts).
    """

    reply: Reply
    route: Route | None = None
    paintings: list[Painting] = field(default_factory=list)
    saved: list[Path] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Assistant:
    """Chats with the user and paints the generation prompts the brain writes, task by task.

    ``brain_seconds`` bounds each reply of the brain (:class:`~llmga.errors.BrainTimeoutError`
    beyond); setting ``stop`` leaves a reply at once (:class:`~llmga.errors.Cancelled`).
    """

    def __init__(
        self,
        brain: Brain | None,
        painter: TextToImagePainter | PainterSuite | None = None,
        sampling: SamplingSettings = SamplingSettings(),
        paint: PaintSettings = PaintSettings(),
        out_dir: str | Path | None = None,
        conversation: Conversation | None = None,
        brain_seconds: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.brain = brain
        self.painters = painter if isinstance(painter, PainterSuite) else PainterSuite(text_to_image=painter)
        self.sampling = sampling
        self.paint_settings = paint
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.conversation = conversation or Conversation.for_brain(brain)
        self.brain_seconds, self.stop = brain_seconds, stop

    @property
    def painter(self) -> TextToImagePainter | None:
        """The text-to-image painter."""
        return self.painters.text_to_image

    def chat(
        self,
        text: str,
        images: Sequence[Image.Image] = (),
        on_text: TextCallback | None = None,
        on_prompt: TextCallback | None = None,
        progress: ProgressCallback | None = None,
        request: TurnRequest | None = None,
        on_route: Callable[[Route], None] | None = None,
        refine: bool = True,
    ) -> TurnResult:
        """Send the user's ``text`` (and images); stream the reply; paint its prompts as the routed task.

        ``request`` carries a mask, control map, outpainting size or task
        override; its image defaults to the first of ``images``. ``on_text``
        receives the visible reply as it streams, ``on_prompt`` each prompt that
        will be painted once the reply is settled (an unchanged edit asked again
        reports only the kept reply's), ``on_route`` the chosen task once it is known.
        The task is the user's (``request.task``), else the one the reply's tag
        names (``<gen_img task="edit">``) where the turn has what it needs, else
        the rules' (:mod:`llmga.routing`). With ``refine=False`` the brain is
        skipped and ``text`` itself is the prompt. If the brain fails, the
        user's turn is taken back out of the conversation, so it can be sent again.
        An empty message is refused (:class:`~llmga.errors.InvalidInputError`).
        """
        check_message(text)
        request = request or TurnRequest()
        if request.image is None and images:
            request.image = images[0]
        inputs = request.inputs(self.conversation.last_image is not None)
        chosen = route(text, inputs, request.task)
        if not refine:
            if on_route:
                on_route(chosen)
            return self._paint_as_is(text, chosen, request, self._target(chosen, request), on_prompt, progress)
        shown, notices = self._images_for_brain(chosen.task, images, request)
        if request.image is not None and request.source_prompt and not shown:
            self._recall_upload(request.image, request.source_prompt)
        said = followed_text(self.conversation.system_prompt, text)
        masked = keeps_scripts(self.brain)
        raw, reply = self._ask(text, shown, on_text, None, scripts=allowed_scripts(said) if masked else None)
        if foreign_scripts(reply, said):
            raw, reply, notice = self._ask_again(
                raw, reply, "used letters of a script your message does not use", "it is kept as it is",
                lambda ask: ask_again_in_scripts(ask, said, self.sampling, self.brain.end_markers,
                                                 masks=masked, masked_first=masked))
            notices.append(notice)
        if request.task is None and reply.prompts:
            chosen, notice = settle(text, inputs, chosen, reply.stated_task)
            notices += [notice] if notice else []
        target = self._target(chosen, request)
        target_prompt = self.conversation.prompt_of(target)
        if chosen.task is Task.EDIT and unchanged(reply, target_prompt, self.painters.read):
            seen = {p for turn in self.conversation.turns for p in turn.prompts} | {target_prompt}
            raw, reply, notice = self._ask_again(
                raw, reply, "gave the picture back unchanged", "the picture comes back unchanged: say what to change",
                lambda ask: ask_again(ask, edit_kept(reply, seen, self.painters.read), self.sampling,
                                      self.brain.end_markers))
            notices.append(notice)
        for prompt in reply.prompts if on_prompt else ():
            on_prompt(prompt)
        self.conversation.add_assistant(raw, reply.prompts)
        if on_route and _runs(reply, chosen):
            on_route(chosen)
        result = self._paint(reply, chosen, request, target, progress)
        result.notices[:0] = notices + reply.notices
        return result

    def _ask_again(self, raw: str, first: Reply, fault: str, outcome: str,
                   again: Callable[[Callable[..., str]], tuple[int, str, Reply] | None]) -> tuple[str, Reply, str]:
        """This turn asked again: ``again`` (:mod:`llmga.retry`) asks through the function it is given until a
        reply is kept; the reply kept and a notice saying what happened. ``fault`` is what was wrong with the
        first reply, ``outcome`` what follows when no try is kept."""
        messages, images = self.conversation.to_messages(self.brain.multimodal)

        def ask(sampling: SamplingSettings, scripts: frozenset[str] | None) -> str:
            return "".join(self._brain_stream(BrainRequest(messages, images, sampling, scripts=scripts)))

        try:
            found = again(ask)
        except BrainError as error:
            return raw, first, f"the first reply {fault}; asking again failed ({error}), so {outcome}"
        except BaseException:
            self.conversation.turns.pop()
            raise
        if found is None:
            return raw, first, f"the first reply {fault} (asked {RETRIES} more times), so {outcome}"
        attempt, raw, reply = found
        return raw, reply, f"the first reply {fault}; asked again, try {attempt} wrote: {reply.text}"

    def _target(self, chosen: Route, request: TurnRequest) -> Image.Image | None:
        """The picture the task works on: the one given, or the conversation's last for a follow-up."""
        if request.image is not None:
            return request.image
        return self.conversation.last_image if chosen.uses_last_image else None

    def generate(
        self,
        text: str,
        refine: bool = True,
        on_text: TextCallback | None = None,
        on_prompt: TextCallback | None = None,
        progress: ProgressCallback | None = None,
    ) -> TurnResult:
        """One shot: the brain turns ``text`` into a detailed prompt, then it is painted.

        With ``refine=False`` the text is painted as it is. A brain trained under
        a system prompt of its own (the world assistants) decides as in chat: what
        it will not paint (a greeting, a thing it cannot draw) it answers in words,
        and nothing is painted. Any other brain's reply is started inside a
        generation tag, so it always writes a prompt; if a brain still writes
        none, the user's text is painted and a notice says so.
        """
        check_message(text)
        chosen = Route(Task.GENERATE, "a one-shot generation")
        if not refine:
            return self._paint_as_is(text, chosen, TurnRequest(), None, on_prompt, progress)
        if getattr(self.brain, "system_prompt", None):
            return self.chat(text, on_text=on_text, on_prompt=on_prompt, progress=progress,
                             request=TurnRequest(task=Task.GENERATE.value))
        raw, reply = self._ask(REFINE_REQUEST.format(text=text), [], on_text, on_prompt, prefill=OPEN_TAG)
        notices = []
        if not reply.prompts:
            notices.append("the assistant wrote no generation prompt; painting your text as it is")
            reply.prompts = [" ".join(text.split())]
            if on_prompt:
                on_prompt(reply.prompts[0])
        self.conversation.add_assistant(raw, reply.prompts)
        result = self._paint(reply, chosen, TurnRequest(), None, progress)
        result.notices[:0] = notices
        return result

    def _paint_as_is(
        self, text: str, chosen: Route, request: TurnRequest, target: Image.Image | None,
        on_prompt: TextCallback | None, progress: ProgressCallback | None,
    ) -> TurnResult:
        """Paint the user's text itself as the prompt (no brain)."""
        reply = Reply(text="", prompts=[" ".join(text.split())], raw=text)
        if on_prompt:
            on_prompt(reply.prompts[0])
        self.conversation.add_user(text)
        self.conversation.add_assistant(reply.raw, reply.prompts)
        return self._paint(reply, chosen, request, target, progress)

    def _images_for_brain(
        self, task: Task, images: Sequence[Image.Image], request: TurnRequest
    ) -> tuple[list[Image.Image], list[str]]:
        """What the brain is shown: the masked view for inpainting (as in the paper), else the images.

        A text-only brain cannot see images: for a question about an image that
        is an error (raised by the conversation); for a painting task the image
        goes to the painter only, and a notice says the brain wrote from the words.
        """
        shown = list(images)
        if task is Task.INPAINT and request.image is not None and shown:
            shown[0] = masked_view(request.image, request.mask)
        if shown and self.brain is not None and not self.brain.multimodal and task is not Task.ANSWER:
            return [], ["the brain is text-only: it did not see the image, only your words"]
        return shown, []

    def _ask(
        self, text: str, images: list[Image.Image], on_text: TextCallback | None, on_prompt: TextCallback | None,
        prefill: str = "", scripts: frozenset[str] | None = None,
    ) -> tuple[str, Reply]:
        """Add the user's turn and stream the brain's reply (kept to ``scripts`` where set); on any failure the
        turn is taken back."""
        self.conversation.add_user(text, images)
        try:
            return self._stream_reply(on_text, on_prompt, prefill, scripts)
        except BaseException:
            self.conversation.turns.pop()
            raise

    def _stream_reply(
        self, on_text: TextCallback | None, on_prompt: TextCallback | None, prefill: str,
        scripts: frozenset[str] | None = None,
    ) -> tuple[str, Reply]:
        if self.brain is None:
            raise InvalidInputError("no brain is configured; give one with --brain")
        messages, images = self.conversation.to_messages(self.brain.multimodal)
        parser = ReplyParser(self.brain.end_markers)
        pieces, raw_parts = [], []
        reply = self._brain_stream(BrainRequest(messages, images, self.sampling, prefill=prefill, scripts=scripts))
        for chunk in itertools.chain(reply, [None]):
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

    def _paint(
        self, reply: Reply, chosen: Route, request: TurnRequest, target: Image.Image | None,
        progress: ProgressCallback | None,
    ) -> TurnResult:
        result = TurnResult(reply, route=chosen if _runs(reply, chosen) else None)
        if reply.empty_prompts:
            result.notices.append(f"{reply.empty_prompts} empty generation prompt(s) skipped")
        if not reply.prompts:
            return result
        if not self.painters.has_painter:
            result.notices.append("no painter is configured, so no image was painted (see --painter)")
            return result
        images: list[Image.Image] = []
        for prompt in reply.prompts:
            try:
                painting = paint_prompt(
                    self.painters, chosen.task, prompt, request, target, self.paint_settings, progress,
                    source_prompt=lambda: self._source_prompt(target, request),
                    local_caption=self._local_caption,
                )
            except LLMGAError as exc:
                result.errors.append(f"prompt {len(result.paintings) + len(result.errors) + 1}: {exc}")
                continue
            result.paintings.append(painting)
            images.extend(painting.images)
            if self.out_dir is not None:
                result.saved.extend(
                    save_png(image, self.out_dir, painting.metadata(i)) for i, image in enumerate(painting.images)
                )
        result.notices.extend(self.painters.notices)
        self.painters.notices.clear()
        self.conversation.attach_generated(images, [p.prompt for p in result.paintings for _ in p.images])
        return result

    def _recall_upload(self, image: Image.Image, description: str) -> None:
        """Tell a brain that cannot see ``image`` what it shows, in the form it knows a picture by: an earlier
        exchange whose reply painted ``description``. A follow-up edit then starts from it, not from scratch."""
        if self.conversation.prompt_of(image) is not None:
            return
        self.conversation.add_user(description)
        self.conversation.add_assistant(tag_prompt(description, Task.GENERATE.value), [description])
        self.conversation.attach_generated([image], [description])

    def _source_prompt(self, image: Image.Image, request: TurnRequest) -> str:
        """The description of the image being edited: given, remembered, or asked of the brain."""
        known = request.source_prompt or self.conversation.prompt_of(image)
        if known:
            return known
        if self.brain is None or not self.brain.multimodal:
            raise InvalidInputError(
                "editing an uploaded image needs its description: use a multimodal brain, "
                "or give the description (--source-prompt)"
            )
        reply = self._side_question(DESCRIBE_REQUEST, image)
        description = reply.prompts[0] if reply.prompts else reply.text
        if not description:
            raise InvalidInputError("the assistant could not describe the image to edit; give --source-prompt")
        return description

    def _local_caption(self, image: Image.Image | None, caption: str, step: int, total: int) -> str:
        """The next part's caption when growing an image, written by the brain (the global caption if none)."""
        if self.brain is None:
            return caption
        request = LOCAL_CAPTION_REQUEST.format(caption=caption, step=step, total=total)
        prompts = self._side_question(request, image, prefill=OPEN_TAG).prompts
        return prompts[0] if prompts else caption

    def _side_question(self, text: str, image: Image.Image | None = None, prefill: str = "") -> Reply:
        """Ask the brain something outside the conversation (it sees the image if it can)."""
        side = Conversation(self.conversation.system_prompt)
        side.add_user(text, [image] if image is not None and self.brain.multimodal else [])
        messages, images = side.to_messages(self.brain.multimodal)
        raw = "".join(self._brain_stream(BrainRequest(messages, images, self.sampling, prefill=prefill)))
        return parse_reply(raw, self.brain.end_markers)

    def _brain_stream(self, request: BrainRequest):
        """The brain's reply to ``request``, sampled for its conversation, its prompts kept to the form a world
        assistant writes (:func:`llmga.registry.prompt_form`)."""
        sampling = request.settings.for_conversation(request.messages, request.prefill)
        form = registry.prompt_form(self.conversation.system_prompt)
        return stream_within(self.brain, replace(request, settings=sampling, prompt_form=form), self.brain_seconds,
                             self.stop)


def _runs(reply: Reply, chosen: Route) -> bool:
    """Whether the turn runs its task: a reply in words alone paints nothing (unless it answers about a picture)."""
    return bool(reply.prompts) or chosen.task == Task.ANSWER
