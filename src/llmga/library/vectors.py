"""An image library: a folder of pictures, their CLIP image embeddings in a FAISS index, and their paths.

``llmga index build FOLDER`` writes the index into ``FOLDER/.llmga-index``
(or ``--out``)::

    library.json    the CLIP it was built with, the index kind, the folder, the pictures skipped and why
    index.faiss     the vectors (unit length, so inner product is cosine similarity)
    paths.json      the picture of each vector, relative to the folder

FAISS rather than pgvector: the library lives beside the user's pictures and
is searched in-process by the CLI and the studio, with no database server to
run; an exact inner-product index (``IndexFlatIP``) answers a query over
100,000 pictures in milliseconds, and past that an HNSW graph
(``IndexHNSWFlat``) keeps queries sub-linear at millions. pgvector is the
better choice once the pictures already live in PostgreSQL beside other
records shared by many servers; nothing here does.

Pictures that cannot be read are named and skipped; an empty library is
valid (a search finds nothing, so embedding control generates). A *live*
library (:func:`open_gallery`, the studio's own pictures) indexes the pictures
added to its folder since the last search before it searches.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError, LLMGAError, ModelNotFoundError

INDEX_DIR = ".llmga-index"
SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
#: past this many pictures ``auto`` builds an HNSW graph instead of the exact index
HNSW_FROM = 100_000
#: a live library looks for new pictures at most this often (seconds)
SYNC_SECONDS = 1.0


@dataclass
class LibraryInfo:
    """``library.json``: what the index holds and how it was built."""

    clip: str
    dim: int
    kind: str
    root: str
    count: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Hit:
    """A picture found for a query, with its cosine similarity."""

    path: Path
    score: float


class ImageLibrary:
    """A built library: :meth:`search` finds the pictures nearest to unit query vectors."""

    def __init__(self, folder: Path, info: LibraryInfo, index, paths: list[str], live: bool = False) -> None:
        self.folder, self.info, self.index, self.paths, self.live = folder, info, index, paths, live
        self._space = None
        self._synced = 0.0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def root(self) -> Path:
        return Path(self.info.root)

    def search(self, queries, k: int = 1) -> list[list[Hit]]:
        """The ``k`` nearest pictures of each query (rows of a ``(n, dim)`` array); none in an empty library."""
        queries = np.ascontiguousarray(np.asarray(queries, dtype=np.float32).reshape(-1, self.info.dim))
        with self._lock:
            if self.live and time.monotonic() - self._synced >= SYNC_SECONDS:
                self.sync()
            if not self.paths:
                return [[] for _ in queries]
            scores, found = self.index.search(queries, min(k, len(self.paths)))
        hits = [[Hit(self.root / self.paths[i], float(s)) for s, i in zip(row_s, row_i) if i >= 0]
                for row_s, row_i in zip(scores, found)]
        return [[h for h in row if h.path.is_file()] for row in hits] if self.live else hits

    def add(self, files: list[Path], batch_size: int = 64, log=lambda line: None) -> int:
        """Embed ``files`` (pictures under the library's folder) and add them; unreadable ones are named in
        ``info.skipped``. Returns how many were added."""
        from ..images import load_image
        from .clip_space import ClipSpace

        if self._space is None:
            self._space = ClipSpace(self.info.clip, batch_size)
        before = len(self.paths)
        for start in range(0, len(files), batch_size):
            pictures, names = [], []
            for path in files[start : start + batch_size]:
                try:
                    pictures.append(load_image(path))
                    names.append(str(path.relative_to(self.root)))
                except (LLMGAError, OSError) as exc:
                    self.info.skipped.append({"path": str(path), "reason": str(exc)})
                    log(f"skipped {path}: {exc}")
            if pictures:
                self.index.add(self._space.images(pictures).numpy().astype(np.float32))
                self.paths += names
        self.info.count = len(self.paths)
        return len(self.paths) - before

    def sync(self) -> int:
        """Follow the folder: drop the pictures deleted since the last look (exact index), index the new ones,
        and save; returns how many were added."""
        files = pictures_in(self.root)
        present = {str(p.relative_to(self.root)) for p in files}
        gone = [i for i, name in enumerate(self.paths) if name not in present]
        if gone and self.info.kind == "flat":  # an HNSW graph cannot forget; its hits are checked instead
            self.index.remove_ids(np.array(gone, dtype=np.int64))
            self.paths = [name for name in self.paths if name in present]
        known = set(self.paths) | {str(Path(s["path"]).relative_to(self.root)) for s in self.info.skipped}
        new = [p for p in files if str(p.relative_to(self.root)) not in known]
        added = self.add(new) if new else 0
        if gone or new:
            self.info.count = len(self.paths)
            self.save()
        self._synced = time.monotonic()
        return added

    def save(self) -> None:
        """Write the index, the paths and ``library.json`` into the library's index folder."""
        import faiss

        self.folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(self.folder / "index.faiss"))
        (self.folder / "paths.json").write_text(json.dumps(self.paths))
        (self.folder / "library.json").write_text(json.dumps(asdict(self.info), indent=2) + "\n")

    @classmethod
    def open(cls, path: str | Path) -> ImageLibrary:
        """The library at ``path``: an index folder, or a picture folder holding one in ``.llmga-index``."""
        import faiss

        path = Path(path).expanduser()
        folder = path if (path / "library.json").is_file() else path / INDEX_DIR
        if not (folder / "library.json").is_file():
            raise ModelNotFoundError(f"{path} holds no image library; build one with llmga index build {path}")
        info = LibraryInfo(**json.loads((folder / "library.json").read_text()))
        paths = json.loads((folder / "paths.json").read_text())
        return cls(folder, info, faiss.read_index(str(folder / "index.faiss")), paths)


def pictures_in(folder: Path) -> list[Path]:
    """The picture files under ``folder`` (recursively, hidden folders left out), in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def build_library(folder: str | Path, clip: str, out: str | Path | None = None, kind: str = "auto",
                  batch_size: int = 64, log=lambda line: None) -> ImageLibrary:
    """Embed every readable picture under ``folder`` with the CLIP ``clip`` and write the index.

    Unreadable pictures are skipped, each named with the reason (``log`` and ``library.json``).
    """
    import faiss

    from .clip_space import ClipSpace

    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise InvalidInputError(f"{folder} is not a folder of pictures")
    if kind not in ("auto", "flat", "hnsw"):
        raise InvalidInputError(f"unknown index kind {kind!r}; choose auto, flat or hnsw")
    space = ClipSpace(clip, batch_size)
    files = pictures_in(folder)
    kind = ("hnsw" if len(files) > HNSW_FROM else "flat") if kind == "auto" else kind
    index = faiss.IndexHNSWFlat(space.dim, 32, faiss.METRIC_INNER_PRODUCT) if kind == "hnsw" \
        else faiss.IndexFlatIP(space.dim)
    target = Path(out).expanduser() if out else folder / INDEX_DIR
    library = ImageLibrary(target, LibraryInfo(clip=clip, dim=space.dim, kind=kind, root=str(folder)), index, [])
    library._space = space
    library.add(files, batch_size, log)
    library.save()
    return library


def open_gallery(folder: str | Path, clip: str) -> ImageLibrary:
    """A live library of ``folder`` (made if missing) in the space of ``clip``: its index is built on first
    use, then kept up to date with each search (the studio's own pictures)."""
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / INDEX_DIR
    library = ImageLibrary.open(folder) if (index / "library.json").is_file() else build_library(folder, clip)
    library.live = True
    return library
