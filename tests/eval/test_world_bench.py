"""The world benchmark's scoring, and one small run of every part on an untrained world pipeline."""

import json

import pytest

from llmga.eval.world_bench import BenchConfig, WorldBench, edit_scores, format_table, frechet_distance
from llmga.train.world_painter import assemble
from llmga.world.edits import EDIT_KINDS
from llmga.world.judge import Judge
from llmga.world.render import render
from llmga.world.scene import Background, Obj, Scene, sample_scene

STAR = Obj("star", "red", "large", "center")
CIRCLE = Obj("circle", "blue", "small", "top left")


def test_edit_scores_separate_the_asked_change_from_what_should_stay():
    source = Scene((STAR, CIRCLE), Background("day", "grass"))
    target = source.with_background(time="night")
    assert edit_scores(target, source, target) == (True, 1.0)
    assert edit_scores(source, source, target) == (False, 1.0)  # nothing changed: the edit failed, all kept
    lost_star = Scene((CIRCLE,), Background("night", "grass"))
    made, kept = edit_scores(lost_star, source, target)
    assert made and kept == pytest.approx(9 / 10)  # terrain and 9 cells were to stay; the star was lost


def test_world_fid_is_zero_for_the_same_pictures_and_grows_with_difference():
    judge = Judge.load()
    scenes = [sample_scene(i) for i in range(40)]
    same = [render(s) for s in scenes]
    night = [render(s.with_background(time="night")) for s in scenes]
    assert frechet_distance(judge, same, same) == pytest.approx(0, abs=1e-3)
    assert frechet_distance(judge, night, same) > 1


@pytest.fixture(scope="module")
def untrained_painter(world_parts, tmp_path_factory):
    return str(assemble(tmp_path_factory.mktemp("bench") / "painter", world_parts / "clip", world_parts / "vae"))


def test_every_part_runs_and_the_table_and_json_hold_the_same_figures(untrained_painter):
    config = BenchConfig(brain=None, painter=untrained_painter, stage2_painter=None,
                         inpaint_painter=untrained_painter, edit_painter=untrained_painter, n=3, edit_n=2, chain_n=1,
                         steps=2)
    results = WorldBench(config, log=lambda _: None).run(["judge", "assistant", "t2i", "place", "masked", "edit"])
    assert "assistant" not in results  # no brain given: skipped, not faked
    assert results["judge"]["lowest"] >= 0.95
    assert list(results["t2i"]["rows"]) == ["short prompt"]
    assert set(results["t2i"]["rows"]["short prompt"]["per_attribute"]) == {"colour", "shape"}  # what it names
    assert set(results["place"]) == {"1 object", "2 objects"} and "position" in results["place"]["1 object"]["per_attribute"]
    assert set(results["masked"]) == {"inpaint", "outpaint"}
    assert list(results["edit"]["follow_ups"]) == ["1", "2", "3", "4", "5"]
    by_kind = results["edit"]["edit_by_kind"]
    assert sum(r["n"] for r in by_kind.values()) == results["edit"]["edit"]["n"] and set(by_kind) <= set(EDIT_KINDS)
    for task in results["masked"].values():
        assert task["unchanged_beyond_band"] == 1.0  # the painter never touches pixels beyond its blend band
    table = format_table(results)
    assert "short prompt" in table and "after 5 follow-up edit(s)" in table and "2 objects (3)" in table
    assert "short prompt, agreement with the prompt by attribute: shape" in table
    json.dumps(results)


def test_the_assistant_part_logs_one_short_line_and_keeps_its_figures_for_the_table():
    from llmga.testing.doubles import ScriptedBrain

    star = 'Sure. <gen_img>a small red star at the center, on grass under a day sky</gen_img>'
    lines = []
    bench = WorldBench(BenchConfig(brain="scripted", painter=None, stage2_painter=None, inpaint_painter=None,
                                   edit_painter=None, n=3, chat_n=2), log=lines.append)
    bench._brain = ScriptedBrain(star, multimodal=False)
    results = bench.run(["assistant"])
    english = results["assistant"]["faithfulness"]["en"]["whole"]["value"]
    assert len(lines) == 1 and lines[0].startswith(f"assistant: every named attribute kept {{'en': '{100 * english:.1f}%'")
    assert len(lines[0]) < 200 and "non-requests painted" in format_table(results)
