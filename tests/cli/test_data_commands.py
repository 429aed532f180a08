"""``llmga data`` commands on a tiny COCO-format folder, with scripted brains standing in."""

import pytest
from typer.testing import CliRunner

from llmga.cli import app
from llmga.data import BrokenSampleError, read_records
from llmga.errors import InvalidInputError
from tests.data.support import describing_brain, tiny_coco
from tests.data.test_builders import check_dataset, edit_brain
from tests.data.test_stablellava import scripted_llm

runner = CliRunner()


@pytest.fixture
def coco(tmp_path, monkeypatch):
    """A tiny COCO folder (two good images, three broken entries); brains by spec name; cache in tmp."""
    monkeypatch.setenv("LLMGA_CACHE", str(tmp_path / "cache"))
    brains = {"captioner": describing_brain(), "editor": edit_brain(), "llm": scripted_llm()}
    monkeypatch.setattr("llmga.brain.load_brain", lambda spec, model=None: brains[spec])
    captions, images = tiny_coco(tmp_path / "coco", n=2, broken=True)
    return ["--source", str(captions), "--images", str(images), "--seed", "7"], brains


def run(*args):
    return runner.invoke(app, ["data", *(str(a) for a in args)])


def test_refine_writes_the_set_prints_counts_and_reuses_the_cache(coco, tmp_path):
    source, brains = coco
    result = run("refine", *source, "--out", tmp_path / "refine", "--captioner", "captioner")
    assert result.exit_code == 0, result.output
    assert "refine: 2 records written" in result.output
    assert "skipped (broken samples): 3" in result.output and "missing: image" in result.output
    assert "descriptions asked: 2" in result.output
    assert len(check_dataset(tmp_path / "refine")) == 2
    again = run("refine", *source, "--out", tmp_path / "again", "--captioner", "captioner")
    assert "descriptions from cache: 2" in again.output and len(brains["captioner"].requests) == 2
    assert (tmp_path / "refine" / "data.json").read_text() == (tmp_path / "again" / "data.json").read_text()


def test_stop_on_error_names_the_broken_sample(coco, tmp_path):
    source, _ = coco
    result = run(
        "similar", *source, "--out", tmp_path / "s", "--captioner", "captioner", "--on-error", "stop"
    )
    assert result.exit_code != 0 and isinstance(result.exception, BrokenSampleError)
    assert "sample corrupt" in str(result.exception)


def test_every_set_then_the_mix(coco, tmp_path):
    source, _ = coco
    for command, extra in (
        ("similar", ["--captioner", "captioner"]),
        ("inpaint", ["--captioner", "captioner", "--kinds", "outpaint", "--widths", "narrow"]),
        ("edit", ["--editor", "editor", "--pairs", "3"]),
    ):
        result = run(command, *source, "--out", tmp_path / command, *extra)
        assert result.exit_code == 0, result.output
        assert f"{command}: 2 records written" in result.output
        check_dataset(tmp_path / command)
    assert (
        "outpaint (narrow): 2"
        in run(
            "inpaint",
            *source,
            "--out",
            tmp_path / "inpaint",
            "--captioner",
            "captioner",
            "--kinds",
            "outpaint",
            "--widths",
            "narrow",
        ).output
    )
    result = run(
        "mix",
        "--set",
        f"similar={tmp_path / 'similar' / 'data.json'}:1",
        "--set",
        f"inpaint={tmp_path / 'inpaint' / 'data.json'}:0.5",
        "--set",
        f"edit={tmp_path / 'edit' / 'data.json'}",
        "--out",
        tmp_path / "mix" / "stage1.json",
    )
    assert result.exit_code == 0, result.output
    assert (
        "mix: 4 records written" in result.output and "inpaint: 1 of 2 records (ratio 0.5)" in result.output
    )
    assert "edit: 1 of 2 records (ratio 0.3)" in result.output  # the paper's ratio for edit
    records = read_records(tmp_path / "mix" / "stage1.json")
    assert all(
        (tmp_path / "mix" / r[key]).is_file() for r in records for key in ("image", "mask") if key in r
    )


def test_stablellava_paints_with_a_diffusers_painter(coco, tiny, tmp_path):
    sd = tiny.sd()
    result = run(
        "stablellava",
        "--llm",
        "llm",
        "--painter",
        sd,
        "--out",
        tmp_path / "sll",
        "--abilities",
        "color,counting",
        "--per-ability",
        2,
        "--steps",
        2,
        "--width",
        64,
        "--height",
        64,
    )
    assert result.exit_code == 0, result.output
    assert "stablellava: 2 records written" in result.output and "malformed dialogue: 2" in result.output
    assert len(check_dataset(tmp_path / "sll")) == 2


def test_user_errors_are_llmga_errors(coco, tmp_path):
    result = run(
        "refine", "--source", tmp_path / "nope.json", "--out", tmp_path / "o", "--captioner", "captioner"
    )
    assert isinstance(result.exception, InvalidInputError) and "does not exist" in str(result.exception)
    result = run(
        "stablellava", "--llm", "llm", "--painter", tmp_path, "--out", tmp_path / "o", "--abilities", "x"
    )
    assert isinstance(result.exception, InvalidInputError) and "unknown abilities" in str(result.exception)
    result = run(
        "refine",
        "--source",
        tmp_path / "nope.json",
        "--out",
        tmp_path / "o",
        "--captioner",
        "c",
        "--on-error",
        "ignore",
    )
    assert result.exit_code == 2 and "ignore" in result.output
    assert "counting" in run("abilities").output


def test_world_chat_mixes_the_kinds_as_asked_and_names_a_kind_it_does_not_have(tmp_path):
    out = tmp_path / "chat.json"
    result = runner.invoke(app, ["data", "world-chat", "--out", str(out), "--n", "300",
                                 "--share", "two-object-edit=0", "--share", "relative=1.5"])
    assert result.exit_code == 0, result.output
    kinds = [record["kind"] for record in read_records(out)]
    assert "two-object-edit" not in kinds and kinds.count("relative") > 0.5 * len(kinds)
    for bad, named in [("cat=1", "cat"), ("relative", "KIND=WEIGHT"), ("relative=-1", "0 or more")]:
        result = runner.invoke(app, ["data", "world-chat", "--out", str(tmp_path / "x.json"), "--share", bad])
        assert result.exit_code != 0 and isinstance(result.exception, InvalidInputError)
        assert named in str(result.exception)
    assert not (tmp_path / "x.json").exists()
