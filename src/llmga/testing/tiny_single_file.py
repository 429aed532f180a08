"""Single-file checkpoints in the original (CompVis/SGM) layout, written from a diffusers pipeline folder.

Model sites share Stable Diffusion as one ``.safetensors`` (or ``.ckpt``) file
with the original code's tensor names: the UNet under
``model.diffusion_model.`` (``input_blocks``/``middle_block``/``output_blocks``),
the VAE under ``first_stage_model.`` (``encoder.down.N.block.M``…), and the
text encoders under ``cond_stage_model.transformer.`` (SD 1.x) or
``conditioner.embedders.0.transformer.`` and, in OpenCLIP's layout,
``conditioner.embedders.1.model.`` (SDXL). :func:`write_single_file` renames a
diffusers pipeline's weights that way, so tests can load tiny single files
through diffusers' own ``from_single_file`` conversion.
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["write_single_file"]

_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
           "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def write_single_file(pipeline_dir: str | Path, out: str | Path) -> Path:
    """Write the weights of the SD 1.x or SDXL pipeline folder ``pipeline_dir`` as one original-layout file.

    ``out`` ending in ``.ckpt`` gets a pickled ``{"state_dict": …}``, else safetensors.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    folder, out = Path(pipeline_dir), Path(out)
    unet = UNet2DConditionModel.from_pretrained(folder / "unet")
    state = {f"model.diffusion_model.{k}": v for k, v in _unet(unet).items()}
    state.update({f"first_stage_model.{k}": v for k, v in _vae(AutoencoderKL.from_pretrained(folder / "vae")).items()})
    text = CLIPTextModel.from_pretrained(folder / "text_encoder").state_dict()
    # the original names are the unflattened CLIPTextModel's (transformers >= 5.6 drops "text_model.")
    text = {k if k.startswith("text_model.") else f"text_model.{k}": v for k, v in text.items()}
    if (folder / "text_encoder_2").is_dir():
        state.update({f"conditioner.embedders.0.transformer.{k}": v for k, v in text.items()})
        second = CLIPTextModelWithProjection.from_pretrained(folder / "text_encoder_2")
        state.update({f"conditioner.embedders.1.model.{k}": v for k, v in _open_clip(second).items()})
    else:
        state.update({f"cond_stage_model.transformer.{k}": v for k, v in text.items()})
    state = {k: v.contiguous() for k, v in state.items()}
    if out.suffix == ".ckpt":
        torch.save({"state_dict": state}, out)
    else:
        from safetensors.torch import save_file

        save_file(state, out)
    return out


def _unet(unet) -> dict[str, torch.Tensor]:
    config, renames = unet.config, {
        "time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
        "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
        "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
    }
    n = config.layers_per_block + 1
    for i, block in enumerate(unet.down_blocks):
        for j in range(len(block.resnets)):
            renames[f"down_blocks.{i}.resnets.{j}"] = f"input_blocks.{n * i + j + 1}.0"
            renames[f"down_blocks.{i}.attentions.{j}"] = f"input_blocks.{n * i + j + 1}.1"
        renames[f"down_blocks.{i}.downsamplers.0.conv"] = f"input_blocks.{n * (i + 1)}.0.op"
    for i, block in enumerate(unet.up_blocks):
        for j in range(len(block.resnets)):
            renames[f"up_blocks.{i}.resnets.{j}"] = f"output_blocks.{n * i + j}.0"
            renames[f"up_blocks.{i}.attentions.{j}"] = f"output_blocks.{n * i + j}.1"
        has_attention = bool(getattr(block, "attentions", None))
        renames[f"up_blocks.{i}.upsamplers.0"] = f"output_blocks.{n * i + n - 1}.{2 if has_attention else 1}"
    renames["mid_block.attentions.0"] = "middle_block.1"
    renames.update({f"mid_block.resnets.{j}": f"middle_block.{2 * j}" for j in range(2)})
    out = {}
    for key, value in unet.state_dict().items():
        new = _rename(key, renames)
        if ".resnets." in key or key.startswith("mid_block.resnets"):
            new = _rename_inner(new, _RESNET)
        out[new] = value
    return out


def _vae(vae) -> dict[str, torch.Tensor]:
    renames = {"encoder.conv_norm_out": "encoder.norm_out", "decoder.conv_norm_out": "decoder.norm_out"}
    for part in ("encoder", "decoder"):
        renames[f"{part}.mid_block.attentions.0"] = f"{part}.mid.attn_1"
        renames.update({f"{part}.mid_block.resnets.{j}": f"{part}.mid.block_{j + 1}" for j in range(2)})
    for i, block in enumerate(vae.encoder.down_blocks):
        renames.update({f"encoder.down_blocks.{i}.resnets.{j}": f"encoder.down.{i}.block.{j}"
                        for j in range(len(block.resnets))})
        renames[f"encoder.down_blocks.{i}.downsamplers.0"] = f"encoder.down.{i}.downsample"
    ups = len(vae.decoder.up_blocks)
    for i, block in enumerate(vae.decoder.up_blocks):
        renames.update({f"decoder.up_blocks.{i}.resnets.{j}": f"decoder.up.{ups - 1 - i}.block.{j}"
                        for j in range(len(block.resnets))})
        renames[f"decoder.up_blocks.{i}.upsamplers.0"] = f"decoder.up.{ups - 1 - i}.upsample"
    out = {}
    for key, value in vae.state_dict().items():
        new = _rename_inner(_rename(key, renames), {"conv_shortcut": "nin_shortcut"})
        if ".attn_1." in new:
            new = _rename_inner(new, _VAE_ATTN)
            value = value[..., None, None] if value.ndim == 2 else value  # 1x1 convolutions there
        out[new] = value
    return out


def _open_clip(model) -> dict[str, torch.Tensor]:
    """A CLIPTextModelWithProjection's weights in OpenCLIP's layout (as SDXL's second text encoder ships)."""
    s = model.state_dict()
    out = {"token_embedding.weight": s["text_model.embeddings.token_embedding.weight"],
           "positional_embedding": s["text_model.embeddings.position_embedding.weight"],
           "ln_final.weight": s["text_model.final_layer_norm.weight"],
           "ln_final.bias": s["text_model.final_layer_norm.bias"],
           "text_projection": s["text_projection.weight"].T}
    for i in range(model.config.num_hidden_layers):
        hf, oc = f"text_model.encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for p in ("weight", "bias"):
            out[oc + f"attn.in_proj_{p}"] = torch.cat([s[hf + f"self_attn.{x}_proj.{p}"] for x in "qkv"])
            for new, old in (("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("attn.out_proj", "self_attn.out_proj"),
                             ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
                out[oc + f"{new}.{p}"] = s[hf + f"{old}.{p}"]
    return out


def _rename(key: str, renames: dict[str, str]) -> str:
    """``key`` with its longest matching prefix replaced."""
    for old in sorted(renames, key=len, reverse=True):
        if key.startswith(old + "."):
            return renames[old] + key[len(old):]
    return key


def _rename_inner(key: str, renames: dict[str, str]) -> str:
    for old, new in renames.items():
        key = key.replace(f".{old}.", f".{new}.")
    return key
