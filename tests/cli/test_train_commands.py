"""The training commands, run as a user runs them."""

import json
import re

from typer.testing import CliRunner

from llmga.brain import load_brain
from llmga.cli import app


def test_the_world_assistant_commands_build_the_model_and_write_the_data(tiny, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["data", "world-llava", "--out", str(tmp_path / "d" / "data.json"), "--n", "5"])
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "d" / "data.json").read_text())) == 5
    result = runner.invoke(app, ["train", "assistant", "--vision-tower", str(tiny.clip_vision()),
                                 "--base", str(tiny.causal_lm()), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert load_brain(str(tmp_path / "m")).multimodal
    result = runner.invoke(app, ["train", "assistant", "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and re.search(r"exactly one of --clip and --vision-tower", result.output)


def test_the_old_world_command_names_still_work_hidden(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["world", "refine-data", "--out", str(tmp_path / "w.json"), "--n", "3"])
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "w.json").read_text())) == 3
    assert "refine-data" not in runner.invoke(app, ["world", "--help"]).output
