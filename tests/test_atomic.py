import os

import pytest

from llmga import atomic
from llmga.atomic import TMP_PREFIX, write_atomically


@pytest.mark.parametrize("durable", [False, True])
def test_a_file_is_written_whole_into_a_folder_made_for_it(tmp_path, durable):
    path = write_atomically(tmp_path / "a" / "b.bin", b"x" * 1000, durable=durable)
    assert path.read_bytes() == b"x" * 1000
    assert [p.name for p in path.parent.iterdir()] == ["b.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = write_atomically(tmp_path / "b.bin", b"old")

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, b"new")
    assert path.read_bytes() == b"old"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]
    monkeypatch.undo()
    assert write_atomically(path, b"new").read_bytes() == b"new"


def test_a_written_file_gets_the_usual_permissions_of_a_new_file(tmp_path):
    mask = os.umask(0o022)
    try:
        path = write_atomically(tmp_path / "b.png", b"x")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644
