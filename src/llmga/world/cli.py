"""``llmga world``: sample scenes, render captions exactly, train and evaluate the judge.

Examples::

    llmga world sample --out data/world --n 100 --max-objects 3
    llmga world render "a large red star at the top left, on grass under a night sky" --out star.png
    llmga world train-judge --out runs/world-judge --steps 1500
    llmga world judge-eval runs/world-judge
    llmga world read star.png
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from PIL import Image, PngImagePlugin

from ..data.records import METADATA_KEY
from ..errors import LLMGAError
from .captions import detailed_caption, oracle_paint, parse_caption, short_caption
from .llava import register as register_llava
from .render import render
from .scene import as_rng, sample_scene
from .tasks import sample_edit, scene_masks

world_app = typer.Typer(
    name="world",
    help="The miniature world: scenes with known captions, masks and edits; its oracle painter and judge.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
register_llava(world_app)

Size_ = Annotated[int, typer.Option("--size", help="Picture size in pixels.")]
Seed_ = Annotated[int, typer.Option("--seed", help="Seed for every random choice.")]
CAPTION_HELP = (
    "A detailed caption: 'a <size> <colour> <shape> at the <position> (and a ...), "
    "on <terrain> under a <time> sky'."
)
Threads_ = Annotated[int, typer.Option("--threads", help="Torch threads (1 is steadiest on a busy CPU).")]


def save_png(image: Image.Image, path: Path, metadata: dict[str, Any], scale: int = 1) -> Path:
    """Save ``image`` (enlarged ``scale`` times, pixels kept sharp) with ``metadata`` as PNG text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    info = PngImagePlugin.PngInfo()
    info.add_itxt(METADATA_KEY, json.dumps(metadata, sort_keys=True))
    info.add_itxt("parameters", metadata.get("prompt", ""))
    image.save(path, format="PNG", pnginfo=info)
    return path


@world_app.command()
def sample(
    out: Annotated[Path, typer.Option("--out", help="Output folder: scenes.jsonl, images/, masks/, edits/.")],
    n: Annotated[int, typer.Option("--n", help="Number of scenes.")] = 16,
    max_objects: Annotated[int, typer.Option("--max-objects", help="Most objects per scene.")] = 1,
    min_objects: Annotated[int, typer.Option("--min-objects", help="Fewest objects per scene.")] = 1,
    edits: Annotated[int, typer.Option("--edits", help="Edit pairs per scene.")] = 2,
    size: Size_ = 32,
    seed: Seed_ = 0,
) -> None:
    """Write N scenes: pictures, masks, edited pictures, and a JSON line per scene with captions and edits."""
    from tqdm.auto import tqdm

    rng = as_rng(seed)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    lines = []
    for index in tqdm(range(n), desc="sampling scenes", disable=n < 500):
        name = f"{index:06d}"
        scene = sample_scene(rng, max_objects, min_objects=min_objects)
        caption = detailed_caption(scene)
        save_png(
            render(scene, size),
            out / "images" / f"{name}.png",
            {"prompt": caption, "seed": seed, "index": index},
        )
        masks = []
        for k, mask in enumerate(scene_masks(scene, rng, size)):
            mask.image.save(out / "masks" / f"{name}-{k}.png")
            masks.append({**mask.to_dict(), "image": f"masks/{name}-{k}.png"})
        pairs = []
        for k in range(edits):
            pair = sample_edit(scene, rng, max_objects=max(max_objects, 1))
            target = f"edits/{name}-{k}.png"
            save_png(
                render(pair.target, size),
                out / target,
                {"prompt": pair.target_caption, "instruction": pair.instruction},
            )
            pairs.append({**pair.to_dict(), "target_image": target})
        lines.append(
            {
                "id": name,
                "image": f"images/{name}.png",
                "size": size,
                "scene": scene.to_dict(),
                "short": short_caption(scene),
                "detailed": caption,
                "masks": masks,
                "edits": pairs,
            }
        )
    (out / "scenes.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    typer.echo(f"wrote {n} scenes to {out / 'scenes.jsonl'}")


@world_app.command("render")
def render_command(
    caption: Annotated[str, typer.Argument(help=CAPTION_HELP)],
    out: Annotated[Path, typer.Option("--out", help="PNG file to write.")],
    size: Size_ = 32,
    scale: Annotated[int, typer.Option("--scale", help="Enlarge the saved picture this many times.")] = 1,
    lenient: Annotated[bool, typer.Option("--lenient", help="Paint what parses; skip the rest.")] = False,
) -> None:
    """Paint a detailed caption exactly (the oracle painter)."""
    parsed = parse_caption(caption)
    image = oracle_paint(caption, size, strict=not lenient)
    for problem in parsed.problems:
        typer.echo(f"warning: {problem}", err=True)
    save_png(image, out, {"prompt": caption, "scene": parsed.scene().to_dict(), "size": size}, scale)
    typer.echo(f"{detailed_caption(parsed.scene())} -> {out}")


def format_report(report: dict[str, Any]) -> str:
    """The judge's accuracies as a table: one row per attribute, clean and augmented columns."""
    clean, noisy = report["clean"], report["augmented"]
    rows = [f"{'attribute':<12} {'clean':>7} {'augmented':>9}"]
    rows += [f"{name:<12} {clean[name]:>7.2%} {noisy[name]:>9.2%}" for name in clean]
    verdict = "passed" if report["passed"] else "NOT passed"
    rows.append(
        f"{report['n']} held-out {report['size']}px renders, 0-{report['max_objects']} objects; "
        f"target {report['target']:.0%} per attribute: {verdict}"
    )
    if "training" in report:
        t = report["training"]
        rows.append(
            f"trained {t['steps']} steps x {t['batch_size']} scenes in {t['seconds']:.0f} s"
            f" on {t['threads']} thread(s)"
        )
    return "\n".join(rows)


@world_app.command("train-judge")
def train_judge_command(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for config.json, model.safetensors, report.json.")
    ],
    steps: Annotated[int, typer.Option("--steps", help="Training steps.")] = 1500,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Scenes per step.")] = 64,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (cosine decay).")] = 3e-3,
    seed: Seed_ = 0,
    threads: Threads_ = 1,
    eval_n: Annotated[int, typer.Option("--eval-n", help="Held-out renders to evaluate on.")] = 2000,
) -> None:
    """Train the judge from scratch on freshly rendered scenes and report its held-out accuracy."""
    from .judge import train_judge

    _, report = train_judge(
        out, steps, batch_size=batch_size, lr=lr, seed=seed, threads=threads, eval_scenes=eval_n
    )
    typer.echo(format_report(report))
    typer.echo(f"saved to {out}")


@world_app.command("judge-eval")
def judge_eval_command(
    directory: Annotated[
        Path | None, typer.Argument(help="Judge folder (default: the shipped judge).")
    ] = None,
    n: Annotated[int, typer.Option("--n", help="Held-out renders.")] = 2000,
    max_objects: Annotated[int, typer.Option("--max-objects", help="Most objects per scene.")] = 3,
    seed: Seed_ = 1,
    size: Annotated[
        int | None, typer.Option("--size", help="Render size (default: the judge's first).")
    ] = None,
    threads: Threads_ = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Accuracy per attribute of a judge on held-out renders, clean and augmented."""
    import torch

    from .judge import Judge, evaluate_judge

    torch.set_num_threads(threads)
    report = evaluate_judge(Judge.load(directory), n=n, seed=seed, max_objects=max_objects, size=size)
    typer.echo(json.dumps(report, indent=2) if as_json else format_report(report))


@world_app.command("read")
def read_command(
    images: Annotated[list[Path], typer.Argument(help="Pictures to read.")],
    judge_dir: Annotated[
        Path | None, typer.Option("--judge", help="Judge folder (default: shipped).")
    ] = None,
) -> None:
    """Say what the judge sees in pictures, as detailed captions."""
    from .judge import Judge

    judge = Judge.load(judge_dir)
    scenes = judge.read([Image.open(p).convert("RGB") for p in images])
    for path, scene in zip(images, scenes):
        typer.echo(f"{path}: {detailed_caption(scene)}")


def main() -> None:
    """Run ``world_app`` alone, printing llmga errors as one line."""
    try:
        world_app()
    except LLMGAError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()


@world_app.command("refine-data")
def refine_data(
    out: Annotated[Path, typer.Option("--out", help="Where to write the LLaVA-format JSON.")],
    n: Annotated[int, typer.Option(help="Conversations to write.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed (also fixes the held-out colour-shape pairs).")] = 0,
    max_objects: Annotated[int, typer.Option(help="Most objects per requested scene.")] = 1,
) -> None:
    """The world's prompt-refinement set: short requests -> detailed world captions in generation tags."""
    from .assistant import build_refine_set

    typer.echo(f"wrote {n} conversations to {build_refine_set(out, n, seed, max_objects)}")


@world_app.command("bench-assistant")
def bench_assistant(
    brain: Annotated[str, typer.Option("--brain", help="Brain to measure (directory, adapter, 'smollm2', URL).")],
    n: Annotated[int, typer.Option(help="Held-out items (requests for unseen colour-shape pairs, and questions).")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the held-out pairs (the training data's seed).")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON.")] = None,
) -> None:
    """The assistant alone, with the oracle painter: well-formed replies and faithful prompts."""
    from ..brain import load_brain
    from .assistant import measure_assistant

    scores = measure_assistant(load_brain(brain), n=n, seed=seed)
    typer.echo(f"brain: {brain}; {scores.items} items, {scores.requests} requests for held-out colour-shape pairs")
    typer.echo(f"well-formed replies         {scores.well_formed:7.1%}")
    typer.echo(f"faithful (oracle + judge)   {scores.faithful_oracle:7.1%}")
    if json_out:
        json_out.write_text(json.dumps(scores.as_dict(), indent=2))


@world_app.command("train-clip")
def train_clip_command(
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
    seed: Seed_ = 0,
    threads: Threads_ = 1,
) -> None:
    """Train the world's CLIP (text and vision towers) contrastively on rendered scenes."""
    import torch

    from .clip import ClipConfig, train_clip

    torch.set_num_threads(threads)
    config = ClipConfig(steps=steps, batch_size=batch_size, image_size=image_size, patch=patch, cell_loss=cell_loss,
                        place_loss=place_loss, seed=seed)
    train_clip(out, config, log=typer.echo)
    typer.echo(f"saved to {out}")


@world_app.command("train-vae")
def train_vae_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the diffusers AutoencoderKL.")],
    steps: Annotated[int, typer.Option("--steps", help="Training steps.")] = 1000,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Scenes per step.")] = 32,
    decoder_of: Annotated[Path | None, typer.Option(
        "--decoder-of", help="A trained world VAE whose decoder alone trains further (its latents stay).")] = None,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (cosine decay).")] = 2e-3,
    seed: Seed_ = 0,
    threads: Threads_ = 1,
) -> None:
    """Train the world VAE (32 px pictures to 16x16x4 latents) and report the judge on its reconstructions."""
    import torch

    from .painter import train_vae

    torch.set_num_threads(threads)
    train_vae(out, steps=steps, batch_size=batch_size, lr=lr, seed=seed, decoder_of=decoder_of, log=typer.echo)


@world_app.command("train-painter")
def train_painter_command(
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints/, curve.jsonl, final/.")],
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="World painter to continue from.")] = None,
    clip: Annotated[str | None, typer.Option("--clip", help="World CLIP folder (a new painter).")] = None,
    vae: Annotated[str | None, typer.Option("--vae", help="World VAE folder (a new painter).")] = None,
    inpaint: Annotated[bool, typer.Option("--inpaint", help="Train an inpainting UNet (fine-tuned from --pipeline).")] = False,
    captions: Annotated[str, typer.Option("--captions", help="mixed (short and detailed), detailed (stage 2), short.")] = "mixed",
    max_objects: Annotated[int, typer.Option("--max-objects", help="Most objects per training scene.")] = 1,
    steps: Annotated[int, typer.Option("--steps", help="Total optimizer steps (a resumed run continues to this).")] = 20_000,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    lr: Annotated[float, typer.Option("--lr")] = 5e-4,
    prediction: Annotated[str, typer.Option("--prediction", help="What the UNet predicts: v_prediction or epsilon "
                                            "(a painter continued with the other is converted).")] = "v_prediction",
    snr_gamma: Annotated[float, typer.Option("--snr-gamma", help="Min-SNR loss weighting gamma (0: plain MSE).")]
    = 0.0,
    object_weight: Annotated[float, typer.Option("--object-weight", help="Extra loss weight on latent pixels where "
                                                 "an object is drawn (0: every pixel alike).")] = 0.0,
    train_text_encoder: Annotated[bool, typer.Option("--train-text-encoder", help="Fine-tune the text encoder "
                                                     "with the UNet (frozen otherwise, as SD's).")] = False,
    eval_every: Annotated[int, typer.Option("--eval-every", help="Steps between points of the success curve.")] = 500,
    save_every: Annotated[int, typer.Option("--save-every", help="Steps between checkpoints.")] = 250,
    seed: Seed_ = 0,
    threads: Threads_ = 1,
) -> None:
    """Train the world painter's UNet on pictures rendered on the fly; resumes from its checkpoints."""
    from .painter import PainterConfig, train_painter

    config = PainterConfig(out=str(out), pipeline=pipeline, clip=clip, vae=vae, inpaint=inpaint, captions=captions,
                           max_objects=max_objects, steps=steps, batch_size=batch_size, lr=lr, prediction=prediction,
                           snr_gamma=snr_gamma or None, object_weight=object_weight,
                           train_text_encoder=train_text_encoder, eval_every=eval_every,
                           save_every=save_every, seed=seed, threads=threads)
    typer.echo(f"saved to {train_painter(config, log=typer.echo)}")


@world_app.command("bench")
def bench_command(
    brain: Annotated[str, typer.Option("--brain", help="The world assistant ('none' to skip its parts).")] = "smollm2-world",
    painter: Annotated[str, typer.Option("--painter", help="Text-to-image world painter.")] = "world",
    stage2_painter: Annotated[str, typer.Option("--stage2-painter", help="Stage-2 painter ('none' to skip).")] = "world-stage2",
    inpaint_painter: Annotated[str, typer.Option("--inpaint-painter", help="Inpainting painter ('none' to skip).")] = "world-inpaint",
    edit_painter: Annotated[str, typer.Option("--edit-painter", help="Instruction-editing painter ('none' to skip).")] = "world-edit",
    n: Annotated[int, typer.Option("--n", help="Requests per text-to-image row and for the assistant.")] = 64,
    edit_n: Annotated[int, typer.Option("--edit-n", help="Pictures per inpaint/outpaint/edit row.")] = 32,
    chain_n: Annotated[int, typer.Option("--chain-n", help="Chains of 5 follow-up edits.")] = 16,
    steps: Annotated[int, typer.Option("--steps", help="Denoising steps.")] = 20,
    guidance: Annotated[float, typer.Option("--guidance")] = 4.0,
    parts: Annotated[str, typer.Option("--parts", help="Comma-separated: judge,assistant,t2i,masked,edit.")] = "judge,assistant,t2i,masked,edit",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write every figure as JSON here.")] = None,
    seed: Seed_ = 0,
    threads: Threads_ = 1,
) -> None:
    """The paper's tables in miniature: judge, assistant, text-to-image, inpaint/outpaint, edits, follow-ups."""
    import torch

    from .bench import BenchConfig, WorldBench, format_table

    torch.set_num_threads(threads)
    none = lambda value: None if value in ("", "none") else value
    config = BenchConfig(brain=none(brain), painter=none(painter), stage2_painter=none(stage2_painter),
                         inpaint_painter=none(inpaint_painter), edit_painter=none(edit_painter), n=n, steps=steps,
                         guidance=guidance, edit_n=edit_n, chain_n=chain_n, seed=seed)
    results = WorldBench(config, log=lambda line: typer.echo(line, err=True)).run(parts.split(","))
    typer.echo(format_table(results))
    if json_out:
        json_out.write_text(json.dumps(results, indent=2) + "\n")


@world_app.command("ship-painter")
def ship_painter_command(
    pipeline: Annotated[str, typer.Argument(help="A trained world painter (a run's final/ or latest/).")],
    vae: Annotated[Path, typer.Option("--vae", help="A decoder-only refinement of its VAE (train-vae --decoder-of).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the painter (e.g. src/llmga/assets/world-painter).")],
) -> None:
    """Write a world painter with a sharper decoder (the UNet's latents are unchanged)."""
    from .painter import with_decoder

    typer.echo(f"saved to {with_decoder(pipeline, vae, out)}")
