"""Records as JSON for clients: sessions, turns, images (with URLs), jobs, and the OpenAI reply text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..protocol import tag_prompt
from .jobs import Job
from .session_records import ImageRef, SessionRecord, TurnRecord

#: (session id, image hash) -> the image's URL
UrlFor = Callable[[str, str], str]


def image_view(ref: ImageRef, session_id: str, url_for: UrlFor) -> dict[str, Any]:
    view = {"hash": ref.hash, "url": url_for(session_id, ref.hash), "role": ref.role, "width": ref.width,
            "height": ref.height}
    if ref.role == "output":
        view.update(prompt=ref.prompt, metadata=ref.metadata or {})
    return view


def turn_view(turn: TurnRecord, url_for: UrlFor, job: Job | None = None) -> dict[str, Any]:
    """A turn with its images; the running job's id and progress while it runs."""
    view = {
        "id": turn.id, "session_id": turn.session_id, "seq": turn.seq, "status": turn.status,
        "user_text": turn.user_text, "reply": turn.reply_text, "prompts": turn.prompts,
        "task": turn.task, "route_reason": turn.route_reason, "notices": turn.notices, "errors": turn.errors,
        "error": turn.error, "error_code": turn.error_code, "request": turn.request, "created": turn.created,
        "finished": turn.finished, "undone": turn.undone,
        "images": [image_view(ref, turn.session_id, url_for) for ref in turn.images],
    }
    if job is not None:
        view["job"] = job.snapshot()
    return view


def session_view(session: SessionRecord) -> dict[str, Any]:
    return {"id": session.id, "title": session.title, "created": session.created, "updated": session.updated,
            "parent_session": session.parent_session, "parent_turn": session.parent_turn, "turns": session.turns}


def reply_content(turn: TurnRecord, url_for: UrlFor) -> str:
    """The assistant's message for OpenAI clients: the reply, each prompt in its tag and each image as Markdown.

    Tagged prompts keep the assistant's own format, so when a client sends this
    message back as history the prompts and images are recognised again.
    """
    parts = [turn.reply_text] if turn.reply_text else []
    outputs = turn.images_of("output")
    for prompt in turn.prompts:
        parts.append(tag_prompt(prompt))
        parts.extend(f"![{_alt(prompt)}]({url_for(turn.session_id, r.hash)})" for r in outputs if r.prompt == prompt)
        outputs = [r for r in outputs if r.prompt != prompt]
    parts.extend(f"({notice})" for notice in turn.notices)
    parts.extend(f"(error: {error})" for error in turn.errors)
    return "\n\n".join(parts)


def _alt(prompt: str) -> str:
    text = " ".join(prompt.replace("[", "(").replace("]", ")").split())
    return text[:80] + ("…" if len(text) > 80 else "")
