"""``llmga worker``: a painting worker of a scaled-out studio (its models, turns from the broker)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..settings import Limits, ServeConfig, default_data_dir
from .options import AssistantOptions, assistant_options
from .root import app
from .serve import Broker, DataDir, JobTimeout, Store, assistant_factory


@app.command()
@assistant_options
def worker(
    store: Store = None,
    broker: Broker = None,
    data_dir: DataDir = None,
    name: Annotated[Optional[str], typer.Option(help="The worker's name in the broker (default: random).")] = None,
    job_timeout: JobTimeout = Limits().job_seconds,
    factory: Annotated[Optional[str], typer.Option(
        help="module:function that returns an Assistant (instead of the model options).")] = None,
    *,
    opts: AssistantOptions,
) -> None:
    """Run the studio's turns from the broker: start as many as you have painters (GPUs), next to `llmga serve
    --store ... --broker ...`, with the same --store, --broker and --data-dir (a folder they all reach)."""
    if not store or not broker:
        raise typer.BadParameter("a worker needs the studio's --store (postgresql://…) and --broker (redis://…)")
    limits = Limits(job_seconds=job_timeout, brain_seconds=opts.brain_timeout or Limits().brain_seconds)
    config = ServeConfig(data=data_dir or default_data_dir(), store=store, broker=broker, limits=limits)
    config.check()
    from ..serve.broker_worker import run_worker

    run_worker(config, assistant_factory(factory, opts, Path(config.data) / "images"), lambda line: typer.echo(line),
               name=name)
