"""``llmga data …``: build the stage-1 training sets and mix them.

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
    llmga data world-chat --out data/world.json        # the miniature world's sets, no captioner needed
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InvalidInputError
from .root import group, shared_options

data = group("data", "Build the stage-1 training sets (refine, similar, inpaint, edit), StableLLaVA data, and mix them.")


class OnError(str, Enum):
    skip = "skip"
    stop = "stop"


class Format(str, Enum):
    auto = "auto"
    coco = "coco"
    jsonl = "jsonl"


BRAIN_HELP = "model directory, .gguf file, 'smollm2', or OpenAI-compatible server URL"
Out = Annotated[Path, typer.Option("--out", help="Output folder: data.json and images/.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed for every random choice.")]
OnErrorOption = Annotated[OnError, typer.Option("--on-error", help="Broken samples: skip and report them, or stop.")]
Cache = Annotated[Optional[Path], typer.Option(
    "--cache", help="Answer cache, SQLite (default: ~/.cache/llmga/data/answers.sqlite).")]
Captioner = Annotated[str, typer.Option("--captioner", help=f"Captioner brain: {BRAIN_HELP}.")]
CaptionerModel = Annotated[Optional[str], typer.Option("--captioner-model", help="Model name on a server.")]
Share = Annotated[float, typer.Option("--generate-share", help="Share of samples with a generation request.")]


@dataclass
class SourceOptions:
    """Where the image-caption samples come from, where the set goes, and what happens to broken samples."""

    source: Annotated[Path, typer.Option("--source", help="COCO captions JSON, or JSONL of {image, caption}.")]
    out: Out
    fmt: Annotated[Format, typer.Option("--format", help="Source format (auto: by extension).")] = Format.auto
    images: Annotated[Optional[Path], typer.Option(
        "--images", help="Image folder (default: the source's folder).")] = None
    seed: Seed = 0
    on_error: OnErrorOption = OnError.skip
    limit: Annotated[Optional[int], typer.Option("--limit", help="Use the first N samples only.")] = None
    cache: Cache = None

    def samples(self):
        """The problems tracker and the samples (broken ones skipped or raised, as ``--on-error`` says)."""
        from ..data.report import Problems
        from ..data.sources import open_source

        problems = Problems(self.on_error.value)
        return problems, open_source(self.source, self.fmt.value, self.images).samples(problems, limit=self.limit)


with_source = shared_options(SourceOptions, "src")


def _brain(spec: str, model: str | None):
    from ..brain import load_brain

    return load_brain(spec, model=model)


def _cache(path: Path | None):
    from ..brain import cache_dir
    from ..data.cache import AnswerCache

    return AnswerCache(path or cache_dir() / "data" / "answers.sqlite")


def _captioner(spec: str, model: str | None, cache: Path | None):
    from ..data.captioner import Captioner as Describer

    return Describer(_brain(spec, model), _cache(cache))


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _done(report) -> None:
    typer.echo(report.summary())


def _captioned(build, src: SourceOptions, captioner: str, captioner_model: str | None, **options) -> None:
    """Run a builder that needs a captioner over the source, and print its counts."""
    problems, samples = src.samples()
    describer = _captioner(captioner, captioner_model, src.cache)
    _done(build(samples, describer, src.out, seed=src.seed, problems=problems, **options))


@data.command()
@with_source
def refine(captioner: Captioner, captioner_model: CaptionerModel = None, generate_share: Share = 0.5, *,
           src: SourceOptions) -> None:
    """Prompt refinement: short caption + instruction -> (tagged) detailed description."""
    from ..data.builders import build_refinement

    _captioned(build_refinement, src, captioner, captioner_model, generate_share=generate_share)


@data.command()
@with_source
def similar(captioner: Captioner, captioner_model: CaptionerModel = None, generate_share: Share = 0.5, *,
            src: SourceOptions) -> None:
    """Similar image: image + instruction -> (tagged) detailed description."""
    from ..data.builders import build_similar

    _captioned(build_similar, src, captioner, captioner_model, generate_share=generate_share)


@data.command()
@with_source
def inpaint(
    captioner: Captioner,
    captioner_model: CaptionerModel = None,
    kinds: Annotated[str, typer.Option("--kinds", help="Mask kinds to draw from: brush, box, outpaint.")]
    = "brush,box,outpaint",
    widths: Annotated[str, typer.Option("--widths", help="Outpaint border widths: narrow, wide.")] = "narrow,wide",
    *,
    src: SourceOptions,
) -> None:
    """Inpainting & outpainting: masked image + instruction -> tagged description of the whole image."""
    from ..data.builders import build_inpainting

    _captioned(build_inpainting, src, captioner, captioner_model, kinds=_csv(kinds), widths=_csv(widths))


@data.command()
@with_source
def edit(
    editor: Annotated[str, typer.Option("--editor", help=f"LLM that writes the edit pairs: {BRAIN_HELP}.")],
    editor_model: Annotated[Optional[str], typer.Option("--editor-model", help="Model name on a server.")] = None,
    captioner: Annotated[Optional[str], typer.Option(
        "--captioner", help=f"Edit detailed descriptions from this brain: {BRAIN_HELP}.")] = None,
    captioner_model: CaptionerModel = None,
    pairs: Annotated[int, typer.Option("--pairs", min=1, help="Edit pairs asked per caption.")] = 2,
    image_share: Annotated[float, typer.Option("--image-share", help="Share of records showing the image.")] = 0.5,
    *,
    src: SourceOptions,
) -> None:
    """Instruction editing: image or caption + instruction -> tagged target caption."""
    from ..data.builders import build_editing
    from ..data.edit_writer import EditPairWriter

    problems, samples = src.samples()
    writer = EditPairWriter(_brain(editor, editor_model), _cache(src.cache), pairs_per_caption=pairs)
    describer = _captioner(captioner, captioner_model, src.cache) if captioner else None
    _done(build_editing(samples, writer, src.out, src.seed, image_share, describer, problems))


@data.command()
def mix(
    sets: Annotated[
        list[str], typer.Option("--set", help="NAME=PATH[:RATIO]; the ratio defaults to the paper's.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output JSON file.")],
    image_root: Annotated[
        Optional[list[str]], typer.Option("--image-root", help="NAME=DIR: the folder of a set's images.")
    ] = None,
    seed: Seed = 0,
    on_error: OnErrorOption = OnError.skip,
    no_check_images: Annotated[
        bool, typer.Option("--no-check-images", help="Skip checking image files.")
    ] = False,
) -> None:
    """Mix LLaVA-format (or Alpaca) JSON sets by ratio (paper: vqa 1, qa and the four sets 0.3)."""
    from ..data.mixer import mix as mix_sets
    from ..data.mixer import parse_mix_input

    roots = {}
    for spec in image_root or []:
        name, sep, folder = spec.partition("=")
        if not sep:
            raise InvalidInputError(f"--image-root expects NAME=DIR, got {spec!r}")
        roots[name] = Path(folder).expanduser()
    inputs = [parse_mix_input(spec, roots) for spec in sets]
    _done(mix_sets(inputs, out, seed, _problems(on_error), check_images=not no_check_images))


@data.command()
def stablellava(
    llm: Annotated[str, typer.Option("--llm", help=f"LLM that writes prompts and dialogues: {BRAIN_HELP}.")],
    painter: Annotated[Path, typer.Option("--painter", help="Stable Diffusion diffusers directory.")],
    out: Out,
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
    seed: Seed = 0,
    on_error: OnErrorOption = OnError.skip,
    cache: Cache = None,
) -> None:
    """StableLLaVA-style synthetic data: the LLM writes prompts and dialogues, the painter renders them."""
    from ..data.stablellava import StableLLaVA, abilities_named
    from ..painter import TextToImagePainter
    from ..settings import PaintSettings

    names = [ability.name for ability in abilities_named(list(_csv(abilities or "")))]
    generator = StableLLaVA(
        _brain(llm, llm_model),
        TextToImagePainter.load(painter),
        _cache(cache),
        paint=PaintSettings(steps=steps, width=width, height=height),
        questions=questions,
    )
    _done(generator.build(out, names, per_ability, seed, _problems(on_error)))


@data.command("abilities")
def list_abilities() -> None:
    """List the StableLLaVA abilities and what each teaches."""
    from ..data.stablellava import ABILITIES

    for ability in ABILITIES.values():
        typer.echo(f"{ability.name:11} {ability.focus}")


@data.command("refine-demo")
def refine_demo(
    out: Annotated[Path, typer.Option("--out", help="Where to write the LLaVA-format JSON.")],
    n: Annotated[int, typer.Option(help="Conversations to write.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed (also fixes the held-out subjects for `llmga eval refine`).")] = 0,
    qa_share: Annotated[float, typer.Option(help="Share of plain questions (answered without an image).")] = 0.3,
) -> None:
    """A procedural prompt-refinement set that needs no captioner (for offline training and measurement)."""
    from ..data.refine_demo import build

    typer.echo(f"wrote {n} conversations to {build(out, n, seed, qa_share)}")


@data.command("world-chat")
def world_chat(
    out: Annotated[Path, typer.Option("--out", help="Where to write the LLaVA-format JSON.")],
    n: Annotated[int, typer.Option(help="Conversations to write.")] = 4000,
    seed: Annotated[int, typer.Option(help="Seed (also fixes the held-out colour-shape pairs).")] = 0,
    chinese_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of conversations in Chinese.")] = 0.3,
    share: Annotated[Optional[list[str]], typer.Option(
        "--share", help="KIND=WEIGHT: mix a kind of conversation at this weight instead of its default "
                        "(llmga.data.world_chat.SHARES); repeatable.")] = None,
    switch_share: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Share of conversations whose earlier turns are in the other language.")] = 0.15,
) -> None:
    """The world assistant's conversations, asked as people ask (English and Chinese): requests naming any
    attribute, counts, several objects, follow-up edits, greetings, questions, things the world has not."""
    from ..data.world_chat import build_world_chat

    written = build_world_chat(out, n, seed, chinese_share, dict(_weight(pair) for pair in share or ()),
                               switch_share)
    typer.echo(f"wrote {n} conversations to {written} "
               f"(train under {out.parent / 'system_prompt.txt'})")


@data.command("world-llava")
def world_llava(
    out: Annotated[Path, typer.Option("--out", help="LLaVA-format JSON to write (pictures go to images/ beside it).")],
    n: Annotated[int, typer.Option("--n", help="Conversations to write.")] = 4000,
    seed: Annotated[int, typer.Option("--seed", help="Seed (also fixes the held-out colour-shape pairs).")] = 0,
    max_objects: Annotated[int, typer.Option("--max-objects", help="Most objects per pictured scene.")] = 2,
) -> None:
    """The world assistant's stage-1 sets: refinement, similar image, in/outpainting, editing, questions."""
    from ..data.world_sets import build_world_sets

    typer.echo(f"wrote {n} conversations to {build_world_sets(out, n, seed, max_objects)}")


def _weight(pair: str) -> tuple[str, float]:
    """``KIND=WEIGHT`` as a kind and its weight."""
    kind, _, weight = pair.partition("=")
    try:
        return kind.strip(), float(weight)
    except ValueError:
        raise InvalidInputError(f"--share {pair!r}: write KIND=WEIGHT, e.g. two-object-edit=0.15") from None


def _problems(on_error: OnError):
    from ..data.report import Problems

    return Problems(on_error.value)
