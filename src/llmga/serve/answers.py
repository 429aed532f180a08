"""What the routes answer with: errors as JSON, waiting for a turn's job, its events, and image URLs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .http_errors import BusyError, InternalError, error_body, error_of, http_status, retry_after
from .jobs import Job
from .session_records import DONE, PENDING, TurnRecord
from .studio import Studio
from .views import UrlFor


class StillRunningError(BusyError):
    """A turn took longer than a request may wait; it goes on, and its job can be followed."""


def error_response(exc: BaseException, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON answer for an exception (with Retry-After where trying again later should work)."""
    status, error_type, code = http_status(exc)
    message = str(exc) if status != 500 or isinstance(exc, InternalError) else \
        f"internal error ({type(exc).__name__}); see the server log"
    headers = dict(headers or {})
    wait = retry_after(exc)
    if wait is not None:
        headers["Retry-After"] = str(wait)
    if isinstance(exc, StillRunningError):
        status, code = 503, "still_running"
    return JSONResponse(error_body(message, error_type, code), status_code=status, headers=headers)


def url_builder(request: Request) -> UrlFor:
    """Absolute capability URLs of stored images, as this request reached the server."""
    base, studio = str(request.base_url).rstrip("/"), studio_of(request)
    return lambda session_id, digest: base + studio.image_url(session_id, digest)


def studio_of(request: Request) -> Studio:
    return request.app.state.studio


async def finished(studio: Studio, job: Job, timeout: float) -> TurnRecord:
    """Wait (without holding a thread) for the turn ``job`` runs; the done turn, or the error it ended with.

    The store says how the turn ended, wherever it ran. Routes set
    ``request.state.answer_headers`` first, so an error answer still names the turn.
    """
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    job.add_done_callback(lambda _job: loop.call_soon_threadsafe(done.set))
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except TimeoutError:
        raise StillRunningError(
            f"the turn is still running; follow it at /api/jobs/{job.id}", retry_after=5) from None
    turn = await run_in_threadpool(studio.store.get_turn, job.id)
    raise_if_failed(turn)
    return turn


def raise_if_failed(turn: TurnRecord) -> None:
    """Raise the error a turn ended with (nothing for a done turn)."""
    if turn.status == PENDING:
        raise InternalError("the turn's job ended without recording it; see the server log")
    if turn.status != DONE:
        raise error_of(turn.error_code, turn.error or turn.status)


async def events(job: Job) -> AsyncIterator[dict[str, Any]]:
    """The job's events as they come, ending with its ``end`` event."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    unsubscribe = job.subscribe(lambda event: loop.call_soon_threadsafe(queue.put_nowait, event))
    try:
        while True:
            event = await queue.get()
            yield event
            if event["type"] == "end":
                return
    finally:
        unsubscribe()


def sse(data: Any, event: str | None = None) -> str:
    """One server-sent event."""
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {payload}\n\n"
