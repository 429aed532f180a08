"""OpenAI-compatible endpoints, so existing clients and SDKs work unchanged.

- ``POST /v1/chat/completions``: text and ``image_url`` (data URL) parts in;
  the reply with each generation prompt in its tag and each image as a
  Markdown link out (``stream: true`` sends the reply as it is written).
  Without ``session_id`` the earlier messages become a new session's history
  (images of this server that they link to included); with it, the server's
  history is used and only the last message is read.
- ``POST /v1/images/generations``: the prompt painted as it is (``llmga:
  {"refine": true}`` lets the assistant rewrite it first).
- ``POST /v1/images/edits``: multipart ``image`` and optional ``mask``
  (transparent = repaint, as OpenAI; or white = repaint without
  transparency): inpainting with a mask, instruction editing without.
- ``GET /v1/models``.

Every answer carries an ``llmga`` field (session, turn, images) that OpenAI
clients ignore, and the ``X-LLMGA-Session`` header.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ..errors import InvalidInputError, ModelNotFoundError
from ..settings import MAX_SEED
from .answers import error_response, events, finished, raise_if_failed, sse, studio_of, url_builder
from .bodies import Text, TurnOptions, turn_input
from .http_errors import PayloadTooLargeError, UnsupportedMediaError
from .jobs import Job
from .session_records import TurnRecord
from .studio import Studio, TurnInput
from .uploads import parse_size
from .views import UrlFor, reply_content, turn_view

router = APIRouter(prefix="/v1", tags=["openai"])


class ImageURL(BaseModel):
    url: str
    detail: str | None = None


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "image_url", "input_text", "input_image"]
    text: Text | None = None
    image_url: ImageURL | str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Text | list[ContentPart] | None = None


class ChatRequest(BaseModel):
    """An OpenAI chat request; sampling fields map to the brain, ``llmga`` carries the painting options."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    n: int = Field(1, ge=1)
    temperature: float | None = Field(None, ge=0, le=5)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    session_id: str | None = Field(None, max_length=64)
    llmga: TurnOptions = TurnOptions()


class ImageRequest(BaseModel):
    """An OpenAI image generation request; ``llmga`` carries the other painting options."""

    model_config = ConfigDict(extra="ignore")
    prompt: Text
    model: str | None = None
    n: int = Field(1, ge=1)
    size: str | None = Field(None, max_length=40)
    response_format: Literal["url", "b64_json"] = "url"
    session_id: str | None = Field(None, max_length=64)
    llmga: TurnOptions = TurnOptions()


@router.get("/models")
def models(request: Request) -> dict[str, Any]:
    """The one model this server offers (any model name is accepted in requests)."""
    name = request.app.state.config.model_name
    return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "llmga"}]}


@router.post("/chat/completions")
async def chat_completions(body: ChatRequest, request: Request):
    """Chat with the assistant; it answers, writes generation prompts and paints them."""
    studio = studio_of(request)
    if body.n != 1:
        raise InvalidInputError("n: only one choice per request is supported")
    history, text, images = _split_messages(body.messages)
    sampling = {"temperature": body.temperature, "top_p": body.top_p, "seed": body.seed,
                "max_new_tokens": body.max_completion_tokens or body.max_tokens}
    options = body.llmga.model_copy(update={"sampling": body.llmga.sampling.model_copy(
        update={k: v for k, v in sampling.items() if v is not None})})

    def submit() -> tuple[TurnRecord, Job]:
        turn = turn_input(studio, text, images[0] if images else None, options, session_id=body.session_id)
        return _submit(studio, body.session_id, turn, history)

    record, job = await run_in_threadpool(submit)
    url_for = url_builder(request)
    headers = request.state.answer_headers = _headers(record, job)
    base = {"id": f"chatcmpl-{record.id}", "created": int(record.created), "model": body.model or "llmga"}
    if body.stream:
        return StreamingResponse(_stream(studio, job, record, base, url_for), media_type="text/event-stream",
                                 headers=headers)
    done = await finished(studio, job, studio.limits.wait_seconds)
    message = {"role": "assistant", "content": reply_content(done, url_for)}
    return _json({**base, "object": "chat.completion",
                  "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                  "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                  "llmga": {"session_id": done.session_id, "turn": turn_view(done, url_for)}}, headers)


@router.post("/images/generations")
async def images_generations(body: ImageRequest, request: Request):
    """Paint a prompt (as it is, unless ``llmga.refine`` is true)."""
    studio = studio_of(request)
    paint = _size_and_count(body.size, body.n)

    def submit() -> tuple[TurnRecord, Job]:
        options = body.llmga.model_copy(update={"task": body.llmga.task or "generate"})
        turn = turn_input(studio, body.prompt, None, options, False, session_id=body.session_id, paint=paint)
        return _submit(studio, body.session_id, turn)

    record, job = await run_in_threadpool(submit)
    return await _images_answer(studio, job, request, body.response_format, _headers(record, job))


@router.post("/images/edits")
async def images_edits(
    request: Request,
    image: UploadFile = File(..., description="The image to edit (PNG, JPEG, WebP or GIF)."),
    prompt: Text = Form(...),
    mask: UploadFile | None = File(None, description="Transparent (or white) where the image should change."),
    n: int = Form(1, ge=1),
    size: str | None = Form(None, max_length=40),
    response_format: Literal["url", "b64_json"] = Form("url"),
    model: str | None = Form(None),
    session_id: str | None = Form(None, max_length=64),
    source_prompt: Text | None = Form(None, description="llmga: a description of the image, for editing"),
    refine: bool = Form(False, description="llmga: let the assistant rewrite the prompt first"),
    seed: int | None = Form(None, ge=0, le=MAX_SEED),
    steps: int | None = Form(None, ge=1),
    guidance: float | None = Form(None, ge=0, le=100),
    negative_prompt: Text | None = Form(None),
):
    """Inpaint the masked part of an image, or edit the whole image by the prompt when there is no mask."""
    studio = studio_of(request)
    limits = studio.limits
    picture = await _read_upload(image, "image", limits.max_image_bytes)
    drawn = await _read_upload(mask, "mask", limits.max_image_bytes) if mask is not None else None
    paint = {**_size_and_count(size, n),
             **{k: v for k, v in (("seed", seed), ("steps", steps), ("guidance", guidance),
                                  ("negative_prompt", negative_prompt)) if v is not None}}

    def submit() -> tuple[TurnRecord, Job]:
        main = studio.decoder.image(picture, "image")
        checked = studio.decoder.mask(drawn, main, transparent_means_edit=True) if drawn is not None else None
        turn = TurnInput(prompt, image=main, mask=checked, task="inpaint" if checked else "edit",
                         source_prompt=source_prompt, refine=refine, paint=paint)
        return _submit(studio, session_id, turn)

    record, job = await run_in_threadpool(submit)
    return await _images_answer(studio, job, request, response_format, _headers(record, job))


# -- helpers --------------------------------------------------------------


def _submit(studio: Studio, session_id: str | None, turn: TurnInput,
            history: list[tuple[str, str]] = ()) -> tuple[TurnRecord, Job]:
    """Submit to the given session, or to a new one holding the client's earlier messages.

    A request refused on the way (a bad turn, a full queue) leaves no session behind.
    """
    if session_id is not None:
        return studio.submit_turn(session_id, turn)
    studio.validate(turn)  # before a session is made for it
    studio.queue.check_room()
    created = studio.create_session().id
    try:
        studio.import_history(created, list(history))
        return studio.submit_turn(created, turn)
    except BaseException:
        studio.delete_session(created)
        raise


def _split_messages(messages: list[ChatMessage]) -> tuple[list[tuple[str, str]], str, list[str]]:
    """(earlier user/assistant exchanges, the last user message's text, its image references)."""
    talk = [m for m in messages if m.role in ("user", "assistant")]
    if not talk or talk[-1].role != "user":
        raise InvalidInputError("messages: the last message must be the user's")
    history, pending = [], None
    for message in talk[:-1]:
        text, _ = _parts(message)
        if message.role == "user":
            pending = text
        else:
            history.append((pending or "", text))
            pending = None
    text, images = _parts(talk[-1])
    if len(images) > 1:
        raise InvalidInputError("messages: send at most one image with a message")
    return history, text, images


def _parts(message: ChatMessage) -> tuple[str, list[str]]:
    if message.content is None or isinstance(message.content, str):
        return message.content or "", []
    texts, images = [], []
    for part in message.content:
        if part.type in ("text", "input_text"):
            texts.append(part.text or "")
        elif part.image_url is not None:
            images.append(part.image_url if isinstance(part.image_url, str) else part.image_url.url)
    return "\n".join(texts), images


def _size_and_count(size: str | None, n: int) -> dict[str, Any]:
    paint: dict[str, Any] = {"num_images": n}
    dims = parse_size(size)
    if dims is not None:
        paint.update(width=dims[0], height=dims[1])
    return paint


async def _read_upload(upload: UploadFile, field: str, limit: int) -> bytes:
    kind = (upload.content_type or "").split(";")[0].strip().lower()
    if kind and not (kind.startswith("image/") or kind == "application/octet-stream"):
        raise UnsupportedMediaError(f"{field}: expected an image file, got {kind}")
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLargeError(f"{field}: the file is over the {limit} byte limit")
    return data


async def _images_answer(studio: Studio, job: Job, request: Request, response_format: str,
                         headers: dict[str, str]):
    request.state.answer_headers = headers
    done = await finished(studio, job, studio.limits.wait_seconds)
    outputs = done.images_of("output")
    if not outputs:
        reasons = done.errors or done.notices or ["the painter returned nothing"]
        kind = InvalidInputError if done.errors else ModelNotFoundError
        raise kind("no image was painted: " + "; ".join(reasons))
    url_for = url_builder(request)
    data = []
    for ref in outputs:
        item = {"revised_prompt": ref.prompt}
        if response_format == "b64_json":
            item["b64_json"] = base64.b64encode(studio.store.image_path(ref.hash).read_bytes()).decode()
        else:
            item["url"] = url_for(done.session_id, ref.hash)
        data.append(item)
    return _json({"created": int(done.created), "data": data,
                  "llmga": {"session_id": done.session_id, "turn": turn_view(done, url_for)}}, headers)


async def _stream(studio: Studio, job: Job, record: TurnRecord, base: dict[str, Any], url_for: UrlFor):
    """The reply as OpenAI chunks: text as the brain writes it, then the prompts and images, then [DONE]."""
    chunk = {**base, "object": "chat.completion.chunk"}

    def delta(content: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return sse({**chunk, "choices": [{"index": 0, "delta": content, "finish_reason": finish}], **extra})

    yield delta({"role": "assistant", "content": ""})
    async for event in events(job):
        if event["type"] == "text":
            yield delta({"content": event["text"]})
    done = await run_in_threadpool(studio.store.get_turn, record.id)
    try:
        raise_if_failed(done)
    except Exception as exc:  # the stream has started: the error goes in it
        yield sse(error_response(exc).body.decode())
    else:
        tail = reply_content(dataclasses.replace(done, reply_text=""), url_for)
        if tail:
            yield delta({"content": "\n\n" + tail})
        yield delta({}, "stop", llmga={"session_id": done.session_id, "turn": turn_view(done, url_for)})
    yield sse("[DONE]")


def _headers(record: TurnRecord, job: Job) -> dict[str, str]:
    return {"X-LLMGA-Session": record.session_id, "X-LLMGA-Turn": record.id, "X-LLMGA-Job": job.id}


def _json(content: dict[str, Any], headers: dict[str, str]) -> JSONResponse:
    return JSONResponse(content, headers=headers)
