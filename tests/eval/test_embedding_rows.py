"""Table 5's embedding rows and the retrieve-or-generate measurement, on the tiny stacks."""

import pytest

from llmga.eval.retrieval import Case, fit_decision, library_scenes, measure_cases, world_cases
from llmga.eval.runs import identity
from llmga.eval.t2i import T2IConfig, embedding_row, run_t2i
from llmga.eval.turns import TurnsConfig, embedding_control, run_turns
from llmga.library import build_library
from llmga.world.judge import Judge
from llmga.world.render import render
from llmga.world.requests import EVERYTHING, SHORT, Request
from llmga.world.scene import Background, Obj, Scene, sample_scene
from tests.embedding.support import train, write_records
from tests.eval.conftest import FAST, new_run


@pytest.fixture(scope="module")
def model(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("gill-rows")
    return train(tiny, write_records(root / "train.json", n=4), root / "run", retrieval_clip="world-clip",
                 retrieval_target="world")


def test_an_embedding_row_joins_table_5_with_its_own_cache_key(tiny, sets, backbone_files, model, tmp_path):
    config = TurnsConfig(str(sets["coco"] / "captions.json"), painter=str(tiny.sd()), n=2, turns=2, paint=FAST)
    run = new_run(tmp_path, backbone_files)
    factory, key = embedding_control(str(model), config, run)
    figures = run_turns(config, run, {"LLMGA-Embedding": (factory, key)})
    turns = figures["rows"]["LLMGA-Embedding"]
    assert len(turns) == 2 and all({"fid", "clip_t"} <= set(t) for t in turns)
    assert key == {"control": identity(str(model)), "painter": identity(str(tiny.sd()))}
    assert key["control"].startswith(f"{model}:{model.resolve()}:")
    assert "LLMGA-Embedding" in (tmp_path / "report.md").read_text()


def test_an_embedding_row_joins_table_1_painting_each_caption_from_its_img_embeddings(tiny, sets, backbone_files,
                                                                                     model, tmp_path):
    config = T2IConfig(str(sets["coco"] / "captions.json"), painter=str(tiny.sd()), n=3, paint=FAST)
    run = new_run(tmp_path, backbone_files)
    row = embedding_row("LLMGA-Embedding", str(model), config, run)
    figures = run_t2i(config, run, [row])
    assert set(figures["rows"]) == {"SD (short caption)", "LLMGA-Embedding"}
    assert {"fid", "is", "kid", "clip_t"} <= set(figures["rows"]["LLMGA-Embedding"])
    painted = row.paint("a red star", 0)
    assert painted.size == (64, 64) and row.key["control"] == identity(str(model))


def test_cases_are_half_library_pictures_and_half_fresh_requests():
    library = [sample_scene(i, 1, min_objects=1) for i in range(5)] + [sample_scene(9, 3, min_objects=2)]
    cases = world_cases(library, 10, seed=1)
    own = [c for c in cases if c.own]
    assert len(own) == 5 and all(c.request.scene in library[:5] and c.request.attributes == EVERYTHING for c in own)
    assert all(c.request.attributes in (SHORT, EVERYTHING) for c in cases if not c.own)
    assert world_cases(library, 10, seed=1)[3].request == cases[3].request  # seeded


def test_the_decision_is_fitted_on_half_the_cases_and_measured_on_the_other_half():
    scene = sample_scene(0, 1, min_objects=1)
    cases = [Case(Request(scene, SHORT), own=i % 4 == 0, score=s, right=s > 0.7)
             for i, s in enumerate([0.9, 0.95, 0.3, 0.4, 0.85, 0.92, 0.2, 0.35, 0.8, 0.75, 0.1, 0.45])]
    decision, report = fit_decision(cases, "lib")
    assert report["calibrated_on"] == report["held_out"] == 6
    assert report["accuracy"] == 1.0 and decision.accuracy == 1.0 and decision.library == "lib"
    assert report["always_paint"] == 0.5 and report["always_retrieve"] == 0.5


def test_each_case_is_judged_on_the_picture_the_library_gives(model, tmp_path):
    from llmga.embedding.embedding_brain import load_control_brain

    scenes = [Scene((Obj("star", c, "large", "center"),), Background("day", "grass")) for c in ("red", "blue")]
    for i, scene in enumerate(scenes):
        render(scene).save(tmp_path / f"{i}.png")
    library, judge = build_library(tmp_path, "world-clip"), Judge.load()
    assert library_scenes(library, judge) == scenes  # the judge reads renders exactly
    cases = measure_cases(load_control_brain(model), library, judge, world_cases(scenes, 4))
    for case in cases:
        shown = scenes[int(case.found[-5])]
        assert case.right == (shown == case.request.scene or (case.request.attributes == SHORT and
                              (shown.objects[0].colour, shown.objects[0].shape) ==
                              (case.request.scene.objects[0].colour, case.request.scene.objects[0].shape)))
