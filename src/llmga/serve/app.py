"""The studio's FastAPI application: error mapping, middleware, files, health, and the routers.

``create_app(studio, config)`` is all a server (uvicorn) or a test
(``TestClient``) needs; the OpenAPI document is at ``/openapi.json`` and the
interactive docs at ``/docs``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from .. import __version__ as VERSION
from ..errors import LLMGAError
from ..settings import ServeConfig
from .answers import error_response
from .files import check_hash
from .http_errors import (
    InternalError,
    JobCancelled,
    NotFoundError,
    UnauthorizedError,
    error_body,
)
from .security import TOKEN_COOKIE, BodyLimit, TokenAuth
from .studio import Studio

log = logging.getLogger(__name__)


def create_app(studio: Studio, config: ServeConfig = ServeConfig(),
               on_shutdown: Callable[[], None] | None = None) -> FastAPI:
    """The studio's HTTP application (routes under /v1 for OpenAI clients, /api for sessions, /files).

    ``on_shutdown`` runs when the server stops gracefully (e.g. closing the studio).
    """
    from .openai_routes import router as openai_router
    from .session_routes import router as session_router

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            await run_in_threadpool(on_shutdown)

    app = FastAPI(title="llmga studio", version=VERSION, lifespan=lifespan,
                  description="Chat with an assistant that writes generation prompts and paints them.")
    app.state.studio, app.state.config, app.state.web = studio, config, False
    app.add_middleware(TokenAuth, token=config.token)
    app.add_middleware(BodyLimit, max_bytes=config.limits.max_body_bytes)
    _add_error_handlers(app)
    app.include_router(openai_router)
    app.include_router(session_router)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/ui/" if app.state.web else "/docs")

    @app.get("/login", include_in_schema=False)
    def login(token: str = "") -> RedirectResponse:
        """Open the web app with ``/login?token=TOKEN`` once: the token is kept in a cookie."""
        if config.token is None or not hmac.compare_digest(token.encode(), config.token.encode()):
            raise UnauthorizedError("wrong token")
        response = RedirectResponse("/ui/", status_code=303)
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    @app.get("/health", tags=["studio"])
    def health() -> dict[str, Any]:
        """Liveness and queue load (open without a token)."""
        return {"status": "ok", "queue": studio.queue.stats()}

    @app.get("/files/{name}", name="file", tags=["studio"], response_class=FileResponse)
    def file(name: str) -> FileResponse:
        """A stored image, by content hash (``<64 hex digits>.png``); nothing else is served."""
        if not name.endswith(".png"):
            raise NotFoundError("no such file: images are served as /files/<hash>.png")
        return FileResponse(studio.store.image_path(check_hash(name[:-4])), media_type="image/png",
                            headers={"Cache-Control": "private, max-age=31536000, immutable",
                                     "X-Content-Type-Options": "nosniff"})

    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Errors as OpenAI-style JSON; a route's ``request.state.answer_headers`` (its turn's ids) ride along."""

    @app.exception_handler(LLMGAError)
    async def llmga_error(request: Request, exc: LLMGAError) -> JSONResponse:
        return error_response(exc, _answer_headers(request))

    @app.exception_handler(JobCancelled)
    async def cancelled(request: Request, exc: JobCancelled) -> JSONResponse:
        return error_response(exc, _answer_headers(request))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(error_body("the body is not valid JSON", code="invalid_json"), status_code=400)
        detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}"
                           for e in errors[:10])
        return JSONResponse(error_body(f"invalid request: {detail}", code="invalid_request"), status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(exc.detail), code=f"http_{exc.status_code}"), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, InternalError):
            log.error("unexpected error", exc_info=exc)
        return error_response(exc, _answer_headers(request))


def _answer_headers(request: Request) -> dict[str, str] | None:
    return getattr(request.state, "answer_headers", None)
