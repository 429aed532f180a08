"""Image–caption sources: COCO caption files and plain JSONL.

- COCO: the captions JSON (``{"images": [{"id", "file_name"}], "annotations":
  [{"image_id", "caption"}]}``) plus the folder holding the images;
- JSONL: one ``{"image": path, "caption": text}`` per line (``"captions"`` may
  be a list; ``"id"`` is optional). Paths are relative to ``--images`` or to the
  JSONL file's folder. Lines naming the same image are one sample with several
  captions, as in COCO.

Reading the index never fails on one bad entry: a missing caption, a missing or
unreadable image, a malformed line become a :class:`BrokenSampleError` for that
sample when it is checked by :meth:`Source.samples`, which applies the
skip-or-stop policy of :class:`~llmga.data.report.Problems`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from ..errors import InvalidInputError
from .report import BrokenSampleError, Problems, progress

FORMATS = ("auto", "coco", "jsonl")


@dataclass(frozen=True)
class Sample:
    """An image with its short captions. ``image`` is set once the sample has been checked."""

    id: str
    captions: tuple[str, ...]
    image_path: Path | None
    image: Image.Image | None = None
    #: why the index entry is broken (a malformed line), if it is
    error: str | None = None

    @property
    def caption(self) -> str:
        """The first (reference) caption."""
        return self.captions[0]


@dataclass
class Source:
    """The entries of an image–caption source, checked one by one as they are used."""

    name: str
    entries: list[Sample]

    def __len__(self) -> int:
        return len(self.entries)

    def samples(
        self, problems: Problems | None = None, limit: int | None = None, show_progress: bool = True
    ) -> Iterator[Sample]:
        """Checked samples with their images loaded; broken ones go to ``problems``."""
        problems = problems or Problems()
        entries = self.entries[:limit] if limit is not None else self.entries
        bar = progress(entries, desc=self.name, enabled=show_progress)
        yield from problems.each(bar, check_sample)


def check_sample(sample: Sample) -> Sample:
    """``sample`` with its image loaded; a :class:`BrokenSampleError` says what is wrong with it."""
    from ..images import load_image

    if sample.error:
        raise BrokenSampleError(sample.id, sample.error)
    if not sample.captions:
        raise BrokenSampleError(sample.id, "has no caption")
    if sample.image_path is None:
        raise BrokenSampleError(sample.id, "names no image")
    try:
        image = load_image(sample.image_path)
    except InvalidInputError as exc:
        raise BrokenSampleError(sample.id, str(exc)) from exc
    return replace(sample, image=image)


def open_source(path: str | Path, fmt: str = "auto", images: str | Path | None = None) -> Source:
    """Read the index of a source: ``fmt`` is "coco", "jsonl" or "auto" (by the file's extension).

    ``images`` is the image folder (COCO: required unless the images sit beside
    the JSON; JSONL: the root for relative paths, default the file's folder).
    """
    path = Path(path).expanduser()
    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown source format {fmt!r}; choose one of {FORMATS}")
    if not path.is_file():
        raise InvalidInputError(f"source file {path} does not exist")
    if fmt == "auto":
        fmt = "jsonl" if path.suffix.lower() == ".jsonl" else "coco"
    root = Path(images).expanduser() if images is not None else path.parent
    if not root.is_dir():
        raise InvalidInputError(f"image folder {root} does not exist")
    entries = read_coco(path, root) if fmt == "coco" else read_jsonl(path, root)
    return Source(path.name, entries)


def read_coco(captions_json: Path, image_dir: Path) -> list[Sample]:
    """The samples of a COCO captions file, one per image, captions in annotation order."""
    try:
        data = json.loads(captions_json.read_text(encoding="utf-8"))
        images = data["images"]
        annotations = data.get("annotations", [])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise InvalidInputError(
            f"{captions_json} is not a COCO captions file (needs 'images' and 'annotations'): {exc}"
        ) from exc
    captions: dict[object, list[str]] = {}
    for annotation in annotations:
        if isinstance(annotation, dict):
            captions.setdefault(annotation.get("image_id"), []).append(_clean(annotation.get("caption")))
    entries = []
    for index, image in enumerate(images):
        file_name = image.get("file_name") if isinstance(image, dict) else None
        image_id = image.get("id") if isinstance(image, dict) else None
        if not isinstance(file_name, str):
            entries.append(Sample(f"images[{index}]", (), None, error="COCO image entry has no 'file_name'"))
            continue
        texts = tuple(c for c in captions.get(image_id, []) if c)
        entries.append(Sample(Path(file_name).stem, texts, image_dir / file_name))
    return entries


def read_jsonl(path: Path, image_root: Path) -> list[Sample]:
    """The samples of a JSONL file, in file order; lines naming the same image merge into one sample."""
    entries: dict[str, Sample] = {}  # keyed by image path, or by line for a broken line
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            entries[where] = Sample(where, (), None, error=f"malformed JSON line: {exc}")
            continue
        image = row.get("image") if isinstance(row, dict) else None
        if not isinstance(image, str) or not image:
            entries[where] = Sample(where, (), None, error="line has no 'image'")
            continue
        raw = row.get("captions", row.get("caption"))
        texts = tuple(filter(None, map(_clean, raw if isinstance(raw, list) else [raw])))
        previous = entries.get(image)
        if previous is None:
            sample_id = str(row.get("id") or Path(image).with_suffix("").as_posix().replace("/", "_"))
            entries[image] = Sample(sample_id, texts, image_root / image)
        else:
            entries[image] = replace(previous, captions=previous.captions + texts)
    return list(entries.values())


def _clean(caption: object) -> str:
    """A caption with its whitespace tidied ("" for a missing or non-text caption)."""
    return " ".join(caption.split()) if isinstance(caption, str) else ""
