"""A GGUF brain run by llama.cpp (``llama-cpp-python``), quantized as the file is: a 4-bit 7B model stays ~4 GB.

The chat format is the GGUF's own ``tokenizer.chat_template``, rendered here
(as transformers renders templates), so a prefill can start the reply;
llama.cpp then completes the text and stops at the model's end-of-turn
markers. With CUDA present every layer goes to the GPU (``n_gpu_layers=-1``)
when llama.cpp was built with CUDA; otherwise it runs on the CPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoints import fingerprint
from ..conversation import Message
from ..errors import BrainError, ModelNotFoundError
from ..protocol import END_MARKERS
from .base import BrainRequest, plain_messages
from .context import fit_conversation, reply_room
from .forms import keep_to_form
from .scripts import ScriptMask, stored_table


#: llama.cpp lines logged at error level that report a default, not a fault (Gemma 3's sliding-window cache)
QUIET_LINES = (b"llama_kv_cache_iswa: using full-size SWA cache",)
_quiet_callback: Any = None


def _quiet_llama_cpp_log() -> None:
    """Route llama.cpp's log through llama-cpp-python's own handler, less :data:`QUIET_LINES`."""
    global _quiet_callback
    if _quiet_callback is not None:
        return
    import ctypes

    import llama_cpp
    from llama_cpp import _logger

    @llama_cpp.llama_log_callback
    def forward(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        if not text.startswith(QUIET_LINES):
            _logger.llama_log_callback(level, text, user_data)

    _quiet_callback = forward  # llama.cpp holds a bare pointer to it: keep it alive
    llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))


class LlamaCppBrain:
    """A text-only chat model from a ``.gguf`` file, in this process through llama.cpp."""

    multimodal = False
    #: it keeps a reply to the scripts a request names (:attr:`BrainRequest.scripts`)
    keeps_scripts = True

    def __init__(self, path: str | Path, n_ctx: int = 4096, device: str | None = None) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelNotFoundError("GGUF brains run on llama.cpp: pip install llama-cpp-python") from exc
        _quiet_llama_cpp_log()
        self.path = Path(path)
        gpu = device is None or device.startswith("cuda")
        cores = os.cpu_count() or 1
        # Generating leaves a core to the rest of the process (the painter's imports, a server's requests);
        # reading the prompt, which is short, takes them all.
        self.llm = Llama(model_path=str(self.path), n_ctx=n_ctx, n_gpu_layers=-1 if gpu else 0,
                         n_threads=max(1, min(4, cores - 1)), n_threads_batch=max(1, min(4, cores)), verbose=False)
        self.name = str(self.path)
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise BrainError(f"{self.path} has no chat template in its GGUF metadata (tokenizer.chat_template)")
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        self._template = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(template)
        self._specials = {"bos_token": self._token(self.llm.token_bos()), "eos_token": self._token(self.llm.token_eos())}
        self.end_markers = tuple(dict.fromkeys((self._specials["eos_token"], *END_MARKERS)))
        self._script_mask = ScriptMask(lambda: (self.llm.detokenize([i]) for i in range(self.llm.n_vocab())),
                                       store=lambda: stored_table(fingerprint(self.path)))
        self._read: list[int] = []  # the last prompt, which llama.cpp read in batches

    def _token(self, token_id: int) -> str:
        return self.llm.detokenize([token_id], special=True).decode("utf-8", "replace") if token_id >= 0 else ""

    def describe(self) -> str:
        return f"{self.name} (text-only, llama.cpp GGUF)"

    def prompt(self, messages: Any, prefill: str = "") -> str:
        """The conversation in the model's chat format, ready for the assistant's turn (plus ``prefill``)."""
        return self._template.render(messages=plain_messages(messages), add_generation_prompt=True,
                                     **self._specials) + prefill

    def stream(self, request: BrainRequest) -> Iterator[str]:
        if request.images:
            raise BrainError(f"{self.name} is a text-only model and cannot read images")
        settings = request.settings

        def build(kept: list[Message], dropped: list[Message]) -> tuple[list[int], int]:
            # the template writes any begin token itself; llama.cpp adds none to a prompt given as tokens
            tokens = self.llm.tokenize(self.prompt(kept, request.prefill).encode("utf-8"), add_bos=False, special=True)
            return tokens, len(tokens)

        prompt = fit_conversation(request.messages, build, self.llm.n_ctx(), settings.max_new_tokens)
        room = reply_room(len(prompt), settings.max_new_tokens, self.llm.n_ctx(), self.name)
        self._keep_read_prefix(prompt)
        if request.prefill:
            yield request.prefill
        try:
            pieces = self.llm.create_completion(
                prompt, max_tokens=room, temperature=settings.temperature, top_p=settings.top_p,
                repeat_penalty=settings.repetition_penalty, seed=settings.seed if settings.seed is not None else -1,
                stop=list(self.end_markers), stream=True,
                logits_processor=self._limits(request, len(prompt)),
            )
            for piece in pieces:
                yield piece["choices"][0]["text"]
        except ValueError as exc:  # llama.cpp's own refusals of a prompt
            raise BrainError(f"{self.name}: {exc}") from exc

    def _keep_read_prefix(self, prompt: list[int]) -> None:
        """Keep of llama.cpp's cache only the start ``prompt`` shares with the last prompt, so a reply depends
        on its conversation alone: llama.cpp decodes a reply's tokens one at a time, and a token decoded alone
        gets slightly different numbers than in a batch, enough to change a greedy reply ("You'ht!" for
        "You're welcome."). At least two tokens are left to read, and never one alone at a batch's end."""
        keep = min(self.llm.n_tokens, self.llm.longest_token_prefix(self._read, prompt), len(prompt) - 2)
        if (len(prompt) - keep) % self.llm.n_batch == 1:
            keep -= 1
        self.llm.n_tokens = max(0, keep)
        self._read = prompt

    def _limits(self, request: BrainRequest, start: int) -> Any:
        """Logits processors keeping a reply to the request's scripts and prompt form (None: none to keep);
        the reply's tokens begin at ``start``."""
        from llama_cpp import LogitsProcessorList

        limits = []
        if request.scripts is not None:
            def keep_to_scripts(_ids: Any, logits: Any) -> Any:
                logits[self._script_mask.banned(request.scripts, len(logits))] = -np.inf
                return logits

            limits.append(keep_to_scripts)
        if request.prompt_form is not None:
            def keep_to_prompt_form(ids: Any, logits: Any) -> Any:
                return keep_to_form(request.prompt_form, ids[start:].tolist(), self._text_of, logits, request.prefill)

            limits.append(keep_to_prompt_form)
        return LogitsProcessorList(limits) if limits else None

    def _text_of(self, tokens: list[int]) -> str:
        return self.llm.detokenize(tokens).decode("utf-8", "ignore")
