"""``llmga world …``: the miniature world's own tools: render a caption exactly, read a picture, sample scenes,
export its test sets in the paper's layouts.

Its models are trained by ``llmga train`` and measured by ``llmga eval``; the
old ``llmga world train-*``/``bench*`` names still work, hidden, for one release.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from PIL import Image

from .data import world_chat, world_llava
from .eval import assistant as eval_assistant
from .eval import judge as eval_judge
from .eval import llava as eval_llava
from .eval import world as eval_world
from .root import group
from .train import assistant as train_assistant
from .train import clip, judge, painter, ship_assistant, ship_painter, vae

world = group("world", "The miniature world: render captions exactly, read pictures with the judge, sample scenes.")

Size = Annotated[int, typer.Option("--size", help="Picture size in pixels.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed for every random choice.")]
CAPTION_HELP = (
    "A detailed caption: 'a <size> <colour> <shape> at the <position> (and a ...), "
    "on <terrain> under a <time> sky'."
)


def _write(image: Image.Image, path: Path, metadata: dict[str, Any], scale: int = 1) -> Path:
    """Save ``image`` (enlarged ``scale`` times, pixels kept sharp) with ``metadata`` as PNG text."""
    from ..images import write_png

    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    return write_png(image, path, metadata)


@world.command()
def sample(
    out: Annotated[Path, typer.Option("--out", help="Output folder: scenes.jsonl, images/, masks/, edits/.")],
    n: Annotated[int, typer.Option("--n", help="Number of scenes.")] = 16,
    max_objects: Annotated[int, typer.Option("--max-objects", help="Most objects per scene.")] = 1,
    min_objects: Annotated[int, typer.Option("--min-objects", help="Fewest objects per scene.")] = 1,
    edits: Annotated[int, typer.Option("--edits", help="Edit pairs per scene.")] = 2,
    size: Size = 32,
    seed: Seed = 0,
) -> None:
    """Write N scenes: pictures, masks, edited pictures, and a JSON line per scene with captions and edits."""
    from tqdm.auto import tqdm

    from ..world.captions import detailed_caption, short_caption
    from ..world.edits import sample_edit
    from ..world.regions import scene_masks
    from ..world.render import render
    from ..world.scene import as_rng, sample_scene

    rng = as_rng(seed)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    lines = []
    for index in tqdm(range(n), desc="sampling scenes", disable=n < 500):
        name = f"{index:06d}"
        scene = sample_scene(rng, max_objects, min_objects=min_objects)
        caption = detailed_caption(scene)
        _write(
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
            _write(
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


@world.command("render")
def render_caption(
    caption: Annotated[str, typer.Argument(metavar="CAPTION", help=CAPTION_HELP)],
    out: Annotated[Path, typer.Option("--out", help="PNG file to write.")],
    size: Size = 32,
    scale: Annotated[int, typer.Option("--scale", help="Enlarge the saved picture this many times.")] = 1,
    lenient: Annotated[bool, typer.Option("--lenient", help="Paint what parses; skip the rest.")] = False,
) -> None:
    """Paint a detailed caption exactly (the oracle painter)."""
    from ..world.captions import detailed_caption, oracle_paint, parse_caption

    parsed = parse_caption(caption)
    image = oracle_paint(caption, size, strict=not lenient)
    for problem in parsed.problems:
        typer.echo(f"warning: {problem}", err=True)
    _write(image, out, {"prompt": caption, "scene": parsed.scene().to_dict(), "size": size}, scale)
    typer.echo(f"{detailed_caption(parsed.scene())} -> {out}")


@world.command("read")
def read(
    images: Annotated[list[Path], typer.Argument(metavar="IMAGES", help="Pictures to read.")],
    judge_dir: Annotated[
        Path | None, typer.Option("--judge", help="Judge folder (default: shipped).")
    ] = None,
) -> None:
    """Say what the judge sees in pictures, as detailed captions."""
    from ..images import load_image
    from ..world.captions import detailed_caption
    from ..world.judge import Judge

    pictures = [load_image(p) for p in images]
    judge = Judge.load(judge_dir)
    scenes = judge.read(pictures)
    for path, scene in zip(images, scenes):
        typer.echo(f"{path}: {detailed_caption(scene)}")


@world.command("export")
def export_sets(
    layout: Annotated[str, typer.Argument(metavar="LAYOUT", help="coco, magicbrush or places.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the set to.")],
    n: Annotated[int, typer.Option("--n", help="Items.")] = 200,
    seed: Seed = 0,
    size: Size = 32,
) -> None:
    """Write a world test set in a published layout, for the paper's tables (llmga eval ... --world)."""
    from ..data.world_layouts import LAYOUTS, export
    from ..errors import InvalidInputError

    if layout not in LAYOUTS:
        raise InvalidInputError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    typer.echo(f"wrote {n} items in the {layout} layout to {export(layout, out, n, seed, size)}")


# The names these commands had before they moved to `llmga train` / `llmga eval` / `llmga data`.
for old, command in {
    "train-clip": clip, "train-vae": vae, "train-painter": painter, "train-judge": judge,
    "build-assistant": train_assistant, "ship-painter": ship_painter, "ship-assistant": ship_assistant,
    "bench": eval_world, "bench-assistant": eval_assistant, "bench-llava": eval_llava, "judge-eval": eval_judge,
    "refine-data": world_chat, "assistant-data": world_llava,
}.items():
    world.command(old, hidden=True)(command)
