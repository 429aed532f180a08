"""Image–caption sources: COCO and JSONL, and the skip-or-stop policy for broken samples."""

import pytest

from llmga.data import BrokenSampleError, Problems, open_source
from llmga.errors import InvalidInputError
from tests.data.support import make_image, tiny_coco, tiny_jsonl


def test_coco_samples_have_their_captions_in_order_and_images_loaded(tmp_path):
    captions, images = tiny_coco(tmp_path, n=3)
    samples = list(open_source(captions, images=images).samples(show_progress=False))
    assert [s.id for s in samples] == ["000000000000", "000000000001", "000000000002"]
    assert samples[1].captions == ("A small green thing 1.", "a thing number 1 on a table")
    assert samples[1].caption == "A small green thing 1."
    assert samples[0].image.size == (32, 24) and samples[0].image.mode == "RGB"


def test_broken_samples_are_skipped_and_reported_by_name_and_reason(tmp_path):
    captions, images = tiny_coco(tmp_path, n=2, broken=True)
    problems = Problems("skip")
    samples = list(open_source(captions, "coco", images).samples(problems, show_progress=False))
    assert len(samples) == 2
    reasons = dict(problems.skipped)
    assert set(reasons) == {"corrupt", "nocaption", "missing"}
    assert "is not an image" in reasons["corrupt"]
    assert reasons["nocaption"] == "has no caption"
    assert "does not exist" in reasons["missing"]


def test_stop_policy_raises_at_the_first_broken_sample_naming_it(tmp_path):
    captions, images = tiny_coco(tmp_path, n=2, broken=True)
    with pytest.raises(BrokenSampleError, match="sample corrupt: .*is not an image"):
        list(open_source(captions, images=images).samples(Problems("stop"), show_progress=False))


def test_jsonl_lines_of_one_image_merge_and_bad_lines_are_reported(tmp_path):
    make_image(tmp_path / "img" / "a.png", 0)
    make_image(tmp_path / "img" / "b.png", 1)
    path = tiny_jsonl(
        tmp_path,
        [
            {"image": "img/a.png", "caption": "A red square."},
            "{not json",
            {"image": "img/b.png", "captions": ["A green square.", " "]},
            {"image": "img/a.png", "caption": "Red."},
            {"caption": "no image here"},
            {"image": "img/b.png", "id": "ignored-second-id", "caption": ""},
        ],
    )
    problems = Problems()
    samples = list(open_source(path).samples(problems, show_progress=False))
    assert [(s.id, s.captions) for s in samples] == [
        ("img_a", ("A red square.", "Red.")),
        ("img_b", ("A green square.",)),
    ]
    assert [sample for sample, _ in problems.skipped] == ["pairs.jsonl:2", "pairs.jsonl:5"]
    assert "malformed JSON" in problems.skipped[0][1]


def test_limit_and_bad_source_files(tmp_path):
    captions, images = tiny_coco(tmp_path, n=3)
    assert len(list(open_source(captions, images=images).samples(limit=2, show_progress=False))) == 2
    with pytest.raises(InvalidInputError, match="does not exist"):
        open_source(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text('{"annotations": []}')
    with pytest.raises(InvalidInputError, match="not a COCO captions file"):
        open_source(tmp_path / "bad.json")
    with pytest.raises(InvalidInputError, match="on_error"):
        Problems("ignore")
