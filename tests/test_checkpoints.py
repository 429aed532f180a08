"""The cache's folders are written whole or not at all; a model folder is checked before it loads."""

import errno
import io
import sys
import time

import pytest

from llmga.checkpoints import write_once
from llmga.errors import CacheWriteError, LLMGAError, ModelNotFoundError


def test_a_cache_folder_appears_only_when_complete_and_a_failure_leaves_nothing(tmp_path):
    def fail(folder):
        (folder / "half.bin").write_bytes(b"x")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_once(tmp_path / "model", fail)
    assert list(tmp_path.iterdir()) == []
    assert write_once(tmp_path / "model", lambda f: (f / "config.json").write_text("{}")) == tmp_path / "model"
    # another process finished the same folder first: its copy stays, this one is dropped
    write_once(tmp_path / "model", lambda f: (f / "other.json").write_text("{}"))
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["config.json"]


def _slow_write(folder):
    with open(folder.parent / "made.log", "a") as log:  # one line per process that did the work
        log.write("made\n")
    time.sleep(1.5)
    (folder / "config.json").write_text("{}")


def test_two_processes_making_the_same_folder_take_turns_and_the_work_is_done_once(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("fork")
    makers = [context.Process(target=write_once, args=(tmp_path / "model", _slow_write)) for _ in range(2)]
    for maker in makers:
        maker.start()
    for maker in makers:
        maker.join(30)
    assert [maker.exitcode for maker in makers] == [0, 0]
    assert (tmp_path / "made.log").read_text() == "made\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["made.log", "model"]  # the lock file gone too
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["config.json"]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_cache_write_is_announced_on_a_terminal_only(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    write_once(tmp_path / "quiet", lambda f: (f / "config.json").write_text("{}"))
    assert sys.stderr.getvalue() == ""
    monkeypatch.setattr(sys, "stderr", _Terminal())
    write_once(tmp_path / "model", lambda f: (f / "config.json").write_text("{}"))
    assert sys.stderr.getvalue() == f"llmga: writing {tmp_path / 'model'} once; later runs reuse it\n"


def test_a_full_disk_reported_by_safetensors_is_an_os_error_naming_the_folder_and_leaves_nothing(tmp_path):
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    def full(folder):
        save_file({"w": torch.zeros(2)}, folder / "model.safetensors")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    def quota(folder):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    for write in (full, quota):  # an OSError, so a merge goes on without its copy; one line for the CLI
        with pytest.raises(CacheWriteError, match=r"could not write .*model.*(No space left|quota).*LLMGA_CACHE"):
            write_once(tmp_path / "model", write)
        assert list(tmp_path.iterdir()) == []
    assert issubclass(CacheWriteError, OSError) and issubclass(CacheWriteError, LLMGAError)

    def unsaveable(folder):  # not the disk: reported as it is
        raise SafetensorError("You are trying to save a non contiguous tensor")

    with pytest.raises(SafetensorError, match="non contiguous"):
        write_once(tmp_path / "model", unsaveable)


@pytest.mark.parametrize(("index", "problem"), [
    (None, "has no model_index.json"),
    ("{not json", "is not valid JSON"),
    ("{}", "names no pipeline class"),
    ('["StableDiffusionPipeline"]', "names no pipeline class"),
    ('{"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}',
     "is incomplete: folder 'unet/' is missing"),
])
def test_a_folder_that_is_not_a_whole_diffusers_pipeline_is_named_before_anything_loads(tmp_path, index, problem):
    from llmga.checkpoints import check_diffusers_dir

    if index is not None:
        (tmp_path / "model_index.json").write_text(index)
    with pytest.raises(ModelNotFoundError, match=problem):
        check_diffusers_dir(tmp_path)
