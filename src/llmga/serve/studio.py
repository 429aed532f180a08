"""The studio: turns of many sessions, run by a job queue, kept in a session store.

A turn is submitted (checked, its uploads stored, recorded as pending, queued),
then run by a worker: the session's conversation is rebuilt from the store
(done, not undone turns, with their images), a light
:class:`~llmga.assistant.Assistant` on the worker's models runs the turn, and
the reply, prompts and painted images (PNG with their settings) are recorded
at once. The HTTP API and the web app are thin layers over this class.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ..assistant import Assistant
from ..conversation import Conversation
from ..errors import InvalidInputError, LLMGAError
from ..images import png_bytes
from ..protocol import parse_reply
from ..routing import Task
from ..settings import Limits, PaintSettings, SamplingSettings
from ..tasks import Outpaint, TurnRequest, masked_view
from .http_errors import ConflictError, JobCancelled, PayloadTooLargeError
from .jobs import CANCELLED, DONE, Job, JobQueue, ThreadJobQueue
from .store import CANCELLED as TURN_CANCELLED
from .store import DONE as TURN_DONE
from .store import FAILED, INTERRUPTED, SessionRecord, SessionStore, TurnOutcome, TurnRecord
from .uploads import Upload

log = logging.getLogger(__name__)

AssistantFactory = Callable[[], Assistant]

PAINT_FIELDS = tuple(f.name for f in dataclasses.fields(PaintSettings))
SAMPLING_FIELDS = tuple(f.name for f in dataclasses.fields(SamplingSettings))
_FILE_REF = re.compile(r"/files/([0-9a-f]{64})\.png")
_MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")


@dataclass
class TurnInput:
    """What a client sends for one turn (already decoded and checked by the API layer)."""

    text: str
    image: Upload | None = None
    mask: Upload | None = None
    control: Upload | None = None
    control_from_photo: bool = False
    outpaint: dict[str, Any] | None = None
    expand_to: tuple[int, int] | None = None
    task: str | None = None
    source_prompt: str | None = None
    refine: bool = True
    paint: dict[str, Any] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)


class Studio:
    """Sessions and turns over a store and a job queue."""

    def __init__(self, store: SessionStore, queue: JobQueue, paint: PaintSettings = PaintSettings(),
                 sampling: SamplingSettings = SamplingSettings(), limits: Limits = Limits(),
                 multimodal: bool = True) -> None:
        self.store, self.queue, self.limits = store, queue, limits
        self.paint_defaults, self.sampling_defaults = paint, sampling
        self.multimodal = multimodal
        self._turn_jobs: dict[str, str] = {}
        self._lock = threading.Lock()
        self._closing = False

    @classmethod
    def start(cls, store: SessionStore, factory: AssistantFactory, workers: int = 1, max_pending: int = 8,
              limits: Limits = Limits()) -> Studio:
        """Build one assistant per worker (models load now, so a missing one fails before serving)."""
        assistants = [factory() for _ in range(workers)]
        first = assistants[0]
        multimodal = first.brain is None or first.brain.multimodal
        return cls(store, ThreadJobQueue(assistants, max_pending), first.paint_settings, first.sampling, limits,
                   multimodal)

    def close(self) -> None:
        """Stop: queued and running turns end as ``interrupted`` (they can be sent again)."""
        self._closing = True
        self.queue.close()
        self.store.close()

    # -- sessions ---------------------------------------------------------

    def create_session(self, title: str = "") -> SessionRecord:
        return self.store.create_session(title)

    def sessions(self, limit: int = 100, offset: int = 0) -> list[SessionRecord]:
        return self.store.list_sessions(limit, offset)

    def session(self, session_id: str, include_undone: bool = False) -> tuple[SessionRecord, list[TurnRecord]]:
        return self.store.get_session(session_id), self.store.turns(session_id, include_undone)

    def undo(self, session_id: str) -> TurnRecord:
        return self.store.undo(session_id)

    def branch(self, session_id: str, turn_id: str | None = None, image: str | None = None,
               title: str | None = None) -> SessionRecord:
        return self.store.branch(session_id, turn_id, image, title)

    def job_of(self, turn_id: str) -> Job | None:
        """The job running a turn, while it is known."""
        with self._lock:
            job_id = self._turn_jobs.get(turn_id)
        return self.queue.get(job_id) if job_id else None

    def load_image(self, digest: str) -> Image.Image:
        """A stored image, decoded (shared between turns: never modify it)."""
        return _decode(str(self.store.image_path(digest)))

    # -- turns ------------------------------------------------------------

    def submit_turn(self, session_id: str, turn: TurnInput) -> tuple[TurnRecord, Job]:
        """Check, record as pending and queue a turn; raises a 4xx error (or BusyError) instead of queueing bad work."""
        paint, sampling = self.validate(turn)
        inputs = [(role, self._stored(upload)) for role, upload in
                  (("input", turn.image), ("mask", turn.mask), ("control", turn.control)) if upload is not None]
        request = {
            "task": turn.task, "refine": turn.refine, "control_from_photo": turn.control_from_photo,
            "outpaint": turn.outpaint, "expand_to": turn.expand_to, "source_prompt": turn.source_prompt,
            "paint": dataclasses.asdict(paint), "sampling": dataclasses.asdict(sampling),
        }
        record = self.store.begin_turn(session_id, turn.text, request, inputs)
        run = functools.partial(self._run, record, turn, paint, sampling)
        try:
            job = self.queue.submit(run, label=turn.text[:60], key=session_id,
                                    on_end=functools.partial(self._ended, record.id))
        except BaseException:
            self.store.discard_turn(record.id)
            raise
        with self._lock:
            self._turn_jobs[record.id] = job.id
        return record, job

    def cancel(self, job_id: str) -> Job:
        return self.queue.cancel(job_id)

    def import_history(self, session_id: str, exchanges: list[tuple[str, str]]) -> None:
        """Record earlier exchanges a client sent (OpenAI style) as done turns of ``session_id``.

        The assistant's text is parsed for generation prompts, and references
        to this server's images (``/files/<hash>.png``) become the turn's
        images, so "make it night" works on an image from an earlier reply.
        """
        for user_text, assistant_text in exchanges:
            hashes = [h for h in dict.fromkeys(_FILE_REF.findall(assistant_text)) if self.store.has_image(h)]
            raw = _MARKDOWN_IMAGE.sub("", assistant_text).strip()
            reply = parse_reply(raw)
            record = self.store.begin_turn(session_id, user_text, {"imported": True})
            outputs = [(h, reply.prompts[min(i, len(reply.prompts) - 1)] if reply.prompts else "", {})
                       for i, h in enumerate(hashes)]
            self.store.finish_turn(record.id, TurnOutcome(reply.text, raw, reply.prompts, outputs=outputs))

    def conversation(self, session_id: str, before_seq: int | None = None) -> Conversation:
        """The session's conversation as the assistant saw it: done, visible turns before ``before_seq``.

        Only the images of the newest turn that has any are decoded: the
        brain is shown the newest image alone, and follow-ups work on it.
        """
        turns = [t for t in self.store.turns(session_id)
                 if t.status == TURN_DONE and (before_seq is None or t.seq < before_seq)]
        with_images = [i for i, t in enumerate(turns) if t.images_of("output") or self._shown(t, decode=False)]
        newest = with_images[-1] if with_images else None
        conversation = Conversation()
        for index, turn in enumerate(turns):
            conversation.add_user(turn.user_text, self._shown(turn) if index == newest else [])
            conversation.add_assistant(turn.raw_reply, turn.prompts)
            outputs = turn.images_of("output")
            if outputs and index == newest:
                conversation.attach_generated([self.load_image(o.hash) for o in outputs],
                                              [o.prompt or "" for o in outputs])
        return conversation

    # -- inside a worker --------------------------------------------------

    def _run(self, record: TurnRecord, turn: TurnInput, paint: PaintSettings, sampling: SamplingSettings,
             worker: Assistant, job: Job) -> TurnRecord:
        job.check_cancelled()
        helper = Assistant(worker.brain, worker.painters, sampling=sampling, paint=paint,
                           conversation=self.conversation(record.session_id, before_seq=record.seq))
        request = TurnRequest(
            image=_image(turn.image), mask=_image(turn.mask), control=_image(turn.control),
            control_from_photo=turn.control_from_photo,
            outpaint=Outpaint(**turn.outpaint) if turn.outpaint else None,
            expand_to=turn.expand_to, task=turn.task, source_prompt=turn.source_prompt,
        )

        def on_text(text: str) -> None:
            job.check_cancelled()
            job.emit("text", text=text)

        result = helper.chat(
            turn.text, [request.image] if request.image is not None else [], on_text=on_text,
            on_prompt=lambda prompt: job.emit("prompt", prompt=prompt), progress=job.report_progress,
            request=request, on_route=lambda r: job.emit("route", task=r.task.value, reason=r.reason),
            refine=turn.refine,
        )
        job.check_cancelled()
        outputs = []
        for painting in result.paintings:
            for index, image in enumerate(painting.images):
                metadata = painting.metadata(index)
                outputs.append((self.store.put_image(png_bytes(image, metadata)), painting.prompt, metadata))
        return self.store.finish_turn(record.id, TurnOutcome(
            reply_text=result.reply.text, raw_reply=result.reply.raw, prompts=result.reply.prompts,
            task=result.route.task.value if result.route else None,
            route_reason=result.route.reason if result.route else None,
            notices=result.notices, errors=result.errors, outputs=outputs,
        ))

    def _ended(self, turn_id: str, job: Job) -> None:
        """Record a turn that did not finish (failed, cancelled, never ran); forget its job."""
        with self._lock:
            self._turn_jobs.pop(turn_id, None)
        if job.status == DONE:
            return
        error = job.error
        if self._closing:
            status, message = INTERRUPTED, "the server stopped while this turn was waiting or running; send it again"
        elif job.status == CANCELLED or isinstance(error, JobCancelled):
            status, message = TURN_CANCELLED, "cancelled"
        elif isinstance(error, LLMGAError):
            status, message = FAILED, str(error)
        else:
            status, message = FAILED, f"internal error ({type(error).__name__}); see the server log"
            log.error("turn %s failed", turn_id, exc_info=error)
        try:
            self.store.end_turn(turn_id, status, message)
        except ConflictError:  # it was recorded as finished before the failure
            pass

    # -- checks -----------------------------------------------------------

    def validate(self, turn: TurnInput) -> tuple[PaintSettings, SamplingSettings]:
        """Check a turn against the limits (a 4xx error if it fails); its paint and sampling settings."""
        settings = self._settings(turn)
        self._check(turn)
        return settings

    def _settings(self, turn: TurnInput) -> tuple[PaintSettings, SamplingSettings]:
        """The turn's settings: the defaults with the client's overrides, checked against the limits."""
        paint = _override(self.paint_defaults, turn.paint, PAINT_FIELDS, "paint")
        sampling = _override(self.sampling_defaults, turn.sampling, SAMPLING_FIELDS, "sampling")
        limits = self.limits
        if paint.steps > limits.max_steps:
            raise InvalidInputError(f"steps: {paint.steps} is over the limit of {limits.max_steps}")
        if paint.num_images > limits.max_images:
            raise InvalidInputError(f"num_images: {paint.num_images} is over the limit of {limits.max_images}")
        for name in ("width", "height"):
            value = getattr(paint, name)
            if value is not None and value > limits.max_side:
                raise InvalidInputError(f"{name}: {value} is over the limit of {limits.max_side} pixels")
        return paint, sampling

    def _check(self, turn: TurnInput) -> None:
        for name, text in (("text", turn.text), ("source_prompt", turn.source_prompt or ""),
                           ("negative_prompt", turn.paint.get("negative_prompt") or "")):
            if len(text) > self.limits.max_text_chars:
                raise PayloadTooLargeError(
                    f"{name}: {len(text)} characters is over the limit of {self.limits.max_text_chars}")
        if not turn.text.strip():
            raise InvalidInputError("text: the message is empty")
        if turn.task is not None:
            try:
                Task(turn.task)
            except ValueError:
                raise InvalidInputError(
                    f"task: unknown task {turn.task!r}; choose one of {', '.join(t.value for t in Task)}") from None
        if turn.outpaint is not None:
            try:
                Outpaint(**turn.outpaint)
            except TypeError as exc:
                raise InvalidInputError(f"outpaint: {exc}") from exc

    def _stored(self, upload: Upload) -> str:
        if upload.hash is None:
            upload.hash = self.store.put_image(png_bytes(upload.image))
        return upload.hash

    def _shown(self, turn: TurnRecord, decode: bool = True) -> list[Any]:
        """The images the brain saw with this user turn (as :class:`Assistant` chose them); hashes if not ``decode``."""
        inputs = turn.images_of("input")
        if not inputs or not self.multimodal or not turn.request.get("refine", True):
            return []
        if not decode:
            return [inputs[0].hash]
        image = self.load_image(inputs[0].hash)
        masks = turn.images_of("mask")
        if turn.task == Task.INPAINT.value and masks:
            image = masked_view(image, self.load_image(masks[0].hash))
        return [image]


def _override(defaults: Any, changes: dict[str, Any], fields: tuple[str, ...], what: str) -> Any:
    unknown = set(changes) - set(fields)
    if unknown:
        raise InvalidInputError(f"{what}: unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(fields)}")
    try:
        return dataclasses.replace(defaults, **{k: v for k, v in changes.items() if v is not None})
    except TypeError as exc:
        raise InvalidInputError(f"{what}: {exc}") from exc


def _image(upload: Upload | None) -> Image.Image | None:
    return upload.image if upload is not None else None


@functools.lru_cache(maxsize=64)
def _decode(path: str) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.convert("RGB") if image.mode != "L" else image.copy()
