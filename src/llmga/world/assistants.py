"""What the world assistants are asked under.

The world assistants (``gemma3-world``, ``smollm2-world``, ``world-llava``)
are trained under :data:`SYSTEM_PROMPT` (:mod:`llmga.data.world_chat` writes it
beside their data) to write each prompt as a detailed caption
(:data:`~llmga.world.captions.CAPTION_FORM`), the only text the world painters
read; :data:`llmga.registry.PROMPT_FORMS` pairs the two, so that a brain asked
under this prompt has its prompts kept to that form (:mod:`llmga.brain.forms`).
"""

#: what the world assistant is trained and asked under (short: it is in every sample the model reads)
SYSTEM_PROMPT = (
    "You are LLMGA and you draw simple shapes. For a picture, write one short sentence, then the whole scene "
    'in <gen_img task="generate">...</gen_img> (task="edit" changes the last picture, task="similar" makes '
    "another like it). Otherwise answer in plain text. Reply in the user's language.")
