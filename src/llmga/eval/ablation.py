"""Table 6: which stage-1 set matters: the assistant retrained with one of the four sets cut to 10%.

Each variant trains the assistant (stage 1, LoRA, a budget of ``steps``) on
the full mix but one set kept at 10% (``full`` keeps them all), then Table 1's
``LLMGA (SD)`` row (FID on text-to-image) and Table 3's (FID on outpainting,
wide borders) are measured with it. The sets are the paper's four: prompt
refinement, inpainting & outpainting, similar image, instruction editing.

- Real data: ``sets`` maps each of ``refine``, ``inpaint``, ``similar``, ``edit``
  (and any extra set kept whole, e.g. ``vqa``) to a LLaVA-format JSON file; the
  variant's mix is made by :func:`llmga.data.mixer.mix` with the cut set's ratio times 0.1.
- The world: the sets are built by :func:`llmga.data.world_sets.build_world_sets`
  (``inpaint`` stands for its inpaint and outpaint kinds), ``n_train`` conversations
  for the full mix, the cut kinds' share times 0.1 for a variant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import metrics
from .masked import MaskedConfig, paint_all
from .runs import Run, cell, identity, table
from .t2i import T2IConfig, caption_sample, rows

SETS = ("refine", "inpaint", "similar", "edit")
NAMES = {"refine": "prompt refinement", "inpaint": "inpainting & outpainting", "similar": "similar image",
         "edit": "instruction editing"}
#: the world's stage-1 kinds standing for each of the paper's sets
WORLD_KINDS = {"refine": ("refine",), "inpaint": ("inpaint", "outpaint"), "similar": ("similar",), "edit": ("edit",)}
CUT = 0.1


@dataclass
class AblationConfig:
    """The base assistant, its training budget and data, and Table 1 and 3's data and painter."""

    model: str
    t2i: T2IConfig
    masked: MaskedConfig
    sets: dict[str, str] = field(default_factory=dict)
    n_train: int = 2000
    steps: int = 200
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    variants: tuple[str, ...] = ("full", *SETS)


def variant_data(config: AblationConfig, variant: str, folder: Path) -> Path:
    """The stage-1 data of a variant: every set whole but ``variant``'s, cut to 10%."""
    if config.sets:
        from ..data.mixer import MixInput, mix
        from ..data.report import Problems

        missing = [s for s in SETS if s not in config.sets]
        if missing:
            raise ValueError(f"the ablation needs all four sets; missing {', '.join(missing)}")
        inputs = [MixInput(name, Path(path), CUT if name == variant else 1.0) for name, path in config.sets.items()]
        mix(inputs, folder / "data.json", config.seed, Problems("skip"))
        return folder / "data.json"
    from ..data.world_sets import SHARES, build_world_sets

    cut = WORLD_KINDS.get(variant, ())
    shares = {k: v * (CUT if k in cut else 1.0) for k, v in SHARES.items()}
    n = round(config.n_train * sum(shares.values()) / sum(SHARES.values()))
    return build_world_sets(folder / "data.json", n=n, seed=config.seed, shares=shares)


#: trains the assistant ``config.model`` on a stage-1 JSON into a run folder within ``config.steps``; returns the
#: trained model's directory (``llmga train stage1`` with a LoRA; the caller gives it, as evaluation sits below training)
Trainer = Callable[[AblationConfig, Path, Path], Path]


def train_variant(config: AblationConfig, variant: str, run: Run, trainer: Trainer) -> Path:
    """Train (or resume) one variant; the trained assistant's directory."""
    folder = run.out / "variants" / variant
    if run.is_main:
        variant_data(config, variant, folder)
    run.wait()
    return trainer(config, folder / "data.json", folder / "run")


def run_ablation(config: AblationConfig, run: Run, trainer: Trainer) -> dict:
    """Train each variant and measure Table 1's and Table 3's LLMGA rows with it; returns the figures."""
    from ..images import load_image

    run.backbones.need("features")
    figures = {"steps": config.steps, "n_train": config.n_train, "rows": {}}
    samples = caption_sample(config.t2i.captions, config.t2i.images, config.t2i.n, config.t2i.seed)
    for variant in config.variants:
        brain = str(train_variant(config, variant, run, trainer))
        t2i = replace(config.t2i, brain=brain, stage2_painter=None)
        llmga_row = next(r for r in rows(t2i, run) if r.name == "LLMGA (SD)")
        keys = [{"table": "ablation-t2i", **llmga_row.key, "caption": s.caption, "seed": t2i.seed + i}
                for i, s in enumerate(samples)]
        for i in run.progress(run.shard(range(len(samples))), f"table 6, {variant}, text-to-image"):
            run.image(keys[i], lambda i=i: llmga_row.paint(samples[i].caption, i))
        masked = replace(config.masked, brain=brain, stage2_painter=None, kinds=(("outpaint", "wide"),))
        paths, masked_keys = paint_all(masked, run)
        if not run.is_main:
            continue
        references = [s.image for s in samples]
        t2i_fid = metrics.fid_interval(metrics.features(references, run.backbones),
                                    metrics.features([run.cached(k) for k in keys], run.backbones))
        originals = [load_image(p) for p in paths]
        outpainted = [run.cached(k) for k in masked_keys[("LLMGA (SD)", "outpaint", "wide")]]
        out_fid = metrics.fid_interval(metrics.features(originals, run.backbones),
                                    metrics.features(outpainted, run.backbones))
        figures["rows"][variant] = {"brain": identity(brain), "t2i_fid": t2i_fid.as_dict(),
                                    "outpaint_fid": out_fid.as_dict()}
    if run.is_main:
        run.write("Table 6: one stage-1 set cut to 10%", markdown(figures), figures)
    return figures


def markdown(figures: dict) -> str:
    header = ["Variant", *(NAMES[s] for s in SETS), "T2I FID↓", "Outpainting FID↓"]
    body = [(variant, *("✓" if variant != s else "10%" for s in SETS),
             cell(metrics.Estimate(**r["t2i_fid"]), 2), cell(metrics.Estimate(**r["outpaint_fid"]), 2))
            for variant, r in figures["rows"].items()]
    return table(header, body) + f"\n\nEach variant: stage 1 with a LoRA, {figures['steps']} steps."
