"""The shipped judge: it reads held-out renders and oracle paintings right."""

import pytest

from llmga.eval.judge_accuracy import evaluate_judge
from llmga.world import detailed_caption, oracle_paint, render
from llmga.world.judge import Judge
from tests.world.scenes import NIGHT_SCENE as SCENE

pytestmark = pytest.mark.shipped


def test_shipped_judge_reaches_the_target_on_held_out_renders():
    report = evaluate_judge(Judge.load(), n=300, seed=123)
    assert report["passed"], report
    assert min(report["augmented"][a] for a in ("time", "terrain", "colour", "shape", "size")) >= 0.9


def test_shipped_judge_reads_an_oracle_painting_back_into_its_caption():
    judge = Judge.load()
    caption = detailed_caption(SCENE)
    assert judge.read(oracle_paint(caption)) == [SCENE]
    assert judge.read(render(SCENE, 64)) == [SCENE]
    assert (
        detailed_caption(
            judge.read(oracle_paint("a small blue square at the center, on sand under a day sky"))[0]
        )
        == "a small blue square at the center, on sand under a day sky"
    )
