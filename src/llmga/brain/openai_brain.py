"""A brain served by any OpenAI-compatible chat server (vLLM, Ollama, llama.cpp).

The server does the tokenizing, the chat template and the sampling; this module
only turns llmga's Hugging Face-style messages into OpenAI chat messages,
streams the reply and turns every failure into a :class:`~llmga.errors.BrainError`
that names the server and the cause.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from PIL import Image

from ..conversation import Message
from ..errors import BrainError, BrainFailedError, BrainTimeoutError, BrainUnavailableError
from ..protocol import END_MARKERS
from .base import BrainRequest

#: end-of-turn markers: servers normally stop on them and do not send them, but
#: a server with the wrong template can leak one into the text.
DEFAULT_END_MARKERS: tuple[str, ...] = END_MARKERS

#: request fields that ask vLLM and SGLang to continue a trailing assistant
#: message instead of closing it; other servers ignore them (see ``stream``).
CONTINUE_FINAL_MESSAGE: dict[str, bool] = {
    "continue_final_message": True,
    "add_generation_prompt": False,
}


def normalize_base_url(base_url: str) -> str:
    """The server's API root: ``http://host:port`` alone gets the usual ``/v1``.

    A URL with a path (``http://host:port/v1``, ``https://proxy/openai/v1``) is
    kept as it is, without a trailing slash.
    """
    url = base_url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if not parts.netloc:
        raise BrainError(f"invalid server URL {base_url!r}: expected e.g. http://127.0.0.1:8080/v1")
    path = parts.path.rstrip("/")
    if not path:
        path = "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def image_to_data_url(image: Image.Image) -> str:
    """A ``data:image/png;base64,...`` URL holding ``image`` losslessly."""
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def to_openai_messages(
    messages: Sequence[Message], images: Sequence[Image.Image] = ()
) -> list[dict[str, Any]]:
    """Convert llmga's messages to OpenAI chat messages.

    A string content stays a string. A list content (``{"type": "image"}`` and
    ``{"type": "text", "text": ...}`` parts) becomes OpenAI parts, each image
    placeholder an ``image_url`` part carrying the next image of ``images`` as a
    base64 PNG data URL; a list without images collapses to a plain string (the
    texts joined), which every server accepts. Raises :class:`BrainError` if the
    number of placeholders differs from ``len(images)`` or a part is unknown.
    """
    n_placeholders = sum(
        1
        for message in messages
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "image"
    )
    if n_placeholders != len(images):
        raise BrainError(
            f"the messages hold {n_placeholders} image placeholder(s) but "
            f"{len(images)} image(s) were given; they must match one to one, in order"
        )
    remaining = iter(images)
    converted: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role = message.get("role")
        content = message.get("content")
        if not isinstance(role, str):
            raise BrainError(f"message {index} has no role: {message!r}")
        if content is None:
            content = ""
        if isinstance(content, str):
            converted.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise BrainError(f"message {index} content must be a string or a list of parts")
        parts: list[dict[str, Any]] = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "image":
                parts.append(
                    {"type": "image_url", "image_url": {"url": image_to_data_url(next(remaining))}}
                )
            elif kind == "text":
                parts.append({"type": "text", "text": str(part.get("text", ""))})
            else:
                raise BrainError(f"message {index} has an unknown content part: {part!r}")
        if any(part["type"] == "image_url" for part in parts):
            converted.append({"role": role, "content": parts})
        else:
            converted.append({"role": role, "content": "".join(p["text"] for p in parts)})
    return converted


class OpenAIBrain:
    """A chat model behind an OpenAI-compatible HTTP server.

    ``base_url`` is the API root (``http://127.0.0.1:8080/v1``; a bare
    ``http://host:port`` gets ``/v1`` appended). ``model`` None picks the first
    model id the server lists at ``GET /models`` (a :class:`BrainError` if it
    lists none); that is one request made by the constructor. ``api_key`` None
    sends a placeholder key (local servers ignore it); the ``OPENAI_API_KEY``
    environment variable is deliberately not read, so a real OpenAI key never
    leaks to a local server. ``multimodal`` says whether images may be sent
    (the server's model must really accept them: see :meth:`stream`).
    ``timeout`` (seconds) bounds connecting and each wait for data, not the
    whole reply; ``max_retries`` (default 0) is how often the client retries a
    failed request (connection errors, 408/409/429/5xx) with a 0.5 s+ backoff;
    0 makes failures surface at once (connection refused in milliseconds).
    ``extra_body`` is merged into every request, for server-specific options
    (e.g. ``{"top_k": 40, "repeat_penalty": 1.0}`` for llama.cpp).

    Sampling: ``temperature``, ``top_p``, ``max_tokens`` (from
    ``max_new_tokens``) and ``seed`` are sent as standard fields.
    ``repetition_penalty`` is sent only when it differs from 1, as both
    ``repetition_penalty`` (vLLM, SGLang) and ``repeat_penalty`` (llama.cpp,
    llama-cpp-python) in the request body; at 1 nothing is sent, so the
    server's own default applies (llama-cpp-python's is 1.1, vLLM's and
    llama.cpp's 1.0). Strict servers (the OpenAI API itself) reject those
    extra fields, so keep it at 1 there.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        multimodal: bool = True,
        timeout: float = 60.0,
        max_retries: int = 0,
        end_markers: tuple[str, ...] = DEFAULT_END_MARKERS,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise BrainError(
                "the OpenAI-compatible brain needs the 'openai' package: pip install openai"
            ) from exc
        if timeout <= 0:
            raise BrainError(f"timeout must be > 0 seconds, got {timeout}")
        if max_retries < 0:
            raise BrainError(f"max_retries must be >= 0, got {max_retries}")
        self.base_url = normalize_base_url(base_url)
        self.multimodal = multimodal
        self.end_markers = tuple(end_markers)
        self.timeout = float(timeout)
        self.extra_body = dict(extra_body or {})
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or "no-key",
            timeout=openai.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            max_retries=max_retries,
        )
        self.model = model if model else self._discover_model()

    # -- Brain protocol -------------------------------------------------------

    def stream(self, request: BrainRequest) -> Iterator[str]:
        """Yield the reply in pieces as the server streams it.

        Images: each ``{"type": "image"}`` placeholder is sent as an
        ``image_url`` part holding the matching image as a base64 PNG data URL.
        A brain built with ``multimodal=False`` refuses images with a
        :class:`BrainError` before sending anything. A server whose model
        cannot see images answers in its own way. llama-cpp-python's server
        with a text-only model answers 200, then ends the stream empty (its
        chat template fails on the image parts; the error reaches only its
        log): the brain notices the missing ``finish_reason``, replays the
        request once unstreamed (``max_tokens=1``) to fetch the server's error
        (HTTP 500, "can only concatenate str (not "list") to str") and raises a
        :class:`BrainError` that quotes it and names the images as the likely
        cause. Other servers may answer 400, or silently ignore the image:
        build the brain with ``multimodal=False`` for text-only models.

        Any stream that ends without a ``finish_reason`` raises a
        :class:`BrainError` rather than passing a cut-off reply as complete.

        Prefill: the first piece is ``prefill`` itself, and the request ends
        with an assistant message holding it, plus ``continue_final_message``
        / ``add_generation_prompt: false`` in the body. What follows depends on
        the server:

        * llama.cpp's own ``llama-server`` (prefill on by default), vLLM,
          SGLang and Ollama continue the prefilled message, so the text is
          ``prefill`` + its continuation.
        * llama-cpp-python's ``python -m llama_cpp.server`` ignores those
          fields and renders the trailing assistant message as a finished turn
          followed by a new assistant turn: the model answers afresh after the
          prefill, and often repeats it. When the fresh answer starts with the
          prefill (leading whitespace aside), that repeat is dropped, so the
          text still starts with the prefill exactly once; it is otherwise not
          a true continuation.
        """
        messages, images, settings, prefill = request.messages, request.images, request.settings, request.prefill
        openai = self._openai
        if images and not self.multimodal:
            raise BrainError(
                f"{self.describe()} is configured as text-only (multimodal=False) and "
                f"cannot take {len(images)} image(s); use a multimodal model and "
                "multimodal=True, or leave the images out"
            )
        request_messages = to_openai_messages(messages, images)
        extra_body = dict(self.extra_body)
        if settings.repetition_penalty != 1.0:
            extra_body["repetition_penalty"] = settings.repetition_penalty
            extra_body["repeat_penalty"] = settings.repetition_penalty
        if prefill:
            request_messages.append({"role": "assistant", "content": prefill})
            extra_body.update(CONTINUE_FINAL_MESSAGE)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": request_messages,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_tokens": settings.max_new_tokens,
        }
        if settings.seed is not None:
            kwargs["seed"] = settings.seed
        if extra_body:
            kwargs["extra_body"] = extra_body

        try:
            # a fresh connection per reply: a server that fails mid-stream (see
            # _unfinished_error) closes the connection just after the stream
            # ends, and a pooled keep-alive connection would make the next
            # request fail with "Server disconnected without sending a response"
            response = self._client.chat.completions.create(
                stream=True, extra_headers={"Connection": "close"}, **kwargs
            )
        except openai.OpenAIError as exc:
            raise self._error(exc, "sending the chat request") from exc
        state = _StreamState()
        try:
            if prefill:
                yield prefill
            pieces = _deltas(response, state)
            if prefill:
                pieces = _drop_repeated_prefix(pieces, prefill)
            yield from pieces
        except openai.OpenAIError as exc:
            raise self._error(exc, "streaming the reply", mid_stream=state.chunks > 0) from exc
        finally:
            response.close()
        if not state.finished:
            raise self._unfinished_error(kwargs, state, len(images))

    def describe(self) -> str:
        """E.g. ``OpenAI-compatible server http://127.0.0.1:8080/v1 model smollm2``."""
        model = getattr(self, "model", None) or "(not chosen yet)"
        return f"OpenAI-compatible server {self.base_url} model {model}"

    # -- helpers --------------------------------------------------------------

    def list_models(self) -> list[str]:
        """The model ids the server lists at ``GET /models``."""
        try:
            return [entry.id for entry in self._client.models.list()]
        except self._openai.OpenAIError as exc:
            raise self._error(exc, "listing models") from exc

    def _discover_model(self) -> str:
        ids = self.list_models()
        if not ids:
            raise BrainError(
                f"the OpenAI-compatible server at {self.base_url} lists no models at "
                "GET /models; load a model on the server or pass model=..."
            )
        return ids[0]

    def _unfinished_error(
        self, kwargs: dict[str, Any], state: _StreamState, n_images: int
    ) -> BrainError:
        """The stream ended without a finish_reason: the server failed mid-request.

        llama-cpp-python's server, for one, answers 200, starts the event
        stream and then closes it empty when the request fails (a chat template
        that cannot take image parts, say); its error only reaches its log. If
        nothing came, the request is replayed once without streaming and with
        ``max_tokens=1`` to fetch the server's own error message.
        """
        where = f"OpenAI-compatible server at {self.base_url}"
        if state.text_chunks:
            what = f"after {state.text_chunks} piece(s) of text"
        else:
            what = "before sending any text"
        parts = [f"the {where} ended the reply stream unfinished, {what}"]
        if not state.text_chunks:
            cause = self._replay_error(kwargs)
            if cause:
                parts.append(f"replayed without streaming, the request failed with {cause}")
        if n_images:
            parts.append(
                f"the request carried {n_images} image(s): a text-only model on the server "
                "cannot read them; serve a vision model, or build the brain with "
                "multimodal=False and send no images"
            )
        parts.append("the server's log has the details")
        return BrainFailedError("; ".join(parts))

    def _replay_error(self, kwargs: dict[str, Any]) -> str | None:
        probe = dict(kwargs, max_tokens=1)
        try:
            self._client.chat.completions.create(stream=False, **probe)
        except self._openai.APIStatusError as exc:
            return f"HTTP {exc.status_code}: {_server_message(exc)}"
        except self._openai.OpenAIError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def _error(self, exc: Exception, doing: str, mid_stream: bool = False) -> BrainError:
        """A BrainError naming the server, what failed and why.

        Its class says whose fault it is: :class:`BrainTimeoutError` (too slow),
        :class:`BrainUnavailableError` (unreachable, or overloaded: try later),
        :class:`BrainFailedError` (the server failed or refused us).
        """
        openai = self._openai
        where = f"OpenAI-compatible server at {self.base_url}"
        if isinstance(exc, openai.APITimeoutError):
            return BrainTimeoutError(
                f"the {where} timed out ({doing}; no data within {self.timeout:g} s); "
                "is the server overloaded, or is the timeout too short?"
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            detail = f"{type(cause).__name__}: {cause}" if cause else str(exc)
            if mid_stream:
                return BrainFailedError(
                    f"the {where} dropped the connection in the middle of the reply "
                    f"({detail}); did the server crash? Check its log"
                )
            return BrainUnavailableError(
                f"cannot reach the {where} ({doing}): {detail}; is the server running "
                "and the URL right?"
            )
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return BrainFailedError(
                f"the {where} refused the request (HTTP {exc.status_code}, {doing}): "
                f"{_server_message(exc)}; check the API key"
            )
        if isinstance(exc, openai.NotFoundError):
            return BrainFailedError(
                f"the {where} answered 404 Not Found ({doing}): {_server_message(exc)}; "
                f"check the URL (usually it ends in /v1) and the model name {getattr(self, 'model', None)!r}"
            )
        if isinstance(exc, openai.APIStatusError):
            kind = BrainUnavailableError if exc.status_code in (429, 503) else BrainFailedError
            return kind(f"the {where} answered HTTP {exc.status_code} ({doing}): {_server_message(exc)}")
        if isinstance(exc, openai.APIError):
            return BrainFailedError(f"the {where} reported an error ({doing}): {_server_message(exc)}")
        return BrainFailedError(f"the {where} failed ({doing}): {type(exc).__name__}: {exc}")


def _server_message(exc: Any) -> str:
    """The most useful text of an API error: the server's own message if it sent one."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str) and error:
            return error
        if body.get("detail"):
            return str(body["detail"])
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            text = response.text
        except Exception:  # streaming responses may not be readable
            text = ""
        if text:
            return text[:500]
    return getattr(exc, "message", None) or str(exc)


def _drop_repeated_prefix(pieces: Iterator[str], prefill: str) -> Iterator[str]:
    """Drop ``prefill`` from the start of ``pieces`` if the reply repeats it.

    Used after the prefill has already been yielded: a server that does not
    continue a trailing assistant message answers afresh and often starts by
    repeating it. Text is held back only until it is clear whether the reply
    begins with the prefill (after leading whitespace).
    """
    target = prefill.lstrip()
    if not target:
        yield from pieces
        return
    held = ""
    for piece in pieces:
        held += piece
        stripped = held.lstrip()
        if len(stripped) < len(target) and target.startswith(stripped):
            continue  # still a possible repeat; wait for more
        if stripped.startswith(target):
            rest = stripped[len(target) :]
        else:
            rest = held
        if rest:
            yield rest
        break
    else:
        # the stream ended while the text was still a strict prefix of the
        # prefill (or only whitespace): taken as a cut-off repeat, dropped
        return
    yield from pieces


class _StreamState:
    """What a reply stream delivered: chunks, text chunks, and whether it finished."""

    def __init__(self) -> None:
        self.chunks = 0
        self.text_chunks = 0
        self.finished = False


def _deltas(response: Any, state: _StreamState) -> Iterator[str]:
    """The text deltas of choice 0 of a chat completion stream."""
    for chunk in response:
        state.chunks += 1
        for choice in chunk.choices or ():
            if choice.index not in (0, None):
                continue
            if choice.finish_reason:
                state.finished = True
            text = getattr(choice.delta, "content", None) if choice.delta else None
            if text:
                state.text_chunks += 1
                yield text
