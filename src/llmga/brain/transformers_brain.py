"""Brains that run a transformers model in this process.

:class:`TransformersBrain` covers both kinds: a text-only causal LM (from a
directory or a GGUF file) and a LLaVA-format multimodal model (vision encoder +
projector + LLM, from a directory). The chat format always comes from the
model's own ``chat_template``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..checkpoints import check_transformers_dir, write_once
from ..conversation import Message
from ..errors import BrainError, BrainFailedError
from ..protocol import END_MARKERS
from .base import BrainRequest
from .context import fit_conversation, reply_room
from .forms import keep_to_form
from .scripts import ScriptMask, stored_table


def default_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TransformersBrain:
    """A local transformers chat model, text-only or multimodal.

    ``template`` is what applies the chat template: the processor for a
    multimodal model, else the tokenizer.
    """

    #: it keeps a reply to the scripts a request names (:attr:`BrainRequest.scripts`)
    keeps_scripts = True

    def __init__(self, model: Any, tokenizer: Any, processor: Any = None, name: str = "") -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.processor = processor
        self.multimodal = processor is not None
        self.name = name or type(model).__name__
        self.end_markers = tuple(dict.fromkeys(t for t in (tokenizer.eos_token, *END_MARKERS) if t))
        self._script_mask = ScriptMask(lambda: _token_bytes(tokenizer), store=lambda: stored_table(vocabulary_key(tokenizer)))
        template_owner = processor if processor is not None else tokenizer
        if not getattr(template_owner, "chat_template", None):
            raise BrainError(
                f"{self.name} has no chat_template, so llmga cannot format a conversation for it; "
                "add one to its tokenizer_config.json (or chat_template.jinja) or load it with chat_template=..."
            )

    def _text_of(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=False)

    @classmethod
    def load_causal(
        cls, path: str | Path, gguf_file: str | None = None, device: str | torch.device | None = None,
        quantize: str | None = None, dtype: str | None = None,
    ) -> TransformersBrain:
        """Load a text-only causal LM from a directory, or from ``gguf_file`` inside it.

        ``quantize`` "4bit"/"8bit" quantizes its linear layers as it loads (bitsandbytes).
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path) if gguf_file else check_transformers_dir(path)
        kwargs = {"gguf_file": gguf_file} if gguf_file else {}
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, **kwargs)
        model = _load(AutoModelForCausalLM, path, device, quantize, dtype, **kwargs)
        return cls(model, tokenizer, name=str(Path(path) / (gguf_file or "")))

    @classmethod
    def load_multimodal(
        cls, path: str | Path, device: str | torch.device | None = None, quantize: str | None = None,
        dtype: str | None = None,
    ) -> TransformersBrain:
        """Load an image-text-to-text model (LLaVA-format, LLaVA-NeXT, ...) from a directory.

        ``quantize`` quantizes the language model only (the vision tower and projector keep their precision).
        """
        from transformers import AutoModelForImageTextToText, AutoProcessor

        path = check_transformers_dir(path)
        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        model = _load(AutoModelForImageTextToText, path, device, quantize, dtype)
        return cls(model, processor.tokenizer, processor, name=str(path))

    def describe(self) -> str:
        kind = "multimodal" if self.multimodal else "text-only"
        return f"{self.name} ({kind}, transformers, {self.model.device})"

    def stream(self, request: BrainRequest) -> Iterator[str]:
        """Generate the assistant's turn, yielding text as it is decoded."""
        from transformers import LogitsProcessorList, StoppingCriteriaList, TextIteratorStreamer

        messages, images, settings, prefill = request.messages, request.images, request.settings, request.prefill

        inputs = self._fitting_inputs(messages, images, prefill, settings.max_new_tokens)
        max_new = self._room(inputs["input_ids"].shape[1], settings.max_new_tokens)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=False)
        kwargs = dict(
            **inputs,
            max_new_tokens=max_new,
            streamer=streamer,
            do_sample=settings.temperature > 0,
            repetition_penalty=settings.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        )
        if request.stop is not None:
            kwargs["stopping_criteria"] = StoppingCriteriaList([_StopWhenSet(request.stop)])
        limits = [_KeepToScripts(self._script_mask, request.scripts)] if request.scripts is not None else []
        if request.prompt_form is not None:
            limits.append(_KeepToForm(request.prompt_form, inputs["input_ids"].shape[1], self._text_of, prefill))
        if limits:
            kwargs["logits_processor"] = LogitsProcessorList(limits)
        if settings.temperature > 0:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                if settings.seed is not None:
                    torch.manual_seed(settings.seed)
                with torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as exc:  # handed to the caller's thread below
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        if prefill:
            yield prefill
        yield from streamer
        worker.join()
        if failure:
            raise BrainFailedError(f"{self.name} failed while generating: {failure[0]}") from failure[0]

    def _fitting_inputs(self, messages: Sequence[Message], images: Sequence[Image.Image], prefill: str,
                        wanted: int) -> dict:
        """The model inputs of the conversation, its oldest exchanges left out until the reply has room
        (:func:`~llmga.brain.context.fit_conversation`); an image goes with the message it is in."""
        def build(kept: list[Message], dropped: list[Message]) -> tuple[dict, int]:
            inputs = self._inputs(kept, images[sum(_image_parts(m) for m in dropped):], prefill)
            return inputs, inputs["input_ids"].shape[1]

        return fit_conversation(messages, build, self._context(), wanted)

    def _inputs(self, messages: Sequence[Message], images: Sequence[Image.Image], prefill: str) -> dict:
        if images and not self.multimodal:
            raise BrainError(f"{self.name} is a text-only model and cannot read images")
        owner = self.processor if self.multimodal else self.tokenizer
        try:
            text = owner.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        except Exception as exc:  # jinja errors, role-order rules of a template
            raise BrainError(f"the chat template of {self.name} rejected the conversation: {exc}") from exc
        text += prefill
        if self.multimodal:
            inputs = self.processor(text=text, images=list(images) or None, return_tensors="pt")
        else:
            inputs = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        return {k: v.to(self.model.device) for k, v in inputs.items()}

    def _context(self) -> int | None:
        config = getattr(self.model.config, "text_config", self.model.config)
        return getattr(config, "max_position_embeddings", None)

    def _room(self, prompt_tokens: int, wanted: int) -> int:
        """New tokens that fit the context; a message that does not fit by itself is an error."""
        return reply_room(prompt_tokens, wanted, self._context(), self.name)


def _byte_level_alphabet() -> dict[str, int]:
    """The byte each character of a byte-level BPE vocabulary (GPT-2's) stands for: printable bytes stand for
    themselves, the others for the characters from U+0100 on, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {chr(b): b for b in printable} | {chr(256 + n): b for n, b in enumerate(others)}


def vocabulary_key(tokenizer: Any) -> str:
    """A digest of what decides every token's bytes: a fast tokenizer's whole definition (vocabulary, added
    tokens, decoder), else the tokenizer's class and its pieces in id order."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else "\n".join(
        [type(tokenizer).__name__, *map(str, tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))))])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _token_bytes(tokenizer: Any) -> list[bytes]:
    """Every token's bytes, in id order: a byte-fallback piece ("<0xD0>") or a byte-level BPE piece ("Ð")
    that holds part of a letter is read back to its bytes, any other token is its decoded text."""
    byte_of = _byte_level_alphabet()
    ids = range(len(tokenizer))
    found = []
    for piece, text in zip(tokenizer.convert_ids_to_tokens(list(ids)), tokenizer.batch_decode([[i] for i in ids])):
        if "\ufffd" not in text or not isinstance(piece, str):
            found.append(text.encode())
        elif re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", piece):
            found.append(bytes([int(piece[3:5], 16)]))
        elif all(char in byte_of for char in piece):
            found.append(bytes(byte_of[char] for char in piece))
        else:
            found.append(text.encode())
    return found


class _KeepToScripts:
    """A logits processor giving tokens with letters of scripts outside ``allowed`` no chance."""

    def __init__(self, mask: ScriptMask, allowed: frozenset[str]) -> None:
        self.mask, self.allowed = mask, allowed

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        banned = torch.from_numpy(self.mask.banned(self.allowed, scores.shape[-1])).to(scores.device)
        return scores.masked_fill(banned, float("-inf"))


class _KeepToForm:
    """A logits processor keeping the text inside a generation tag to a form (:mod:`llmga.brain.forms`); the
    reply's tokens begin at ``start``."""

    def __init__(self, form: Any, start: int, text_of: Callable[[list[int]], str], prefill: str) -> None:
        self.form, self.start, self.text_of, self.prefill = form, start, text_of, prefill

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        rows = [keep_to_form(self.form, ids[self.start:].tolist(), self.text_of, row.float().cpu().numpy(), self.prefill)
                for ids, row in zip(input_ids, scores)]
        return torch.from_numpy(np.stack(rows)).to(scores.device, scores.dtype)


class _StopWhenSet:
    """A generation stopping criterion: stop once ``event`` is set (the reader left)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def _image_parts(message: Message) -> int:
    content = message.get("content")
    return sum(part.get("type") == "image" for part in content) if isinstance(content, list) else 0


def _dtype(device: torch.device | None) -> torch.dtype:
    device = device or default_device()
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _load(
    auto_class: Any, path: Path, device: str | torch.device | None, quantize: str | None, dtype: str | None = None,
    **kwargs: Any,
) -> Any:
    """``auto_class.from_pretrained`` offline on ``device``, in ``dtype`` (default: bfloat16 on CUDA), quantized
    if asked."""
    device = torch.device(device) if device is not None else default_device()
    weights = getattr(torch, dtype) if dtype else _dtype(device)
    if quantize is None:
        return auto_class.from_pretrained(path, local_files_only=True, dtype=weights, **kwargs).to(device)
    config = quantization_config(quantize, weights)
    return auto_class.from_pretrained(path, local_files_only=True, dtype=weights, quantization_config=config,
                                      device_map={"": str(device)}, **kwargs)


def quantization_config(quantize: str, compute_dtype: torch.dtype) -> Any:
    """bitsandbytes settings for "4bit" (NF4, double quantization) or "8bit" (LLM.int8), as the released
    LLaVA/LLMGA code loads with ``--load-4bit``/``--load-8bit``; vision parts stay unquantized."""
    from transformers import BitsAndBytesConfig

    if importlib.util.find_spec("bitsandbytes") is None:
        raise BrainError(f"--brain-quantize {quantize} needs bitsandbytes: pip install bitsandbytes")
    keep = ["vision_tower", "multi_modal_projector", "lm_head", "visual"]
    if quantize == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=compute_dtype, llm_int8_skip_modules=keep)
    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=keep)
    raise BrainError(f"unknown quantization {quantize!r}; use 4bit or 8bit")


def materialize_gguf(gguf_path: Path, cache_dir: Path) -> Path:
    """Convert a GGUF model once into a transformers directory (safetensors) and return it.

    Loading the dequantized copy takes under a second instead of the GGUF's
    ~15 s. The copy lives in ``cache_dir`` under a name derived from the GGUF
    file, and is written atomically (a half-written copy is never used).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_dir / f"{gguf_path.stem}-{key}"
    if (target / "config.json").is_file():
        return target

    def convert(folder: Path) -> None:
        with _gguf_read_once():
            tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
            model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                         dtype=torch.float32)
        if not tokenizer.chat_template:
            _add_chat_format(model, tokenizer)
        # transformers refuses to save a model it loaded from GGUF; the weights are plain float32 now.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)

    return write_once(target, convert)


#: held while a GGUF file is converted (:func:`_gguf_read_once` swaps the library's reader meanwhile)
_CONVERTING = threading.Lock()


@contextmanager
def _gguf_read_once() -> Iterator[None]:
    """Within the block, ``gguf.GGUFReader`` parses each file once. transformers reads a GGUF file three times to
    convert it (its config, its tokenizer, its weights), each time parsing every metadata field: about 10 s each
    for Gemma 3's 262k-token vocabulary on 2 CPU cores. The reader only reads (a memory map), so one serves all
    three. One thread converts at a time, so the library's own reader is always put back."""
    import gguf

    with _CONVERTING:
        parse = gguf.GGUFReader
        readers: dict[tuple[str, str], Any] = {}

        def read(path: Any, mode: str = "r") -> Any:
            key = (str(Path(path).resolve()), mode)
            if key not in readers:
                readers[key] = parse(path, mode)
            return readers[key]

        gguf.GGUFReader = read
        try:
            yield
        finally:
            gguf.GGUFReader = parse


def _add_chat_format(model: Any, tokenizer: Any) -> None:
    """Give a pretrained GGUF model that carries no chat template llmga's template for its family, and
    make generation stop at that template's end of turn (a family llmga has no template for keeps none)."""
    from .gguf_bases import GGUF_BASE_FORMATS

    chat_format = GGUF_BASE_FORMATS.get(model.config.model_type.removesuffix("_text"))
    if chat_format is None:
        return
    tokenizer.chat_template, ends = chat_format
    stops = [tokenizer.convert_tokens_to_ids(t) for t in ends]
    model.generation_config.eos_token_id = list(dict.fromkeys([*stops, tokenizer.eos_token_id]))
