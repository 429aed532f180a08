"""The studio: turns of many sessions, run by a job queue, kept in a session store.

A turn is submitted (checked against the limits, its uploads stored, recorded
as pending, queued: all refused at once, leaving nothing behind, when the queue
is full), then run where the models are (:mod:`llmga.serve.runner`: a studio
thread, or an ``llmga worker`` process behind a broker), which records its
outcome. The HTTP API and the web app are thin layers over this class.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInputError
from ..images import png_bytes
from ..protocol import parse_reply
from ..routing import Task
from ..settings import MAX_PAINT_SIDE, Limits, PaintSettings, SamplingSettings
from ..tasks import Outpaint
from .http_errors import ConflictError, NotFoundError, PayloadTooLargeError
from .image_urls import URL_IN_TEXT, ImageUrls
from .jobs import Job, JobQueue, ThreadJobQueue
from .runner import RunTurn, Workbench, check_work, load_image, settings_with
from .session_records import CANCELLED, INTERRUPTED, PENDING, SessionRecord, TurnOutcome, TurnRecord
from .store import SessionStore
from .uploads import Decoder, Upload

log = logging.getLogger(__name__)

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
    """Sessions and turns over a store and a job queue.

    ``paint`` and ``sampling`` are the defaults a turn's settings start from;
    ``image_url_seconds`` makes image URLs expire.
    """

    def __init__(self, store: SessionStore, queue: JobQueue, paint: PaintSettings = PaintSettings(),
                 sampling: SamplingSettings = SamplingSettings(), limits: Limits = Limits(),
                 image_url_seconds: float | None = None) -> None:
        self.store, self.queue, self.limits = store, queue, limits
        self.paint_defaults, self.sampling_defaults = paint, sampling
        self.decoder = Decoder(limits)
        self.urls = ImageUrls(store.secret("image-urls"), image_url_seconds)

    @classmethod
    def start(cls, store: SessionStore, factory: Any, workers: int = 1, max_pending: int = 8,
              limits: Limits = Limits(), image_url_seconds: float | None = None) -> Studio:
        """A studio painting in this process: one assistant per worker thread (models load now, so a
        missing one fails before serving)."""
        assistants = [factory() for _ in range(workers)]
        benches = [Workbench(assistant, store, limits) for assistant in assistants]
        first = assistants[0]
        return cls(store, ThreadJobQueue(benches, max_pending), first.paint_settings, first.sampling, limits,
                   image_url_seconds)

    def close(self) -> None:
        """Stop: the turns this process was still running or holding end as ``interrupted`` (send them again)."""
        for turn_id in self.queue.close():
            self._end(turn_id, INTERRUPTED, "the server stopped while this turn was waiting or running; send it again")
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

    def delete_session(self, session_id: str) -> int:
        """Delete a session and the images only it used (a running turn is cancelled first)."""
        for turn in self.store.turns(session_id, include_undone=True):
            if turn.status == PENDING:
                try:
                    self.cancel(turn.id)
                except NotFoundError:  # no job runs it (any more)
                    self._end(turn.id, CANCELLED, "cancelled")
        return self.store.delete_session(session_id)

    def tidy(self, days: float | None = None) -> list[str]:
        """Delete the sessions idle for more than ``days`` (if given), then the images no turn has used for an
        hour; the ids of the deleted sessions."""
        gone = self.store.expire(time.time() - days * 86400) if days else []
        self.store.recover(turns=False, grace=3600)
        return gone

    def job_of(self, turn: TurnRecord) -> Job | None:
        """The job running a pending turn, while it is known."""
        if turn.status != PENDING:
            return None
        try:
            return self.queue.get(turn.id)
        except NotFoundError:
            return None

    def load_image(self, digest: str) -> Any:
        return load_image(self.store, digest)

    def image_url(self, session_id: str, digest: str) -> str:
        """The capability URL path of an image of a session (see :mod:`llmga.serve.image_urls`)."""
        return self.urls.path(session_id, digest)

    def stored_image(self, reference: str, session_id: str | None, field: str) -> str:
        """The hash of a stored image a client refers to: by a capability URL, or by hash (or an unsigned
        URL) within its own session ``session_id``; NotFoundError otherwise, so no session reads another's."""
        opened = self.urls.opened(reference)
        if opened is None:
            raise InvalidInputError(f"{field}: give a base64 data URL, or an image URL this studio gave you "
                                    "(the studio fetches nothing from the network)")
        owner, digest = opened
        if owner is not None or (session_id is not None and self.store.session_has_image(session_id, digest)):
            return digest
        raise NotFoundError(f"{field}: no such image in this session (use the image's URL this studio gave you)")

    # -- turns ------------------------------------------------------------

    def submit_turn(self, session_id: str, turn: TurnInput) -> tuple[TurnRecord, Job]:
        """Check, record as pending and queue a turn; raises a 4xx error (or BusyError) instead of queueing bad work."""
        paint, sampling = self.validate(turn)
        self.queue.check_room()
        inputs = [(role, self._stored(upload)) for role, upload in
                  (("input", turn.image), ("mask", turn.mask), ("control", turn.control)) if upload is not None]
        request = {  # the settings the client chose: the worker's defaults fill in the rest
            "task": turn.task, "refine": turn.refine, "control_from_photo": turn.control_from_photo,
            "outpaint": turn.outpaint, "expand_to": turn.expand_to, "source_prompt": turn.source_prompt,
            "paint": {k: v for k, v in turn.paint.items() if v is not None},
            "sampling": {k: v for k, v in turn.sampling.items() if v is not None},
        }
        check_work(paint, request, self.limits, turn.image.image.size if turn.image is not None else None)
        record = self.store.begin_turn(session_id, turn.text, request, inputs)
        try:
            job = self.queue.submit(RunTurn(record.id), label=turn.text[:60], key=session_id, job_id=record.id)
        except BaseException:
            self.store.discard_turn(record.id)
            raise
        return record, job

    def cancel(self, job_id: str) -> Job:
        """Cancel a turn's job: recorded as cancelled now; a queued job never runs, a running one stops."""
        job = self.queue.get(job_id)
        self._end(job_id, CANCELLED, "cancelled")
        return self.queue.cancel(job.id)

    def import_history(self, session_id: str, exchanges: list[tuple[str, str]]) -> None:
        """Record earlier exchanges a client sent (OpenAI style) as done turns of ``session_id``, at once.

        The assistant's text is parsed for generation prompts, and this
        studio's image URLs in it become the turn's images (so "make it night"
        works on an image from an earlier reply), if their signatures hold.
        """
        self._check_history(exchanges)
        turns = []
        for user_text, assistant_text in exchanges:
            hashes = []
            for url in URL_IN_TEXT.findall(assistant_text):
                opened = self.urls.opened(url)
                if opened is not None and opened[0] is not None and self.store.has_image(opened[1]):
                    hashes.append(opened[1])
            raw = _MARKDOWN_IMAGE.sub("", assistant_text).strip()
            reply = parse_reply(raw)
            outputs = [(h, reply.prompts[min(i, len(reply.prompts) - 1)] if reply.prompts else "", {})
                       for i, h in enumerate(dict.fromkeys(hashes))]
            turns.append((user_text, TurnOutcome(reply.text, raw, reply.prompts, outputs=outputs)))
        self.store.add_done_turns(session_id, turns)

    # -- checks -----------------------------------------------------------

    def validate(self, turn: TurnInput) -> tuple[PaintSettings, SamplingSettings]:
        """Check a turn against the limits (a 4xx error if it fails); its paint and sampling settings."""
        settings = self._settings(turn)
        self._check(turn)
        return settings

    def _settings(self, turn: TurnInput) -> tuple[PaintSettings, SamplingSettings]:
        """The turn's settings: the defaults with the client's overrides, checked against the limits."""
        paint = settings_with(self.paint_defaults, turn.paint, "paint")
        sampling = settings_with(self.sampling_defaults, turn.sampling, "sampling")
        limits = self.limits
        if paint.steps > limits.max_steps:
            raise InvalidInputError(f"steps: {paint.steps} is over the limit of {limits.max_steps}")
        if paint.num_images > limits.max_images:
            raise InvalidInputError(f"num_images: {paint.num_images} is over the limit of {limits.max_images}")
        if sampling.max_new_tokens > limits.max_new_tokens:
            raise InvalidInputError(
                f"max_new_tokens: {sampling.max_new_tokens} is over the limit of {limits.max_new_tokens}")
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
        if turn.expand_to is not None and not all(8 <= side <= MAX_PAINT_SIDE for side in turn.expand_to):
            raise InvalidInputError(f"expand_to: each side must be 8 to {MAX_PAINT_SIDE} pixels, got {turn.expand_to}")

    def _check_history(self, exchanges: list[tuple[str, str]]) -> None:
        limits = self.limits
        if len(exchanges) > limits.max_history_turns:
            raise PayloadTooLargeError(
                f"messages: {len(exchanges)} earlier exchanges is over the limit of {limits.max_history_turns}; "
                "send fewer, or continue the studio's own session (session_id)")
        chars = sum(len(a) + len(b) for a, b in exchanges)
        if chars > limits.max_history_chars:
            raise PayloadTooLargeError(
                f"messages: {chars} characters of history is over the limit of {limits.max_history_chars}")

    def _stored(self, upload: Upload) -> str:
        if upload.hash is None:
            upload.hash = self.store.put_image(png_bytes(upload.image))
        return upload.hash

    def _end(self, turn_id: str, status: str, message: str) -> None:
        try:
            self.store.end_turn(turn_id, status, message)
        except (ConflictError, NotFoundError):  # it ended meanwhile, or its session was deleted
            pass
