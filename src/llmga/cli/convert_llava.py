"""``llmga convert-llava``: released LLaVA/LLMGA checkpoints to transformers LLaVA."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .root import app


@app.command("convert-llava")
def convert_llava(
    src: Annotated[Path, typer.Argument(metavar="SRC", help="Original-layout LLaVA/LLMGA checkpoint directory.")],
    dst: Annotated[Path, typer.Argument(metavar="DST", help="Where to write the transformers LLaVA model.")],
    vision_tower: Annotated[Path, typer.Option("--vision-tower", help="Local CLIP vision model directory.")],
    template: Annotated[Optional[str], typer.Option("--template", help=(
        "Conversation template the model was trained with: vicuna_v1, llava_v1, llava_llama_2, llama_2, "
        "mistral_instruct, llama_3, qwen_2, phi_3 or gemma. Default: the family's own where only one fits "
        "(Qwen2, Phi-3, Gemma, Mistral, Llama-3); Llama-2 and Vicuna checkpoints must name theirs."))] = None,
) -> None:
    """Convert a released LLaVA/LLMGA checkpoint so `--brain DST` runs it."""
    from ..convert import convert_llava_checkpoint

    typer.echo(f"converted: {convert_llava_checkpoint(src, vision_tower, dst, template)}")
