"""``llmga world`` (sample, render, read) and ``llmga eval judge``, through the command line app."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from llmga.cli import app
from llmga.errors import LLMGAError
from llmga.world import parse_detailed, render

runner = CliRunner()


def world(*args):
    return runner.invoke(app, ["world", *args])
CAPTION = (
    "a large red star at the top left and a small blue circle at the center, on grass under a sunset sky"
)


def test_sample_writes_pictures_masks_edits_and_jsonl(tmp_path):
    result = world("sample", "--out", str(tmp_path), "--n", "4", "--max-objects", "3", "--edits", "2", "--seed", "5")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (tmp_path / "scenes.jsonl").read_text().splitlines()]
    assert len(lines) == 4
    for line in lines:
        scene = parse_detailed(line["detailed"])
        assert scene.to_dict() == line["scene"]
        picture = np.asarray(Image.open(tmp_path / line["image"]))
        assert np.array_equal(picture, np.asarray(render(scene)))
        assert len(line["masks"]) == len(scene.objects) + 3
        assert all((tmp_path / m["image"]).is_file() for m in line["masks"])
        assert len(line["edits"]) == 2
        for edit in line["edits"]:
            target = np.asarray(Image.open(tmp_path / edit["target_image"]))
            assert np.array_equal(target, np.asarray(render(parse_detailed(edit["target_caption"]))))
    with Image.open(tmp_path / lines[0]["image"]) as image:
        assert json.loads(image.text["llmga"])["prompt"] == lines[0]["detailed"]


def test_render_is_the_oracle(tmp_path):
    out = tmp_path / "x.png"
    result = world("render", CAPTION.upper(), "--out", str(out), "--size", "48", "--scale", "2")
    assert result.exit_code == 0, result.output
    assert CAPTION in result.output
    expected = render(parse_detailed(CAPTION), 48).resize((96, 96), Image.NEAREST)
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(expected))


def test_render_refuses_a_bad_caption_unless_lenient(tmp_path):
    result = world("render", "a huge red star at the top left", "--out", str(tmp_path / "x.png"))
    assert result.exit_code != 0 and isinstance(result.exception, LLMGAError)
    assert "unknown word 'huge'" in str(result.exception)
    result = world("render", "a small red star at the center", "--lenient", "--out", str(tmp_path / "y.png"))
    assert result.exit_code == 0 and "no time of day" in result.output


@pytest.mark.shipped
def test_eval_judge_and_read_with_the_shipped_judge(tmp_path):
    result = runner.invoke(app, ["eval", "judge", "--n", "100", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["passed"]
    world("render", CAPTION, "--out", str(tmp_path / "x.png"))
    result = world("read", str(tmp_path / "x.png"))
    assert result.exit_code == 0 and CAPTION in result.output


def test_eval_judge_without_a_judge_names_the_fix(tmp_path):
    result = runner.invoke(app, ["eval", "judge", str(tmp_path)])
    assert result.exit_code != 0 and "llmga train judge" in str(result.exception)


def test_read_refuses_a_missing_or_broken_picture_in_one_line(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    for name in ("missing.png", "broken.png"):
        result = world("read", str(tmp_path / name))
        assert result.exit_code != 0 and isinstance(result.exception, LLMGAError), result.output
        assert name in str(result.exception) and "\n" not in str(result.exception)


def test_export_writes_each_published_layout(tmp_path):
    for layout, made in (("coco", "captions.json"), ("magicbrush", "edit_sessions.json"), ("places", "images")):
        result = world("export", layout, "--out", str(tmp_path / layout), "--n", "2")
        assert result.exit_code == 0, result.output
        assert (tmp_path / layout / made).exists()
    assert world("export", "imagenet", "--out", str(tmp_path / "x")).exit_code != 0


def test_eval_assistant_refuses_an_unknown_kind_before_loading_a_brain(tmp_path):
    result = runner.invoke(app, ["eval", "assistant", "--brain", str(tmp_path / "none"), "--kinds", "look,cats"])
    assert result.exit_code != 0 and isinstance(result.exception, LLMGAError), result.output
    assert "cats" in str(result.exception) and "look" in str(result.exception)
