"""``llmga index …``: image libraries that embedding control retrieves from (:mod:`llmga.library`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .root import group

index = group("index", "Image libraries: index a folder of pictures in a CLIP space (FAISS) to retrieve from.")


@index.command("build")
def build(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", help="The pictures (searched recursively).")],
    clip: Annotated[str, typer.Option("--clip", help="CLIP model folder whose image space the library lives in "
                                      "(the one the embedding-control model's retrieval head was trained for; "
                                      "'world-clip' is shipped).")] = "world-clip",
    out: Annotated[Optional[Path], typer.Option("--out", help="Where the index goes (default: "
                                                "FOLDER/.llmga-index).")] = None,
    kind: Annotated[str, typer.Option("--kind", help="auto, flat (exact) or hnsw (approximate, for millions).")]
    = "auto",
) -> None:
    """Embed every readable picture of FOLDER and write its FAISS index; unreadable pictures are named and skipped."""
    from ..library import build_library

    library = build_library(folder, clip, out, kind, log=lambda line: typer.echo(line, err=True))
    skipped = len(library.info.skipped)
    note = f"; skipped {skipped} unreadable" if skipped else ""
    typer.echo(f"indexed {len(library)} pictures of {library.root} ({library.info.kind}, {library.info.dim}-d "
               f"{library.info.clip} space) in {library.folder}{note}")


@index.command("search")
def search(
    library: Annotated[Path, typer.Argument(metavar="LIBRARY", help="An indexed folder (or its index folder).")],
    text: Annotated[str, typer.Argument(metavar="TEXT", help="What to look for, in words (the CLIP text tower).")],
    k: Annotated[int, typer.Option("--k", help="How many pictures.")] = 5,
) -> None:
    """The pictures nearest to TEXT in the library's CLIP space, with their cosine similarity."""
    from ..library import ClipSpace, ImageLibrary

    shelf = ImageLibrary.open(library)
    for hit in shelf.search(ClipSpace(shelf.info.clip).texts([text]).numpy(), k)[0]:
        typer.echo(f"{hit.score:.3f}  {hit.path}")
