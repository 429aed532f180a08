"""Loading a brain's model for training, and saving the trained result."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..brain import SYSTEM_PROMPT_FILE, adapter_base, cache_dir, recorded_spec, resolve_brain
from ..errors import InvalidInputError

#: names the base model (a brain spec) beside a saved adapter
BASE_FILE = "llmga_base.json"
# Parts of a LLaVA model that are not the language model.
_VISION = "vision_tower"
_PROJECTOR = "multi_modal_projector"


@dataclass
class TrainableModel:
    """A model ready to train, with what is needed to encode data and save it."""

    model: Any
    tokenizer: Any
    processor: Any = None
    spec: str = ""

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else self.tokenizer.eos_token_id

    def save(self, model: Any, path: Path, system_prompt: str | None = None) -> None:
        """Save ``model`` (LoRA adapters merged in) with its tokenizer/processor, loadable by load_brain.

        A LoRA run also writes the adapter alone to ``path/adapter`` (small enough to ship);
        ``load_brain`` loads that folder on top of the base model it names. A model trained under a
        ``system_prompt`` of its own gets it beside its weights (both folders).
        """
        if hasattr(model, "merge_and_unload"):
            save_adapter(model, path / "adapter", self.spec)
            if system_prompt:
                (path / "adapter" / SYSTEM_PROMPT_FILE).write_text(system_prompt)
            model = model.merge_and_unload()
        model.save_pretrained(path, safe_serialization=True)
        if system_prompt:
            (path / SYSTEM_PROMPT_FILE).write_text(system_prompt)
        (self.processor or self.tokenizer).save_pretrained(path)


def save_adapter(model: Any, path: Path, base: str) -> None:
    """Write a peft model's adapter (float16 safetensors) and the brain spec of its base model."""
    base = recorded_spec(base)
    model.save_pretrained(path, safe_serialization=True, save_embedding_layers=False)  # new token rows are saved alone
    weights = path / "adapter_model.safetensors"
    from safetensors.torch import load_file, save_file

    save_file({k: v.half() for k, v in load_file(weights).items()}, weights)
    (path / BASE_FILE).write_text(json.dumps({"base": base}))
    config_file = path / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = base  # not this machine's cache path
    config_file.write_text(json.dumps(config, indent=2))
    (path / "README.md").unlink(missing_ok=True)  # peft's empty model-card template


def load_trainable(spec: str, lora: bool, rank: int = 16, alpha: int = 32,
                   projector_only: bool = False) -> TrainableModel:
    """Load the brain named by ``spec`` (a directory, .gguf file, 'smollm2' or a trained adapter) for training.

    The vision tower of a LLaVA-format model is frozen; with ``lora`` the
    language model gets LoRA adapters on its linear layers and the projector
    trains fully. An adapter (``smollm2-world``, a run's ``final/adapter``) is
    continued: its base is loaded with the adapter on it, trainable at its own
    rank (with ``lora``), or merged in for full training; what is saved names
    that base. With ``projector_only`` only the projector trains (LLaVA's feature
    alignment): the language model, and any adapter on it, stay as they are.
    """
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

    from ..brain.transformers_brain import materialize_gguf

    resolved = resolve_brain(spec)
    adapter = None
    if resolved.kind == "adapter":
        adapter = Path(resolved.location)
        spec = adapter_base(adapter)
        resolved = resolve_brain(spec)
    if resolved.kind == "server":
        raise InvalidInputError("a model behind a server cannot be trained here; give its weights' directory")
    path = Path(resolved.location)
    if resolved.kind == "gguf":
        path = materialize_gguf(path, cache_dir())
    processor = None
    if resolved.kind == "multimodal":
        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True, dtype=torch.float32)
        tokenizer = processor.tokenizer
    else:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter, is_trainable=lora)
        if not lora:
            model = model.merge_and_unload()  # peft froze every weight; full training thaws them below
    if adapter is None or not lora:  # a continued LoRA adapter trains as peft loaded it
        for name, param in model.named_parameters():
            param.requires_grad = _VISION not in name
        if lora:
            model = with_adapter(model, rank, alpha)
    if projector_only:
        _train_projector_only(model)
    return TrainableModel(model, tokenizer, processor, spec=spec)


def _train_projector_only(model: Any) -> None:
    """Freeze everything but the projector (under peft, its trainable copy)."""
    if not _has_projector(model):
        raise InvalidInputError("only a LLaVA-format model has a projector to train alone; this one is text-only")
    for name, param in model.named_parameters():
        if _PROJECTOR not in name:
            param.requires_grad = False


def _has_projector(model: Any) -> bool:
    return any(_PROJECTOR in name for name, _ in model.named_modules())


def with_adapter(model: Any, rank: int, alpha: int, lora: bool = True,
                 token_indices: list[int] | None = None) -> Any:
    """``model`` under a peft adapter: LoRA on the language model's linear layers (the projector trains
    fully), and/or the embeddings of ``token_indices`` alone (new tokens; tied output rows follow)."""
    from peft import LoraConfig, TrainableTokensConfig, get_peft_model

    if not lora:
        tokens = TrainableTokensConfig(target_modules=["embed_tokens"], token_indices=token_indices)
        return get_peft_model(model, tokens)
    targets = sorted(
        name for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not any(k in name for k in (_VISION, _PROJECTOR, "lm_head"))
    )
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets,
                        modules_to_save=[_PROJECTOR] if _has_projector(model) else None, task_type="CAUSAL_LM",
                        trainable_token_indices=token_indices)
    return get_peft_model(model, config)
