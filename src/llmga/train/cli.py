"""``llmga train …``: the training commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

train_app = typer.Typer(help="Train the assistant (stage 1) and the diffusion UNet (stage 2).", no_args_is_help=True)


@train_app.command("stage1")
def stage1(
    model: Annotated[str, typer.Option("--model", help="Brain to fine-tune: directory, .gguf file or 'smollm2'.")],
    data: Annotated[list[Path], typer.Option("--data", help="LLaVA-format JSON/JSONL file (repeat for several).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints/, logs/, final/.")],
    lora: Annotated[bool, typer.Option("--lora/--full", help="LoRA adapters (merged at the end) or full fine-tuning.")] = True,
    lora_rank: Annotated[int, typer.Option(help="LoRA rank.")] = 16,
    lora_alpha: Annotated[int, typer.Option(help="LoRA alpha.")] = 32,
    epochs: Annotated[int, typer.Option(help="Passes over the data (unless --max-steps).")] = 1,
    max_steps: Annotated[Optional[int], typer.Option(help="Optimizer steps to run in all.")] = None,
    batch_size: Annotated[int, typer.Option(help="Samples per device per micro-batch.")] = 8,
    grad_accum: Annotated[int, typer.Option(help="Micro-batches per optimizer step.")] = 1,
    lr: Annotated[float, typer.Option(help="Peak learning rate (cosine schedule).")] = 2e-4,
    warmup_steps: Annotated[int, typer.Option(help="Linear warm-up steps.")] = 10,
    max_length: Annotated[int, typer.Option(help="Refuse samples longer than this many tokens.")] = 2048,
    mixed_precision: Annotated[str, typer.Option(help="no, fp16 or bf16.")] = "no",
    save_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed for data order and initialisation.")] = 0,
    on_error: Annotated[str, typer.Option(help="Broken sample: skip (and report) or stop.")] = "skip",
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads (1 when the CPU is shared).")] = None,
) -> None:
    """Stage 1: fine-tune the assistant on the curated sets (loss on the assistant's tokens only)."""
    from .stage1 import Stage1Config, train_stage1

    config = Stage1Config(model=model, data=[str(d) for d in data], out=str(out), lora=lora, lora_rank=lora_rank,
                          lora_alpha=lora_alpha, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
                          grad_accum=grad_accum, lr=lr, warmup_steps=warmup_steps, max_length=max_length,
                          mixed_precision=mixed_precision, save_every=save_every, seed=seed, on_error=on_error,
                          threads=threads)
    typer.echo(f"trained model: {train_stage1(config)}")


@train_app.command("stage2")
def stage2(
    painter: Annotated[Path, typer.Option("--painter", help="SD 1.x/2.x diffusers directory (text-to-image or inpainting).")],
    source: Annotated[Path, typer.Option("--source", help="COCO captions JSON or JSONL of {image, caption}.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints/, logs/, prompts.sqlite, final/.")],
    images: Annotated[Optional[Path], typer.Option("--images", help="Image folder (default: beside the source).")] = None,
    brain: Annotated[Optional[str], typer.Option("--brain", help="Captioner brain writing the long prompts "
                                                 "(default: train on the source's captions).")] = None,
    prompt_cache: Annotated[Optional[Path], typer.Option(help="Prompt cache (default OUT/prompts.sqlite).")] = None,
    resolution: Annotated[int, typer.Option(help="Training resolution (multiple of 8).")] = 512,
    epochs: Annotated[int, typer.Option(help="Passes over the data (unless --max-steps).")] = 1,
    max_steps: Annotated[Optional[int], typer.Option(help="Optimizer steps to run in all.")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per device per micro-batch.")] = 4,
    grad_accum: Annotated[int, typer.Option(help="Micro-batches per optimizer step.")] = 1,
    lr: Annotated[float, typer.Option(help="Peak learning rate (cosine schedule).")] = 1e-5,
    mixed_precision: Annotated[str, typer.Option(help="no, fp16 or bf16.")] = "no",
    save_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 500,
    ema_decay: Annotated[Optional[float], typer.Option(help="Keep an EMA of the UNet with this decay.")] = None,
    snr_gamma: Annotated[Optional[float], typer.Option(help="Min-SNR loss weighting gamma (e.g. 5).")] = None,
    uncond_prob: Annotated[float, typer.Option(help="Share of samples trained with the empty prompt.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads.")] = None,
) -> None:
    """Stage 2: fine-tune the SD UNet on the assistant's long prompts (text encoder, VAE, MLLM frozen)."""
    from .stage2 import Stage2Config, train_stage2

    config = Stage2Config(painter=str(painter), source=str(source), out=str(out),
                          images=str(images) if images else None, brain=brain,
                          prompt_cache=str(prompt_cache) if prompt_cache else None, resolution=resolution,
                          epochs=epochs, max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum, lr=lr,
                          mixed_precision=mixed_precision, save_every=save_every, ema_decay=ema_decay,
                          snr_gamma=snr_gamma, uncond_prob=uncond_prob, seed=seed, threads=threads)
    typer.echo(f"trained pipeline: {train_stage2(config)}")
