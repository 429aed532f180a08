"""What the routes answer with: errors as JSON, waiting for a turn's job, its events, and image URLs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from ..errors import LLMGAError
from .http_errors import BusyError, InternalError, JobCancelled, error_body, http_status
from .jobs import Job
from .studio import Studio
from .views import UrlFor


class StillRunningError(BusyError):
    """A turn took longer than a request may wait; it goes on, and its job can be followed."""


def error_response(exc: BaseException, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON answer for an exception (Retry-After on 429/503)."""
    status, error_type, code = http_status(exc)
    message = str(exc) if status < 500 or isinstance(exc, InternalError) else \
        f"internal error ({type(exc).__name__}); see the server log"
    headers = dict(headers or {})
    if isinstance(exc, BusyError):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, StillRunningError):
        status, code = 503, "still_running"
    return JSONResponse(error_body(message, error_type, code), status_code=status, headers=headers)


def url_builder(request: Request) -> UrlFor:
    """Absolute URLs of stored images, as this request reached the server."""
    base = str(request.base_url).rstrip("/")
    return lambda digest: f"{base}/files/{digest}.png"


def studio_of(request: Request) -> Studio:
    return request.app.state.studio


async def finished(job: Job, timeout: float) -> Any:
    """Wait (without holding a thread) for ``job``; its result, or its error raised.

    Routes set ``request.state.answer_headers`` first, so an error answer
    still names the turn.
    """
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    job.add_done_callback(lambda _job: loop.call_soon_threadsafe(done.set))
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except TimeoutError:
        raise StillRunningError(
            f"the turn is still running; follow it at /api/jobs/{job.id}", retry_after=5) from None
    if isinstance(job.error, (LLMGAError, JobCancelled)):
        raise job.error
    if job.error is not None:
        raise InternalError(f"the turn failed ({type(job.error).__name__}); see the server log")
    return job.result


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
