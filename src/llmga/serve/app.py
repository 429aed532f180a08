"""The studio's FastAPI application: error mapping, middleware, files, health, and the routers.

``create_app(studio, config)`` is all a server (uvicorn) or a test
(``TestClient``) needs; the OpenAPI document is at ``/openapi.json`` and the
interactive docs at ``/docs``. In front of every route: the Host check (a
token-less studio answers only to loopback names, so a page of another site
cannot reach it through DNS rebinding), the API token, the cross-site check
(:class:`~llmga.serve.security.CrossSiteGuard`) and the body limit. At its start,
before the first request, and every hour unused images are swept and, with
``config.retention_days``, old sessions deleted.
"""

from __future__ import annotations

import asyncio
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
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .. import __version__ as VERSION
from ..errors import Cancelled, LLMGAError
from ..settings import ServeConfig
from .answers import error_response
from .files import check_hash
from .http_errors import InternalError, NotFoundError, UnauthorizedError, error_body
from .security import TOKEN_COOKIE, BodyLimit, CrossSiteGuard, TokenAuth
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
        await _tidy(studio, config.retention_days)  # before the first request, so none sees a session past it
        keeper = asyncio.create_task(_tidy_hourly(studio, config.retention_days))
        yield
        keeper.cancel()
        if on_shutdown is not None:
            await run_in_threadpool(on_shutdown)

    app = FastAPI(title="llmga studio", version=VERSION, lifespan=lifespan,
                  description="Chat with an assistant that writes generation prompts and paints them.")
    app.state.studio, app.state.config, app.state.web = studio, config, False
    # the last added runs first: Host, then the token, then cross-site requests, then the body
    limits = config.limits  # bodies share the studio's memory budget with the images decoded from them
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes, max_json_bytes=limits.max_json_bytes(),
                       memory=studio.decoder.budget)
    app.add_middleware(CrossSiteGuard, allowed_origins=config.allowed_origins)
    app.add_middleware(TokenAuth, token=config.token)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(config.hosts()), www_redirect=False)
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

    @app.get("/files/{session_id}/{name}", name="file", tags=["studio"], response_class=FileResponse)
    def file(session_id: str, name: str, sig: str = "", exp: str = "") -> FileResponse:
        """An image of a session, by the capability URL the studio gave (``?sig=…``, and ``&exp=…`` if URLs
        expire): no token needed, and nothing else is served."""
        digest = check_hash(name.removesuffix(".png")) if name.endswith(".png") else ""
        if not (digest and studio.urls.valid(session_id, digest, sig, exp)
                and studio.store.session_has_image(session_id, digest)):
            raise NotFoundError("no such image (or its URL has expired)")
        return FileResponse(studio.store.image_path(digest), media_type="image/png",
                            headers={"Cache-Control": "private, max-age=86400",
                                     "X-Content-Type-Options": "nosniff"})

    return app


async def _tidy(studio: Studio, days: float | None) -> None:
    """Delete the sessions idle for more than ``days`` (if given), and the images no turn uses (uploads of
    refused requests, images of deleted sessions that were still fresh)."""
    try:
        gone = await run_in_threadpool(studio.tidy, days)
        if gone:
            log.info("deleted %d session(s) idle for more than %g days", len(gone), days)
    except Exception:  # a store that is down now may be up in an hour
        log.warning("could not tidy the session store", exc_info=True)


async def _tidy_hourly(studio: Studio, days: float | None) -> None:
    """:func:`_tidy` every hour (the server's start runs the first)."""
    while True:
        await asyncio.sleep(3600)
        await _tidy(studio, days)


def _add_error_handlers(app: FastAPI) -> None:
    """Errors as OpenAI-style JSON; a route's ``request.state.answer_headers`` (its turn's ids) ride along."""

    @app.exception_handler(LLMGAError)
    async def llmga_error(request: Request, exc: LLMGAError) -> JSONResponse:
        return error_response(exc, _answer_headers(request))

    @app.exception_handler(Cancelled)
    async def cancelled(request: Request, exc: Cancelled) -> JSONResponse:
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
