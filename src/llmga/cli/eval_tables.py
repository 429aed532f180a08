"""``llmga eval t2i|edit|inpaint|outpaint|restore|turns|ablation|paper``: the paper's six tables.

Each command reads its data in the published layout, paints into ``--out``
(resumable: a rerun paints only what is missing; under ``accelerate launch``
each process paints a share), and writes ``report.md`` and ``report.json``.
``--world`` measures with the world's backbones; otherwise the published ones
come from ``--inception``/``--clip``/``--dino``/``--lpips`` or their
``LLMGA_*`` environment variables. ``llmga eval paper --world`` runs all six in miniature.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from .eval import evaluate
from .root import shared_options


@dataclass
class RunOptions:
    """Where a table's run goes, what it sees pictures through, and how it paints."""

    out: Annotated[Path, typer.Option("--out", help="Run folder: images/ (the cache), answers.sqlite, report.md, "
                                      "report.json.")]
    world: Annotated[bool, typer.Option("--world", help="Measure with the world's backbones (the judge and the "
                                        "world CLIP) instead of the published ones.")] = False
    inception: Annotated[Optional[Path], typer.Option("--inception", help="inception-2015-12-05.pt (TorchScript; "
                                                      "default $LLMGA_INCEPTION).")] = None
    clip: Annotated[Optional[Path], typer.Option("--clip", help="CLIP model directory (default $LLMGA_CLIP).")] = None
    dino: Annotated[Optional[Path], typer.Option("--dino", help="DINO ViT directory (default $LLMGA_DINO).")] = None
    lpips: Annotated[Optional[Path], typer.Option("--lpips", help="Folder with alexnet-owt-7be5be79.pth and the "
                                                  "LPIPS heads alex.pth (default $LLMGA_LPIPS).")] = None
    n: Annotated[int, typer.Option("--samples", help="Items to measure: the first N, or a seeded sample of N "
                                   "(not --n, which torchrun would take for its own --nnodes).")] = 1000
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sample and of each painting (seed + index).")] = 0
    steps: Annotated[int, typer.Option("--steps", help="Denoising steps.")] = 50
    guidance: Annotated[float, typer.Option("--guidance", help="Classifier-free guidance scale.")] = 7.5

    def start(self, **models: str | None):
        """The run (its folder, process group and backbones), refusing a missing backbone at once."""
        from ..eval.backbones import real_backbones, world_backbones
        from ..eval.runs import Run

        backbones = world_backbones() if self.world else real_backbones(self.inception, self.clip, self.dino,
                                                                        self.lpips)
        return Run(self.out, backbones, seed=self.seed, models={k: v for k, v in models.items() if v})

    def paint(self):
        from ..settings import PaintSettings

        return PaintSettings(steps=self.steps, guidance=self.guidance)


with_run = shared_options(RunOptions, "options")


def train_variant(config, data: Path, out: Path) -> Path:
    """Table 6's trainer: stage 1 with a LoRA on the variant's data, within the ablation's budget.

    Under several processes each takes its share of every batch, so the recipe (``config.batch_size`` samples
    a step) is the same however many run it."""
    from accelerate import PartialState

    from ..train.stage1 import Stage1Config, train_stage1

    share = max(1, config.batch_size // PartialState().num_processes)
    return train_stage1(Stage1Config(model=config.model, data=[str(data)], out=str(out), lora=True,
                                     max_steps=config.steps, batch_size=share, lr=config.lr,
                                     warmup_steps=min(10, config.steps // 10), max_length=512,
                                     save_every=max(1, config.steps // 4), seed=config.seed))

#: the shipped world restorer (DiffRIR₂), Table 4's row in the world paper run
WORLD_RESTORER = "world-restore"

Brain = Annotated[Optional[str], typer.Option("--brain", help="The assistant (directory, adapter, .gguf, URL).")]
Painter = Annotated[str, typer.Option("--painter", help="Stable Diffusion directory (or a shipped painter).")]
Stage2 = Annotated[Optional[str], typer.Option("--stage2-painter", help="The stage-2 (fine-tuned) painter.")]


def _done(context, figures: dict) -> None:
    if context.is_main:
        typer.echo((context.out / "report.md").read_text())


Controls = Annotated[Optional[list[str]], typer.Option("--control", help="NAME=MODEL: a row for an embedding-control "
                                                       "model (llmga train gill); repeat for several.")]


def _named(pairs: list[str] | None) -> dict[str, str]:
    from ..errors import InvalidInputError

    if any("=" not in pair for pair in pairs or []):
        raise InvalidInputError("give each --control as NAME=MODEL, e.g. LLMGA-Embedding=runs/gill/final")
    return dict(pair.split("=", 1) for pair in pairs or [])


@evaluate.command("t2i")
@with_run
def t2i(captions: Annotated[Path, typer.Option("--captions", help="COCO captions JSON or JSONL of {image, caption}.")],
        painter: Painter, images: Annotated[Optional[Path], typer.Option("--images", help="Image folder (default: "
                                                                          "beside the captions).")] = None,
        stage2_painter: Stage2 = None, brain: Brain = None, controls: Controls = None, *,
        options: RunOptions) -> None:
    """Table 1: text-to-image: FID, IS, KID and CLIP-T for short captions, refined prompts, the stage-2 painter
    and embedding-control models."""
    from ..eval.t2i import T2IConfig, embedding_row, run_t2i

    context = options.start(painter=painter, stage2_painter=stage2_painter, brain=brain)
    config = T2IConfig(str(captions), str(images) if images else None, painter, stage2_painter, brain, options.n,
                       options.paint(), options.seed)
    extra = [embedding_row(name, model, config, context) for name, model in _named(controls).items()]
    _done(context, run_t2i(config, context, extra))


@evaluate.command("edit")
@with_run
def edit(data: Annotated[Path, typer.Option("--data", help="MagicBrush-layout folder (edit_sessions.json, images/, "
                                            "global_descriptions.json).")],
         painter: Painter, edit_painter: Annotated[Optional[str], typer.Option("--edit-painter",
                                                   help="SD directory for the edits (else the painter).")] = None,
         brain: Brain = None, *, options: RunOptions) -> None:
    """Table 2: instruction editing: L1, L2, CLIP-I, DINO and CLIP-T against MagicBrush's targets."""
    from ..eval.editing import EditConfig, run_edit

    context = options.start(painter=painter, edit_painter=edit_painter, brain=brain)
    _done(context, run_edit(EditConfig(str(data), painter, edit_painter, brain, options.n, options.paint(), options.seed), context))


def _masked(kind: str, images: Path, painter: str, stage2_painter: str | None, brain: str | None, options: RunOptions):
    from ..eval.masked import MaskedConfig, run_masked

    context = options.start(painter=painter, stage2_painter=stage2_painter, brain=brain)
    config = MaskedConfig(str(images), painter, stage2_painter, brain, options.n, options.paint(), options.seed,
                          kinds=((kind, "narrow"), (kind, "wide")))
    _done(context, run_masked(config, context))


Images = Annotated[Path, typer.Option("--images", help="Places-layout folder of pictures.")]
InpaintPainter = Annotated[str, typer.Option("--painter", help="Inpainting SD directory (or a shipped painter).")]
InpaintStage2 = Annotated[Optional[str], typer.Option("--stage2-painter", help="A stage-2 inpainting painter.")]


@evaluate.command("inpaint")
@with_run
def inpaint(images: Images, painter: InpaintPainter, stage2_painter: InpaintStage2 = None, brain: Brain = None, *,
            options: RunOptions) -> None:
    """Table 3 (inpainting): FID and LPIPS with narrow and wide masks, with and without the assistant."""
    _masked("inpaint", images, painter, stage2_painter, brain, options)


@evaluate.command("outpaint")
@with_run
def outpaint(images: Images, painter: InpaintPainter, stage2_painter: InpaintStage2 = None, brain: Brain = None, *,
             options: RunOptions) -> None:
    """Table 3 (outpainting): FID and LPIPS with narrow and wide borders, with and without the assistant."""
    _masked("outpaint", images, painter, stage2_painter, brain, options)


Restorers = Annotated[Optional[list[str]], typer.Option(
    "--restorer", help="NAME=DIR: a row restored by this restorer (folder, released .pth or shipped name); repeat "
    "in the paper's order: DiffIR (no reference), DiffRIR₁ (reference), DiffRIR₂ (reference + colour).")]


def load_restorers(specs: list[str]) -> dict:
    """``NAME=DIR`` pairs as named ×1 restorers (a bare DIR is named by itself)."""
    from ..restore import Restorer

    restorers = {}
    for spec in specs:
        name, _, where = spec.rpartition("=")
        restorers[name or where] = Restorer.load(where, name=name or where)
        restorers[name or where].check_scale(1)
    return restorers


@evaluate.command("restore")
@with_run
def restore(images: Images, painter: InpaintPainter, brain: Brain = None, restorer: Restorers = None, *,
            options: RunOptions) -> None:
    """Table 4: restoring outpaintings (wide borders): FID, LPIPS and the seam step, per restorer."""
    from ..eval.masked import MaskedConfig
    from ..eval.restoration import RestoreConfig, run_restore

    restorers = load_restorers(restorer or [])
    context = options.start(painter=painter, brain=brain, **{f"restorer {k}": v.name for k, v in restorers.items()})
    config = RestoreConfig(MaskedConfig(str(images), painter, None, brain, options.n, options.paint(), options.seed))
    _done(context, run_restore(config, context, restorers))


@evaluate.command("turns")
@with_run
def turns(captions: Annotated[Path, typer.Option("--captions", help="COCO captions JSON or JSONL.")],
          painter: Painter, brain: Annotated[str, typer.Option("--brain", help="The assistant.")],
          images: Annotated[Optional[Path], typer.Option("--images", help="Image folder.")] = None,
          count: Annotated[int, typer.Option("--turns", help="Times each request is asked.")] = 5,
          interleave: Annotated[bool, typer.Option("--interleave", help="Ask a plain question between repeats.")]
          = False, controls: Controls = None, *, options: RunOptions) -> None:
    """Table 5: the same request over turns of one conversation: FID and CLIP-T per turn."""
    from ..eval.turns import TurnsConfig, embedding_control, run_turns

    context = options.start(painter=painter, brain=brain)
    config = TurnsConfig(str(captions), str(images) if images else None, painter, brain, options.n, count, interleave,
                         options.paint(), options.seed)
    extra = {name: embedding_control(model, config, context) for name, model in _named(controls).items()}
    _done(context, run_turns(config, context, extra))


@evaluate.command("ablation")
@with_run
def ablation(model: Annotated[str, typer.Option("--model", help="The base assistant to train (stage 1, LoRA).")],
             captions: Annotated[Path, typer.Option("--captions", help="Table 1's captions.")],
             images: Images, painter: Painter,
             inpaint_painter: Annotated[str, typer.Option("--inpaint-painter", help="Table 3's inpainting painter.")],
             sets: Annotated[Optional[list[str]], typer.Option("--set", help="NAME=JSON for refine, inpaint, similar, "
                                                               "edit (and sets kept whole); none: the world's.")] = None,
             train_steps: Annotated[int, typer.Option("--train-steps", help="Stage-1 steps per variant.")] = 200,
             n_train: Annotated[int, typer.Option("--n-train", help="World conversations per full mix.")] = 2000,
             *, options: RunOptions) -> None:
    """Table 6: the assistant retrained with each stage-1 set cut to 10%; FID on text-to-image and outpainting."""
    from ..eval.ablation import AblationConfig, run_ablation
    from ..eval.masked import MaskedConfig
    from ..eval.t2i import T2IConfig

    named = dict(s.split("=", 1) for s in sets or [])
    context = options.start(model=model, painter=painter, inpaint_painter=inpaint_painter)
    config = AblationConfig(model, T2IConfig(str(captions), None, painter, n=options.n, paint=options.paint(), seed=options.seed),
                            MaskedConfig(str(images), inpaint_painter, n=options.n, paint=options.paint(), seed=options.seed),
                            sets=named, n_train=n_train, steps=train_steps, seed=options.seed)
    _done(context, run_ablation(config, context, train_variant))


@evaluate.command("paper")
def paper(
    out: Annotated[Path, typer.Option("--out", help="Folder for the world's test sets, each table's run and "
                                      "paper.json.")],
    world: Annotated[bool, typer.Option("--world", help="Run in the miniature world (the only whole-paper mode; "
                                        "with real data run the tables one by one).")] = False,
    page: Annotated[Optional[Path], typer.Option("--page", help="Write the side-by-side page here "
                                                 "(e.g. docs/paper-tables.md).")] = None,
    tables: Annotated[str, typer.Option("--tables", help="Comma-separated: t2i,edit,masked,restore,turns,"
                                        "ablation.")] = "t2i,edit,masked,restore,turns,ablation",
    n_t2i: Annotated[int, typer.Option("--n-t2i")] = 96,
    n_edit: Annotated[int, typer.Option("--n-edit")] = 48,
    n_masked: Annotated[int, typer.Option("--n-masked")] = 32,
    n_turns: Annotated[int, typer.Option("--n-turns")] = 12,
    ablation_steps: Annotated[int, typer.Option("--ablation-steps", help="Table 6: stage-1 steps per variant "
                                                "(8 conversations a step).")] = 12,
    ablation_n: Annotated[int, typer.Option("--ablation-n", help="Table 6: captions and outpaintings each "
                                            "variant is measured on.")] = 24,
    restorer: Restorers = None,
    controls: Controls = None,
) -> None:
    """All six of the paper's tables in the miniature world, and a page beside the paper's figures.

    Table 4's rows are the restorers given with --restorer, else the shipped world restorer (DiffRIR₂)."""
    import shlex
    import sys
    import time

    from ..errors import InvalidInputError
    from ..eval.paper import WorldPaperConfig, run_world_paper, write_page

    if not world:
        raise InvalidInputError("llmga eval paper runs in the miniature world (--world); with real data run "
                                "llmga eval t2i, edit, inpaint, outpaint, restore, turns and ablation one by one")
    started = time.time()
    config = WorldPaperConfig(str(out), n_t2i, n_edit, n_masked, n_turns, ablation_steps=ablation_steps,
                              ablation_n=ablation_n, tables=tuple(t.strip() for t in tables.split(",") if t.strip()))
    restorers = load_restorers(restorer or [f"DiffRIR₂ (reference + colour)={WORLD_RESTORER}"])
    results = run_world_paper(config, trainer=train_variant, restorers=restorers, controls=_named(controls))
    if page is not None and all(results.values()):
        from accelerate import PartialState

        processes = PartialState().num_processes
        launcher = f"torchrun --nproc_per_node {processes} -m llmga" if processes > 1 else "llmga"
        command = f"{launcher} {shlex.join(sys.argv[1:])}"
        typer.echo(f"wrote {write_page(results, page, command, time.time() - started)}")
