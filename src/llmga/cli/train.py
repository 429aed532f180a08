"""``llmga train …``: every trainer: the assistant (stage 1), the diffusion UNet (stage 2), and the world's models.

The world's models are trained in this order (each command resumes from its checkpoints)::

    llmga train clip --out runs/world/clip             # CLIP text + vision towers, contrastive
    llmga train vae --out runs/world/vae               # 32 px <-> 16x16x4 latents
    llmga train painter --out runs/world/painter --clip runs/world/clip --vae runs/world/vae
    llmga train judge --out runs/world/judge           # the judge that reads pictures back
    llmga train assistant --clip runs/world/clip-eye --out runs/world/llava   # then: llmga train stage1
    llmga train restore --images DIR --out runs/world/restore --painter world-inpaint   # DiffRIR

Each shipped model's card (``src/llmga/assets/*/README.md``) names the exact commands that made it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from .root import group

train = group("train", "Train the assistant (stage1), the SD UNet (stage2), and the miniature world's models.")

Seed = Annotated[int, typer.Option("--seed", help="Seed for every random choice.")]
Threads = Annotated[int, typer.Option("--threads", help="Torch threads (1 is steadiest on a busy CPU).")]


@train.command("stage1")
def stage1(
    model: Annotated[str, typer.Option("--model", help=(
        "Brain to fine-tune: directory, .gguf file, 'smollm2', 'gemma3', or an adapter to continue "
        "('smollm2-world', a run's final/adapter; at its own rank)."))],
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
    group_by_length: Annotated[bool, typer.Option(
        "--group-by-length/--no-group-by-length", help="Batch samples of about the same length (less padding).")] = True,
    system_prompt: Annotated[Optional[str], typer.Option(
        "--system-prompt", help="Train under this system prompt (text, or a .txt file holding it) instead of "
        "llmga's; it is saved as system_prompt.txt beside the weights, and the brain is asked under it "
        "wherever it loads.")] = None,
    projector_only: Annotated[bool, typer.Option(
        "--projector-only", help="Train only a LLaVA-format model's projector (feature alignment): "
        "the language model, and any adapter on it, answer text exactly as before.")] = False,
) -> None:
    """Stage 1: fine-tune the assistant on the curated sets (loss on the assistant's tokens only)."""
    from ..errors import InvalidInputError
    from ..train.stage1 import Stage1Config, train_stage1

    if system_prompt and system_prompt.endswith(".txt"):
        if not Path(system_prompt).is_file():
            raise InvalidInputError(f"system prompt file {system_prompt} does not exist")
        system_prompt = Path(system_prompt).read_text().strip()
    config = Stage1Config(model=model, data=[str(d) for d in data], out=str(out), lora=lora, lora_rank=lora_rank,
                          lora_alpha=lora_alpha, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
                          grad_accum=grad_accum, lr=lr, warmup_steps=warmup_steps, max_length=max_length,
                          mixed_precision=mixed_precision, save_every=save_every, seed=seed, on_error=on_error,
                          threads=threads, system_prompt=system_prompt, group_by_length=group_by_length,
                          projector_only=projector_only)
    typer.echo(f"trained model: {train_stage1(config)}")


@train.command("stage2")
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
    from ..train.stage2 import Stage2Config, train_stage2

    config = Stage2Config(painter=str(painter), source=str(source), out=str(out),
                          images=str(images) if images else None, brain=brain,
                          prompt_cache=str(prompt_cache) if prompt_cache else None, resolution=resolution,
                          epochs=epochs, max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum, lr=lr,
                          mixed_precision=mixed_precision, save_every=save_every, ema_decay=ema_decay,
                          snr_gamma=snr_gamma, uncond_prob=uncond_prob, seed=seed, threads=threads)
    typer.echo(f"trained pipeline: {train_stage2(config)}")


@train.command("clip")
def clip(
    out: Annotated[Path, typer.Option("--out", help="Folder for tokenizer/, text_encoder/, vision_encoder/.")],
    steps: Annotated[int, typer.Option("--steps", help="Training steps.")] = 1200,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Scenes per step.")] = 128,
    image_size: Annotated[int, typer.Option("--image-size", help="The vision tower's input size (pictures are "
                                            "resized to it).")] = 32,
    patch: Annotated[int, typer.Option("--patch", help="The vision tower's patch size in pixels.")] = 8,
    cell_loss: Annotated[float, typer.Option("--cell-loss", help="Weight of the per-cell reading loss on the "
                                             "patch tokens (needs 3x3 patches; 0: contrastive only).")] = 0.0,
    place_loss: Annotated[float, typer.Option("--place-loss", help="Weight of a loss making each patch token tell "
                                              "which cell it is (with --cell-loss).")] = 0.0,
    seed: Seed = 0,
    threads: Threads = 1,
) -> None:
    """Train the world's CLIP (text and vision towers) contrastively on rendered scenes."""
    import torch

    from ..train.world_clip import ClipConfig, train_clip

    torch.set_num_threads(threads)
    config = ClipConfig(steps=steps, batch_size=batch_size, image_size=image_size, patch=patch, cell_loss=cell_loss,
                        place_loss=place_loss, seed=seed)
    train_clip(out, config, log=typer.echo)
    typer.echo(f"saved to {out}")


@train.command("vae")
def vae(
    out: Annotated[Path, typer.Option("--out", help="Folder for the diffusers AutoencoderKL.")],
    steps: Annotated[int, typer.Option("--steps", help="Training steps.")] = 1000,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Scenes per step.")] = 32,
    decoder_of: Annotated[Path | None, typer.Option(
        "--decoder-of", help="A trained world VAE whose decoder alone trains further (its latents stay).")] = None,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (cosine decay).")] = 2e-3,
    seed: Seed = 0,
    threads: Threads = 1,
) -> None:
    """Train the world VAE (32 px pictures to 16x16x4 latents) and report the judge on its reconstructions."""
    import torch

    from ..train.world_vae import train_vae

    torch.set_num_threads(threads)
    train_vae(out, steps=steps, batch_size=batch_size, lr=lr, seed=seed, decoder_of=decoder_of, log=typer.echo)


@train.command("painter")
def painter(
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints/, curve.jsonl, final/.")],
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="World painter to continue from.")] = None,
    clip: Annotated[str | None, typer.Option("--clip", help="World CLIP folder (a new painter).")] = None,
    vae: Annotated[str | None, typer.Option("--vae", help="World VAE folder (a new painter).")] = None,
    widths: Annotated[str, typer.Option("--widths", help="A new painter's UNet widths, one per resolution "
                                        "(16, 8, 4, 2 px ...), comma-separated.")] = "32,64,64",
    layers_per_block: Annotated[int, typer.Option("--layers-per-block", help="A new painter's layers per UNet "
                                                  "block.")] = 1,
    conv_in_kernel: Annotated[Optional[int], typer.Option("--conv-in-kernel", help="The UNet's first convolution "
                              "size (odd; 31 sees the whole 16x16 latent, so place can be learnt); a continued "
                              "painter's grows to it, computing what it did.")] = None,
    inpaint: Annotated[bool, typer.Option("--inpaint", help="Train an inpainting UNet (fine-tuned from --pipeline).")] = False,
    hole_weight: Annotated[float, typer.Option("--hole-weight", help="With --inpaint: the loss weight of the "
                                               "masked hole relative to the rest of the picture.")] = 1.0,
    captions: Annotated[str, typer.Option("--captions", help="mixed (short and detailed), detailed (stage 2), short.")] = "mixed",
    max_objects: Annotated[int, typer.Option("--max-objects", help="Most objects per training scene.")] = 1,
    only: Annotated[Optional[list[str]], typer.Option("--only", help="Train on part of the world: ATTRIBUTE=V1,V2 "
                                                      "(e.g. shape=circle); repeat for several.")] = None,
    steps: Annotated[int, typer.Option("--steps", help="Total optimizer steps (a resumed run continues to this).")] = 20_000,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    lr: Annotated[float, typer.Option("--lr")] = 5e-4,
    prediction: Annotated[str, typer.Option("--prediction", help="What the UNet predicts: epsilon or v_prediction "
                                            "(a painter continued with the other is converted).")] = "epsilon",
    snr_gamma: Annotated[float, typer.Option("--snr-gamma", help="Min-SNR loss weighting gamma (0: plain MSE).")]
    = 5.0,
    train_text_encoder: Annotated[bool, typer.Option("--train-text-encoder", help="Fine-tune the text encoder "
                                                     "with the UNet (frozen otherwise, as SD's).")] = False,
    caption_loss: Annotated[float, typer.Option("--caption-loss", help="With --train-text-encoder: weight of heads "
                                                "that must read each caption's attributes (its cell too) from the "
                                                "text encoder's states, so they keep left apart from right.")] = 0.0,
    cell_weight: Annotated[float, typer.Option("--cell-weight", help="With --caption-loss: how many times each "
                                               "other attribute the cell counts in it.")] = 1.0,
    object_heads: Annotated[bool, typer.Option("--object-heads", help="With --caption-loss: read each object's "
                                               "attributes from its own words, in captions of any number of "
                                               "objects, so each object's words say where it is.")] = False,
    eval_every: Annotated[int, typer.Option("--eval-every", help="Steps between points of the success curve.")] = 500,
    save_every: Annotated[int, typer.Option("--save-every", help="Steps between checkpoints.")] = 250,
    seed: Seed = 0,
    threads: Threads = 1,
) -> None:
    """Train the world painter's UNet on pictures rendered on the fly; resumes from its checkpoints."""
    from ..train.world_painter import PainterConfig, train_painter

    config = PainterConfig(out=str(out), pipeline=pipeline, clip=clip, vae=vae,
                           widths=tuple(int(w) for w in widths.split(",")), layers_per_block=layers_per_block,
                           conv_in_kernel=conv_in_kernel,
                           inpaint=inpaint, hole_weight=hole_weight, captions=captions,
                           max_objects=max_objects, only=_choices(only), steps=steps, batch_size=batch_size, lr=lr, prediction=prediction,
                           snr_gamma=snr_gamma or None,
                           train_text_encoder=train_text_encoder, caption_loss=caption_loss, cell_weight=cell_weight,
                           object_heads=object_heads,
                           eval_every=eval_every,
                           save_every=save_every, seed=seed, threads=threads)
    typer.echo(f"saved to {train_painter(config, log=typer.echo)}")


def _choices(only: list[str] | None) -> dict[str, tuple[str, ...]]:
    """``["shape=circle,star"]`` -> ``{"shape": ("circle", "star")}``."""
    from ..errors import InvalidInputError

    choices = {}
    for item in only or []:
        attribute, _, values = item.partition("=")
        if not values:
            raise InvalidInputError(f"--only {item!r}: expected ATTRIBUTE=VALUE[,VALUE...]")
        choices[attribute.strip()] = tuple(v.strip() for v in values.split(","))
    return choices


@train.command("judge")
def judge(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for config.json, model.safetensors, report.json.")
    ],
    steps: Annotated[int, typer.Option("--steps", help="Training steps.")] = 1500,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Scenes per step.")] = 64,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (cosine decay).")] = 3e-3,
    seed: Seed = 0,
    threads: Threads = 1,
    eval_n: Annotated[int, typer.Option("--eval-n", help="Held-out renders to evaluate on.")] = 2000,
) -> None:
    """Train the judge from scratch on freshly rendered scenes and report its held-out accuracy."""
    from ..eval.judge_accuracy import format_report
    from ..train.world_judge import train_judge

    _, report = train_judge(
        out, steps, batch_size=batch_size, lr=lr, seed=seed, threads=threads, eval_scenes=eval_n
    )
    typer.echo(format_report(report))
    typer.echo(f"saved to {out}")


@train.command("ship-painter")
def ship_painter(
    pipeline: Annotated[str, typer.Argument(metavar="PIPELINE", help="A trained world painter (a run's final/ or latest/).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the painter (e.g. src/llmga/assets/world-painter).")],
    vae: Annotated[Optional[Path], typer.Option("--vae", help="A decoder-only refinement of its VAE "
                                                "(llmga train vae --decoder-of).")] = None,
    half: Annotated[bool, typer.Option("--half", help="Store the UNet and VAE in float16 (half the size).")] = False,
) -> None:
    """Write a world painter for shipping: a sharper decoder (the UNet's latents are unchanged), float16."""
    from ..train.world_vae import ship_painter as ship

    typer.echo(f"saved to {ship(pipeline, out, vae, half)}")


@train.command("assistant")
def assistant(
    out: Annotated[Path, typer.Option("--out", help="Folder for the LLaVA-format model.")],
    clip: Annotated[Path | None, typer.Option("--clip", help="World CLIP folder (its vision_encoder/ is used).")] = None,
    vision_tower: Annotated[Path | None, typer.Option("--vision-tower", help="CLIPVisionModel folder.")] = None,
    base: Annotated[str, typer.Option("--base", help="Language model: 'smollm2', 'gemma3', a text-only adapter "
                                      "(merged in: 'gemma3-world'), a .gguf or a causal LM folder.")]
    = "smollm2",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the new projector.")] = 0,
) -> None:
    """Compose the world assistant (LLaVA format): a base LM, a world CLIP's vision tower and a new projector;
    then train it with `llmga train stage1 --model OUT`."""
    from ..train.world_llava import build_world_llava

    if (clip is None) == (vision_tower is None):
        raise typer.BadParameter("give exactly one of --clip and --vision-tower")
    tower = vision_tower if vision_tower is not None else clip / "vision_encoder"
    typer.echo(f"built {build_world_llava(out, tower, base, seed)}")


@train.command("ship-assistant")
def ship_assistant(
    adapter: Annotated[Path, typer.Option("--adapter", help="A stage-1 run's final/adapter folder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the shippable adapter to.")],
    lm: Annotated[str | None, typer.Option("--lm", help="Language model to put it on instead of the one it was "
                                           "trained on: a text-only adapter of that one ('gemma3-world').")] = None,
    text_turns: Annotated[str | None, typer.Option("--text-turns", help="Brain that answers the turns without an "
                                                   "uploaded picture ('gemma3-world'); the eye reads the rest.")]
    = None,
) -> None:
    """Package an adapter with the vision tower so it loads without the ~500 MB base (built on demand)."""
    from ..train.world_llava import ship_adapter

    path = ship_adapter(adapter, out, lm, text_turns)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    typer.echo(f"wrote {path} ({size / 1e6:.1f} MB)")


@train.command("average")
def average(
    adapter: Annotated[list[Path], typer.Option("--adapter", help="A LoRA adapter folder; repeat it (two or more, "
                                                "same base, rank and modules).")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the averaged adapter to.")],
) -> None:
    """Average LoRA adapters of one base (their weight changes' mean, at their rank): a "soup" of runs."""
    from ..train.adapter_average import average_adapters

    path, kept = average_adapters(adapter, out)
    typer.echo(f"wrote {path} (the rank keeps {kept:.4%} of the mean change)")


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


@train.command("restore")
def restore(
    images: Annotated[Path, typer.Option("--images", help="Folder of pictures (any layout; searched recursively).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: stage1/, stage2/, gan/ (checkpoints, logs), "
                                      "painted/, final/ (the restorer).")],
    painter: Annotated[Optional[str], typer.Option("--painter", help="Inpainting painter whose real seams join the "
                                                   "data (e.g. world-inpaint); none: D1/D2 only.")] = None,
    painted: Annotated[int, typer.Option("--painted", help="Pictures the painter inpaints/outpaints once each "
                                         "(cached under OUT/painted).")] = 0,
    painted_share: Annotated[float, typer.Option("--painted-share", help="Share of a batch from real seams.")] = 0.5,
    painted_dir: Annotated[Optional[Path], typer.Option("--painted-dir", help="Cache of the paintings (default "
                                                        "OUT/painted; runs on the same pictures may share one).")]
    = None,
    size: Annotated[int, typer.Option("--size", help="Ground-truth crop side (multiple of 32).")] = 64,
    scale: Annotated[int, typer.Option("--scale", help="1, 2 or 4.")] = 1,
    degradation: Annotated[str, typer.Option("--degradation", help="D1's ranges: released or world (gentler, "
                                             "for 32-pixel pictures).")] = "released",
    colour: Annotated[bool, typer.Option("--colour/--no-colour", help="D2, the colour degradation (DiffRIR₂; "
                                         "--no-colour: DiffRIR₁).")] = True,
    reference: Annotated[bool, typer.Option("--reference/--no-reference", help="Take the masked reference "
                                            "(DiffRIR) or the painted picture alone (DiffIR).")] = True,
    dim: Annotated[int, typer.Option("--dim", help="Restorer width (released: 64).")] = 64,
    blocks: Annotated[str, typer.Option("--blocks", help="Transformer blocks per level.")] = "13,1,1,1",
    refinement_blocks: Annotated[int, typer.Option("--refinement-blocks")] = 13,
    heads: Annotated[str, typer.Option("--heads", help="Attention heads per level.")] = "1,2,4,8",
    ffn_expansion: Annotated[float, typer.Option("--ffn-expansion")] = 2.2,
    encoder_res: Annotated[int, typer.Option("--encoder-res", help="Residual blocks of the prior extractor.")] = 9,
    prior_feats: Annotated[int, typer.Option("--prior-feats", help="Prior extractor width (the prior is 4x).")] = 64,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    stage1_steps: Annotated[int, typer.Option("--stage1-steps")] = 1000,
    stage2_steps: Annotated[int, typer.Option("--stage2-steps")] = 1000,
    encoder_steps: Annotated[int, typer.Option("--encoder-steps", help="Stage-2 steps training the prior "
                                               "estimator alone.")] = 300,
    gan_steps: Annotated[int, typer.Option("--gan-steps", help="GAN fine-tune steps (0: none).")] = 500,
    lr: Annotated[float, typer.Option("--lr")] = 2e-4,
    gan_lr: Annotated[float, typer.Option("--gan-lr")] = 1e-4,
    perceptual: Annotated[str, typer.Option("--perceptual", help="judge (the world judge's features), a folder "
                                            "with LPIPS's alexnet-owt-7be5be79.pth and alex.pth, or none.")]
    = "judge",
    gan_weight: Annotated[float, typer.Option("--gan-weight")] = 0.1,
    save_every: Annotated[int, typer.Option("--save-every")] = 250,
    seed: Seed = 0,
    threads: Threads = 1,
) -> None:
    """Train a DiffRIR restorer: stage 1, stage 2 (the prior estimator), the GAN fine-tune; resumes."""
    from ..restore import NetworkConfig
    from ..train.diffrir import RestoreTrainConfig, train_restorer
    from ..train.seam_data import SeamConfig

    if degradation not in ("released", "world"):
        raise typer.BadParameter("--degradation is released or world")
    network = NetworkConfig(scale=scale, reference=reference, dim=dim, num_blocks=_ints(blocks),
                            num_refinement_blocks=refinement_blocks, heads=_ints(heads),
                            ffn_expansion_factor=ffn_expansion, n_encoder_res=encoder_res, n_feats=prior_feats)
    data = SeamConfig(str(images), size=size, scale=scale, batch_size=batch_size, degradation=degradation,
                      colour=colour, painter=painter, painted=painted, painted_share=painted_share,
                      painted_dir=str(painted_dir) if painted_dir else None, seed=seed)
    config = RestoreTrainConfig(str(out), data, network, stage1_steps=stage1_steps, stage2_steps=stage2_steps,
                                encoder_steps=encoder_steps, gan_steps=gan_steps, lr=lr, gan_lr=gan_lr,
                                perceptual=perceptual, gan_weight=gan_weight, save_every=save_every, seed=seed,
                                threads=threads)
    typer.echo(f"restorer saved to {train_restorer(config, log=typer.echo)}")


@train.command("gill")
def gill(
    model: Annotated[str, typer.Option("--model", help="Base brain: directory, .gguf file, 'smollm2' or 'gemma3'.")],
    painter: Annotated[str, typer.Option("--painter", help="The painter whose text-encoder space the mapper writes "
                                         "into (SD 1.x/2.x/XL directory or a shipped painter).")],
    data: Annotated[list[Path], typer.Option("--data", help="LLaVA-format JSON/JSONL with tagged prompts "
                                             "(repeat for several).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints/, logs/, final/.")],
    lora: Annotated[bool, typer.Option("--lora/--frozen", help="LLMGA-Embedding: train the LM with LoRA too; "
                                       "GILL-style (--frozen): only the [IMG] embeddings and the heads.")] = True,
    style: Annotated[Optional[str], typer.Option("--style", help="Replies: 'tagged' (the reply with [IMG] tokens "
                                                 "in the tags) or 'bare' (the tokens alone). Default: tagged with "
                                                 "--lora, bare with --frozen.")] = None,
    tokens: Annotated[int, typer.Option("--tokens", help="r, the number of [IMG] tokens.")] = 8,
    mapper: Annotated[str, typer.Option("--mapper", help="linear, mlp, encoder or gillmapper.")] = "gillmapper",
    mapper_width: Annotated[int, typer.Option("--mapper-width", help="The mapper's inner width.")] = 512,
    mapper_layers: Annotated[int, typer.Option("--mapper-layers", help="Transformer layers (encoder and decoder "
                                               "each).")] = 4,
    mapper_heads: Annotated[int, typer.Option("--mapper-heads", help="Attention heads of the mapper.")] = 4,
    retrieval_clip: Annotated[Optional[str], typer.Option("--retrieval-clip", help="CLIP folder (or 'world-clip') "
                                                          "whose image space the retrieval head learns.")] = None,
    retrieval_target: Annotated[str, typer.Option("--retrieval-target", help="world (the pictures the world "
                                                  "renders for the prompts) or text (the prompts' CLIP text "
                                                  "embeddings).")] = "text",
    lora_rank: Annotated[int, typer.Option(help="LoRA rank.")] = 16,
    lora_alpha: Annotated[int, typer.Option(help="LoRA alpha.")] = 32,
    epochs: Annotated[int, typer.Option(help="Passes over the data (unless --max-steps).")] = 1,
    max_steps: Annotated[Optional[int], typer.Option(help="Optimizer steps to run in all.")] = None,
    batch_size: Annotated[int, typer.Option(help="Samples per micro-batch.")] = 8,
    grad_accum: Annotated[int, typer.Option(help="Micro-batches per optimizer step.")] = 1,
    lr: Annotated[float, typer.Option(help="Peak learning rate (cosine schedule).")] = 1e-3,
    warmup_steps: Annotated[int, typer.Option(help="Linear warm-up steps.")] = 10,
    max_length: Annotated[int, typer.Option(help="Refuse samples longer than this many tokens.")] = 2048,
    save_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 100,
    seed: Seed = 0,
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads (1 when the CPU is shared).")] = None,
) -> None:
    """Embedding control (GILL): [IMG] tokens whose hidden states a mapper turns into the painter's prompt
    embeddings (MSE against its text encoder), with a retrieval head (contrastive) if asked."""
    from ..train.gill import GillConfig, train_gill

    config = GillConfig(model=model, painter=painter, data=[str(d) for d in data], out=str(out),
                        style=style or ("tagged" if lora else "bare"), lora=lora, lora_rank=lora_rank,
                        lora_alpha=lora_alpha, tokens=tokens, mapper=mapper, mapper_inner=mapper_width,
                        mapper_layers=mapper_layers, mapper_heads=mapper_heads, retrieval_clip=retrieval_clip,
                        retrieval_target=retrieval_target, epochs=epochs, max_steps=max_steps,
                        batch_size=batch_size, grad_accum=grad_accum, lr=lr, warmup_steps=warmup_steps,
                        max_length=max_length, save_every=save_every, seed=seed, threads=threads)
    typer.echo(f"trained embedding control: {train_gill(config)}")


@train.command("gill-mappers")
def gill_mappers(
    model: Annotated[str, typer.Option("--model", help="A trained embedding-control model (llmga train gill).")],
    data: Annotated[list[Path], typer.Option("--data", help="The records it was trained on (repeat for several).")],
    out: Annotated[Path, typer.Option("--out", help="Folder: states.safetensors (the cache), one model per mapper, "
                                      "mappers.json.")],
    mappers: Annotated[str, typer.Option("--mappers", help="Comma-separated: linear, mlp, encoder, gillmapper.")]
    = "linear,mlp,encoder,gillmapper",
    steps: Annotated[int, typer.Option("--steps", help="Optimizer steps per mapper.")] = 600,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per step.")] = 32,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (cosine schedule).")] = 1e-3,
    max_records: Annotated[Optional[int], typer.Option("--max-records", help="Use the first N records with "
                                                       "images.")] = None,
    continue_mapper: Annotated[bool, typer.Option("--continue", help="Start the model's own mapper kind from its "
                                                  "trained weights (a refinement) instead of afresh.")] = False,
    seed: Seed = 0,
    threads: Threads = 1,
) -> None:
    """GILL's mapper ablation: each mapper trained on the same cached [IMG] states of a trained model (its LM and
    [IMG] embeddings frozen), with its held-out MSE; each result is a whole embedding-control model."""
    from ..train.gill import MapperConfig, train_mappers

    config = MapperConfig(model=model, data=[str(d) for d in data], out=str(out),
                          mappers=tuple(m.strip() for m in mappers.split(",") if m.strip()), steps=steps,
                          batch_size=batch_size, lr=lr, max_records=max_records, continue_mapper=continue_mapper,
                          seed=seed, threads=threads)
    for kind, figures in train_mappers(config, log_line=typer.echo).items():
        typer.echo(f"{kind:12} held-out MSE {figures['held_out_mse']:.4f}  ({figures['parameters']:,} parameters)")


@train.command("ship-gill")
def ship_gill(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="An embedding-control model folder.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write it (e.g. src/llmga/assets/world-embedding).")],
) -> None:
    """Package an embedding-control model small: the heads in float16, the adapter and decision as they are."""
    from ..train.gill import ship_control

    path = ship_control(model, out)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    typer.echo(f"wrote {path} ({size / 1e6:.1f} MB)")


@train.command("gill-calibrate")
def gill_calibrate(
    model: Annotated[str, typer.Option("--model", help="A trained embedding-control model (bare replies).")],
    data: Annotated[list[Path], typer.Option("--data", help="Records with image requests and other turns.")],
    n: Annotated[int, typer.Option("--n", help="Records to calibrate on.")] = 200,
) -> None:
    """GILL's frequency multiplier, calibrated: the log-odds bias on [IMG1] that best tells image requests from
    other turns at the reply's first token (a frozen LM learns its [IMG1] embedding slowly); saved in the model."""
    from ..train.gill import calibrate_image_bias

    found = calibrate_image_bias(model, [str(d) for d in data], n)
    typer.echo(f"image bias {found['image_bias']:+.2f} (odds x{math.exp(found['image_bias']):.3g}): "
               f"{found['accuracy']:.1%} of {found['records']} records answered as asked")
