"""All six of the paper's tables in the miniature world, and the page that sets them beside the paper's.

:func:`run_world_paper` exports the world's test sets in the paper's layouts
(:mod:`llmga.data.world_layouts`), runs each table's runner with the shipped
world models and the world's backbones, and :func:`write_page` writes a
markdown page: per table the paper's figures, ours with their 95% intervals,
and one line per claim saying whether the paper's direction holds here. A
difference smaller than its intervals is reported as no difference.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import registry
from ..settings import PaintSettings, SamplingSettings
from .metrics import Estimate
from .runs import Run, table

#: the text-only world assistant the tables measure: the offline default's
BRAIN = registry.DEFAULT_PROFILE["brain"]

#: the paper's figures (Tables 1-4 and 6; Table 5 is a plot in the paper)
PAPER = {
    "t2i": [("SD1.5", "24.0081", "35.99"), ("GILL", "25.1123", "34.20"), ("LLMGA-7b (SD1.5)", "23.5946", "37.12"),
            ("LLMGA-7b (SD1.5-ft)", "18.5234", "41.04"), ("LLMGA-13b (SD1.5)", "23.5828", "37.58"),
            ("LLMGA-13b (SD1.5-ft)", "18.4063", "41.16")],
    "edit": [("InstructPix2Pix", "0.1197", "0.0416", "0.8442", "0.7252", "0.2909"),
             ("MagicBrush", "0.0647", "0.0224", "0.9293", "0.8913", "0.2979"),
             ("LLMGA", "0.0814", "0.0218", "0.8936", "0.8768", "0.3137")],
    "masked": [("SD1.5", "2.0167 / 0.2283", "5.0090 / 0.3734", "1.0795 / 0.1236", "1.2855 / 0.1434"),
               ("LLMGA-7b (SD1.5)", "1.5530 / 0.2263", "3.2630 / 0.3688", "1.0692 / 0.1233", "1.0983 / 0.1427"),
               ("LLMGA-7b (SD1.5-ft)", "1.2973 / 0.2215", "2.4409 / 0.3616", "0.8027 / 0.1171", "0.9807 / 0.1405")],
    "restore": [("none", "2.4409", "0.3616"), ("DiffIR", "2.3587", "0.3612"), ("DiffRIR (reference)", "2.2993", "0.3609"),
                ("DiffRIR (reference + colour)", "2.2687", "0.3607")],
    "ablation": [("prompt refinement cut", "21.4460", "2.6533"), ("inpainting & outpainting cut", "19.1914", "3.1054"),
                 ("similar image cut", "19.5698", "2.6612"), ("instruction editing cut", "19.0642", "2.8047"),
                 ("full", "18.5234", "2.4409")],
}


@dataclass
class WorldPaperConfig:
    """Sample sizes and budgets of the miniature tables (each a flag of ``llmga eval paper``)."""

    out: str
    n_t2i: int = 96
    n_edit: int = 48
    n_masked: int = 32
    n_turns: int = 12
    turns: int = 5
    ablation_steps: int = 12
    ablation_n_train: int = 600
    #: captions and outpaintings each variant of Table 6 is measured on
    ablation_n: int = 24
    #: the longest reply a brain may write: the world's prompts take under 64 tokens, and Table 6's briefly
    #: trained variants, left at the real runners' 256, ramble for 10-20 s a picture
    max_new_tokens: int = 96
    tables: tuple[str, ...] = ("t2i", "edit", "masked", "restore", "turns", "ablation")
    paint: PaintSettings = field(default_factory=lambda: PaintSettings(steps=20, guidance=4.0))
    seed: int = 0


def run_world_paper(config: WorldPaperConfig, trainer=None, restorers: dict | None = None,
                    controls: dict[str, str] | None = None) -> dict:
    """Run the chosen tables in the world (under ``accelerate launch`` each process takes a share).

    ``trainer`` trains Table 6's variants (:data:`llmga.eval.ablation.Trainer`); restorers and extra turn
    embedding-control models (name → model) join Tables 1 and 5.
    """
    from ..data.world_layouts import export
    from .backbones import world_backbones

    out = Path(config.out)
    run = Run(out / "run", world_backbones(), seed=config.seed, sampling=_sampling(config),
              models={"brain": BRAIN, "seeing brain": "world-llava", "painter": "world",
                      "stage-2 painter": "world-stage2", "inpaint painter": "world-inpaint", "edit painter": "world"})
    data = {layout: out / "data" / layout for layout in ("coco", "magicbrush", "places")}
    sizes = {"coco": config.n_t2i, "magicbrush": config.n_edit, "places": config.n_masked}
    if run.is_main:
        for layout, folder in data.items():
            if not folder.exists():
                export(layout, folder, sizes[layout], seed=config.seed)
    run.wait()
    results: dict[str, Any] = {}
    for name in config.tables:
        results[name] = _table(name, config, data, out, trainer, restorers or {}, controls or {})
    if run.is_main:
        (out / "paper.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results


def _table(name: str, config: WorldPaperConfig, data: dict[str, Path], out: Path, trainer, restorers: dict,
           controls: dict[str, str]) -> dict:
    from .ablation import AblationConfig, run_ablation
    from .backbones import world_backbones
    from .editing import EditConfig, run_edit
    from .masked import MaskedConfig, run_masked
    from .restoration import RestoreConfig, run_restore
    from .t2i import T2IConfig, embedding_row, run_t2i
    from .turns import TurnsConfig, embedding_control, run_turns

    run = Run(out / name, world_backbones(), seed=config.seed, sampling=_sampling(config))
    coco = str(data["coco"] / "captions.json")
    t2i = T2IConfig(coco, painter="world", stage2_painter="world-stage2", brain=BRAIN, n=config.n_t2i,
                    paint=config.paint, seed=config.seed)
    masked = MaskedConfig(str(data["places"]), painter="world-inpaint", brain="world-llava", n=config.n_masked,
                          paint=config.paint, seed=config.seed)
    if name == "t2i":
        return run_t2i(t2i, run, [embedding_row(k, model, t2i, run) for k, model in controls.items()])
    if name == "edit":
        return run_edit(EditConfig(str(data["magicbrush"]), painter="world", edit_painter="world",
                                   brain="world-llava", n=config.n_edit, paint=config.paint, seed=config.seed), run)
    if name == "masked":
        return run_masked(masked, run)
    if name == "restore":
        return run_restore(RestoreConfig(masked), run, restorers)
    if name == "turns":
        turns = TurnsConfig(coco, painter="world", brain=BRAIN, n=config.n_turns, turns=config.turns,
                            paint=config.paint, seed=config.seed)
        plain = run_turns(turns, run, {k: embedding_control(model, turns, run) for k, model in controls.items()})
        between = replace(turns, interleave=True)
        interleaved = run_turns(between, Run(out / "turns-interleaved", run.backbones, seed=config.seed,
                                             sampling=run.sampling),
                                {k: embedding_control(model, between, run) for k, model in controls.items()})
        return {"back to back": plain, "with questions between": interleaved}
    if name == "ablation":
        from .. import registry
        from ..brain import adapter_base

        base = adapter_base(registry.shipped("world-llava", registry.ADAPTER))  # built on demand, as when loaded
        t2i, masked = replace(t2i, n=config.ablation_n), replace(masked, n=config.ablation_n)
        return run_ablation(AblationConfig(base, t2i, masked, n_train=config.ablation_n_train,
                                           steps=config.ablation_steps, seed=config.seed), run, trainer)
    raise ValueError(f"unknown table {name!r}")


def _sampling(config: WorldPaperConfig) -> SamplingSettings:
    """Greedy (so reruns and the answer caches agree), capped at ``config.max_new_tokens``."""
    return SamplingSettings(temperature=0, max_new_tokens=config.max_new_tokens)


# -- the page ------------------------------------------------------------------------


def direction(better: dict | None, worse: dict | None, lower_is_better: bool = True) -> str:
    """Whether ``better`` beats ``worse`` here: "holds", "no difference" (the intervals overlap) or "reversed"."""
    if better is None or worse is None:
        return "not measured"
    a, b = Estimate(**better), Estimate(**worse)
    if a.overlaps(b):
        return "no difference (the intervals overlap)"
    return "holds" if (a.value < b.value) == lower_is_better else "reversed"


def _fig(row: dict | None, metric: str, digits: int = 2) -> str:
    if row is None or metric not in row:
        return "-"
    e = Estimate(**row[metric])
    return f"{e.value:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"


def write_page(results: dict, path: str | Path, command: str, seconds: float) -> Path:
    """The paper's tables beside the miniature's, with a verdict per claim (see the module docstring)."""
    parts = [
        "# The paper's tables in the miniature world",
        "",
        f"Made by `{command}` in {seconds / 60:.0f} min on {os.cpu_count()} CPU cores (world backbones: the judge's",
        "features for FID/KID/LPIPS/DINO and its colour × shape reading for IS, the world CLIP for CLIP-I/T).",
        "Figures are shown with 95% intervals (bootstrap for set metrics, t-interval for means, Wilson for",
        "shares); a difference smaller than its intervals is reported as no difference. World FIDs are on",
        "judge features of 32-pixel pictures and are not comparable in scale with the paper's Inception FIDs;",
        "only the directions are compared.",
    ]
    parts += _t2i_section(results.get("t2i"))
    parts += _edit_section(results.get("edit"))
    parts += _masked_section(results.get("masked"))
    parts += _restore_section(results.get("restore"))
    parts += _turns_section(results.get("turns"))
    parts += _ablation_section(results.get("ablation"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")
    return path


def _t2i_section(fig: dict | None) -> list[str]:
    out = ["", "## Table 1: text-to-image (COCO in the paper, world captions here)", "",
           table(("Paper", "FID↓", "IS↑"), PAPER["t2i"]), ""]
    if not fig:
        return out + ["Not run."]
    rows = fig["rows"]
    out.append(table(("Miniature", "FID↓", "IS↑", "KID↓", "CLIP-T↑"),
                     [(n, _fig(r, "fid", 1), _fig(r, "is"), _fig(r, "kid", 3), _fig(r, "clip_t", 3))
                      for n, r in rows.items()]))
    sd, llmga, ft = rows.get("SD (short caption)"), rows.get("LLMGA (SD)"), rows.get("LLMGA (SD-ft)")
    embedding = [n for n in rows if n not in ("SD (short caption)", "LLMGA (SD)", "LLMGA (SD-ft)")]
    return out + ["", f"{fig['n']} captions.", "",
                  f"- Refined prompts beat short ones (FID): {direction(llmga and llmga['fid'], sd and sd['fid'])}.",
                  f"- Refined prompts beat short ones (IS): {direction(llmga and llmga['is'], sd and sd['is'], False)}.",
                  f"- Stage 2 helps (FID): {direction(ft and ft['fid'], llmga and llmga['fid'])}."] + \
        [f"- The language prompt beats {n} (FID): {direction(llmga and llmga['fid'], rows[n]['fid'])}."
         for n in embedding]


def _edit_section(fig: dict | None) -> list[str]:
    out = ["", "## Table 2: instruction editing (MagicBrush in the paper, world edits here)", "",
           table(("Paper", "L1↓", "L2↓", "CLIP-I↑", "DINO↑", "CLIP-T↑"), PAPER["edit"]), ""]
    if not fig:
        return out + ["Not run."]
    rows = fig["rows"]
    metrics_ = ("l1", "l2", "clip_i", "dino", "clip_t")
    out.append(table(("Miniature", "L1↓", "L2↓", "CLIP-I↑", "DINO↑", "CLIP-T↑"),
                     [(n, *(_fig(r, m, 3) for m in metrics_)) for n, r in rows.items()]))
    ours, ceiling = rows.get("LLMGA (assistant's prompt)"), rows.get("true target description")
    return out + ["", f"{fig['n']} edits. The paper compares with InstructPix2Pix and MagicBrush, which have no",
                  "counterpart in the world; here the assistant's prompt is set against the true target description.",
                  "",
                  f"- The assistant's target prompt is as good as the true description (CLIP-T): "
                  f"{direction(ceiling and ceiling['clip_t'], ours and ours['clip_t'], False)} "
                  "(\"holds\" means the true description is better, i.e. the assistant loses something)."]


def _masked_section(fig: dict | None) -> list[str]:
    out = ["", "## Table 3: outpainting and inpainting (Places in the paper, world pictures here)", "",
           table(("Paper (FID / LPIPS)", "outpaint narrow", "outpaint wide", "inpaint narrow", "inpaint wide"),
                 PAPER["masked"]), ""]
    if not fig:
        return out + ["Not run."]
    rows = fig["rows"]
    kinds = [k for k in ("outpaint/narrow", "outpaint/wide", "inpaint/narrow", "inpaint/wide")
             if any(k in r for r in rows.values())]
    out.append(table(["Miniature (FID / LPIPS)", *kinds],
                     [(n, *(f"{_fig(r.get(k), 'fid', 1)} / {_fig(r.get(k), 'lpips', 3)}" for k in kinds))
                      for n, r in rows.items()]))
    sd, llmga = rows.get("SD", {}), rows.get("LLMGA (SD)", {})
    out += ["", f"{fig['n']} pictures per mask kind; no stage-2 inpainting painter exists in the world, so there "
            "is no SD-ft row.", ""]
    for k in kinds:
        out.append(f"- The assistant's imagined prompt beats the empty prompt, {k} (FID): "
                   f"{direction(llmga.get(k, {}).get('fid'), sd.get(k, {}).get('fid'))}.")
    return out


def _restore_section(fig: dict | None) -> list[str]:
    out = ["", "## Table 4: restoring outpaintings", "", table(("Paper", "FID↓", "LPIPS↓"), PAPER["restore"]), ""]
    if not fig:
        return out + ["Not run."]
    rows = fig["rows"]
    out.append(table(("Miniature", "FID↓", "LPIPS↓", "colour step↓", "brightness step↓"),
                     [(n, _fig(r, "fid", 1), _fig(r, "lpips", 3), _fig(r, "seam_colour", 3),
                       _fig(r, "seam_brightness", 3)) for n, r in rows.items()]))
    if len(rows) == 1:
        return out + ["", "No restorer was given: only the unrestored row is measured."]
    return out + ["", f"{fig['n']} outpaintings. Rows after `none` are taken in the paper's order: DiffIR (no "
                  "reference), DiffRIR₁ (reference), DiffRIR₂ (reference + colour degradation).", ""] + \
        restore_claims(rows)


def restore_claims(rows: dict) -> list[str]:
    """Table 4's claims, one line per metric: the paper's direction (lower is better) or not, here."""
    names = list(rows)
    claims = []
    if len(names) > 3:
        claims.append(("A reference helps (DiffRIR₁ vs DiffIR)", names[2], names[1]))
        claims.append(("Colour degradation helps (DiffRIR₂ vs DiffRIR₁)", names[3], names[2]))
    elif len(names) > 2:
        claims.append((f"{names[2]} vs {names[1]}", names[2], names[1]))
    claims.append((f"Restoring helps ({names[-1]} vs none)", names[-1], names[0]))
    lines = []
    for title, better, worse in claims:
        verdicts = ", ".join(f"{label} {direction(rows[better][metric], rows[worse][metric])}" for metric, label in
                             (("fid", "FID"), ("lpips", "LPIPS"), ("seam_colour", "colour step"),
                              ("seam_brightness", "brightness step")))
        lines.append(f"- {title}: {verdicts}.")
    return lines


def _turns_section(fig: dict | None) -> list[str]:
    out = ["", "## Table 5: the same request over conversation turns", "",
           "The paper plots it: pictures made through embeddings (GILL, LLMGA-Embedding) degrade as turns",
           "accumulate; pictures made through language prompts do not.", ""]
    if not fig:
        return out + ["Not run."]
    for setting, result in fig.items():
        if not result:
            continue
        out += [f"### {setting}", ""]
        turns = range(1, result["turns"] + 1)
        out.append(table(["Control", *(f"turn {t} FID↓" for t in turns)],
                         [(n, *(_fig(r[t - 1], "fid", 1) for t in turns)) for n, r in result["rows"].items()]))
        if any("success" in r[0] for r in result["rows"].values()):
            out += ["", table(["Control", *(f"turn {t} success" for t in turns)],
                              [(n, *(_fig(r[t - 1], "success") for t in turns)) for n, r in result["rows"].items()])]
        out.append("")
        for name, r in result["rows"].items():
            line = f"- {name}: turn {result['turns']} is no worse than turn 1: FID {_no_worse(r[-1]['fid'], r[0]['fid'])}"
            if "success" in r[0]:
                line += f"; whole-scene success {_no_worse(r[-1]['success'], r[0]['success'], lower_is_better=False)}"
            out.append(line + ".")
        out.append("")
    return out


def _no_worse(last: dict, first: dict, lower_is_better: bool = True) -> str:
    a, b = Estimate(**last), Estimate(**first)
    if a.overlaps(b) or (a.value < b.value) == lower_is_better:
        return "yes"
    return "no, it degrades"


def _ablation_section(fig: dict | None) -> list[str]:
    out = ["", "## Table 6: one stage-1 set cut to 10%", "",
           table(("Paper", "T2I FID↓", "Outpainting FID↓"), PAPER["ablation"]), ""]
    if not fig:
        return out + ["Not run."]
    rows = fig["rows"]
    out.append(table(("Miniature", "T2I FID↓", "Outpainting FID↓"),
                     [(n, _fig(r, "t2i_fid", 1), _fig(r, "outpaint_fid", 1)) for n, r in rows.items()]))
    out += ["", f"Reduced budget: each variant is stage 1 for {fig['steps']} steps on {fig['n_train']} world "
            "conversations (the shipped world-llava had 300 steps on 4000).", ""]
    full = rows.get("full")
    for name, r in rows.items():
        if name != "full":
            out.append(f"- Cutting {name} hurts text-to-image (FID): {direction(full and full['t2i_fid'], r['t2i_fid'])}; "
                       f"outpainting: {direction(full and full['outpaint_fid'], r['outpaint_fid'])}.")
    return out
