"""The job queue of a studio process whose turns run in ``llmga worker`` processes, through Redis (rq).

:class:`BrokerJobQueue` has the interface of the in-process queue
(:class:`~llmga.serve.jobs.JobQueue`): :meth:`~BrokerJobQueue.submit` enqueues
an rq job (refused with 429 beyond ``max_pending`` jobs queued or running in
all, and with 503 while Redis is down), and hands back a local
:class:`~llmga.serve.jobs.Job` that mirrors the remote one. A relay thread
reads the jobs' event streams (:mod:`llmga.serve.broker`) into those mirrors,
and checks the store every few seconds as well, so a turn a worker finished
while Redis was down still ends its wait. Cancelling a queued job removes it
from the queue; cancelling a running one kills the worker's job process at
once (rq's stop command), whatever it is doing.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..settings import Limits
from .broker import PERFORM, QUEUE, connect, decode, publish, stream_key
from .http_errors import BrokerUnavailableError, BusyError, JobCancelled, NotFoundError, StoreUnavailableError
from .jobs import CANCELLED, DONE, FAILED, RUNNING, Job, JobFunction
from .session_records import CANCELLED as TURN_CANCELLED
from .session_records import DONE as TURN_DONE
from .session_records import PENDING
from .store import SessionStore

log = logging.getLogger(__name__)

#: seconds between looks at the store for turns whose end event was lost
STORE_CHECK_SECONDS = 2.0
#: finished jobs remembered for status queries
KEEP_FINISHED = 1000


class RemoteError(Exception):
    """The error a job ended with in a worker process (its message; the store has the turn's error)."""


class BrokerJobQueue:
    """Turns sent through Redis at ``url`` to worker processes; ``store`` is where they are recorded."""

    def __init__(self, url: str, store: SessionStore, max_pending: int = 8, limits: Limits = Limits()) -> None:
        import redis
        from rq import Queue

        self.url, self.store, self.max_pending, self.limits = url, store, max_pending, limits
        self.redis = connect(url)
        self._redis_errors = (redis.exceptions.RedisError,)
        self.queue = Queue(QUEUE, connection=self.redis)
        self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._cursors: dict[str, str] = {}  # job id -> last event id read, for the jobs still running
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._relay = threading.Thread(target=self._relay_events, name="llmga-broker-relay", daemon=True)
        self._relay.start()

    # -- the queue interface ----------------------------------------------------

    def submit(self, fn: JobFunction, label: str = "", key: str | None = None, job_id: str | None = None) -> Job:
        """Enqueue ``fn`` (run as ``fn(workbench, job)`` in a worker); BusyError beyond ``max_pending``."""
        from rq import Retry

        self.check_room()
        job = Job(None, label, key, job_id)
        with self._broker("sending the turn to the workers"):
            self.queue.enqueue(PERFORM, fn, job_id=job.id, description=label[:200], retry=Retry(max=1),
                               job_timeout=int(self.limits.job_seconds) + 60, result_ttl=3600, failure_ttl=86400)
        self._watch(job)
        return job

    def check_room(self) -> None:
        with self._broker("counting the jobs"):
            from rq.registry import StartedJobRegistry

            queued, running = self.queue.count, StartedJobRegistry(queue=self.queue).count
            workers = self._worker_count()
        if queued + running >= self.max_pending:
            raise BusyError(f"the studio is busy ({running} running, {queued} waiting); try again later",
                            retry_after=max(1, min(300, math.ceil(10 * (queued + 1) / max(1, workers)))))

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            return job
        with self._broker("looking up the job"):
            from rq.job import Job as RQJob

            if not RQJob.exists(job_id, connection=self.redis):
                raise NotFoundError(f"no job {job_id!r} (finished jobs are forgotten after a while)")
            history = self.redis.xrange(stream_key(job_id))
        job = Job(None, job_id=job_id)
        self._watch(job)
        self._deliver(job_id, history)
        return job

    def cancel(self, job_id: str) -> Job:
        """Cancel a job: a queued one leaves the queue, a running one's process is killed at once."""
        from rq.command import send_stop_job_command
        from rq.exceptions import InvalidJobOperation, NoSuchJobError
        from rq.job import Job as RQJob
        from rq.job import JobStatus

        job = self.get(job_id)
        with self._broker("cancelling the job"):
            try:
                remote = RQJob.fetch(job_id, connection=self.redis)
                if remote.get_status() == JobStatus.STARTED:
                    send_stop_job_command(self.redis, job_id)
                elif remote.get_status() in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
                    remote.cancel()
            except (NoSuchJobError, InvalidJobOperation):
                pass  # it ended meanwhile
        publish(self.redis, job_id, {"type": "end", "status": CANCELLED, "error": "cancelled"})
        self._finish(job, CANCELLED, "cancelled")
        return job

    def stats(self) -> dict[str, Any]:
        try:
            from rq.registry import StartedJobRegistry

            return {"broker": "redis", "workers": self._worker_count(), "queued": self.queue.count,
                    "running": StartedJobRegistry(queue=self.queue).count, "max_pending": self.max_pending}
        except self._redis_errors:
            return {"broker": "unavailable", "max_pending": self.max_pending}

    def close(self, timeout: float = 5.0) -> list[str]:
        """Stop following jobs (they go on in the workers; the store records them)."""
        self._closed.set()
        self._relay.join(timeout)
        return []

    # -- mirrors of the remote jobs ---------------------------------------------

    def _watch(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job
            self._cursors[job.id] = "0"
            while len(self._jobs) > KEEP_FINISHED and next(iter(self._jobs.values())).done:
                self._jobs.popitem(last=False)

    def _relay_events(self) -> None:
        checked = time.monotonic()
        while not self._closed.is_set():
            with self._lock:
                streams = {stream_key(job_id): cursor for job_id, cursor in self._cursors.items()}
            try:
                replies = self.redis.xread(streams, block=100, count=1000) if streams else []
            except self._redis_errors:
                replies = []
                self._closed.wait(1.0)
            if not streams:
                self._closed.wait(0.05)
            for key, entries in replies or []:
                self._deliver(key.decode().rsplit(":", 1)[1], entries)
            if time.monotonic() - checked > STORE_CHECK_SECONDS:
                self._check_store()
                checked = time.monotonic()

    def _deliver(self, job_id: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            return
        for entry_id, fields in entries:
            with self._lock:
                if job_id in self._cursors:
                    self._cursors[job_id] = entry_id.decode()
            event = decode(fields)
            if job.done:
                return
            if event["type"] == "end":
                self._finish(job, event["status"], event.get("error"))
                return
            if event["type"] == "start":
                job.status, job.started = RUNNING, time.time()
            elif event["type"] == "progress":
                job.progress = (event["step"], event["total"])
            job.emit(event.pop("type"), **event)

    def _check_store(self) -> None:
        """End the mirrors of turns the store says have ended (their end event was lost, or never sent)."""
        with self._lock:
            running = [job for job_id, job in self._jobs.items() if job_id in self._cursors and not job.done]
        for job in running:
            try:
                turn = self.store.get_turn(job.id)
            except (NotFoundError, StoreUnavailableError):
                continue
            if turn.status != PENDING:
                status = {TURN_DONE: DONE, TURN_CANCELLED: CANCELLED}.get(turn.status, FAILED)
                self._finish(job, status, turn.error)

    def _finish(self, job: Job, status: str, error: str | None) -> None:
        with self._lock:
            self._cursors.pop(job.id, None)
        if not job.done:
            if status == CANCELLED:
                job._finish(status, error=JobCancelled(error or "cancelled"))
            else:
                job._finish(status, error=RemoteError(error) if error else None)

    def _worker_count(self) -> int:
        from rq import Worker

        return Worker.count(queue=self.queue)

    @contextmanager
    def _broker(self, doing: str) -> Iterator[None]:
        """Redis errors inside become :class:`BrokerUnavailableError` (503, Retry-After)."""
        try:
            yield
        except self._redis_errors as exc:
            raise BrokerUnavailableError(f"the job broker (Redis) is unavailable ({doing}): {exc}") from None
