"""Broken samples, the policy for them, and the counts a build reports.

A broken sample (an unreadable image, a missing caption, an empty answer from a
captioner) is never dropped silently: with ``on_error="skip"`` it is recorded
with its reason and counted in the report; with ``on_error="stop"`` the build
stops with a :class:`BrokenSampleError` that names the sample.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tqdm.auto import tqdm

from ..errors import InvalidInputError
from .records import Record, write_records

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

ON_ERROR_CHOICES = ("skip", "stop")


class BrokenSampleError(InvalidInputError):
    """One sample of a data set cannot be used; the message names it and says why."""

    def __init__(self, sample_id: str, reason: str) -> None:
        super().__init__(f"sample {sample_id}: {reason}")
        self.sample_id = sample_id
        self.reason = reason


@dataclass
class Problems:
    """What happens to broken samples: ``"skip"`` records each and goes on, ``"stop"`` raises."""

    on_error: str = "skip"
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR_CHOICES:
            raise InvalidInputError(f"on_error must be one of {ON_ERROR_CHOICES}, got {self.on_error!r}")

    def handle(self, error: BrokenSampleError) -> None:
        """Record ``error`` (skip) or raise it (stop)."""
        if self.on_error == "stop":
            raise error
        log.info("skipped %s", error)
        self.skipped.append((error.sample_id, error.reason))

    def each(self, items: Iterable[T], work: Callable[[T], R]) -> Iterator[R]:
        """``work(item)`` for each item; a :class:`BrokenSampleError` goes to :meth:`handle`."""
        for item in items:
            try:
                result = work(item)
            except BrokenSampleError as error:
                self.handle(error)
                continue
            yield result


def progress(items: Iterable[T], desc: str, total: int | None = None, enabled: bool = True) -> Iterable[T]:
    """A tqdm progress bar over ``items`` (on stderr; off when ``enabled`` is false)."""
    return tqdm(items, desc=desc, total=total, unit="sample", disable=not enabled, dynamic_ncols=True)


@dataclass
class Report:
    """What a build wrote, skipped and counted along the way."""

    name: str
    written: int = 0
    out: Path | None = None
    counts: Counter = field(default_factory=Counter)
    problems: Problems = field(default_factory=Problems)
    notes: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return len(self.problems.skipped)

    @property
    def skipped_file(self) -> Path | None:
        """Where the full list of skipped samples is written, beside the data file."""
        return self.out.with_name(self.out.stem + ".skipped.json") if self.out else None

    def save(self, records: list[Record], path: Path) -> None:
        """Write ``records`` to ``path`` and the skipped samples (with reasons) beside it."""
        self.out = write_records(records, path)
        self.written = len(records)
        skipped = [{"sample": sample, "reason": reason} for sample, reason in self.problems.skipped]
        self.skipped_file.write_text(json.dumps(skipped, indent=1, ensure_ascii=False), encoding="utf-8")

    def summary(self, show_skipped: int = 10) -> str:
        """Human-readable lines: records written, each count, skipped samples and why."""
        lines = [f"{self.name}: {self.written} records written" + (f" to {self.out}" if self.out else "")]
        lines += [f"  {key}: {value}" for key, value in sorted(self.counts.items())]
        where = f" (all listed in {self.skipped_file})" if self.skipped and self.skipped_file else ""
        lines.append(f"  skipped (broken samples): {self.skipped}{where}")
        lines += [f"    {sample}: {reason}" for sample, reason in self.problems.skipped[:show_skipped]]
        if self.skipped > show_skipped:
            lines.append(f"    ... and {self.skipped - show_skipped} more")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)
