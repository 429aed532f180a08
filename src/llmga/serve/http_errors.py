"""Errors of the studio, and the HTTP status each error maps to.

Every error a client can cause is an :class:`~llmga.errors.LLMGAError` (or a
subclass defined here) and becomes a 4xx JSON answer in the OpenAI error shape
(``{"error": {"message", "type", "code"}}``); services the studio depends on
(the store, the broker, the brain) give 502/503/504 with Retry-After; anything
else is a 500 that is logged and leaves the server serving. A stored turn's
``error_code`` is the ``code`` here, so :func:`error_of` rebuilds its error.
"""

from __future__ import annotations

from ..errors import (
    BrainError,
    BrainFailedError,
    BrainTimeoutError,
    BrainUnavailableError,
    Cancelled,
    InvalidInputError,
    LLMGAError,
    ModelNotFoundError,
    PromptTooLongError,
)


class NotFoundError(LLMGAError):
    """A session, turn, job or image that does not exist."""


class ConflictError(LLMGAError):
    """The request conflicts with the state (a turn is still running in this session)."""


class PayloadTooLargeError(LLMGAError):
    """A body, upload, image or text over the configured limits."""


class UnsupportedMediaError(LLMGAError):
    """An upload of a content type the endpoint does not take."""


class UnauthorizedError(LLMGAError):
    """A missing or wrong API token."""


class BusyError(LLMGAError):
    """The job queue is full; ``retry_after`` says in how many seconds to try again."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class UnavailableError(BusyError):
    """A service the studio needs is down or overloaded (503); try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message, retry_after)


class StoreUnavailableError(UnavailableError):
    """The session store (PostgreSQL) cannot be reached."""


class BrokerUnavailableError(UnavailableError):
    """The job broker (Redis) cannot be reached."""


class TurnInterruptedError(UnavailableError):
    """The turn's runner stopped (a restart, a worker that died) before it finished; send it again."""


class JobTimeoutError(UnavailableError):
    """The turn ran longer than a turn may."""


class InternalError(Exception):
    """A turn failed for a reason that is not the client's (already logged where it happened)."""


class JobCancelled(Cancelled):
    """Raised inside a job when it was cancelled (a :class:`~llmga.errors.Cancelled`: it stops the whole turn)."""


# (class, status, OpenAI error type, code), most specific class first
_STATUS: list[tuple[type[Exception], int, str, str]] = [
    (StoreUnavailableError, 503, "server_error", "store_unavailable"),
    (BrokerUnavailableError, 503, "server_error", "broker_unavailable"),
    (TurnInterruptedError, 503, "server_error", "interrupted"),
    (JobTimeoutError, 503, "server_error", "job_timeout"),
    (UnavailableError, 503, "server_error", "unavailable"),
    (BusyError, 429, "rate_limit_error", "queue_full"),
    (NotFoundError, 404, "invalid_request_error", "not_found"),
    (ConflictError, 409, "invalid_request_error", "conflict"),
    (PayloadTooLargeError, 413, "invalid_request_error", "too_large"),
    (UnsupportedMediaError, 415, "invalid_request_error", "unsupported_media_type"),
    (UnauthorizedError, 401, "authentication_error", "invalid_token"),
    (PromptTooLongError, 400, "invalid_request_error", "prompt_too_long"),
    (InvalidInputError, 400, "invalid_request_error", "invalid_input"),
    (ModelNotFoundError, 422, "invalid_request_error", "model_not_configured"),
    (BrainUnavailableError, 503, "server_error", "brain_unavailable"),
    (BrainTimeoutError, 504, "server_error", "brain_timeout"),
    (BrainFailedError, 502, "server_error", "brain_failed"),
    (BrainError, 422, "invalid_request_error", "brain_error"),
    (Cancelled, 409, "invalid_request_error", "cancelled"),
    (LLMGAError, 400, "invalid_request_error", "invalid_request"),
    (InternalError, 500, "server_error", "internal_error"),
]


#: seconds after which to try again, for the errors that are worth it
RETRY_AFTER = {"brain_unavailable": 10, "brain_timeout": 30, "brain_failed": 10}


def http_status(exc: BaseException) -> tuple[int, str, str]:
    """(HTTP status, OpenAI error type, code) for an exception; 500 for anything unexpected."""
    for kind, status, error_type, code in _STATUS:
        if isinstance(exc, kind):
            return status, error_type, code
    return 500, "server_error", "internal_error"


def retry_after(exc: BaseException) -> int | None:
    """Seconds a client should wait before sending the request again (None: it should not)."""
    if isinstance(exc, BusyError):
        return exc.retry_after
    return RETRY_AFTER.get(http_status(exc)[2])


def error_of(code: str | None, message: str) -> Exception:
    """The error a stored turn ended with, rebuilt from its ``code`` (an InternalError if unknown)."""
    for kind, _status, _type, known in _STATUS:
        if known == code:
            return kind(message)
    return InternalError(message)


def error_body(message: str, error_type: str = "invalid_request_error", code: str | None = None) -> dict:
    """The JSON body of an error answer, in the shape OpenAI clients read."""
    return {"error": {"message": message, "type": error_type, "code": code, "param": None}}
