"""A bounded job queue: painting runs in worker threads, never in the web server's event loop.

:class:`JobQueue` is the interface the studio uses; :class:`ThreadJobQueue`
is the in-process implementation, :class:`~llmga.serve.broker_queue.BrokerJobQueue`
sends jobs through Redis to ``llmga worker`` processes. Each worker thread owns one
*resource* (the models of an assistant, since diffusers pipelines are not safe
to share between threads) and runs one job at a time. At most ``max_pending``
jobs are queued or running; beyond that :meth:`submit` raises
:class:`~llmga.serve.http_errors.BusyError` with a Retry-After estimate, so a
client is told to come back instead of hanging.

A job reports events (``progress``, ``text``, ``prompt``, ...) that
listeners receive as they happen, and can be cancelled: queued, it never
runs; running, it stops at its next check (:meth:`Job.check_cancelled`, at
every painting step, and within a tenth of a second while the brain writes:
``job.stop`` is the event the brain watches). A job past its ``deadline``
stops the same way with :class:`~llmga.serve.http_errors.JobTimeoutError`.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import Cancelled
from .http_errors import BusyError, JobCancelled, JobTimeoutError, NotFoundError

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
Listener = Callable[[dict[str, Any]], None]
JobFunction = Callable[[Any, "Job"], Any]

#: finished jobs kept for status queries
KEEP_FINISHED = 1000


class Job:
    """One unit of work: its status, progress, events, and result or error."""

    def __init__(self, fn: JobFunction | None, label: str = "", key: str | None = None,
                 job_id: str | None = None) -> None:
        self.id = job_id or uuid.uuid4().hex
        self.fn, self.label, self.key = fn, label, key
        self.deadline: float | None = None  # time.monotonic() by which it must end
        self.status = QUEUED
        self.created, self.started, self.finished = time.time(), None, None
        self.progress: tuple[int, int] | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self._events: list[dict[str, Any]] = []
        self._listeners: list[Listener] = []
        self._done_callbacks: list[Callable[[Job], None]] = []
        self._lock = threading.RLock()
        self._done = threading.Event()
        self._cancel = threading.Event()

    # -- inside the job ---------------------------------------------------

    def emit(self, kind: str, **data: Any) -> None:
        """Record an event and hand it to every listener (in order: listeners must be quick and not block)."""
        event = {"type": kind, **data}
        with self._lock:
            self._events.append(event)
            for listener in self._listeners:
                _call(listener, event, self.id)

    def report_progress(self, step: int, total: int) -> None:
        """Progress of the painter; also the point where a cancelled job stops."""
        self.check_cancelled()
        self.progress = (step, total)
        self.emit("progress", step=step, total=total)

    def check_cancelled(self) -> None:
        """Raise if the job was cancelled, or ran past its deadline."""
        if self._cancel.is_set():
            raise JobCancelled("the job was cancelled")
        if self.deadline is not None and time.monotonic() > self.deadline:
            self._cancel.set()  # the brain stops too
            raise JobTimeoutError("the turn ran over the time a turn may take; it was stopped")

    @property
    def stop(self) -> threading.Event:
        """Set when the job is cancelled: work that cannot check often (the brain) watches it."""
        return self._cancel

    # -- outside the job --------------------------------------------------

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends; False on timeout."""
        return self._done.wait(timeout)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Send every event, past and future, to ``listener``; return a function that stops it."""
        with self._lock:  # replayed under the lock, so no new event can overtake the past ones
            for event in self._events:
                _call(listener, event, self.id)
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def add_done_callback(self, callback: Callable[[Job], None]) -> None:
        """Call ``callback(job)`` when the job ends (at once if it has)."""
        with self._lock:
            if not self._done.is_set():
                self._done_callbacks.append(callback)
                return
        callback(self)

    def snapshot(self) -> dict[str, Any]:
        """The job's state as plain data."""
        step, total = self.progress or (0, 0)
        return {
            "id": self.id, "label": self.label, "key": self.key, "status": self.status,
            "created": self.created, "started": self.started, "finished": self.finished,
            "progress": {"step": step, "total": total},
            "error": str(self.error) if self.error is not None else None,
        }

    def _finish(self, status: str, result: Any = None, error: BaseException | None = None) -> None:
        self.status, self.result, self.error, self.finished = status, result, error, time.time()
        self.emit("end", status=status, error=str(error) if error is not None else None)
        with self._lock:
            self._done.set()
            callbacks, self._done_callbacks = self._done_callbacks, []
            self._listeners.clear()
        for callback in callbacks:
            try:
                callback(self)
            except Exception:  # e.g. a waiter whose event loop has closed
                log.debug("a done callback of job %s failed", self.id, exc_info=True)


def _call(listener: Listener, event: dict[str, Any], job_id: str) -> None:
    try:
        listener(event)
    except Exception:  # a listener that went away must not stop the job
        log.debug("a listener of job %s failed", job_id, exc_info=True)


def run_job(job: Job, resource: Any) -> None:
    """Run ``job.fn(resource, job)`` and end the job with its result or error (it never raises)."""
    job.status, job.started = RUNNING, time.time()
    job.emit("start")
    try:
        job.check_cancelled()
        result = job.fn(resource, job)
    except Cancelled as exc:
        job._finish(CANCELLED, error=exc)
    except BaseException as exc:  # handed to whoever waits for the job
        if not isinstance(exc, Exception):
            log.warning("job %s stopped by %s", job.id, type(exc).__name__)
        job._finish(FAILED, error=exc)
    else:
        job._finish(DONE, result=result)


class JobQueue(Protocol):
    """What the studio needs from a queue.

    ``fn(resource, job)`` runs on a worker's resource; a queue that sends jobs to
    other processes pickles ``fn``. ``close`` returns the ids of the jobs it
    stopped or never ran.
    """

    def submit(self, fn: JobFunction, label: str = "", key: str | None = None, job_id: str | None = None) -> Job: ...
    def check_room(self) -> None: ...
    def get(self, job_id: str) -> Job: ...
    def cancel(self, job_id: str) -> Job: ...
    def stats(self) -> dict[str, Any]: ...
    def close(self, timeout: float = 5.0) -> list[str]: ...


class ThreadJobQueue:
    """Worker threads, one per resource, taking jobs in order from a bounded queue."""

    def __init__(self, resources: list[Any], max_pending: int = 8, name: str = "llmga-worker") -> None:
        if not resources:
            raise ValueError("a job queue needs at least one worker resource")
        if max_pending < len(resources):
            raise ValueError("max_pending must be at least the number of workers")
        self.max_pending = max_pending
        self._queue: collections.deque[Job] = collections.deque()
        self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._cond = threading.Condition()
        self._running = 0
        self._closed = False
        self._mean_seconds = 1.0
        self._threads = [
            threading.Thread(target=self._work, args=(resource,), name=f"{name}-{i}", daemon=True)
            for i, resource in enumerate(resources)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: JobFunction, label: str = "", key: str | None = None, job_id: str | None = None) -> Job:
        """Queue ``fn(resource, job)``; BusyError when ``max_pending`` jobs are already queued or running."""
        job = Job(fn, label, key, job_id)
        with self._cond:
            self._check_room()
            self._queue.append(job)
            self._remember(job)
            self._cond.notify()
        return job

    def check_room(self) -> None:
        """BusyError now if a job submitted now would be refused (so a client's request is refused before any work)."""
        with self._cond:
            self._check_room()

    def _check_room(self) -> None:
        if self._closed:
            raise BusyError("the server is shutting down", retry_after=5)
        if len(self._queue) + self._running >= self.max_pending:
            raise BusyError(
                f"the studio is busy ({self._running} running, {len(self._queue)} waiting); try again later",
                retry_after=self.retry_after(),
            )

    def get(self, job_id: str) -> Job:
        with self._cond:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r} (finished jobs are forgotten after a while)")
        return job

    def cancel(self, job_id: str) -> Job:
        """Cancel a job: a queued one ends at once, a running one at its next progress report."""
        job = self.get(job_id)
        job._cancel.set()
        with self._cond:
            queued = job in self._queue
            if queued:
                self._queue.remove(job)
        if queued:
            job._finish(CANCELLED, error=JobCancelled("cancelled before it ran"))
        return job

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {"workers": len(self._threads), "running": self._running, "queued": len(self._queue),
                    "max_pending": self.max_pending, "mean_seconds": round(self._mean_seconds, 3)}

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the mean job time times the jobs ahead, per worker."""
        ahead = len(self._queue) + self._running
        return max(1, min(300, math.ceil(self._mean_seconds * ahead / len(self._threads))))

    def close(self, timeout: float = 5.0) -> list[str]:
        """Stop taking jobs, cancel the queued and running ones, wait a while for the running ones; their ids."""
        with self._cond:
            self._closed = True
            waiting = list(self._queue)
            self._queue.clear()
            unfinished = [job for job in self._jobs.values() if not job.done]
            for job in unfinished:
                job._cancel.set()
            self._cond.notify_all()
        for job in waiting:
            job._finish(CANCELLED, error=JobCancelled("the server shut down before it ran"))
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [job.id for job in unfinished]

    # -- workers ----------------------------------------------------------

    def _work(self, resource: Any) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._queue.popleft()
                self._running += 1
            try:
                run_job(job, resource)
            finally:
                with self._cond:
                    self._running -= 1
                    elapsed = (job.finished or time.time()) - (job.started or job.created)
                    self._mean_seconds = 0.7 * self._mean_seconds + 0.3 * elapsed

    def _remember(self, job: Job) -> None:
        self._jobs[job.id] = job
        while len(self._jobs) > KEEP_FINISHED:
            oldest = next(iter(self._jobs.values()))
            if not oldest.done:
                break
            self._jobs.popitem(last=False)
