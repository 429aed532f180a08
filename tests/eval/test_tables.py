"""The paper's table runners on tiny models and tiny world test sets: reports, resumption, processes."""

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
from PIL import Image

from llmga.eval.editing import EditConfig, run_edit
from llmga.eval.masked import MaskedConfig, draw_mask, run_masked
from llmga.eval.restoration import RestoreConfig, run_restore, seam_step
from llmga.eval.t2i import T2IConfig, run_t2i
from llmga.eval.turns import TurnsConfig, run_turns
from llmga.restore import Restorer
from llmga.testing.tiny_restorer import build_tiny_restorer

from tests.eval.conftest import FAST, new_run


def test_table_1_reports_every_row_and_resumes_without_painting_again(tiny, sets, backbone_files, tmp_path):
    config = T2IConfig(str(sets["coco"] / "captions.json"), painter=str(tiny.sd()), stage2_painter=str(tiny.sd("sd2")),
                       brain=str(tiny.causal_lm()), n=3, paint=FAST)
    figures = run_t2i(config, new_run(tmp_path, backbone_files))
    assert list(figures["rows"]) == ["SD (short caption)", "LLMGA (SD)", "LLMGA (SD-ft)"]
    for row in figures["rows"].values():
        assert {"fid", "kid", "is", "clip_t"} <= set(row) and row["fid"]["low"] <= row["fid"]["value"] <= row["fid"]["high"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["figures"] == json.loads(json.dumps(figures))
    assert {"command", "versions", "models", "seed", "backbones"} <= set(report) and report["versions"]["torch"]
    assert "| LLMGA (SD) |" in (tmp_path / "report.md").read_text()
    painted = sorted((tmp_path / "images").glob("*.png"))
    assert len(painted) == 9  # 3 rows x 3 captions
    broken = replace(config, painter="/nowhere/sd", stage2_painter="/nowhere/sd")  # everything is cached now
    with pytest.raises(Exception):
        run_t2i(replace(broken, n=3, seed=1), new_run(tmp_path / "other", backbone_files))
    again = run_t2i(config, new_run(tmp_path, backbone_files))
    assert again == figures and sorted((tmp_path / "images").glob("*.png")) == painted


def test_table_2_edits_magicbrush_layout_sessions(tiny, sets, backbone_files, tmp_path):
    config = EditConfig(str(sets["magicbrush"]), painter=str(tiny.sd()), brain=str(tiny.llava()), n=3, paint=FAST)
    figures = run_edit(config, new_run(tmp_path, backbone_files))
    assert list(figures["rows"]) == ["LLMGA (assistant's prompt)", "true target description"]
    assert set(figures["rows"]["true target description"]) == {"l1", "l2", "clip_i", "dino", "clip_t"}
    assert 0 <= figures["rows"]["true target description"]["l1"]["value"] <= 1


def test_table_3_and_4_paint_and_restore_with_deterministic_masks(tiny, sets, backbone_files, tmp_path):
    size = (32, 32)
    assert draw_mask("inpaint", "wide", size, 0, 1).tobytes() == draw_mask("inpaint", "wide", size, 0, 1).tobytes()
    assert draw_mask("inpaint", "wide", size, 0, 1).tobytes() != draw_mask("inpaint", "wide", size, 0, 2).tobytes()
    config = MaskedConfig(str(sets["places"]), painter=str(tiny.sd("sd15-inpaint")), brain=str(tiny.llava()), n=3,
                          paint=replace(FAST, width=None, height=None))
    run = new_run(tmp_path, backbone_files)
    figures = run_masked(config, run)
    assert set(figures["rows"]) == {"SD", "LLMGA (SD)"}
    assert set(figures["rows"]["SD"]) == {"outpaint/narrow", "outpaint/wide", "inpaint/narrow", "inpaint/wide"}

    class Perfect:  # puts the original back everywhere: the seam vanishes
        def restore(self, painted, reference, mask):
            return reference

    restorer = Restorer.load(build_tiny_restorer(tmp_path / "restorer"))
    restored = run_restore(RestoreConfig(config), run, {"perfect": Perfect(), "DiffRIR": restorer})
    assert list(restored["rows"]) == ["none", "perfect", "DiffRIR"]
    assert restored["rows"]["perfect"]["seam_colour"]["value"] == 0
    assert restored["rows"]["perfect"]["lpips"]["value"] == pytest.approx(0, abs=1e-6)
    assert restored["rows"]["DiffRIR"]["lpips"]["value"] > 0


def test_the_seam_step_sees_a_brightness_jump_at_the_mask_edge():
    original = Image.new("RGB", (32, 32), (100, 100, 100))
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (0, 0, 8, 32))
    brighter = original.copy()
    brighter.paste((160, 160, 160), (0, 0, 8, 32))
    colour, light = seam_step(brighter, original, mask)
    assert colour == pytest.approx(60 / 255) and light == pytest.approx(60 / 255)
    assert seam_step(original, original, mask) == (0.0, 0.0)


def test_table_5_asks_the_same_request_over_turns(tiny, sets, backbone_files, tmp_path):
    from llmga.assistant import Assistant
    from llmga.painter.text_to_image import TextToImagePainter
    from llmga.testing.doubles import ScriptedBrain

    config = TurnsConfig(str(sets["coco"] / "captions.json"), painter=str(tiny.sd()), brain=str(tiny.causal_lm()),
                         n=2, turns=2, paint=FAST)
    figures = run_turns(config, new_run(tmp_path, backbone_files))
    turns = figures["rows"]["LLMGA (language prompt)"]
    assert len(turns) == 2 and all({"fid", "clip_t"} <= set(t) for t in turns)
    painter = TextToImagePainter.load(tiny.sd())
    brains = []

    def scripted(index):  # another control, as the embedding baseline joins the table
        brains.append(ScriptedBrain(lambda r: "It is Paris." if "capital" in r.messages[-1]["content"][-1]["text"]
                                    else "<gen_img>a red star</gen_img>"))
        return Assistant(brains[-1], painter, paint=FAST)

    interleaved = replace(config, interleave=True, brain=None)
    figures = run_turns(interleaved, new_run(tmp_path / "between", backbone_files), {"scripted": (scripted, {})})
    assert set(figures["rows"]) == {"scripted"}
    asked = [r.messages[-1]["content"][-1]["text"] for r in brains[0].requests]
    assert asked[0].startswith("Generate an image:") and "capital" in asked[1] and asked[2] == asked[0]
    assert "with a plain question between the repeats" in (tmp_path / "between" / "report.md").read_text()


def test_two_processes_paint_shares_and_report_the_same_figures_as_one(tiny, sets, backbone_files, tmp_path):
    args = ["eval", "t2i", "--captions", str(sets["coco"] / "captions.json"), "--painter", str(tiny.sd()),
            "--samples", "3", "--steps", "2", "--guidance", "2", *[f"--{k}={v}" for k, v in backbone_files.items()]]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, "-m", "llmga", *args, "--out", str(tmp_path / "one")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "llmga", *args,
                          "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr
    first, second = (json.loads((tmp_path / k / "report.json").read_text()) for k in ("one", "two"))
    assert second["processes"] == 2 and first["processes"] == 1
    assert first["figures"]["rows"]["SD (short caption)"]["clip_t"] == second["figures"]["rows"]["SD (short caption)"]["clip_t"]


def test_a_missing_data_piece_or_backbone_is_refused_before_any_painting(tiny, sets, backbone_files, tmp_path):
    from llmga.errors import InvalidInputError, ModelNotFoundError

    (tmp_path / "mb").mkdir()
    with pytest.raises(InvalidInputError, match="edit_sessions.json"):
        run_edit(EditConfig(str(tmp_path / "mb"), painter=str(tiny.sd())), new_run(tmp_path / "r1", backbone_files))
    without_clip = {k: v for k, v in backbone_files.items() if k != "clip"}
    with pytest.raises(ModelNotFoundError, match="LLMGA_CLIP"):
        run_t2i(T2IConfig(str(sets["coco"] / "captions.json"), painter=str(tiny.sd())),
                new_run(tmp_path / "r2", {**without_clip, "clip": None}))
    assert not list((tmp_path / "r2" / "images").glob("*.png"))


def test_table_1_names_a_caption_the_brain_would_not_paint(backbone_files, tmp_path):
    from llmga.data.cache import CachedBrain
    from llmga.errors import BrainError
    from llmga.eval.t2i import refined_prompt
    from llmga.testing.doubles import ScriptedBrain

    world = ScriptedBrain("Sorry, a dog is beyond me; I draw shapes.")
    world.system_prompt = "You draw simple shapes."
    run = new_run(tmp_path, backbone_files)
    run._brains["world"] = CachedBrain(world)
    with pytest.raises(BrainError, match="'a dog in a park'.*Sorry, a dog is beyond me"):
        refined_prompt(run, "world", "a dog in a park")
