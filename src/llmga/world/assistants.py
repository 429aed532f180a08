"""What the world assistants are asked under, and the form their prompts take.

The world assistants (``gemma3-world``, ``smollm2-world``, ``world-llava``)
are trained under :data:`SYSTEM_PROMPT` (:mod:`llmga.data.world_chat` writes it
beside their data) to write each prompt as a detailed caption
(:data:`~llmga.world.captions.CAPTION_FORM`), the only text the world painters
read. :func:`prompt_form` tells the assistant and the evaluation that a brain
is one of them, so its prompts are kept to that form (:mod:`llmga.brain.forms`).
"""

from __future__ import annotations

from .captions import CAPTION_FORM

#: what the world assistant is trained and asked under (short: it is in every sample the model reads)
SYSTEM_PROMPT = (
    "You are LLMGA and you draw simple shapes. For a picture, write one short sentence, then the whole scene "
    'in <gen_img task="generate">...</gen_img> (task="edit" changes the last picture, task="similar" makes '
    "another like it). Otherwise answer in plain text. Reply in the user's language.")


def prompt_form(system_prompt: str | None):
    """The form the prompts of a brain asked under ``system_prompt`` take: the world's caption grammar under
    :data:`SYSTEM_PROMPT`, else None (any text)."""
    return CAPTION_FORM if system_prompt is not None and system_prompt.strip() == SYSTEM_PROMPT else None
