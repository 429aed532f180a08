"""Chat layouts for pretrained GGUF models that carry no chat template, by architecture.

The pretrained Gemma 3 270M (``--brain gemma3``) has none; llmga gives it Gemma 3's own layout, the system
prompt opening the first user turn, and stops generation at ``<end_of_turn>``.
"""

from __future__ import annotations

GEMMA3_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- set system = messages[0]['content'] + '\\n\\n' if messages and messages[0]['role'] == 'system' else '' -%}"
    "{%- for m in messages if m['role'] != 'system' -%}"
    "{{- '<start_of_turn>' + ('user' if m['role'] == 'user' else 'model') + '\\n' + (system if loop.first else '')"
    " + m['content'] + '<end_of_turn>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}"
)

#: (chat template, the tokens that end a turn) by the model's architecture
GGUF_BASE_FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {"gemma3": (GEMMA3_TEMPLATE, ("<end_of_turn>",))}
