"""Errors that llmga raises for problems a user can fix.

Every error carries a message that names the problem and, where there is one,
how to fix it. The CLI prints the message without a traceback.
"""


class LLMGAError(Exception):
    """Base class for errors a user can act on."""


class ModelNotFoundError(LLMGAError):
    """A model path, file or profile is missing or incomplete."""


class BrainError(LLMGAError):
    """The assistant's language model failed or was asked for something it cannot do."""


class PromptTooLongError(LLMGAError):
    """A generation prompt is longer than the configured limit."""


class InvalidInputError(LLMGAError):
    """An input (image, setting, request) is malformed."""


class CacheWriteError(LLMGAError, OSError):
    """llmga's cache (converted and merged models) could not be written: most often a full disk."""


class BrainUnavailableError(BrainError):
    """The brain's server cannot be reached, or says it is overloaded: try again later."""


class BrainTimeoutError(BrainError):
    """The brain took longer than it may (its reply was stopped)."""


class BrainFailedError(BrainError):
    """The brain failed: its server answered with an error, dropped the reply, or the model crashed."""


class Cancelled(Exception):
    """Work stopped because it was cancelled.

    Deliberately not an LLMGAError: the assistant catches those per prompt and
    carries on with the next one, while a cancellation must stop the whole turn.
    """
