"""Session endpoints: list, open, create, rename and delete sessions; send turns; undo; branch; follow and
cancel jobs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from .answers import events, finished, sse, studio_of, url_builder
from .bodies import BranchBody, SessionBody, TurnBody, turn_input
from .views import session_view, turn_view

router = APIRouter(prefix="/api", tags=["sessions"])


@router.get("/sessions")
def list_sessions(request: Request, limit: int = Query(100, ge=1, le=1000),
                  offset: int = Query(0, ge=0, le=10**9)) -> dict[str, Any]:
    """Sessions, most recently active first."""
    return {"sessions": [session_view(s) for s in studio_of(request).sessions(limit, offset)]}


@router.post("/sessions", status_code=201)
def create_session(request: Request, body: SessionBody = SessionBody()) -> dict[str, Any]:
    return session_view(studio_of(request).create_session(body.title))


@router.get("/sessions/{session_id}")
def get_session(session_id: str, request: Request, include_undone: bool = False) -> dict[str, Any]:
    """A session with its turns (and the progress of a running one)."""
    studio = studio_of(request)
    session, turns = studio.session(session_id, include_undone)
    url_for = url_builder(request)
    return {"session": session_view(session),
            "turns": [turn_view(t, url_for, studio.job_of(t)) for t in turns]}


@router.patch("/sessions/{session_id}")
def rename_session(session_id: str, body: SessionBody, request: Request) -> dict[str, Any]:
    return session_view(studio_of(request).store.rename_session(session_id, body.title))


@router.delete("/sessions/{session_id}")
def delete_session(session_id: str, request: Request) -> dict[str, Any]:
    """Delete a session, its turns and the images no other session uses (a running turn is cancelled)."""
    return {"deleted": session_id, "images_deleted": studio_of(request).delete_session(session_id)}


@router.post("/sessions/{session_id}/turns", status_code=202)
async def send_turn(session_id: str, body: TurnBody, request: Request):
    """Send a message (with an image, mask, task, settings); 202 with the job to follow, or 200 when ``wait``."""
    studio = studio_of(request)
    record, job = await run_in_threadpool(
        lambda: studio.submit_turn(session_id, turn_input(studio, body.text, body.image, body, session_id=session_id)))
    url_for = url_builder(request)
    if body.wait:
        request.state.answer_headers = {"X-LLMGA-Turn": record.id, "X-LLMGA-Job": job.id}
        return JSONResponse({"turn": turn_view(await finished(studio, job, studio.limits.wait_seconds), url_for)})
    return JSONResponse({"turn": turn_view(record, url_for), "job": job.snapshot()}, status_code=202)


@router.post("/sessions/{session_id}/undo")
def undo(session_id: str, request: Request) -> dict[str, Any]:
    """Take back the session's last turn (it is hidden, not deleted: ``include_undone`` shows it)."""
    return {"undone": turn_view(studio_of(request).undo(session_id), url_builder(request))}


@router.post("/sessions/{session_id}/branch", status_code=201)
def branch(session_id: str, body: BranchBody, request: Request) -> dict[str, Any]:
    """A new session continuing from an earlier turn or image of this one."""
    studio = studio_of(request)
    image = studio.stored_image(body.image, session_id, "image") if body.image is not None else None
    return session_view(studio.branch(session_id, body.turn_id, image, body.title))


@router.get("/turns/{turn_id}")
def get_turn(turn_id: str, request: Request) -> dict[str, Any]:
    studio = studio_of(request)
    turn = studio.store.get_turn(turn_id)
    return turn_view(turn, url_builder(request), studio.job_of(turn))


@router.get("/jobs/{job_id}")
def get_job(job_id: str, request: Request) -> dict[str, Any]:
    """A job's status and progress (step of total)."""
    return studio_of(request).queue.get(job_id).snapshot()


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: str, request: Request) -> dict[str, Any]:
    """Cancel a job: a queued one never runs, a running one stops at its next step."""
    return studio_of(request).cancel(job_id).snapshot()


@router.get("/jobs/{job_id}/events")
async def job_events(job_id: str, request: Request) -> StreamingResponse:
    """The job's events as server-sent events: route, text, prompt, progress, then end."""
    job = studio_of(request).queue.get(job_id)

    async def stream():
        async for event in events(job):
            yield sse(event, event["type"])

    return StreamingResponse(stream(), media_type="text/event-stream")
