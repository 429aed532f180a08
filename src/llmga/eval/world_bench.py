"""``llmga eval world``: the paper's tables in miniature, scored by the judge.

- the judge itself (nothing else counts unless it reads renders correctly);
- the assistant alone, its prompts rendered exactly by the oracle painter;
- text-to-image (Table 1): the short request painted directly, the assistant's
  prompt, and the assistant's prompt with the stage-2 UNet, with the world FID
  (Fréchet distance on judge features between painted and rendered pictures);
- inpainting and outpainting: the painted region right, the rest unchanged;
- instruction editing (Table 2): the asked-for change made, the rest kept; a
  brain that sees pictures writes the target prompt from the picture and the
  instruction (the source prompt is the true caption), otherwise the true
  target caption stands in;
- follow-up turns: a chain of 1 to 5 edits of one picture.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter

from .. import registry
from ..data.refine_demo import SHORT_REQUESTS
from ..errors import InvalidInputError
from ..protocol import parse_reply
from ..settings import PaintSettings
from ..world.captions import absolute_prompt, detailed_caption, parse_detailed_or_none
from ..world.edits import sample_edit_chain
from ..world.regions import cell_mask, outpaint_mask
from ..world.render import render
from ..world.requests import EVERYTHING, SHORT, Request, attribute_agreement, shows, single_object_requests
from ..world.scene import POSITIONS, Scene, sample_object, sample_scene
from .replies import answers, share, well_formed


@dataclass
class BenchConfig:
    """What to measure with which models (names or directories)."""

    brain: str | None = registry.DEFAULT_PROFILE["brain"]
    painter: str | None = "world"
    stage2_painter: str | None = "world-stage2"
    inpaint_painter: str | None = "world-inpaint"
    edit_painter: str | None = "world-stage2"  # the built-in profile edits on its text-to-image painter
    n: int = 64
    steps: int = 20
    guidance: float = 4.0
    edit_n: int = 32
    chain_n: int = 16
    chat_n: int = 10
    seed: int = 0


def _facts(scene: Scene) -> dict[str, Any]:
    """A scene as comparable facts: the background's two attributes and what each cell holds."""
    facts: dict[str, Any] = {"time": scene.background.time, "terrain": scene.background.terrain}
    for position in POSITIONS:
        obj = scene.object_at(position)
        facts[position] = None if obj is None else (obj.shape, obj.colour, obj.size)
    return facts


def edit_scores(read: Scene, source: Scene, target: Scene) -> tuple[bool, float | None]:
    """(every changed fact reads as the target's, share of unchanged facts still as the source's)."""
    got, before, after = _facts(read), _facts(source), _facts(target)
    changed = [k for k in after if after[k] != before[k]]
    kept = [k for k in after if after[k] == before[k]]
    made = all(got[k] == after[k] for k in changed)
    return made, (float(np.mean([got[k] == before[k] for k in kept])) if kept else None)


def frechet_distance(judge: Any, painted: list, rendered: list) -> float:
    """The world FID: Fréchet distance between judge features of painted and rendered pictures."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_JudgeFeatures(judge), input_img_size=(3, 32, 32))
    metric.update(_uint8(rendered), real=True)
    metric.update(_uint8(painted), real=False)
    return float(metric.compute())


class _JudgeFeatures(torch.nn.Module):
    """The judge's cell features as a torchmetrics feature extractor (uint8 NCHW in)."""

    def __init__(self, judge: Any) -> None:
        super().__init__()
        self.judge = judge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.judge.features(x.float() / 255).double()


def _uint8(pictures: list) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(p.convert("RGB") if isinstance(p, Image.Image) else p)
                                      for p in pictures])).permute(0, 3, 1, 2)


class WorldBench:
    """Runs each part of the benchmark; every part returns a dict of figures."""

    def __init__(self, config: BenchConfig, log=print) -> None:
        from ..world.judge import Judge

        self.config, self.log = config, log
        self.judge = Judge.load()
        self.settings = PaintSettings(seed=config.seed, steps=config.steps, guidance=config.guidance)
        self._brain = None

    @property
    def brain(self) -> Any:
        if self._brain is None:
            from ..brain import load_brain

            self._brain = load_brain(self.config.brain)
        return self._brain

    def run(self, parts: list[str]) -> dict[str, Any]:
        """Run the named parts (judge, assistant, t2i, masked, edit); skip those whose model is not given."""
        needs = {"assistant": self.config.brain, "t2i": self.config.painter, "place": self.config.painter,
                 "masked": self.config.inpaint_painter,
                 "edit": self.config.edit_painter}
        runners = {"judge": self.judge_figures, "assistant": self.assistant_figures, "t2i": self.text_to_image,
                   "place": self.place,
                   "masked": self.masked, "edit": self.editing}
        unknown = [p for p in parts if p not in runners]
        if unknown:
            raise InvalidInputError(f"unknown bench parts {unknown}; choose from {', '.join(runners)}")
        results: dict[str, Any] = {"config": asdict(self.config)}
        for part in parts:
            if part in needs and not needs[part]:
                self.log(f"skipping {part}: no model given")
                continue
            results[part] = runners[part]()
        return results

    def judge_figures(self) -> dict[str, Any]:
        from .judge_accuracy import evaluate_judge

        report = evaluate_judge(self.judge, n=500, seed=self.config.seed + 1, max_objects=3)
        clean = report["clean"]
        return {"per_attribute": clean, "lowest": min(v for k, v in clean.items() if k != "scene")}

    def assistant_figures(self) -> dict[str, Any]:
        """Requests by text (any brain), and for a brain that sees pictures, each of the four sets' tasks."""
        from .world_assistant import measure_chat
        from .world_prompts import measure_llava, scores_as_dict

        out, _ = measure_chat(self.brain, n=self.config.chat_n, seed=self.config.seed, judge=self.judge)
        if self.brain.multimodal:
            out["by_task"] = scores_as_dict(measure_llava(self.brain, n=self.config.edit_n, seed=self.config.seed,
                                                          judge=self.judge))
        whole = {key: _pct(figures["whole"]["value"]) for key, figures in out["faithfulness"].items()
                 if figures["whole"]}
        self.log(f"assistant: every named attribute kept {whole}; the rest in the table")
        return out

    def _sees(self) -> bool:
        """Whether the assistant can see pictures (and so write edit prompts from them)."""
        return bool(self.config.brain) and self.brain.multimodal

    def edit_prompt(self, picture: Image.Image, instruction: str) -> str | None:
        """The assistant's prompt for an edit it sees (None when its reply holds no usable prompt)."""
        from ..data.templates import EDIT_IMAGE, as_sentence
        from .world_prompts import world_prompt

        request = EDIT_IMAGE.pick(random.Random(instruction), instruction=as_sentence(instruction))
        reply = parse_reply(answers(self.brain, [request], [picture])[0], self.brain.end_markers)
        return world_prompt(reply.prompts)

    def refined_prompts(self, requests: list[Request]) -> tuple[list[str], float]:
        """The assistant's prompt for each request (its words when the reply has none) and the well-formed share."""
        rng = random.Random(self.config.seed)
        asks = [rng.choice(SHORT_REQUESTS).format(x=q.prompt) for q in requests]
        prompts, well = [], []
        for request, answer in zip(requests, answers(self.brain, asks, max_new_tokens=64), strict=True):
            reply = parse_reply(answer, self.brain.end_markers)
            well.append(well_formed(reply, wants_prompt=True))
            prompts.append(absolute_prompt(reply.prompts[0]) if well[-1] else request.prompt)
        return prompts, share(well)

    def text_to_image(self) -> dict[str, Any]:
        """Success (one object, colour and shape as asked) and world FID for short, refined, refined + stage 2."""
        from ..painter.text_to_image import TextToImagePainter

        requests = single_object_requests(self.config.n, seed=self.config.seed + 3, attributes=SHORT)
        rendered = [render(q.scene) for q in requests]
        rows: dict[str, Any] = {}
        refined, well = self.refined_prompts(requests) if self.config.brain else (None, None)
        plans = [("short prompt", self.config.painter, [q.prompt for q in requests])]
        if refined:
            plans.append(("assistant prompt", self.config.painter, refined))
            if self.config.stage2_painter:
                plans.append(("assistant prompt + stage-2 UNet", self.config.stage2_painter, refined))
        for name, painter_spec, prompts in plans:
            painter = TextToImagePainter.load(painter_spec)
            pictures = [painter.paint(p, self.settings).images[0] for p in prompts]
            reads = self.judge.read(pictures)
            row = {"success": float(np.mean([shows(r, q) for r, q in zip(reads, requests, strict=True)])),
                   "fid": frechet_distance(self.judge, pictures, rendered)}
            if prompts is refined:
                row["prompt_followed"] = float(np.mean([_follows(r, p) for r, p in zip(reads, prompts, strict=True)]))
                row["per_attribute"] = _agreement(reads, [parse_detailed_or_none(p) for p in prompts])
            else:
                row["per_attribute"] = _agreement(reads, [q.scene for q in requests], SHORT)
            rows[name] = row
            self.log(f"text-to-image, {name}: {row}")
        return {"rows": rows, "assistant_well_formed": well, "n": len(requests)}

    def place(self) -> dict[str, Any]:
        """The painter alone on true detailed captions: one object (each attribute, place included) and two
        objects (the whole scene right)."""
        from ..painter.text_to_image import TextToImagePainter

        painter = TextToImagePainter.load(self.config.painter)
        rng = random.Random(self.config.seed + 11)
        out: dict[str, Any] = {}
        for objects in (1, 2):
            scenes = [sample_scene(rng, objects, min_objects=objects) for _ in range(self.config.n)]
            reads = self.judge.read([painter.paint(detailed_caption(s), self.settings).images[0] for s in scenes])
            row = {"success": float(np.mean([shows(r, Request(s, EVERYTHING)) for r, s in zip(reads, scenes)])),
                   "n": len(scenes)}
            if objects == 1:
                row["per_attribute"] = _agreement(reads, scenes)
            out[f"{objects} object{'s' if objects > 1 else ''}"] = row
            self.log(f"place, {objects} object(s): {row}")
        return out

    def masked(self) -> dict[str, Any]:
        """Inpainting (a new object in a cell) and outpainting (borders), each painted from the target's caption."""
        from ..painter.inpaint import InpaintPainter

        painter = InpaintPainter.load(self.config.inpaint_painter)
        rng = random.Random(self.config.seed + 5)
        out: dict[str, Any] = {}
        for task in ("inpaint", "outpaint"):
            made, kept = [], []
            for _ in range(self.config.edit_n):
                source = sample_scene(rng, 2)
                if task == "inpaint":
                    position = rng.choice(POSITIONS)
                    others = [o for o in source.objects if o.position != position]
                    target = source.with_objects([*others, sample_object(rng, position)])
                    mask = cell_mask(position).image
                else:
                    target = source
                    mask = outpaint_mask(width=rng.choice(("narrow", "wide")), rng=rng).image
                start = render(source)
                painted = painter.paint(start, mask, detailed_caption(target), self.settings).images[0]
                made.append(shows(self.judge.read([painted])[0], Request(target, EVERYTHING)))
                # The painter blends a band of painter.blend pixels around the mask; beyond it nothing may change.
                outside = np.asarray(mask.filter(ImageFilter.MaxFilter(2 * painter.blend + 1))) == 0
                kept.append(float((np.asarray(painted)[outside] == np.asarray(start)[outside]).all(-1).mean()))
            out[task] = {"success": float(np.mean(made)), "unchanged_beyond_band": float(np.mean(kept)),
                         "n": self.config.edit_n}
            self.log(f"{task}: {out[task]}")
        return out

    def editing(self) -> dict[str, Any]:
        """Instruction edits (source and target captions given) and chains of 1-5 follow-up edits."""
        from ..painter.edit import EditPainter, EditSettings

        painter = EditPainter.load(self.config.edit_painter)
        settings = EditSettings(steps=self.config.steps, target_guidance=self.config.guidance, seed=self.config.seed)
        rng = random.Random(self.config.seed + 11)
        single: list[tuple[bool, float | None]] = []
        kinds: list[str] = []  # the kind of each single edit
        assistant_ok: list[bool] = []  # the assistant wrote a usable target prompt (multimodal brains only)
        # per_step[k]: after k+1 edits, is the whole scene right, and how much of the last edit's rest was kept
        per_step: list[list[tuple[bool, float | None]]] = [[] for _ in range(5)]
        for i in range(max(self.config.edit_n, self.config.chain_n)):
            chain = sample_edit_chain(sample_scene(rng, 2), rng, 5 if i < self.config.chain_n else 1)
            picture = render(chain[0].source)
            for k, pair in enumerate(chain):
                target_prompt = pair.target_caption
                if k == 0 and i < self.config.edit_n and self._sees():
                    asked = self.edit_prompt(picture, pair.instruction)
                    assistant_ok.append(asked is not None)
                    target_prompt = asked or target_prompt
                picture = painter.edit(picture, pair.source_caption, target_prompt, settings).images[0]
                read = self.judge.read([picture])[0]
                made, kept = edit_scores(read, pair.source, pair.target)
                if k == 0 and i < self.config.edit_n:
                    single.append((made, kept))
                    kinds.append(pair.kind)
                if i < self.config.chain_n:
                    per_step[k].append((_facts(read) == _facts(pair.target), kept))
        out = {"edit": _summary(single),
               "edit_by_kind": {kind: _summary([s for s, k in zip(single, kinds) if k == kind])
                                for kind in sorted(set(kinds))},
               "follow_ups": {str(k + 1): _summary(s) for k, s in enumerate(per_step) if s},
               "target_prompt": "the assistant's" if assistant_ok else "the true caption"}
        if assistant_ok:
            out["assistant_prompt_usable"] = float(np.mean(assistant_ok))
        self.log(f"editing: {out}")
        return out


def _follows(read: Scene, prompt: str) -> bool:
    """Whether a picture shows everything its (detailed) prompt says."""
    scene = parse_detailed_or_none(prompt)
    return scene is not None and shows(read, Request(scene, EVERYTHING))


def _agreement(reads: list[Scene], truths: list[Scene | None], named: frozenset[str] = EVERYTHING
               ) -> dict[str, float]:
    """Per ``named`` attribute, the share of pictures agreeing with their one-object truth (None: skipped)."""
    rows = [attribute_agreement(read, truth) for read, truth in zip(reads, truths, strict=True) if truth is not None]
    return {a: float(np.mean([r[a] for r in rows])) for a in rows[0] if a in named} if rows else {}


def _summary(scores: list[tuple[bool, float | None]]) -> dict[str, float]:
    kept = [k for _, k in scores if k is not None]
    return {"success": float(np.mean([m for m, _ in scores])), "preserved": float(np.mean(kept)) if kept else 1.0,
            "n": len(scores)}


def _pct(value: float | None) -> str:
    """A share as "90.9%" ("-" where there is none)."""
    return "-" if value is None else f"{value:.1%}"


def format_table(results: dict[str, Any]) -> str:
    """The figures as a plain-text table (the JSON has the same numbers)."""
    lines = []

    def row(name: str, *cells: str) -> None:
        lines.append(f"{name:<44}" + "".join(f"{c:>14}" for c in cells))

    if "judge" in results:
        row("judge (500 held-out renders)", "lowest attr", "scene")
        row("", _pct(results["judge"]["lowest"]), _pct(results["judge"]["per_attribute"].get("scene")))
    if "assistant" in results:
        from .world_assistant import format_summary

        lines.append("assistant asked as people ask (held-out wordings), its prompts painted by the oracle:")
        lines += ["  " + line for line in format_summary(results["assistant"]).splitlines()]
    if "t2i" in results:
        t = results["t2i"]
        row(f"text-to-image, one object ({t['n']} requests)", "success", "world FID", "prompt kept")
        for name, r in t["rows"].items():
            row(f"  {name}", _pct(r["success"]), f"{r['fid']:.1f}", _pct(r.get("prompt_followed")))
        for name, r in t["rows"].items():
            if r.get("per_attribute"):
                lines.append(f"    {name}, agreement with the prompt by attribute: "
                             + ", ".join(f"{a} {v:.0%}" for a, v in r["per_attribute"].items()))
    if "place" in results:
        row("the painter on true detailed captions", "whole scene", "in its cell")
        for name, r in results["place"].items():
            row(f"  {name} ({r['n']})", _pct(r["success"]), _pct(r.get("per_attribute", {}).get("position")))
    if "masked" in results:
        row("inpainting / outpainting", "success", "unchanged*")
        for name, r in results["masked"].items():
            row(f"  {name} ({r['n']})", _pct(r["success"]), _pct(r["unchanged_beyond_band"]))
        lines.append("  * pixels beyond the painter's blend band around the mask, byte-identical to the input")
    if "edit" in results:
        e = results["edit"]
        row(f"instruction editing (target prompt: {e['target_prompt']})", "success", "preserved")
        row(f"  one edit ({e['edit']['n']})", _pct(e["edit"]["success"]), _pct(e["edit"]["preserved"]))
        for kind, r in e.get("edit_by_kind", {}).items():
            row(f"    {kind} ({r['n']})", _pct(r["success"]), _pct(r["preserved"]))
        for k, r in e["follow_ups"].items():
            row(f"  after {k} follow-up edit(s), whole scene ({r['n']})", _pct(r["success"]), _pct(r["preserved"]))
    return "\n".join(lines)
