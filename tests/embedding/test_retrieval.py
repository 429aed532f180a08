"""Retrieve or generate on the tiny stack: the decision and its frequency multiplier choose between the library's
nearest picture and a painting, the notice says which (and from where); an empty library means generate; a
library the model cannot search is refused by name."""

import shutil

import pytest

from llmga.assistant import Assistant
from llmga.embedding.control import load_embedding_control
from llmga.embedding.decision import Decision
from llmga.errors import InvalidInputError, ModelNotFoundError
from llmga.images import load_image
from llmga.library import build_library
from llmga.painter.suite import PainterSuite
from llmga.settings import PaintSettings, SamplingSettings
from llmga.world.render import render
from llmga.world.scene import Background, Obj, Scene

GREEDY = SamplingSettings(temperature=0, max_new_tokens=24)
FAST = PaintSettings(steps=2, width=64, height=64)


@pytest.fixture(scope="module")
def calibrated(control_model, tmp_path_factory):
    """A copy of the tiny model with a decision retrieving above similarity 0.5."""
    folder = tmp_path_factory.mktemp("calibrated") / "model"
    shutil.copytree(control_model, folder)
    Decision(slope=10.0, bias=-5.0).save(folder)
    return folder


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("library")
    for i, colour in enumerate(("red", "blue", "green")):
        render(Scene((Obj("star", colour, "large", "center"),), Background("day", "grass"))).save(root / f"{i}.png")
    build_library(root, "world-clip")
    return root


def assistant(model, tiny, library, frequency):
    brain, painters = load_embedding_control(model, PainterSuite.load(tiny.sd("sd15")), library=library,
                                             retrieval_frequency=frequency)
    return Assistant(brain, painters, sampling=GREEDY, paint=FAST)


def test_the_decision_retrieves_the_nearest_picture_and_says_from_where(calibrated, library, tiny):
    result = assistant(calibrated, tiny, library, frequency=1e12).generate("a red star")
    [painting] = result.paintings
    [notice] = [n for n in result.notices if n.startswith("retrieved")]
    path = notice.split()[1]
    assert f"from the library {library}" in notice and "similarity" in notice
    assert painting.images[0].tobytes() == load_image(path).tobytes()  # the library's picture itself
    assert painting.model == f"retrieved from {path}"


def test_frequency_zero_always_paints_and_says_why(calibrated, library, tiny):
    result = assistant(calibrated, tiny, library, frequency=0).generate("a red star")
    [notice] = [n for n in result.notices if n.startswith("painted")]
    assert "the library's best match" in notice and "P(retrieve) 0.00" in notice
    assert result.paintings[0].images[0].size == (64, 64)


def test_an_empty_library_means_generate(calibrated, tiny, tmp_path):
    build_library(tmp_path, "world-clip")
    result = assistant(calibrated, tiny, tmp_path, frequency=1e12).generate("a red star")
    assert "painted from the [IMG] embeddings (the library is empty)" in result.notices


def test_libraries_the_model_cannot_search_are_refused_by_name(calibrated, control_model, bare_model, library,
                                                               world_parts, tiny, tmp_path):
    with pytest.raises(ModelNotFoundError, match="no calibrated retrieve-or-generate decision"):
        assistant(control_model, tiny, library, 1.0)
    other = build_library(library, str(world_parts / "clip" / "model"), out=tmp_path / "other-clip")
    with pytest.raises(InvalidInputError, match="rebuild the library with llmga index build"):
        assistant(calibrated, tiny, other.folder, 1.0)
    with pytest.raises(InvalidInputError, match="has no retrieval head"):
        load_embedding_control(bare_model, PainterSuite.load(tiny.sd("sdxl")), library=library)


def test_the_studio_gallery_is_a_live_library_a_new_picture_is_found_on_the_next_request(calibrated, tiny, tmp_path):
    from llmga.library import ImageLibrary, vectors

    gallery = tmp_path / "images"  # the studio's folder: nothing there yet
    brain, painters = load_embedding_control(calibrated, PainterSuite.load(tiny.sd("sd15")), library="gallery",
                                             retrieval_frequency=1e12, gallery=gallery)
    helper = Assistant(brain, painters, sampling=GREEDY, paint=FAST)
    assert "painted from the [IMG] embeddings (the library is empty)" in helper.generate("a red star").notices
    (gallery / "ab").mkdir()
    render(Scene((Obj("star", "red", "large", "center"),), Background("day", "grass"))).save(gallery / "ab" / "c.png")
    (gallery / "ab" / "broken.png").write_bytes(b"not a picture")
    vectors.SYNC_SECONDS, before = 0.0, vectors.SYNC_SECONDS
    try:
        result = helper.generate("a red star")
    finally:
        vectors.SYNC_SECONDS = before
    [notice] = [n for n in result.notices if n.startswith("retrieved")]
    assert str(gallery.resolve() / "ab" / "c.png") in notice
    library = painters.text_to_image.library
    assert len(library) == 1 and [s["path"].endswith("broken.png") for s in library.info.skipped] == [True]
    assert ImageLibrary.open(gallery).paths == ["ab/c.png"]  # on disk: a restarted studio embeds nothing again
    (gallery / "ab" / "c.png").unlink()  # its session was deleted
    vectors.SYNC_SECONDS = 0.0
    try:
        assert "painted from the [IMG] embeddings (the library is empty)" in helper.generate("a red star").notices
    finally:
        vectors.SYNC_SECONDS = before


def test_the_gallery_is_only_the_studios(calibrated, tiny):
    with pytest.raises(InvalidInputError, match="use it with llmga serve"):
        load_embedding_control(calibrated, PainterSuite.load(tiny.sd("sd15")), library="gallery")
