"""A LoRA adapter merged into its GGUF base and written as a GGUF file, so llama.cpp runs it.

An adapter trained on a GGUF base (``smollm2``, ``gemma3``) changes only some
projections. :func:`merge_lora_gguf` reads the base once, adds each adapter
delta (``B @ A`` times its scale) to the de-quantized projection it belongs
to and writes that in ``Q8_0``; every other tensor, and the base's metadata
(hyper-parameters, tokenizer), is copied as it is. The file carries a chat
template: the base's own, else llmga's for its family
(:mod:`llmga.brain.gguf_bases`). Neither torch nor transformers is needed,
and llama.cpp then answers about five times faster than transformers on a CPU.

Only the architectures in :data:`MERGEABLE` are written: each needs the
layout in which llama.cpp stores a projection that transformers reads
rearranged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's rotary layout of a query or key projection (transformers un-permutes it when reading)."""
    return weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(
        weights.shape)


def _llama(name: str, delta: np.ndarray, heads: int, kv_heads: int) -> np.ndarray:
    if name.endswith("q_proj.weight"):
        return _permute(delta, heads)
    if name.endswith("k_proj.weight"):
        return _permute(delta, kv_heads)
    return delta


def _as_stored(name: str, delta: np.ndarray, heads: int, kv_heads: int) -> np.ndarray:
    return delta


#: the architectures written (GGUF name -> how a change to a transformers projection becomes llama.cpp's)
MERGEABLE: dict[str, Callable[[str, np.ndarray, int, int], np.ndarray]] = {"llama": _llama, "gemma3": _as_stored}

#: the adapter settings :func:`merge_lora_gguf` reproduces, with the values it takes (a plain LoRA)
_PLAIN_LORA = {"peft_type": ("LORA",), "use_dora": (False, None), "lora_bias": (False, None),
               "fan_in_fan_out": (False, None), "bias": ("none", None), "rank_pattern": ({}, None),
               "alpha_pattern": ({}, None), "modules_to_save": (None,), "trainable_token_indices": (None,),
               "target_parameters": (None,), "layer_replication": (None,), "use_qalora": (False, None)}


def base_architecture(base_gguf: Path) -> str:
    """The architecture a GGUF file declares (``general.architecture``).

    Writers put that key first, so it is read from the header alone: ``gguf.GGUFReader`` parses every
    field, the tokenizer's too (about 12 s for Gemma 3's 262k tokens on 2 CPU cores). A file with another
    key first is read whole."""
    import struct

    import gguf

    with open(base_gguf, "rb") as file:
        head = file.read(4096)
    if head[:4] == b"GGUF" and len(head) >= 32:
        (key_length,) = struct.unpack_from("<Q", head, 24)
        key_end = 32 + key_length
        if head[32:key_end] == b"general.architecture" and len(head) >= key_end + 12:
            kind, value_length = struct.unpack_from("<IQ", head, key_end)
            if kind == gguf.GGUFValueType.STRING and len(head) >= key_end + 12 + value_length:
                return head[key_end + 12:key_end + 12 + value_length].decode()
    return str(gguf.GGUFReader(base_gguf).fields["general.architecture"].contents())


def unmergeable(adapter: Path) -> str | None:
    """Why the adapter at ``adapter`` cannot be merged into a GGUF file here (None: it can): only a plain
    LoRA is (no DoRA, per-module ranks, trained embeddings...)."""
    if not (adapter / "adapter_model.safetensors").is_file():
        return "its weights are not in adapter_model.safetensors"
    config = json.loads((adapter / "adapter_config.json").read_text())
    odd = [key for key, taken in _PLAIN_LORA.items() if config.get(key) not in taken]
    return f"it is not a plain LoRA ({', '.join(odd)})" if odd else None


def lora_deltas(adapter: Path) -> dict[str, np.ndarray]:
    """What the adapter adds to each weight it changes: ``B @ A`` times its scale, float32, by the weight's
    transformers name (``model.layers.0.self_attn.q_proj.weight``)."""
    config = json.loads((adapter / "adapter_config.json").read_text())
    rank = config["r"]
    scale = config["lora_alpha"] / (rank ** 0.5 if config.get("use_rslora") else rank)
    tensors = _adapter_tensors(adapter)
    deltas = {}
    for key, down in tensors.items():
        if not key.endswith(".lora_A.weight"):
            if not key.endswith(".lora_B.weight"):
                raise ValueError(f"adapter {adapter}: {key} is not a LoRA matrix")
            continue
        module = key.removesuffix(".lora_A.weight")
        up = tensors[f"{module}.lora_B.weight"]
        deltas[f"{module.removeprefix('base_model.model.')}.weight"] = (up @ down) * np.float32(scale)
    return deltas


def reads_without_torch(adapter: Path) -> bool:
    """Whether the adapter's matrices are read without torch: all but bfloat16 ones, which numpy lacks."""
    from safetensors import safe_open

    with safe_open(adapter / "adapter_model.safetensors", "np") as weights:
        return all(weights.get_slice(key).get_dtype() != "BF16" for key in weights.keys())


def _adapter_tensors(adapter: Path) -> dict[str, np.ndarray]:
    """The adapter's matrices as float32 numpy arrays."""
    from safetensors import safe_open

    numpy_reads = reads_without_torch(adapter)
    with safe_open(adapter / "adapter_model.safetensors", "np" if numpy_reads else "pt") as weights:
        return {key: (weights.get_tensor(key) if numpy_reads else weights.get_tensor(key).float().numpy())
                .astype(np.float32) for key in weights.keys()}


def merge_lora_gguf(adapter: Path, base_gguf: Path, target: Path, quant: str = "Q8_0") -> Path:
    """Write ``target``: the GGUF ``base_gguf`` with the LoRA adapter at ``adapter`` merged in, each changed
    weight in ``quant`` (where its rows split into ``quant``'s blocks, else float32)."""
    import gguf

    from .gguf_bases import GGUF_BASE_FORMATS

    why_not = unmergeable(adapter)
    if why_not:
        raise ValueError(f"adapter {adapter} cannot be merged into a GGUF file: {why_not}")
    base = gguf.GGUFReader(base_gguf)
    fields = base.fields
    arch = str(fields["general.architecture"].contents())
    if arch not in MERGEABLE:
        raise ValueError(f"cannot write a {arch} model as GGUF (written: {', '.join(MERGEABLE)})")
    blocks = int(fields[f"{arch}.block_count"].contents())
    heads = (int(fields[f"{arch}.attention.head_count"].contents()),
             int(fields[f"{arch}.attention.head_count_kv"].contents()))
    names = gguf.get_tensor_name_map({v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}[arch], blocks)
    changes = {}
    for name, delta in lora_deltas(adapter).items():
        gguf_name = names.get_name(name, try_suffixes=(".weight",))
        if gguf_name is None:
            raise ValueError(f"adapter {adapter}: no GGUF name for {name}")
        changes[gguf_name] = MERGEABLE[arch](name, delta, *heads)
    writer = gguf.GGUFWriter(target, arch)
    if "tokenizer.chat_template" not in fields and arch in GGUF_BASE_FORMATS:
        writer.add_chat_template(GGUF_BASE_FORMATS[arch][0])
    _copy_metadata(writer, fields)
    kind = gguf.GGMLQuantizationType[quant]
    for tensor in base.tensors:
        delta = changes.pop(tensor.name, None)
        if delta is None:
            writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
            continue
        weights = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        if weights.shape != delta.shape:
            raise ValueError(f"adapter {adapter} changes {tensor.name} as {delta.shape}, the base has {weights.shape}")
        weights = weights + delta
        if weights.shape[-1] % gguf.GGML_QUANT_SIZES[kind][0] == 0:
            writer.add_tensor(tensor.name, gguf.quants.quantize(weights, kind), raw_dtype=kind)
        else:
            writer.add_tensor(tensor.name, weights)
    if changes:
        raise ValueError(f"adapter {adapter} changes tensors {base_gguf} lacks: {', '.join(sorted(changes))}")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target


def _copy_metadata(writer, fields) -> None:
    """The base's metadata, but for what the writer sets itself (architecture, a chat template) and the file
    type, which the mixed weights no longer have."""
    import gguf

    for key, field in fields.items():
        if key.startswith("GGUF.") or key in writer.kv_data[0] or key == "general.file_type":
            continue
        value_type = field.types[0]
        extra = {"sub_type": field.types[-1]} if value_type == gguf.GGUFValueType.ARRAY else {}
        writer.add_key_value(key, field.contents(), value_type, **extra)
