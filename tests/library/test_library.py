"""Image libraries: world pictures in the world CLIP's space, searched through FAISS; broken pictures named and
skipped; an empty library finds nothing."""

import json

import numpy as np
import pytest

from llmga.errors import InvalidInputError, ModelNotFoundError
from llmga.library import ClipSpace, ImageLibrary, build_library, pictures_in
from llmga.world.captions import detailed_caption
from llmga.world.render import render
from llmga.world.scene import Background, Obj, Scene

SCENES = [Scene((Obj("star", "red", "large", "center"),), Background("day", "grass")),
          Scene((Obj("circle", "blue", "large", "center"),), Background("night", "snow")),
          Scene((Obj("square", "yellow", "large", "center"),), Background("sunset", "sand"))]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("pictures")
    (root / "nested").mkdir()
    for i, scene in enumerate(SCENES):
        render(scene).save(root / ("nested" if i == 2 else ".") / f"{i}.png")
    (root / "broken.png").write_bytes(b"not a picture")
    (root / "notes.txt").write_text("not a picture either")
    return root


def test_a_folder_is_indexed_and_each_picture_found_by_its_own_caption(folder):
    library = build_library(folder, "world-clip")
    assert len(library) == 3 and library.info.kind == "flat" and library.info.dim == 128
    space = ClipSpace("world-clip")
    for i, scene in enumerate(SCENES):
        hit = library.search(space.texts([detailed_caption(scene)]).numpy(), k=1)[0][0]
        assert hit.path.name == f"{i}.png" and hit.path.is_file()
    reopened = ImageLibrary.open(folder)  # from the picture folder: its .llmga-index
    own = space.images([render(SCENES[1])]).numpy()
    assert reopened.search(own, k=2)[0][0].path.name == "1.png"
    assert reopened.search(own, k=2)[0][0].score == pytest.approx(1.0, abs=1e-4)


def test_a_broken_picture_is_named_and_skipped(folder):
    lines = []
    library = build_library(folder, "world-clip", out=folder.parent / "elsewhere", log=lines.append)
    assert [s["path"] for s in library.info.skipped] == [str(folder / "broken.png")]
    assert "not an image" in library.info.skipped[0]["reason"]
    assert lines == [f"skipped {folder / 'broken.png'}: {library.info.skipped[0]['reason']}"]
    saved = json.loads((folder.parent / "elsewhere" / "library.json").read_text())
    assert saved["count"] == 3 and len(saved["skipped"]) == 1


def test_an_empty_library_finds_nothing(tmp_path):
    library = build_library(tmp_path, "world-clip")
    assert len(library) == 0 and pictures_in(tmp_path) == []
    assert ImageLibrary.open(tmp_path).search(np.ones((2, 128)), k=3) == [[], []]


def test_hnsw_finds_the_same_nearest_picture(folder, tmp_path):
    library = build_library(folder, "world-clip", out=tmp_path / "hnsw", kind="hnsw")
    own = ClipSpace("world-clip").images([render(SCENES[0])]).numpy()
    assert library.info.kind == "hnsw" and library.search(own)[0][0].path.name == "0.png"


def test_missing_libraries_folders_and_clips_are_refused_by_name(tmp_path):
    with pytest.raises(ModelNotFoundError, match="holds no image library; build one with llmga index build"):
        ImageLibrary.open(tmp_path)
    with pytest.raises(InvalidInputError, match="is not a folder of pictures"):
        build_library(tmp_path / "nowhere", "world-clip")
    with pytest.raises(ModelNotFoundError, match="is not a CLIP model folder"):
        build_library(tmp_path, str(tmp_path))
