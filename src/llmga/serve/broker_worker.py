"""What ``llmga worker`` runs: the models, loaded once, taking the studio's turns from the broker.

It is rq's forking worker: each job runs in a child process that shares the
models with the worker (copy-on-write), records the turn in the store
(:class:`~llmga.serve.runner.RunTurn`) and publishes its events
(:mod:`llmga.serve.broker`). So a job that hangs or is cancelled is killed
outright without harming the worker, and a worker that dies is noticed within
seconds: each running job's heartbeat lasts :data:`HEARTBEAT_SECONDS`, after
which another worker's maintenance (every :data:`MAINTENANCE_SECONDS`) gives
the job to a worker again, once (rq's ``Retry``); a turn whose job is lost for
good is marked ``interrupted`` (:func:`reap`). The worker outlives a Redis or
PostgreSQL restart: it waits and carries on.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..settings import ServeConfig
from .broker import QUEUE, connect, publish
from .http_errors import ConflictError, UnavailableError
from .jobs import FAILED, Job, run_job
from .runner import RunTurn, Workbench
from .session_records import INTERRUPTED
from .store import SessionStore, open_store

log = logging.getLogger(__name__)

#: how often a worker says a job is alive, and how long after its last word a job counts as lost
MONITOR_SECONDS = 1
HEARTBEAT_SECONDS = 5
#: how often a worker looks for lost jobs and turns (and how long it waits on the queue at a time)
MAINTENANCE_SECONDS = 2
#: a pending turn with no live job this old is interrupted (younger ones may be on their way to the queue)
REAP_AFTER_SECONDS = 30.0
INTERRUPTED_MESSAGE = "the worker running this turn stopped before it finished; send it again"

#: what this process runs turns with (set by :func:`run_worker`; each job's process inherits it)
_SETUP: dict[str, Any] = {}


def perform(task: RunTurn) -> None:
    """The rq job: run ``task`` in this job process with a store of its own, publishing its events.

    It never raises: a turn that fails is recorded as failed in the store (rq
    retries only jobs whose process died).
    """
    from rq import get_current_job

    current = get_current_job()
    job = Job(task, current.description or "", job_id=current.id)
    job.subscribe(lambda event: publish(current.connection, job.id, event))
    store = _SETUP["open_store"]()
    try:
        run_job(job, Workbench(_SETUP["assistant"], store, _SETUP["config"].limits))
    finally:
        store.close()


def reap(store: SessionStore, connection: Any, older_than: float = REAP_AFTER_SECONDS) -> list[str]:
    """Mark ``interrupted`` the pending turns whose job is gone for good (failed, stopped, lost); their ids."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job as RQJob
    from rq.job import JobStatus

    alive = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED)
    reaped = []
    for turn_id in store.pending_turns(before=time.time() - older_than):
        try:
            if RQJob.fetch(turn_id, connection=connection).get_status() in alive:
                continue
        except NoSuchJobError:
            pass
        try:
            store.end_turn(turn_id, INTERRUPTED, INTERRUPTED_MESSAGE, "interrupted")
        except ConflictError:  # it ended meanwhile
            continue
        publish(connection, turn_id, {"type": "end", "status": FAILED, "error": INTERRUPTED_MESSAGE})
        reaped.append(turn_id)
    return reaped


def run_worker(config: ServeConfig, factory: Callable[[], Any], announce: Callable[[str], None],
               name: str | None = None) -> None:
    """Load the models, then take turns from ``config.broker`` until stopped (SIGTERM or Ctrl-C: the running
    job finishes first)."""
    import redis

    from .postgres_store import PostgresStore
    from .server import return_big_buffers

    return_big_buffers()
    images = Path(config.data) / "images"
    store = open_store(config.store, images)  # this process's own, for maintenance (it creates the tables)
    job_store = functools.partial(PostgresStore, config.store, images, max_connections=2, create_tables=False)
    _SETUP.update(config=config, open_store=job_store, assistant=factory())
    connection = connect(config.broker)
    worker_class = _worker_class(store)
    try:
        while True:
            worker = worker_class([QUEUE], connection=connection, name=name, job_monitoring_interval=MONITOR_SECONDS,
                                  maintenance_interval=MAINTENANCE_SECONDS, worker_ttl=MAINTENANCE_SECONDS + 15)
            announce(f"llmga worker {worker.name}: taking turns from {config.broker}")
            try:
                worker.work(logging_level="WARNING")
            except redis.exceptions.RedisError as exc:
                log.warning("lost the broker (%s)", exc)
            if worker.stopping:
                break
            announce("llmga worker: the broker is unavailable; trying again in 2 s")
            time.sleep(2)
    finally:
        store.close()
        announce("llmga worker: stopped")


def _worker_class(store: SessionStore) -> type:
    """rq's forking worker, quick to notice lost jobs, that also interrupts the turns of jobs lost for good."""
    import redis
    from rq import Worker

    class TurnWorker(Worker):
        stopping = False

        def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
            return HEARTBEAT_SECONDS

        def handle_warm_shutdown_request(self) -> None:
            self.stopping = True
            super().handle_warm_shutdown_request()

        def run_maintenance_tasks(self) -> None:
            super().run_maintenance_tasks()
            try:
                for turn_id in reap(store, self.connection):
                    log.warning("turn %s: %s", turn_id, INTERRUPTED_MESSAGE)
            except (UnavailableError, redis.exceptions.RedisError) as exc:  # restarting: next time
                log.warning("could not look for lost turns: %s", exc)

    return TurnWorker
