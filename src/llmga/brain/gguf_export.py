"""A merged text-only model written back as a GGUF file, so llama.cpp runs it.

An adapter trained on a GGUF base (``smollm2``, ``gemma3``) is merged into the
de-quantized base by transformers; :func:`export_gguf` writes that merged model
as a GGUF file with the base's own metadata (hyper-parameters, tokenizer, chat
template), its weights in ``Q8_0`` (norms in float32). llama.cpp then answers
about five times faster than transformers on a CPU, without importing
transformers, peft or the model's torch code.

Only the architectures in :data:`EXPORTABLE` are written; each needs the
inverse of what transformers does to its tensors when it reads a GGUF.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np


def _permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's rotary layout of a query or key projection (transformers un-permutes it when reading)."""
    return weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(
        weights.shape)


def _llama(name: str, weights: np.ndarray, heads: int, kv_heads: int) -> np.ndarray:
    if name.endswith("q_proj.weight"):
        return _permute(weights, heads)
    if name.endswith("k_proj.weight"):
        return _permute(weights, kv_heads)
    return weights


def _gemma3(name: str, weights: np.ndarray, heads: int, kv_heads: int) -> np.ndarray:
    return weights + 1 if name.endswith("norm.weight") else weights  # GGUF stores Gemma's (1 + w) norms


#: the architectures written (GGUF name -> how a transformers tensor becomes llama.cpp's)
EXPORTABLE: dict[str, Callable[[str, np.ndarray, int, int], np.ndarray]] = {"llama": _llama, "gemma3": _gemma3}


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


def export_gguf(state: Mapping[str, np.ndarray], base_gguf: Path, target: Path, chat_template: str | None = None,
                quant: str = "Q8_0") -> Path:
    """Write the float weights ``state`` (transformers names) as ``target``, a GGUF file carrying
    ``base_gguf``'s metadata, with ``chat_template`` (the one the model was trained with) in place of the
    base's; 2-D weights in ``quant``, the rest in float32."""
    import gguf

    base = gguf.GGUFReader(base_gguf)
    fields = base.fields
    arch = str(fields["general.architecture"].contents())
    if arch not in EXPORTABLE:
        raise ValueError(f"cannot write a {arch} model as GGUF (written: {', '.join(EXPORTABLE)})")
    blocks = int(fields[f"{arch}.block_count"].contents())
    heads = int(fields[f"{arch}.attention.head_count"].contents())
    kv_heads = int(fields[f"{arch}.attention.head_count_kv"].contents())
    names = gguf.get_tensor_name_map({v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}[arch], blocks)
    writer = gguf.GGUFWriter(target, arch)
    if chat_template:
        writer.add_chat_template(chat_template)
    _write(writer, base, state, names, gguf.GGMLQuantizationType[quant], EXPORTABLE[arch], (heads, kv_heads))
    return target


def _write(writer, base, state: Mapping[str, np.ndarray], names, kind, convert, heads: tuple[int, int]) -> None:
    """The base's metadata, then every tensor of ``state`` under its GGUF name."""
    import gguf

    block = gguf.GGML_QUANT_SIZES[kind][0]
    own_output = any(t.name == "output.weight" for t in base.tensors)
    for key, field in base.fields.items():
        if key.startswith("GGUF.") or key in writer.kv_data[0] or key == "general.file_type":
            continue  # the writer's own (architecture, chat template) win
        value_type = field.types[0]
        extra = {"sub_type": field.types[-1]} if value_type == gguf.GGUFValueType.ARRAY else {}
        writer.add_key_value(key, field.contents(), value_type, **extra)
    for name, weights in state.items():
        if name == "lm_head.weight" and not own_output:
            continue  # tied to the token embedding, as in the base
        gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ValueError(f"no GGUF name for tensor {name}")
        weights = convert(name, np.asarray(weights, dtype=np.float32), *heads)
        if weights.ndim == 2 and weights.shape[-1] % block == 0:
            writer.add_tensor(gguf_name, gguf.quants.quantize(weights, kind), raw_dtype=kind)
        else:
            writer.add_tensor(gguf_name, weights)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
