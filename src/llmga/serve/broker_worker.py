"""What ``llmga worker`` runs: the models, loaded once, taking the studio's turns from the broker.

Jobs run in the worker's own process, one at a time (rq's ``SimpleWorker``:
no fork, so models on a GPU keep working, and they stay warm). Each job runs
its turn (:class:`~llmga.serve.runner.RunTurn`: recorded in the store) and
publishes its events (:mod:`llmga.serve.broker`). Cancelling a job (rq's stop
command) sets its stop event: a brain that hangs is left at once, painting
stops at its next step, and the worker takes the next job. While a job runs a
thread renews its heartbeat every :data:`MONITOR_SECONDS`; a worker that dies
stops renewing, and :data:`HEARTBEAT_SECONDS` later another worker's
maintenance (every :data:`MAINTENANCE_SECONDS`) gives the job to a worker
again, once (rq's ``Retry``); a turn whose job is lost for good is marked
``interrupted`` (:func:`reap`). The worker outlives a Redis or PostgreSQL
restart: it waits and carries on.
"""

from __future__ import annotations

import logging
import threading
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

#: what this process runs turns with (set by :func:`run_worker`), and the job it runs now
_SETUP: dict[str, Any] = {}


def perform(task: RunTurn) -> None:
    """The rq job: run ``task`` on this worker's models and store, publishing its events.

    It never raises: a turn that fails is recorded as failed in the store (rq
    retries only jobs whose worker died).
    """
    from rq import get_current_job

    current = get_current_job()
    job = Job(task, current.description or "", job_id=current.id)
    job.subscribe(lambda event: publish(current.connection, job.id, event))
    _SETUP["running"] = job
    try:
        run_job(job, _SETUP["bench"])
    finally:
        _SETUP["running"] = None


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

    from .server import return_big_buffers

    return_big_buffers()
    store = open_store(config.store, Path(config.data) / "images")
    _SETUP.update(bench=Workbench(factory(), store, config.limits), running=None)
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
    """rq's worker that runs jobs in its own process, with heartbeats of seconds while a job runs, cancels
    that stop the running turn, and maintenance that also interrupts the turns of jobs lost for good."""
    import redis
    from rq import SimpleWorker
    from rq.worker import WorkerStatus

    class TurnWorker(SimpleWorker):
        stopping = False

        def execute_job(self, job: Any, queue: Any) -> None:
            execution = self.prepare_execution(job)
            beating = threading.Event()
            beats = threading.Thread(target=self._beat, args=(job, execution, beating), daemon=True)
            beats.start()
            try:
                self.perform_job(job, queue, execution)
            finally:
                beating.set()
                beats.join()
            self.set_state(WorkerStatus.IDLE)

        def _beat(self, job: Any, execution: Any, done: threading.Event) -> None:
            while not done.wait(MONITOR_SECONDS):
                try:
                    self.maintain_heartbeats(job, execution)
                except redis.exceptions.RedisError:  # the broker is restarting: the job goes on
                    pass

        def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
            return HEARTBEAT_SECONDS

        def kill_horse(self, sig: Any = None) -> None:
            """rq's stop command: stop the running turn (there is no job process to kill)."""
            running = _SETUP.get("running")
            if running is not None:
                running.stop.set()

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
