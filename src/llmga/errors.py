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
