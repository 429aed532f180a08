"""Errors of the studio, and the HTTP status each error maps to.

Every error a client can cause is an :class:`~llmga.errors.LLMGAError` (or a
subclass defined here) and becomes a 4xx JSON answer in the OpenAI error shape
(``{"error": {"message", "type", "code"}}``); anything else is a 500 that is
logged and leaves the server serving.
"""

from __future__ import annotations

from ..errors import BrainError, InvalidInputError, LLMGAError, ModelNotFoundError, PromptTooLongError


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


class InternalError(Exception):
    """A turn failed for a reason that is not the client's (already logged where it happened)."""


class JobCancelled(Exception):
    """Raised inside a job when it was cancelled.

    Deliberately not an LLMGAError: the assistant catches those per prompt and
    carries on with the next one, while a cancellation must stop the whole turn.
    """


# (status, OpenAI error type, code), most specific class first
_STATUS: list[tuple[type[Exception], int, str, str]] = [
    (BusyError, 429, "rate_limit_error", "queue_full"),
    (NotFoundError, 404, "invalid_request_error", "not_found"),
    (ConflictError, 409, "invalid_request_error", "conflict"),
    (PayloadTooLargeError, 413, "invalid_request_error", "too_large"),
    (UnsupportedMediaError, 415, "invalid_request_error", "unsupported_media_type"),
    (UnauthorizedError, 401, "authentication_error", "invalid_token"),
    (PromptTooLongError, 400, "invalid_request_error", "prompt_too_long"),
    (InvalidInputError, 400, "invalid_request_error", "invalid_input"),
    (ModelNotFoundError, 422, "invalid_request_error", "model_not_configured"),
    (BrainError, 422, "invalid_request_error", "brain_error"),
    (JobCancelled, 409, "invalid_request_error", "cancelled"),
    (LLMGAError, 400, "invalid_request_error", "invalid_request"),
    (InternalError, 500, "server_error", "internal_error"),
]


def http_status(exc: BaseException) -> tuple[int, str, str]:
    """(HTTP status, OpenAI error type, code) for an exception; 500 for anything unexpected."""
    for kind, status, error_type, code in _STATUS:
        if isinstance(exc, kind):
            return status, error_type, code
    return 500, "server_error", "internal_error"


def error_body(message: str, error_type: str = "invalid_request_error", code: str | None = None) -> dict:
    """The JSON body of an error answer, in the shape OpenAI clients read."""
    return {"error": {"message": message, "type": error_type, "code": code, "param": None}}
