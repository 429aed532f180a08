"""What every evaluation runner shares: its output folder, resumable caches, sharding, and its report.

A run writes into ``OUT``:

- ``images/``: every picture it painted, named by a hash of everything that
  made it (runner, row, models, prompt, inputs, settings, seed), so a rerun
  (or another process) reuses what exists and paints only what is missing;
- ``answers.sqlite``: the brain's answers, cached the same way (:mod:`llmga.data.cache`);
- ``report.md`` (the table in the paper's layout) and ``report.json`` (every
  figure with its interval, the command, versions, models, backbones and seeds).

Under ``accelerate launch`` (GPUs) or ``torchrun --nproc_per_node N`` (CPU
processes) each process paints its share of the items (:meth:`Run.shard`);
after :meth:`Run.wait` the main process reads every picture from the cache and
computes the figures once.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from ..errors import InvalidInputError
from ..images import write_png
from ..settings import SamplingSettings
from .backbones import Backbones

T = TypeVar("T")


def identity(spec: str | None) -> str | None:
    """A model spec as a cache key names it: the spec and, for a shipped name, folder or file, its resolved
    path and a fingerprint of its contents, so a model retrained in place is not taken for the old one."""
    if spec is None:
        return None
    from .. import registry
    from ..checkpoints import fingerprint

    model = registry.SHIPPED.get(spec)
    path = model.path if model is not None else Path(spec).expanduser()
    return f"{spec}:{path.resolve()}:{fingerprint(path)}" if path.exists() else spec


@dataclass
class Run:
    """One evaluation run: its folder, process group, caches and backbones."""

    out: Path
    backbones: Backbones
    seed: int = 0
    models: dict[str, Any] = field(default_factory=dict)
    #: how the brain is asked: greedy, so a rerun (and the answer cache) gives the same prompts
    sampling: SamplingSettings = field(default_factory=lambda: SamplingSettings(temperature=0, max_new_tokens=256))

    def __post_init__(self) -> None:
        import torch
        from accelerate import PartialState

        self.out = Path(self.out)
        try:
            (self.out / "images").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(f"cannot write the run's folder {self.out}: {exc}") from exc
        self.state = PartialState(cpu=not torch.cuda.is_available())  # several CPU processes: torchrun
        self.started = time.time()
        self._brains: dict[str, Any] = {}

    @property
    def is_main(self) -> bool:
        return self.state.is_main_process

    def shard(self, items: Sequence[T]) -> list[T]:
        """This process's share of ``items`` (all of them in a single process)."""
        return list(items)[self.state.process_index :: self.state.num_processes]

    def wait(self) -> None:
        self.state.wait_for_everyone()

    def image(self, key: dict[str, Any], make: Callable[[], Image.Image]) -> Image.Image:
        """The cached picture for ``key``, painting (and caching) it with ``make`` when it is missing."""
        path = self.image_path(key)
        if path.is_file():
            with Image.open(path) as cached:
                return cached.convert("RGB")
        picture = make().convert("RGB")
        write_png(picture, path, {"key": key})
        return picture

    def cached(self, key: dict[str, Any]) -> Image.Image:
        """A picture some process cached (after :meth:`wait`)."""
        with Image.open(self.image_path(key)) as cached:
            return cached.convert("RGB")

    def image_path(self, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:32]
        return self.out / "images" / f"{digest}.png"

    def brain(self, spec: str | None):
        """The brain named by ``spec`` (loaded once) whose answers persist in this run's ``answers.sqlite``."""
        if spec is None:
            return None
        if spec not in self._brains:
            from ..brain import load_brain
            from ..data.cache import AnswerCache, CachedBrain

            cache = AnswerCache(self.out / "answers.sqlite")
            self._brains[spec] = CachedBrain(load_brain(spec), cache, identity=identity(spec))
        return self._brains[spec]

    def progress(self, items: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
        from tqdm.auto import tqdm

        return tqdm(items, desc=desc, total=total, disable=not self.is_main, leave=False)

    def write(self, name: str, markdown: str, figures: dict[str, Any]) -> Path:
        """Write ``report.md`` and ``report.json`` (main process only); return the markdown's path."""
        if not self.is_main:
            return self.out / "report.md"
        (self.out / "report.md").write_text(f"# {name}\n\n{markdown.rstrip()}\n")
        record = {"name": name, "figures": figures, "command": " ".join(sys.argv), "seed": self.seed,
                  "models": self.models, "backbones": {"kind": self.backbones.name, **self.backbones.sources},
                  "seconds": round(time.time() - self.started, 1), "processes": self.state.num_processes,
                  "versions": versions()}
        (self.out / "report.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
        return self.out / "report.md"


def versions() -> dict[str, str]:
    """The versions of llmga, Python and the libraries behind a figure."""
    out = {"python": platform.python_version()}
    for package in ("llmga", "torch", "diffusers", "transformers", "torchmetrics", "accelerate"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def cell(estimate, digits: int = 4) -> str:
    """A figure with its interval for a markdown table: ``0.1234 [0.1100, 0.1360]``."""
    if estimate is None:
        return "-"
    return f"{estimate.value:.{digits}f} [{estimate.low:.{digits}f}, {estimate.high:.{digits}f}]"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
