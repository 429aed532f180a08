"""``llmga data``: build the stage-1 training sets and mix them.

Examples::

    llmga data refine --source captions_train2017.json --images train2017 --out data/refine \\
        --captioner http://127.0.0.1:8000/v1
    llmga data similar --source pairs.jsonl --out data/similar --captioner /models/llava-1.5-7b
    llmga data inpaint --source captions.json --images imgs --out data/inpaint --captioner URL \\
        --kinds box,outpaint
    llmga data edit --source captions.json --images imgs --out data/edit --editor smollm2
    llmga data mix --set vqa=llava_v1_5_mix665k.json --set qa=alpaca.json \\
        --set refine=data/refine/data.json \\
        --image-root vqa=/data/llava --out data/stage1.json
    llmga data stablellava --llm smollm2 --painter /models/sd15 --abilities color,counting --per-ability 50 \\
        --out data/sll
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..brain import Brain, load_brain
from ..errors import InvalidInputError
from .report import Problems, Report

data_app = typer.Typer(
    name="data",
    help="Build the stage-1 training sets (refine, similar, inpaint, edit), StableLLaVA data, and mix them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


class OnError(str, Enum):
    skip = "skip"
    stop = "stop"


class Format(str, Enum):
    auto = "auto"
    coco = "coco"
    jsonl = "jsonl"


BRAIN_HELP = "model directory, .gguf file, 'smollm2', or OpenAI-compatible server URL"
Source_ = Annotated[Path, typer.Option("--source", help="COCO captions JSON, or JSONL of {image, caption}.")]
Format_ = Annotated[Format, typer.Option("--format", help="Source format (auto: by extension).")]
Images_ = Annotated[
    Optional[Path], typer.Option("--images", help="Image folder (default: the source's folder).")
]
Out_ = Annotated[Path, typer.Option("--out", help="Output folder: data.json and images/.")]
Seed_ = Annotated[int, typer.Option("--seed", help="Seed for every random choice.")]
OnError_ = Annotated[
    OnError, typer.Option("--on-error", help="Broken samples: skip and report them, or stop.")
]
Limit_ = Annotated[Optional[int], typer.Option("--limit", help="Use the first N samples only.")]
Cache_ = Annotated[
    Optional[Path],
    typer.Option("--cache", help="Answer cache, SQLite (default: ~/.cache/llmga/data/answers.sqlite)."),
]
Captioner_ = Annotated[str, typer.Option("--captioner", help=f"Captioner brain: {BRAIN_HELP}.")]
OptionalCaptioner_ = Annotated[
    Optional[str],
    typer.Option("--captioner", help=f"Edit detailed descriptions from this brain: {BRAIN_HELP}."),
]
CaptionerModel_ = Annotated[Optional[str], typer.Option("--captioner-model", help="Model name on a server.")]
Share_ = Annotated[
    float, typer.Option("--generate-share", help="Share of samples with a generation request.")
]


def _brain(spec: str, model: str | None) -> Brain:
    return load_brain(spec, model=model)


def _cache(path: Path | None):
    from ..brain import cache_dir
    from .cache import AnswerCache

    return AnswerCache(path or cache_dir() / "data" / "answers.sqlite")


def _samples(source: Path, fmt: Format, images: Path | None, limit: int | None, problems: Problems):
    from .sources import open_source

    return open_source(source, fmt.value, images).samples(problems, limit=limit)


def _captioner(spec: str, model: str | None, cache: Path | None):
    from .captioner import Captioner

    return Captioner(_brain(spec, model), _cache(cache))


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _done(report: Report) -> None:
    typer.echo(report.summary())


def _captioned(
    build, source, fmt, images, limit, on_error, captioner, captioner_model, cache, out, seed, **options
) -> None:
    """Run a builder that needs a captioner over a source, and print its counts."""
    problems = Problems(on_error.value)
    samples = _samples(source, fmt, images, limit, problems)
    describer = _captioner(captioner, captioner_model, cache)
    _done(build(samples, describer, out, seed=seed, problems=problems, **options))


@data_app.command()
def refine(
    source: Source_,
    out: Out_,
    captioner: Captioner_,
    fmt: Format_ = Format.auto,
    images: Images_ = None,
    seed: Seed_ = 0,
    on_error: OnError_ = OnError.skip,
    limit: Limit_ = None,
    cache: Cache_ = None,
    captioner_model: CaptionerModel_ = None,
    generate_share: Share_ = 0.5,
) -> None:
    """Prompt refinement: short caption + instruction -> (tagged) detailed description."""
    from .builders import build_refinement

    args = (source, fmt, images, limit, on_error, captioner, captioner_model, cache, out, seed)
    _captioned(build_refinement, *args, generate_share=generate_share)


@data_app.command()
def similar(
    source: Source_,
    out: Out_,
    captioner: Captioner_,
    fmt: Format_ = Format.auto,
    images: Images_ = None,
    seed: Seed_ = 0,
    on_error: OnError_ = OnError.skip,
    limit: Limit_ = None,
    cache: Cache_ = None,
    captioner_model: CaptionerModel_ = None,
    generate_share: Share_ = 0.5,
) -> None:
    """Similar image: image + instruction -> (tagged) detailed description."""
    from .builders import build_similar

    args = (source, fmt, images, limit, on_error, captioner, captioner_model, cache, out, seed)
    _captioned(build_similar, *args, generate_share=generate_share)


@data_app.command()
def inpaint(
    source: Source_,
    out: Out_,
    captioner: Captioner_,
    fmt: Format_ = Format.auto,
    images: Images_ = None,
    seed: Seed_ = 0,
    on_error: OnError_ = OnError.skip,
    limit: Limit_ = None,
    cache: Cache_ = None,
    captioner_model: CaptionerModel_ = None,
    kinds: Annotated[str, typer.Option("--kinds", help="Mask kinds to draw from: brush, box, outpaint.")] = (
        "brush,box,outpaint"
    ),
    widths: Annotated[
        str, typer.Option("--widths", help="Outpaint border widths: narrow, wide.")
    ] = "narrow,wide",
) -> None:
    """Inpainting & outpainting: masked image + instruction -> tagged description of the whole image."""
    from .builders import build_inpainting

    args = (source, fmt, images, limit, on_error, captioner, captioner_model, cache, out, seed)
    _captioned(build_inpainting, *args, kinds=_csv(kinds), widths=_csv(widths))


@data_app.command()
def edit(
    source: Source_,
    out: Out_,
    editor: Annotated[str, typer.Option("--editor", help=f"LLM that writes the edit pairs: {BRAIN_HELP}.")],
    fmt: Format_ = Format.auto,
    images: Images_ = None,
    seed: Seed_ = 0,
    on_error: OnError_ = OnError.skip,
    limit: Limit_ = None,
    cache: Cache_ = None,
    editor_model: Annotated[
        Optional[str], typer.Option("--editor-model", help="Model name on a server.")
    ] = None,
    captioner: OptionalCaptioner_ = None,
    captioner_model: CaptionerModel_ = None,
    pairs: Annotated[int, typer.Option("--pairs", min=1, help="Edit pairs asked per caption.")] = 2,
    image_share: Annotated[
        float, typer.Option("--image-share", help="Share of records showing the image.")
    ] = 0.5,
) -> None:
    """Instruction editing: image or caption + instruction -> tagged target caption."""
    from .builders import build_editing
    from .edits import EditPairWriter

    problems = Problems(on_error.value)
    samples = _samples(source, fmt, images, limit, problems)
    writer = EditPairWriter(_brain(editor, editor_model), _cache(cache), pairs_per_caption=pairs)
    describer = _captioner(captioner, captioner_model, cache) if captioner else None
    _done(build_editing(samples, writer, out, seed, image_share, describer, problems))


@data_app.command()
def mix(
    sets: Annotated[
        list[str], typer.Option("--set", help="NAME=PATH[:RATIO]; the ratio defaults to the paper's.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output JSON file.")],
    image_root: Annotated[
        Optional[list[str]], typer.Option("--image-root", help="NAME=DIR: the folder of a set's images.")
    ] = None,
    seed: Seed_ = 0,
    on_error: OnError_ = OnError.skip,
    no_check_images: Annotated[
        bool, typer.Option("--no-check-images", help="Skip checking image files.")
    ] = False,
) -> None:
    """Mix LLaVA-format (or Alpaca) JSON sets by ratio (paper: vqa 1, qa and the four sets 0.3)."""
    from .mixer import mix as mix_sets
    from .mixer import parse_mix_input

    roots = {}
    for spec in image_root or []:
        name, sep, folder = spec.partition("=")
        if not sep:
            raise InvalidInputError(f"--image-root expects NAME=DIR, got {spec!r}")
        roots[name] = Path(folder).expanduser()
    inputs = [parse_mix_input(spec, roots) for spec in sets]
    _done(mix_sets(inputs, out, seed, Problems(on_error.value), check_images=not no_check_images))


@data_app.command()
def stablellava(
    llm: Annotated[str, typer.Option("--llm", help=f"LLM that writes prompts and dialogues: {BRAIN_HELP}.")],
    painter: Annotated[Path, typer.Option("--painter", help="Stable Diffusion diffusers directory.")],
    out: Out_,
    abilities: Annotated[
        Optional[str], typer.Option("--abilities", help="Comma-separated (default: all).")
    ] = None,
    per_ability: Annotated[int, typer.Option("--per-ability", min=1, help="Items per ability.")] = 10,
    questions: Annotated[
        int, typer.Option("--questions", min=0, help="Question-answer pairs per image.")
    ] = 2,
    llm_model: Annotated[Optional[str], typer.Option("--llm-model", help="Model name on a server.")] = None,
    steps: Annotated[int, typer.Option("--steps", help="Denoising steps.")] = 30,
    width: Annotated[Optional[int], typer.Option("--width", help="Image width.")] = None,
    height: Annotated[Optional[int], typer.Option("--height", help="Image height.")] = None,
    seed: Seed_ = 0,
    on_error: OnError_ = OnError.skip,
    cache: Cache_ = None,
) -> None:
    """StableLLaVA-style synthetic data: the LLM writes prompts and dialogues, the painter renders them."""
    from ..painter import TextToImagePainter
    from ..settings import PaintSettings
    from .stablellava import StableLLaVA, abilities_named

    names = [ability.name for ability in abilities_named(list(_csv(abilities or "")))]
    generator = StableLLaVA(
        _brain(llm, llm_model),
        TextToImagePainter.load(painter),
        _cache(cache),
        paint=PaintSettings(steps=steps, width=width, height=height),
        questions=questions,
    )
    _done(generator.build(out, names, per_ability, seed, Problems(on_error.value)))


@data_app.command("abilities")
def list_abilities() -> None:
    """List the StableLLaVA abilities and what each teaches."""
    from .stablellava import ABILITIES

    for ability in ABILITIES.values():
        typer.echo(f"{ability.name:11} {ability.focus}")


@data_app.command("refine-demo")
def refine_demo(
    out: Annotated[Path, typer.Option("--out", help="Where to write the LLaVA-format JSON.")],
    n: Annotated[int, typer.Option(help="Conversations to write.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed (also fixes the held-out subjects for `llmga eval refine`).")] = 0,
    qa_share: Annotated[float, typer.Option(help="Share of plain questions (answered without an image).")] = 0.3,
) -> None:
    """A procedural prompt-refinement set that needs no captioner (for offline training and measurement)."""
    from .refine_demo import build

    typer.echo(f"wrote {n} conversations to {build(out, n, seed, qa_share)}")
