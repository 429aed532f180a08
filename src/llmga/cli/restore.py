"""``llmga restore IMAGE --mask MASK --reference ORIGINAL``: repair the seams of a painting made elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .root import app


@app.command()
def restore(
    image: Annotated[Path, typer.Argument(metavar="IMAGE", help="The painted picture (inpainted or outpainted).")],
    mask: Annotated[Path, typer.Option("--mask", help="The mask it was painted under (white: painted), the "
                                       "reference's size.")],
    reference: Annotated[Path, typer.Option("--reference", help="The original whose kept region is the "
                                            "reference (the canvas, for an outpainting).")],
    restorer: Annotated[Optional[str], typer.Option("--restorer", help="Restorer folder, released DiffRIR .pth or "
                                                    "shipped name (default: the profile's).")] = None,
    scale: Annotated[int, typer.Option("--scale", help="1, or 2/4 with a ×2/×4 checkpoint: the reference and mask "
                                       "are then that many times IMAGE's size.")] = 1,
    out: Annotated[Optional[Path], typer.Option("--out", help="PNG to write (default: ./outputs/IMAGE-restored.png).")]
    = None,
    profile: Annotated[Optional[str], typer.Option("--profile", help="Profile whose restorer to use.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="Config file.")] = None,
) -> None:
    """Restore IMAGE with the kept region of ORIGINAL as reference (DiffRIR) and composite it back through MASK."""
    from tqdm.auto import tqdm

    from ..errors import ModelNotFoundError
    from ..images import check_writable, load_image, write_png
    from ..masks import load_mask
    from ..profiles import load_profile
    from ..restore import Restorer

    target = out or Path("outputs") / f"{image.stem}-restored.png"
    check_writable(target.parent)  # before any work, so none is lost
    spec = restorer or load_profile(profile, config).restorer
    if not spec:
        raise ModelNotFoundError("no restorer is configured; give one with --restorer DIR")
    model = Restorer.load(spec)
    model.check_scale(scale)
    typer.echo(f"restorer: {model.describe()}")
    painted, original = load_image(image), load_image(reference)
    drawn = load_mask(mask, original.size)
    with tqdm(desc="restoring", unit="tile", disable=None) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        restored = model.restore(painted, original, drawn, progress=progress)
    write_png(restored, target, {"task": "restore", "restorer": str(spec), "scale": scale, "source": str(image)})
    typer.echo(f"image saved: {target}")
