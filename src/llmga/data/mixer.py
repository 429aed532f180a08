"""Mix data sets with per-set ratios into one stage-1 training file.

A ratio below 1 takes that share of a set's records, drawn at random; a ratio
above 1 repeats the set (2.5: twice over, plus half of it drawn at random).
The paper's stage-1 ratios are :data:`PAPER_RATIOS`: VQA (LLaVA v1.5 mix665k)
1, QA (Alpaca) 0.3 and each of the four generation sets 0.3.

Inputs are LLaVA-format JSON files (Alpaca-format records, ``{"instruction",
"input", "output"}``, are converted). Record ids become ``<set>/<id>`` (repeats
add ``#<n>``) and image paths are rewritten relative to the output file's
folder, so the mixed file works with one image folder: the output's own.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from .records import PATH_KEYS, Record, make_record, read_records, validate_record
from .report import BrokenSampleError, Problems, Report

PAPER_RATIOS: dict[str, float] = {
    "vqa": 1.0,
    "qa": 0.3,
    "refine": 0.3,
    "similar": 0.3,
    "inpaint": 0.3,
    "edit": 0.3,
}


@dataclass(frozen=True)
class MixInput:
    """One set to mix: its name, JSON file, ratio and the folder its image paths are relative to
    (default: the JSON file's folder)."""

    name: str
    path: Path
    ratio: float = 1.0
    image_root: Path | None = None

    @property
    def root(self) -> Path:
        return self.image_root if self.image_root is not None else self.path.parent


def parse_mix_input(spec: str, image_roots: dict[str, Path] | None = None) -> MixInput:
    """Parse ``NAME=PATH[:RATIO]``; without a ratio, the paper's ratio for NAME, else 1."""
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise InvalidInputError(f"expected NAME=PATH[:RATIO], got {spec!r}")
    path, ratio = rest, PAPER_RATIOS.get(name, 1.0)
    head, colon, tail = rest.rpartition(":")
    if colon:
        try:
            path, ratio = head, float(tail)
        except ValueError:
            path = rest
    if ratio < 0:
        raise InvalidInputError(f"the ratio of set {name} must be >= 0, got {ratio}")
    return MixInput(name, Path(path).expanduser(), ratio, (image_roots or {}).get(name))


def alpaca_to_record(row: dict[str, Any], record_id: str) -> Record:
    """An Alpaca ``{"instruction", "input", "output"}`` row as a text-only conversation record."""
    human = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
    return make_record(record_id, [(human, row["output"])])


def load_set(mix_input: MixInput, problems: Problems, check_images: bool = True) -> list[Record]:
    """The valid records of a set; a malformed record or a missing image goes to ``problems``."""

    def checked(item: tuple[int, Any]) -> Record:
        index, row = item
        if isinstance(row, dict) and "conversations" not in row and {"instruction", "output"} <= row.keys():
            row = alpaca_to_record(row, str(index))
        sample_id = f"{mix_input.name}/{row.get('id', index) if isinstance(row, dict) else index}"
        try:
            validate_record(row)
        except InvalidInputError as exc:
            raise BrokenSampleError(sample_id, str(exc)) from exc
        if check_images and "image" in row and not (mix_input.root / row["image"]).is_file():
            raise BrokenSampleError(sample_id, f"image {mix_input.root / row['image']} does not exist")
        return row

    return list(problems.each(enumerate(read_records(mix_input.path)), checked))


def take(records: list[Record], ratio: float, rng: random.Random) -> list[tuple[int, Record]]:
    """``ratio`` times the records, as (copy number, record): whole copies, then a random share."""
    whole, share = int(ratio), ratio - int(ratio)
    taken = [(copy, record) for copy in range(whole) for record in records]
    return taken + [(whole, record) for record in rng.sample(records, round(share * len(records)))]


def mix(
    inputs: list[MixInput],
    out: str | Path,
    seed: int = 0,
    problems: Problems | None = None,
    check_images: bool = True,
) -> Report:
    """Mix ``inputs`` by their ratios into the JSON file ``out``, shuffled by ``seed``."""
    out = Path(out)
    names = [mix_input.name for mix_input in inputs]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"set names must be unique, got {names}")
    report = Report("mix", problems=problems or Problems())
    mixed: list[Record] = []
    for mix_input in inputs:
        records = load_set(mix_input, report.problems, check_images)
        chosen = take(records, mix_input.ratio, random.Random(f"{seed}/{mix_input.name}"))
        mixed += [_rebased(record, mix_input, copy, out.parent) for copy, record in chosen]
        report.counts[mix_input.name] = len(chosen)
        report.notes.append(
            f"{mix_input.name}: {len(chosen)} of {len(records)} records (ratio {mix_input.ratio:g})"
        )
    random.Random(f"{seed}/mix").shuffle(mixed)
    report.save(mixed, out)
    return report


def _rebased(record: Record, mix_input: MixInput, copy: int, out_dir: Path) -> Record:
    """A copy of ``record`` with a set-qualified id and its file paths relative to ``out_dir``."""
    record = {**record, "id": f"{mix_input.name}/{record['id']}" + (f"#{copy}" if copy else "")}
    for key in PATH_KEYS:
        if isinstance(record.get(key), str):
            path = os.path.relpath((mix_input.root / record[key]).resolve(), out_dir.resolve())
            record[key] = Path(path).as_posix()
    return record
