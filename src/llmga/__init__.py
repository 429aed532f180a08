"""llmga: a multimodal assistant that writes detailed generation prompts and paints them.

See README.md for the architecture. The stable entry points are
:func:`llmga.protocol.parse_reply`, :class:`llmga.assistant.Assistant` and the
``llmga`` command.
"""

__version__ = "0.1.0"

import logging

# bitsandbytes (the optional backend of 4/8-bit brains) warns as it is imported, by peft among others, when
# its optional CPU-kernels package is absent; llmga does not use those kernels, so the warning is only noise.
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
