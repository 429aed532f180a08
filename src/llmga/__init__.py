"""llmga: a multimodal assistant that writes detailed generation prompts and paints them.

See README.md for the architecture. The stable entry points are
:func:`llmga.protocol.parse_reply`, :class:`llmga.assistant.Assistant` and the
``llmga`` command.
"""

__version__ = "0.1.0"
