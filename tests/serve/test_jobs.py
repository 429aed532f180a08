"""The bounded job queue: workers own their resources, the bound answers "busy", jobs can be cancelled."""

import threading
import time

import pytest

from llmga.serve.http_errors import BusyError, JobCancelled, JobTimeoutError
from llmga.serve.jobs import CANCELLED, DONE, FAILED, ThreadJobQueue


def blocking(gate, seen=None):
    def fn(resource, job):
        if seen is not None:
            seen.append(resource)
        while not gate.wait(0.01):
            job.report_progress(1, 2)
        return resource
    return fn


def test_jobs_run_on_the_workers_resources_and_report_events():
    queue = ThreadJobQueue(["a"], max_pending=2)
    try:
        def fn(resource, job):
            job.report_progress(1, 2)
            job.emit("text", text="hi")
            return resource * 2
        job = queue.submit(fn, job_id="my-id")
        assert job.wait(5) and job.status == DONE and job.result == "aa" and queue.get("my-id") is job
        seen = []
        job.subscribe(seen.append)  # late listeners get the past events
        assert [e["type"] for e in seen] == ["start", "progress", "text", "end"]
        assert job.snapshot()["progress"] == {"step": 1, "total": 2}
    finally:
        queue.close()


def test_beyond_the_bound_submit_is_refused_at_once_with_retry_after():
    gate = threading.Event()
    queue = ThreadJobQueue([1], max_pending=2)
    try:
        jobs = [queue.submit(blocking(gate)) for _ in range(2)]
        start = time.monotonic()
        with pytest.raises(BusyError) as caught:
            queue.submit(blocking(gate))
        assert time.monotonic() - start < 0.5 and caught.value.retry_after >= 1
        assert queue.stats()["running"] + queue.stats()["queued"] == 2
        gate.set()
        assert all(j.wait(5) for j in jobs)
        queue.submit(lambda r, j: None).wait(5)  # room again
    finally:
        queue.close()


def test_cancel_a_queued_job_and_a_running_one():
    gate = threading.Event()
    queue = ThreadJobQueue([1], max_pending=3)
    try:
        running = queue.submit(blocking(gate))
        while running.status != "running":
            time.sleep(0.01)
        waiting = queue.submit(blocking(gate))
        queue.cancel(waiting.id)
        assert waiting.done and waiting.status == CANCELLED and waiting.started is None
        queue.cancel(running.id)
        assert running.wait(5) and running.status == CANCELLED and isinstance(running.error, JobCancelled)
        assert running.stop.is_set()
    finally:
        queue.close()


def test_a_failing_job_does_not_stop_its_worker():
    queue = ThreadJobQueue([1], max_pending=2)
    try:
        def boom(resource, job):
            raise RuntimeError("boom")
        bad = queue.submit(boom)
        assert bad.wait(5) and bad.status == FAILED and str(bad.error) == "boom"
        good = queue.submit(lambda r, j: "fine")
        assert good.wait(5) and good.result == "fine"
    finally:
        queue.close()


def test_two_workers_run_two_jobs_at_once_each_with_its_own_resource():
    gate = threading.Event()
    seen = []
    queue = ThreadJobQueue(["x", "y"], max_pending=2)
    try:
        jobs = [queue.submit(blocking(gate, seen)) for _ in range(2)]
        deadline = time.monotonic() + 5
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(seen) == ["x", "y"]
        gate.set()
        assert sorted(j.result for j in jobs if j.wait(5)) == ["x", "y"]
    finally:
        queue.close()


def test_a_job_past_its_deadline_stops_at_its_next_check():
    queue = ThreadJobQueue([1], max_pending=1)
    try:
        def slow(resource, job):
            job.deadline = time.monotonic() + 0.1
            while True:
                job.report_progress(1, 2)
                time.sleep(0.01)

        job = queue.submit(slow)
        assert job.wait(5) and job.status == FAILED and isinstance(job.error, JobTimeoutError)
        assert job.stop.is_set()
    finally:
        queue.close()


def test_close_cancels_what_is_left_and_says_which():
    gate = threading.Event()
    queue = ThreadJobQueue([1], max_pending=3)
    done = queue.submit(lambda r, j: None)
    assert done.wait(5)
    running = queue.submit(blocking(gate))
    queued = queue.submit(blocking(gate))
    assert sorted(queue.close(timeout=5)) == sorted([running.id, queued.id]) and done.status == DONE
    assert queued.status == CANCELLED and running.wait(5) and running.status == CANCELLED
    with pytest.raises(BusyError):
        queue.submit(blocking(gate))


def test_a_late_listener_gets_every_event_once_and_in_order():
    queue = ThreadJobQueue([1], max_pending=1)
    try:
        started = threading.Event()

        def chatty(resource, job):
            started.set()
            for i in range(3000):
                job.emit("text", text=str(i))

        job = queue.submit(chatty)
        started.wait(5)
        seen = []
        job.subscribe(seen.append)  # while the job is emitting
        assert job.wait(5)
        texts = [int(e["text"]) for e in seen if e["type"] == "text"]
        assert texts == list(range(3000)) and seen[-1]["type"] == "end"
    finally:
        queue.close()
