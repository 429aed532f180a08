"""Running one turn where the models are: in a studio thread, or in an ``llmga worker`` process.

A turn's job is :class:`RunTurn` (just the turn's id, so a broker can send it
to another process) run on a :class:`Workbench`: the worker's assistant (its
models), the store and the limits. Everything the turn needs is in the store:
its text, settings and images as submitted, and the session's earlier turns
(the most recent ``limits.context_turns`` of them become the conversation the
brain sees). The outcome is recorded there too, whatever happens: done, or
failed with the error and its kind. A cancelled turn is recorded by whoever
cancels it, so a runner that is killed outright loses nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from ..conversation import Conversation
from ..errors import Cancelled, InvalidInputError, LLMGAError
from ..images import png_bytes
from ..routing import Task
from ..settings import Limits, PaintSettings
from ..tasks import Outpaint, TurnRequest, masked_view
from .http_errors import ConflictError, StoreUnavailableError, http_status
from .jobs import Job
from .session_records import DONE, FAILED, PENDING, TurnOutcome, TurnRecord
from .store import SessionStore

if TYPE_CHECKING:
    from ..assistant import Assistant, TurnResult

log = logging.getLogger(__name__)

#: a painting size left to the painter counts as this many pixels a side in the work of a turn
DEFAULT_SIDE = 1024
#: seconds a runner keeps trying to record a turn while the store is unavailable
RECORD_SECONDS = 60.0


@dataclass
class Workbench:
    """What a worker runs turns with: an assistant (its brain and painters), the store and the limits."""

    assistant: Assistant
    store: SessionStore
    limits: Limits


@dataclass(frozen=True)
class RunTurn:
    """The job of one pending turn (picklable: a broker sends it to a worker process)."""

    turn_id: str

    def __call__(self, bench: Workbench, job: Job) -> str:
        store = bench.store
        record = store.get_turn(self.turn_id)
        if record.status != PENDING:  # cancelled before it ran, or done by an earlier try
            return record.id
        if bench.limits.job_seconds:
            job.deadline = time.monotonic() + bench.limits.job_seconds
        try:
            result = _run(bench, record, job)
        except Cancelled:
            raise  # recorded by whoever cancelled it
        except LLMGAError as exc:
            patiently(_end, store, record.id, str(exc), http_status(exc)[2])
            raise
        except Exception as exc:
            log.error("turn %s failed", record.id, exc_info=exc)
            patiently(_end, store, record.id, f"internal error ({type(exc).__name__}); see the server log",
                      "internal_error")
            raise
        patiently(_record, store, record.id, result)
        return record.id


def patiently(record: Callable[..., Any], *args: Any) -> Any:
    """``record(*args)``, tried again while the store is unavailable (a restart), for up to
    :data:`RECORD_SECONDS`: a turn painted while the database restarts is not lost."""
    deadline = time.monotonic() + RECORD_SECONDS
    while True:
        try:
            return record(*args)
        except StoreUnavailableError:
            if time.monotonic() > deadline:
                raise
            log.warning("the store is unavailable; recording turn %s again in a second", args[1])
            time.sleep(1.0)


def settings_with(defaults: Any, changes: dict[str, Any], what: str) -> Any:
    """``defaults`` (paint or sampling settings) with a client's ``changes``; InvalidInputError for bad ones."""
    known = [f.name for f in dataclasses.fields(defaults)]
    unknown = set(changes) - set(known)
    if unknown:
        raise InvalidInputError(f"{what}: unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(known)}")
    try:
        return dataclasses.replace(defaults, **{k: v for k, v in changes.items() if v is not None})
    except TypeError as exc:
        raise InvalidInputError(f"{what}: {exc}") from exc


def work_of(paint: PaintSettings, request: dict[str, Any], image_size: tuple[int, int] | None = None) -> int:
    """The painting work a turn asks for: width x height x steps x images (pixel-steps).

    Growing a picture (``expand_to``) counts its target size, outpainting its
    larger canvas, an edit twice (inversion, then painting).
    """
    width, height = paint.width or DEFAULT_SIDE, paint.height or DEFAULT_SIDE
    if request.get("expand_to"):
        width, height = request["expand_to"]
    outpaint = request.get("outpaint") or {}
    if image_size is not None and any(outpaint.get(side) for side in ("left", "right", "top", "bottom")):
        width = image_size[0] + outpaint.get("left", 0) + outpaint.get("right", 0)
        height = image_size[1] + outpaint.get("top", 0) + outpaint.get("bottom", 0)
    passes = 2 if request.get("task") == Task.EDIT.value else 1
    return width * height * paint.steps * paint.num_images * passes


def check_work(paint: PaintSettings, request: dict[str, Any], limits: Limits,
               image_size: tuple[int, int] | None = None) -> None:
    """Refuse a turn that would hold a painter too long (``limits.max_work``)."""
    work = work_of(paint, request, image_size)
    if work > limits.max_work:
        raise InvalidInputError(
            f"the turn asks for {work / 1e6:.0f} million pixel-steps of painting (width x height x steps x images); "
            f"the limit is {limits.max_work / 1e6:.0f} million: fewer steps, images or pixels")


def conversation_of(store: SessionStore, record: TurnRecord, brain: object | None, context_turns: int) -> Conversation:
    """The conversation the brain sees before ``record``: the session's done, visible turns before it, the most
    recent ``context_turns`` of them.

    Only the images of the newest turn that has any are decoded: the brain is
    shown the newest image alone, and follow-ups work on it.
    """
    multimodal = brain is None or brain.multimodal
    turns = [t for t in store.turns(record.session_id) if t.status == DONE and t.seq < record.seq]
    turns = turns[-context_turns:] if context_turns > 0 else []
    with_images = [i for i, t in enumerate(turns) if t.images_of("output") or _shown(store, t, multimodal, False)]
    newest = with_images[-1] if with_images else None
    conversation = Conversation.for_brain(brain)
    for index, turn in enumerate(turns):
        conversation.add_user(turn.user_text, _shown(store, turn, multimodal) if index == newest else [])
        conversation.add_assistant(turn.raw_reply, turn.prompts)
        outputs = turn.images_of("output")
        if outputs and index == newest:
            conversation.attach_generated([load_image(store, o.hash) for o in outputs],
                                          [o.prompt or "" for o in outputs])
    return conversation


def load_image(store: SessionStore, digest: str) -> Image.Image:
    """A stored image, decoded (shared between turns: never modify it)."""
    return _decode(str(store.image_path(digest)))


def _run(bench: Workbench, record: TurnRecord, job: Job) -> TurnResult:
    from ..assistant import Assistant  # the models' code (torch): only where turns run

    job.check_cancelled()
    store, limits, worker = bench.store, bench.limits, bench.assistant
    request = record.request
    paint = settings_with(worker.paint_settings, request.get("paint", {}), "paint")
    sampling = settings_with(worker.sampling, request.get("sampling", {}), "sampling")
    image = _input(store, record, "input")
    check_work(paint, request, limits, image.size if image is not None else None)
    helper = Assistant(worker.brain, worker.painters, sampling=sampling, paint=paint,
                       conversation=conversation_of(store, record, worker.brain, limits.context_turns),
                       brain_seconds=limits.brain_seconds or None, stop=job.stop)
    turn = TurnRequest(
        image=image, mask=_input(store, record, "mask"), control=_input(store, record, "control"),
        control_from_photo=request.get("control_from_photo", False),
        outpaint=Outpaint(**request["outpaint"]) if request.get("outpaint") else None,
        expand_to=tuple(request["expand_to"]) if request.get("expand_to") else None,
        task=request.get("task"), source_prompt=request.get("source_prompt"),
    )

    def on_text(text: str) -> None:
        job.check_cancelled()
        job.emit("text", text=text)

    result = helper.chat(
        record.user_text, [image] if image is not None else [], on_text=on_text,
        on_prompt=lambda prompt: job.emit("prompt", prompt=prompt), progress=job.report_progress, request=turn,
        on_route=lambda r: job.emit("route", task=r.task.value, reason=r.reason), refine=request.get("refine", True),
    )
    job.check_cancelled()
    return result


def _record(store: SessionStore, turn_id: str, result: TurnResult) -> None:
    """Store the painted images (PNG with their settings), then the outcome, at once."""
    outputs = []
    for painting in result.paintings:
        for index, picture in enumerate(painting.images):
            metadata = painting.metadata(index)
            outputs.append((store.put_image(png_bytes(picture, metadata)), painting.prompt, metadata))
    store.finish_turn(turn_id, TurnOutcome(
        reply_text=result.reply.text, raw_reply=result.reply.raw, prompts=result.reply.prompts,
        task=result.route.task.value if result.route else None,
        route_reason=result.route.reason if result.route else None,
        notices=result.notices, errors=result.errors, outputs=outputs,
    ))


def _input(store: SessionStore, record: TurnRecord, role: str) -> Image.Image | None:
    refs = record.images_of(role)
    return load_image(store, refs[0].hash) if refs else None


def _shown(store: SessionStore, turn: TurnRecord, multimodal: bool, decode: bool = True) -> list[Any]:
    """The images the brain saw with this user turn (as :class:`Assistant` chose them); hashes if not ``decode``."""
    inputs = turn.images_of("input")
    if not inputs or not multimodal or not turn.request.get("refine", True):
        return []
    if not decode:
        return [inputs[0].hash]
    image = load_image(store, inputs[0].hash)
    masks = turn.images_of("mask")
    if turn.task == Task.INPAINT.value and masks:
        image = masked_view(image, load_image(store, masks[0].hash))
    return [image]


def _end(store: SessionStore, turn_id: str, message: str, code: str) -> None:
    try:
        store.end_turn(turn_id, FAILED, message, code)
    except ConflictError:  # cancelled meanwhile: that is what it is
        pass


@functools.lru_cache(maxsize=4)  # decoded images are large: a few, for the sessions at hand
def _decode(path: str) -> Image.Image:
    with Image.open(path, formats=["PNG"]) as image:
        image.load()
        return image.convert("RGB") if image.mode != "L" else image.copy()
