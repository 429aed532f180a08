"""``llmga eval …``: every measurement: prompt refinement, and the miniature world's bench, judge and assistants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import registry
from ..errors import InvalidInputError
from .root import group

evaluate = group("eval", "Measure the assistant, the painters and the judge (held-out sets; JSON with --json).")

Seed = Annotated[int, typer.Option("--seed", help="Seed for every random choice.")]
Threads = Annotated[int, typer.Option("--threads", help="Torch threads (1 is steadiest on a busy CPU).")]


@evaluate.command("refine")
def refine(
    brain: Annotated[str, typer.Option("--brain", help="Brain to measure: directory, .gguf, 'smollm2' or URL.")],
    n: Annotated[int, typer.Option(help="Held-out items (requests and plain questions).")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the held-out split (use the training data's seed).")] = 0,
    max_new_tokens: Annotated[int, typer.Option(help="Most tokens per reply.")] = 96,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the figures as JSON.")] = None,
) -> None:
    """Well-formed replies, faithfulness and variety of prompt refinement on held-out subjects."""
    from ..brain import load_brain
    from ..eval.refine import evaluate

    scores = evaluate(load_brain(brain), n=n, seed=seed, max_new_tokens=max_new_tokens)
    typer.echo(f"brain: {brain}")
    typer.echo(f"items {scores.items} ({scores.requests} image requests on held-out subjects)")
    typer.echo(f"well-formed replies      {scores.well_formed:7.1%}")
    typer.echo(f"faithful prompts         {scores.faithful:7.1%}")
    typer.echo(f"distinct detail phrases  {scores.distinct_details:7.1%}")
    typer.echo(f"most common detail share {scores.top_detail_share:7.1%}")
    if json_out:
        json_out.write_text(json.dumps(scores.as_dict(), indent=2))


@evaluate.command("world")
def world(
    brain: Annotated[str, typer.Option("--brain", help="The world assistant ('none' to skip its parts).")] = registry.DEFAULT_PROFILE["brain"],
    painter: Annotated[str, typer.Option("--painter", help="Text-to-image world painter.")] = "world",
    stage2_painter: Annotated[str, typer.Option("--stage2-painter", help="Stage-2 painter ('none' to skip).")] = "world-stage2",
    inpaint_painter: Annotated[str, typer.Option("--inpaint-painter", help="Inpainting painter ('none' to skip).")] = "world-inpaint",
    edit_painter: Annotated[str, typer.Option("--edit-painter", help="Instruction-editing painter ('none' to skip).")] = "world-stage2",
    n: Annotated[int, typer.Option("--n", help="Requests per text-to-image row and for the assistant.")] = 64,
    edit_n: Annotated[int, typer.Option("--edit-n", help="Pictures per inpaint/outpaint/edit row.")] = 32,
    chain_n: Annotated[int, typer.Option("--chain-n", help="Chains of 5 follow-up edits.")] = 16,
    steps: Annotated[int, typer.Option("--steps", help="Denoising steps.")] = 20,
    guidance: Annotated[float, typer.Option("--guidance")] = 4.0,
    parts: Annotated[str, typer.Option("--parts", help="Comma-separated: judge,assistant,t2i,place,masked,edit.")] = "judge,assistant,t2i,place,masked,edit",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write every figure as JSON here.")] = None,
    seed: Seed = 0,
    threads: Threads = 1,
) -> None:
    """The paper's tables in miniature: judge, assistant, text-to-image, inpaint/outpaint, edits, follow-ups."""
    import torch

    from ..eval.world_bench import BenchConfig, WorldBench, format_table

    def none(value: str | None) -> str | None:
        return None if value in ("", "none") else value

    torch.set_num_threads(threads)
    config = BenchConfig(brain=none(brain), painter=none(painter), stage2_painter=none(stage2_painter),
                         inpaint_painter=none(inpaint_painter), edit_painter=none(edit_painter), n=n, steps=steps,
                         guidance=guidance, edit_n=edit_n, chain_n=chain_n, seed=seed)
    results = WorldBench(config, log=lambda line: typer.echo(line, err=True)).run(parts.split(","))
    typer.echo(format_table(results))
    if json_out:
        json_out.write_text(json.dumps(results, indent=2) + "\n")


@evaluate.command("judge")
def judge(
    directory: Annotated[
        Path | None, typer.Argument(metavar="DIRECTORY", help="Judge folder (default: the shipped judge).")
    ] = None,
    n: Annotated[int, typer.Option("--n", help="Held-out renders.")] = 2000,
    max_objects: Annotated[int, typer.Option("--max-objects", help="Most objects per scene.")] = 3,
    seed: Seed = 1,
    size: Annotated[
        int | None, typer.Option("--size", help="Render size (default: the judge's first).")
    ] = None,
    threads: Threads = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Accuracy per attribute of a judge on held-out renders, clean and augmented."""
    import torch

    from ..eval.judge_accuracy import evaluate_judge, format_report
    from ..world.judge import Judge

    torch.set_num_threads(threads)
    report = evaluate_judge(Judge.load(directory), n=n, seed=seed, max_objects=max_objects, size=size)
    typer.echo(json.dumps(report, indent=2) if as_json else format_report(report))


@evaluate.command("assistant")
def assistant(
    brain: Annotated[str, typer.Option("--brain", help="Brain to measure (directory, adapter, 'smollm2', URL).")],
    n: Annotated[int, typer.Option(help="Held-out items per language and kind.")] = 10,
    new_words: Annotated[int, typer.Option("--new-words", help="Requests naming a synonym never trained.")] = 20,
    relations: Annotated[int, typer.Option(
        "--relations", help="Requests per language placing a second object relative to the first.")] = 16,
    languages: Annotated[str, typer.Option("--languages", help="Comma-separated: en, zh.")] = "en,zh",
    kinds: Annotated[str, typer.Option(
        "--kinds", help="Comma-separated kinds of held-out item (llmga.data.world_chat.KINDS); default all.")] = "",
    seed: Annotated[int, typer.Option(help="Seed of the held-out pairs (the training data's seed).")] = 0,
    draws: Annotated[list[int], typer.Option(
        "--draw", help="0: the items every figure uses; another number: the same held-out wordings and pairs "
                       "combined anew, to confirm a choice made on draw 0. Repeat it to pool several draws "
                       "(each draw's whole-request shares are shown too).")] = [0],
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures (and every reply) as JSON.")] = None,
    threads: Annotated[int, typer.Option("--threads", help="Torch threads.")] = 1,
    temperature: Annotated[float, typer.Option(
        "--temperature", help="0: greedy; 0.2 samples as `llmga chat` does by default (a seed per request).")] = 0.0,
    brain_engine: Annotated[str, typer.Option(
        "--brain-engine", help="What runs an adapter on a GGUF base: auto, llama.cpp or transformers.")] = "auto",
    retry_edits: Annotated[bool, typer.Option(
        "--retry-edits/--no-retry-edits", help="Ask an edit that paints the last picture unchanged, and a reply "
                                               "in a script the last message does not use, again, as the "
                                               "assistant does (off: the brain's first replies only).")] = True,
    small_talk: Annotated[bool, typer.Option(
        "--small-talk", help="Open every conversation with one or two exchanges of small talk (held-out "
                             "wordings: a greeting, what it draws, a plain question), as a new user does.")] = False,
    other_language: Annotated[bool, typer.Option(
        "--other-language", help="Ask every item after earlier turns in the other language (its picture, or "
                                 "small talk where it has none), as a user who changes language does.")] = False,
) -> None:
    """The world assistant asked as people ask (held-out wordings): every named attribute kept, non-requests
    not painted, the right task, the language asked in; prompts painted by the oracle, read by the judge."""
    import torch

    from ..brain import load_brain
    from ..data.world_chat import KINDS
    from ..eval.world_assistant import format_summary, measure_chat
    from ..settings import RuntimeSettings

    chosen = tuple(kinds.split(",")) if kinds else KINDS
    if set(chosen) - set(KINDS):
        raise InvalidInputError(f"no held-out kind is called {', '.join(sorted(set(chosen) - set(KINDS)))}; "
                                f"the kinds are {', '.join(KINDS)}")
    torch.set_num_threads(threads)
    loaded = load_brain(brain, runtime=RuntimeSettings(brain_engine=brain_engine))
    summary, verdicts = measure_chat(loaded, n=n, seed=seed, languages=languages.split(","), kinds=chosen,
                                     new_words=new_words, temperature=temperature, relations=relations,
                                     draws=draws, retry_edits=retry_edits, small_talk=small_talk,
                                     switched=other_language)
    typer.echo(f"brain: {brain}")
    typer.echo(format_summary(summary))
    if json_out:
        replies = [{"draw": v.draw, "kind": v.item.kind, "language": v.item.language, "history": v.item.history,
                    "request": v.item.request, "reply": v.reply.raw, "task": v.task, "meant": v.item.task,
                    "whole": v.whole, **({"first_reply": v.first_reply} if v.first_reply else {})} for v in verdicts]
        json_out.write_text(json.dumps({"summary": summary, "replies": replies}, indent=2, ensure_ascii=False))


@evaluate.command("llava")
def llava(
    brain: Annotated[str, typer.Option("--brain", help="Brain to measure (directory, adapter folder, URL).")],
    n: Annotated[int, typer.Option("--n", help="Held-out items per kind.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the held-out pairs (the training data's seed).")] = 0,
    max_objects: Annotated[int, typer.Option("--max-objects", help="Most objects per pictured scene.")] = 2,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON.")] = None,
    threads: Annotated[int, typer.Option("--threads", help="Torch threads.")] = 1,
) -> None:
    """Per kind: well-formed replies, prompts that show the target scene (oracle painter + judge), and
    prompts right on the background, the objects' looks and their positions, each on its own."""
    import torch

    from ..brain import load_brain
    from ..data.world_sets import KINDS
    from ..eval.world_prompts import measure_llava, scores_as_dict
    from ..world.requests import ASPECTS

    torch.set_num_threads(threads)
    scores = measure_llava(load_brain(brain), n=n, seed=seed, max_objects=max_objects)
    typer.echo(f"brain: {brain}; {n} held-out items per kind")
    typer.echo(f"{'kind':10} {'well-formed':>12} {'faithful':>9}   " + "".join(f"{a:>12}" for a in ASPECTS))
    for kind in KINDS:
        if kind in scores:
            score = scores[kind]
            by_aspect = "".join(f"{score.aspects[a]:12.1%}" if score.aspects else f"{'-':>12}" for a in ASPECTS)
            typer.echo(f"{kind:10} {score.well_formed:12.1%} {score.faithful:9.1%}   {by_aspect}")
    if json_out:
        json_out.write_text(json.dumps(scores_as_dict(scores), indent=2))


@evaluate.command("decision")
def decision(
    model: Annotated[str, typer.Option("--model", help="The embedding-control model (with a retrieval head).")],
    library: Annotated[Path, typer.Option("--library", help="A world picture folder indexed by llmga index build "
                                          "with the model's retrieval CLIP.")],
    n: Annotated[int, typer.Option("--n", help="Cases: half calibrate the decision, half measure it.")] = 200,
    save: Annotated[bool, typer.Option("--save", help="Write the calibrated decision into the model's folder.")]
    = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the figures as JSON.")] = None,
    seed: Seed = 0,
    threads: Threads = 1,
) -> None:
    """Retrieve or generate in the world: calibrate the decision on half the cases, its accuracy on the rest."""
    import torch

    from ..embedding.embedding_brain import load_control_brain
    from ..embedding.embedding_painter import check_library
    from ..eval.retrieval import fit_decision, library_scenes, measure_cases, world_cases
    from ..library import ImageLibrary
    from ..world.judge import Judge

    torch.set_num_threads(threads)
    brain, shelf, judge = load_control_brain(model), ImageLibrary.open(library), Judge.load()
    check_library(brain, shelf, None, need_decision=False)
    cases = measure_cases(brain, shelf, judge, world_cases(library_scenes(shelf, judge), n, seed))
    chosen, report = fit_decision(cases, str(shelf.root))
    typer.echo(f"{model} on {shelf.root} ({len(shelf)} pictures): {report['held_out']} held-out cases, "
               f"retrieving right for {report['retrieving_right']:.1%} of them")
    typer.echo(f"decision (retrieve above similarity {report['threshold']:.3f}): {report['accuracy']:.1%} right; "
               f"always paint {report['always_paint']:.1%}, always retrieve {report['always_retrieve']:.1%}")
    if save:
        typer.echo(f"saved {chosen.save(brain.folder)}")
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
