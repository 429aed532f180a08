"""ASGI middleware in front of every route: the API token, cross-site requests, and the request body limit.

Each answers with the OpenAI error JSON before a route (or the multipart
parser) sees the request. (The Host header is checked in front of them by
Starlette's ``TrustedHostMiddleware``, see :func:`~llmga.serve.app.create_app`.)
"""

from __future__ import annotations

import hmac
import json
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from .budget import MemoryBudget
from .http_errors import UnavailableError, error_body

Scope = dict[str, Any]

#: paths anyone on the network may reach (liveness, and the login that checks the token itself)
OPEN_PATHS = ("/health", "/login")
#: paths that carry their own capability (signed image URLs, see llmga.serve.image_urls)
CAPABILITY_PREFIX = "/files/"
TOKEN_COOKIE = "llmga_token"


async def _answer(send: Any, status: int, message: str, code: str, headers: list | None = None) -> None:
    error_type = "authentication_error" if status == 401 else "invalid_request_error"
    body = json.dumps(error_body(message, error_type, code)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class TokenAuth:
    """Require ``Authorization: Bearer TOKEN`` (or the ``llmga_token`` cookie) on every path but /health."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if self.token is None or scope["type"] not in ("http", "websocket") or scope["path"] in OPEN_PATHS \
                or scope["path"].startswith(CAPABILITY_PREFIX):
            return await self.app(scope, receive, send)
        if self._allowed(dict(scope.get("headers") or [])):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        await _answer(send, 401, "missing or wrong API token; send 'Authorization: Bearer TOKEN'", "invalid_token",
                      [(b"www-authenticate", b'Bearer realm="llmga"')])

    def _allowed(self, headers: dict[bytes, bytes]) -> bool:
        given = headers.get(b"authorization", b"").decode("latin-1")
        if given.lower().startswith("bearer "):
            return hmac.compare_digest(given[7:].strip().encode(), self.token.encode())
        for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
            name, _, value = part.strip().partition("=")
            if name == TOKEN_COOKIE:
                return hmac.compare_digest(value.encode(), self.token.encode())
        return False


class CrossSiteGuard:
    """Refuse browser requests from other sites that could change something (CSRF), with 403.

    A request other than GET, HEAD or OPTIONS (and every WebSocket) passes if the
    browser says it comes from this site (``Sec-Fetch-Site: same-origin`` or
    ``none``), if its ``Origin`` is this server (the ``Host`` it was sent to) or
    one of ``allowed_origins``, or if it carries neither header (not a browser:
    curl, SDKs, other servers). A form another site posts at the studio, or a
    script on another site, is refused. Reading is left to the browser's
    same-origin policy (the studio sends no CORS headers) and to the Host check.
    """

    SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

    def __init__(self, app: Any, allowed_origins: tuple[str, ...] = ()) -> None:
        self.app, self.allowed = app, {origin.rstrip("/").lower() for origin in allowed_origins}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" or (scope["type"] == "http" and scope["method"] not in self.SAFE_METHODS):
            headers = Headers(scope=scope)
            if not self._same_site(headers):
                if scope["type"] == "websocket":
                    return await send({"type": "websocket.close", "code": 1008})
                return await _answer(send, 403, "cross-site requests are refused: this request came from a page of "
                                                "another site (allow its origin with --allowed-origin)",
                                     "cross_site")
        await self.app(scope, receive, send)

    def _same_site(self, headers: Headers) -> bool:
        origin = (headers.get("origin") or "").rstrip("/").lower()
        if origin and origin in self.allowed:
            return True
        site = headers.get("sec-fetch-site")
        if site is not None:
            return site in ("same-origin", "none")
        if not origin:
            return True  # not a browser (browsers send Origin with every cross-origin request that writes)
        return origin != "null" and urlsplit(origin).netloc == (headers.get("host") or "").lower()


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413: from Content-Length at once, else while streaming.

    A JSON body, read and parsed whole into memory, may be at most ``max_json_bytes``
    (a multipart body streams its files to disk). A request with a large body
    (over :data:`SMALL_BODY`, or of unknown length) first takes three times its
    length (the bytes, and what they are parsed into) from ``memory`` (a
    :class:`~llmga.serve.budget.MemoryBudget`) for as long as it runs, so many
    large requests at once wait their turn (then 503) instead of adding up.
    """

    SMALL_BODY = 2**20

    def __init__(self, app: Any, max_bytes: int, max_json_bytes: int | None = None,
                 memory: MemoryBudget | None = None) -> None:
        self.app, self.max_bytes, self.memory = app, max_bytes, memory
        self.max_json_bytes = max_json_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        json = headers.get(b"content-type", b"").split(b";")[0].strip().lower() == b"application/json"
        limit = self.max_json_bytes if json else self.max_bytes
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await _answer(send, 413, f"the request body is over the {limit} byte limit", "too_large")
        size = int(length) if length is not None else limit
        if self.memory is None or size <= self.SMALL_BODY or scope["method"] in CrossSiteGuard.SAFE_METHODS:
            return await self._limited(scope, receive, send, limit)
        try:
            async with self.memory.hold_async(3 * size):
                await self._limited(scope, receive, send, limit)
        except UnavailableError as exc:
            await _answer(send, 503, str(exc), "busy", [(b"retry-after", str(exc.retry_after).encode())])

    async def _limited(self, scope: Scope, receive: Any, send: Any, limit: int) -> None:
        seen = 0
        started = False

        async def counted_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await _answer(send, 413, f"the request body is over the {limit} byte limit", "too_large")


class _TooLarge(HTTPException):
    """Raised while the body is read; FastAPI passes HTTP exceptions on to the app's error handler."""

    def __init__(self, max_bytes: int = 0) -> None:
        super().__init__(413, f"the request body is over the {max_bytes} byte limit")
