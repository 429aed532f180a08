"""The conversation formats the released LLaVA/LLMGA checkpoints were trained with, as chat templates.

The original code builds a prompt from a "conversation template" (``conv_templates``
in ``llava/conversation.py``) chosen by name in the training and serving
scripts; the checkpoint does not record it. Each :class:`ChatFormat` here
reproduces one of them as a Jinja chat template for ``apply_chat_template``,
character for character, including the quirks of the released code:

- the system prompt is the one the model was trained with; a system message in
  the conversation is ignored (the model never saw another);
- an image is ``<image>`` followed by a newline, before the text of its turn;
- ``llama_2``-style formats wrap the system prompt in ``<<SYS>>`` even when it is
  empty (``mistral_instruct``), and the first ``<s>`` is left to the tokenizer;
- ``llama_3`` opens the assistant's turns with a ``system`` header, as LLMGA's
  Llama-3 models were trained (``conv_llama_3``'s roles);
- ``qwen_2`` writes no newline after ``<|im_end|>``.

Templates render with ``trim_blocks``, so every newline is written as an expression.
"""

from __future__ import annotations

from dataclasses import dataclass

_VICUNA = "The assistant gives helpful, detailed, and polite answers to the {0}'s questions."
_LLAMA_2 = (
    "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, while being "
    "safe.  Your answers should not include any harmful, unethical, racist, sexist, toxic, dangerous, or illegal "
    "content. Please ensure that your responses are socially unbiased and positive in nature.\n\nIf a question "
    "does not make any sense, or is not factually coherent, explain why instead of answering something not "
    "correct. If you don't know the answer to a question, please don't share false information."
)
_LLMGA = (
    "You are LLMGA, a useful language and vision generation assistant. You can generate images according to the "
    "user's requirements. If the user wants you to inpaint or outpaint images, please imagine what is in the black "
    "mask parts of the image. If image generation is required, please provide a detailed description of the "
    "generated images in the form of <gen_image> DETAILED DESCRIPTION </gen_image>."
)
_LLAMA_3 = (
    "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful language and vision assistant. You are able to "
    "understand the visual content that the user provides, and assist the user with a variety of tasks using "
    "natural language."
)
_CHATML = (
    "<|im_start|>system\nA conversation between a user and an LLM-based AI assistant. "
    "The assistant gives helpful and honest answers."
)


@dataclass(frozen=True)
class ChatFormat:
    """One original conversation template: its layout (``style``), texts and the tokens that end a turn.

    Styles, as the original ``SeparatorStyle``: ``two`` (``SYSTEM USER: … ASSISTANT: …</s>``),
    ``llama_2`` (``[INST] <<SYS>>…<</SYS>>… [/INST] … </s><s>[INST] …``), ``concat``
    (``SYSTEM<sep>ROLE…<sep>``: Llama-3, Qwen2), ``phi_3`` and ``gemma``.
    """

    style: str
    system: str = ""
    user: str = "USER"
    assistant: str = "ASSISTANT"
    sep: str = ""
    #: the end-of-turn tokens generation stops at
    stops: tuple[str, ...] = ("</s>",)

    def template(self) -> str:
        """The Jinja chat template."""
        return _CONTENT + _BODY[self.style].format(
            system=_quote(self.system), user=_quote(self.user), assistant=_quote(self.assistant), sep=_quote(self.sep)
        )


def _quote(text: str) -> str:
    """``text`` as a Jinja string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


# content(m): the images of a message as "<image>\n" each, then its text.
_CONTENT = (
    "{%- macro content(m) -%}{%- if m['content'] is string -%}{{- m['content'] -}}{%- else -%}"
    "{%- for part in m['content'] if part['type'] == 'image' -%}{{- '<image>\\n' -}}{%- endfor -%}"
    "{%- for part in m['content'] if part['type'] == 'text' -%}{{- part['text'] -}}{%- endfor -%}"
    "{%- endif -%}{%- endmacro -%}"
)
_TURNS = "{{%- for m in messages if m['role'] != 'system' -%}}"
_BODY = {
    "two": "{{{{- {system} + ' ' -}}}}" + _TURNS
    + "{{%- if m['role'] == 'user' -%}}{{{{- {user} + ': ' + content(m) + ' ' -}}}}"
    "{{%- else -%}}{{{{- {assistant} + ': ' + content(m) + '</s>' -}}}}{{%- endif -%}}{{%- endfor -%}}"
    "{{%- if add_generation_prompt -%}}{{{{- {assistant} + ':' -}}}}{{%- endif -%}}",
    "llama_2": _TURNS
    + "{{%- if m['role'] == 'user' -%}}{{%- if not loop.first -%}}{{{{- '<s>' -}}}}{{%- endif -%}}{{{{- '[INST] ' -}}}}"
    "{{%- if loop.first -%}}{{{{- '<<SYS>>\\n' + {system} + '\\n<</SYS>>\\n\\n' -}}}}{{%- endif -%}}"
    "{{{{- content(m) + ' [/INST]' -}}}}{{%- else -%}}{{{{- ' ' + content(m) + ' </s>' -}}}}{{%- endif -%}}"
    "{{%- endfor -%}}",
    "concat": "{{{{- {system} + {sep} -}}}}" + _TURNS
    + "{{{{- ({user} if m['role'] == 'user' else {assistant}) + content(m) + {sep} -}}}}{{%- endfor -%}}"
    "{{%- if add_generation_prompt -%}}{{{{- {assistant} -}}}}{{%- endif -%}}",
    "phi_3": _TURNS
    + "{{{{- ({user} if m['role'] == 'user' else {assistant}) + '\\n' + content(m) + {sep} + '\\n' -}}}}"
    "{{%- endfor -%}}{{%- if add_generation_prompt -%}}{{{{- {assistant} + '\\n' -}}}}{{%- endif -%}}",
    "gemma": _TURNS
    + "{{{{- '<start_of_turn>' + ({user} if m['role'] == 'user' else {assistant}) + '\\n' + content(m)"
    " + '<end_of_turn>\\n' -}}}}{{%- if m['role'] != 'user' -%}}{{{{- '<eos>' -}}}}{{%- endif -%}}{{%- endfor -%}}"
    "{{%- if add_generation_prompt -%}}{{{{- '<start_of_turn>' + {assistant} + '\\n' -}}}}{{%- endif -%}}",
}

#: The released checkpoints' conversation templates, by the name the original scripts use.
CHAT_FORMATS: dict[str, ChatFormat] = {
    # LLMGA Vicuna-7B v1.5 (trained with --version v1) and Vicuna-based LLaVA
    "vicuna_v1": ChatFormat("two", "A chat between a curious user and an artificial intelligence assistant. "
                            + _VICUNA.format("user")),
    # LLaVA v1 / LLaVA-1.5 (and what LLMGA's serving scripts pick for a Vicuna model)
    "llava_v1": ChatFormat("two", "A chat between a curious human and an artificial intelligence assistant. "
                           + _VICUNA.format("human")),
    # LLMGA-MLLM 7B/13B (Llama-2-chat, the first release)
    "llava_llama_2": ChatFormat("llama_2", _LLMGA),
    "llama_2": ChatFormat("llama_2", _LLAMA_2),
    "mistral_instruct": ChatFormat("llama_2", ""),
    # LLMGA Llama-3-8B-Instruct and its Chinese variant
    "llama_3": ChatFormat("concat", _LLAMA_3, "<|start_header_id|>user<|end_header_id|>\n\n",
                          "<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>", ("<|eot_id|>",)),
    # LLMGA Qwen2 0.5B/1.5B/7B and the Chinese 0.5B
    "qwen_2": ChatFormat("concat", _CHATML, "<|im_start|>user\n", "<|im_start|>assistant\n", "<|im_end|>",
                         ("<|im_end|>",)),
    # LLMGA Phi-3-mini-128k
    "phi_3": ChatFormat("phi_3", "", "<|user|>", "<|assistant|>", "<|end|>", ("<|end|>",)),
    # LLMGA Gemma-2B-it and its Chinese variant
    "gemma": ChatFormat("gemma", "", "user", "model", "", ("<end_of_turn>", "<eos>")),
}

#: The Jinja chat template of each format.
CHAT_TEMPLATES: dict[str, str] = {name: fmt.template() for name, fmt in CHAT_FORMATS.items()}


def guess_format(base_type: str, tokenizer_vocab: dict[str, int]) -> str | None:
    """The format a released checkpoint of this base model type used, where only one fits; else None.

    A Llama-family checkpoint is Llama-3 if its tokenizer has ``<|eot_id|>``; a
    Llama-2 or Vicuna one is ambiguous (``llava_llama_2`` or ``vicuna_v1``) and is not guessed.
    """
    by_type = {"qwen2": "qwen_2", "phi3": "phi_3", "gemma": "gemma", "mistral": "mistral_instruct"}
    if base_type in by_type:
        return by_type[base_type]
    if base_type == "llama" and "<|eot_id|>" in tokenizer_vocab:
        return "llama_3"
    return None
