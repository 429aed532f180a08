"""``llmga eval …``: measurements."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

eval_app = typer.Typer(help="Measure the assistant.", no_args_is_help=True)


@eval_app.command("refine")
def refine(
    brain: Annotated[str, typer.Option("--brain", help="Brain to measure: directory, .gguf, 'smollm2' or URL.")],
    n: Annotated[int, typer.Option(help="Held-out items (requests and plain questions).")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the held-out split (use the training data's seed).")] = 0,
    max_new_tokens: Annotated[int, typer.Option(help="Most tokens per reply.")] = 96,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the figures as JSON.")] = None,
) -> None:
    """Well-formed replies, faithfulness and variety of prompt refinement on held-out subjects."""
    from ..brain import load_brain
    from .refine import evaluate

    scores = evaluate(load_brain(brain), n=n, seed=seed, max_new_tokens=max_new_tokens)
    typer.echo(f"brain: {brain}")
    typer.echo(f"items {scores.items} ({scores.requests} image requests on held-out subjects)")
    typer.echo(f"well-formed replies      {scores.well_formed:7.1%}")
    typer.echo(f"faithful prompts         {scores.faithful:7.1%}")
    typer.echo(f"distinct detail phrases  {scores.distinct_details:7.1%}")
    typer.echo(f"most common detail share {scores.top_detail_share:7.1%}")
    if json_out:
        json_out.write_text(json.dumps(scores.as_dict(), indent=2))
