"""Table 6 (the ablation) on a tiny world assistant, and the page beside the paper's figures."""

from pathlib import Path

from llmga.cli.eval_tables import load_restorers, train_variant
from llmga.data.world_layouts import export
from llmga.eval.ablation import AblationConfig, run_ablation, variant_data
from llmga.eval.backbones import world_backbones
from llmga.eval.masked import MaskedConfig
from llmga.eval.metrics import Estimate
from llmga.eval.paper import direction, restore_claims, write_page
from llmga.eval.runs import Run
from llmga.eval.t2i import T2IConfig
from llmga.settings import PaintSettings, SamplingSettings
from llmga.testing.tiny_restorer import build_tiny_restorer

FAST = PaintSettings(steps=2, guidance=2.0)


def test_a_variant_keeps_every_set_whole_but_one(tmp_path):
    config = AblationConfig("unused", T2IConfig("x"), MaskedConfig("x", "unused"), n_train=400)
    import json

    def kinds(variant):
        records = json.loads(variant_data(config, variant, tmp_path / variant).read_text())
        return {k: sum(r["kind"] == k for r in records) for k in ("refine", "inpaint", "outpaint", "similar", "edit")}

    full, cut = kinds("full"), kinds("inpaint")
    assert cut["inpaint"] < full["inpaint"] * 0.3 and cut["outpaint"] < full["outpaint"] * 0.3
    assert all(abs(cut[k] - full[k]) <= 0.35 * full[k] for k in ("refine", "similar", "edit"))


def test_the_ablation_trains_each_variant_and_measures_it(tiny, tmp_path):
    sets = {layout: export(layout, tmp_path / layout, 2, seed=0) for layout in ("coco", "places")}
    config = AblationConfig(str(tiny.world_llava()),
                            T2IConfig(str(sets["coco"] / "captions.json"), painter=str(tiny.sd()), n=2, paint=FAST),
                            MaskedConfig(str(sets["places"]), painter=str(tiny.sd("sd15-inpaint")), n=2, paint=FAST),
                            n_train=12, steps=1, batch_size=2, variants=("full", "edit"))
    run = Run(tmp_path / "run", world_backbones(), sampling=SamplingSettings(temperature=0, max_new_tokens=8))
    figures = run_ablation(config, run, train_variant)
    assert list(figures["rows"]) == ["full", "edit"]
    assert all({"t2i_fid", "outpaint_fid"} <= set(r) for r in figures["rows"].values())
    assert (tmp_path / "run" / "variants" / "edit" / "run" / "final").is_dir()
    assert "| edit | ✓ | ✓ | ✓ | 10% |" in (tmp_path / "run" / "report.md").read_text()


def test_under_several_processes_each_trains_on_its_share_of_a_batch(monkeypatch, tmp_path):
    import accelerate

    import llmga.train.stage1 as stage1

    class TwoProcesses:
        num_processes = 2

    seen = []
    monkeypatch.setattr(accelerate, "PartialState", TwoProcesses)
    monkeypatch.setattr(stage1, "train_stage1", lambda config: seen.append(config) or Path(config.out))
    config = AblationConfig("base", T2IConfig("x"), MaskedConfig("x", "unused"), batch_size=8, steps=4)
    train_variant(config, tmp_path / "data.json", tmp_path / "run")
    assert seen[0].batch_size == 4 and seen[0].max_steps == 4 and seen[0].threads is None


def estimate(value, half):
    return Estimate(value, value - half, value + half, 10).as_dict()


def test_directions_say_no_difference_when_the_intervals_overlap():
    assert direction(estimate(10, 1), estimate(20, 1)) == "holds"
    assert direction(estimate(20, 1), estimate(10, 1)) == "reversed"
    assert direction(estimate(10, 6), estimate(20, 6)).startswith("no difference")
    assert direction(estimate(30, 1), estimate(20, 1), lower_is_better=False) == "holds"
    assert direction(None, estimate(1, 1)) == "not measured"


def test_the_page_sets_the_paper_beside_the_miniature(tmp_path):
    row = {"fid": estimate(10, 1), "is": estimate(3, 0.1), "kid": estimate(0.1, 0.01), "clip_t": estimate(0.3, 0.01)}
    results = {"t2i": {"n": 10, "rows": {"SD (short caption)": {**row, "fid": estimate(20, 1)}, "LLMGA (SD)": row}}}
    page = Path(write_page(results, tmp_path / "paper-tables.md", "llmga eval paper --world", 600)).read_text()
    assert "18.5234" in page and "| LLMGA (SD) | 10.0 [9.0, 11.0]" in page
    assert "Refined prompts beat short ones (FID): holds." in page
    assert "## Table 6" in page and "Not run." in page


def test_table_4_names_its_restorers_and_says_where_the_papers_direction_holds(tmp_path):
    restorers = load_restorers([f"DiffIR={build_tiny_restorer(tmp_path / 'a', reference=False)}",
                                str(build_tiny_restorer(tmp_path / "b"))])
    assert list(restorers)[0] == "DiffIR" and not restorers["DiffIR"].config.reference
    worse, better = estimate(10, 1), estimate(5, 1)
    row = lambda e: {"fid": e, "lpips": e, "seam_colour": e, "seam_brightness": e}  # noqa: E731
    rows = {"none": row(worse), "DiffIR": row(worse), "DiffRIR1": row(better), "DiffRIR2": row(estimate(5, 3))}
    lines = restore_claims(rows)
    assert lines[0] == ("- A reference helps (DiffRIR₁ vs DiffIR): FID holds, LPIPS holds, colour step holds, "
                        "brightness step holds.")
    assert "no difference" in lines[1] and lines[2].startswith("- Restoring helps (DiffRIR2 vs none): FID holds")
    page = Path(write_page({"restore": {"n": 4, "rows": rows}}, tmp_path / "p.md", "llmga eval paper", 60)).read_text()
    assert "A reference helps" in page and "2.2687" in page


def test_table_5_says_whether_each_control_degrades_over_turns_by_fid_and_by_success(tmp_path):
    def turn(fid, success):
        return {"fid": estimate(fid, 5), "success": estimate(success, 0.05)}

    rows = {"language": [turn(100, 0.9), turn(100, 0.9)], "embedding": [turn(100, 0.9), turn(104, 0.1)],
            "blurred": [turn(100, 0.9), turn(200, 0.9)]}
    results = {"turns": {"back to back": {"n": 8, "turns": 2, "interleave": False, "rows": rows}}}
    page = Path(write_page(results, tmp_path / "p.md", "llmga eval paper", 60)).read_text()
    assert "- language: turn 2 is no worse than turn 1: FID yes; whole-scene success yes." in page
    assert "- embedding: turn 2 is no worse than turn 1: FID yes; whole-scene success no, it degrades." in page
    assert "- blurred: turn 2 is no worse than turn 1: FID no, it degrades; whole-scene success yes." in page
