"""The job broker shared by studio processes and ``llmga worker`` processes: Redis, with rq for the jobs.

Turns are rq jobs on the queue :data:`QUEUE` (job id = turn id). What a job
reports as it runs (text as the brain writes it, prompts, painting progress,
its end) goes to a Redis stream per job, ``llmga:events:<job id>``, which any
studio process can read from the start, so a client may follow a turn on a
different process from the one it was sent to. The store stays the record of
every turn; the stream only makes waiting quick.
"""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)

#: the rq queue the turns go through
QUEUE = "llmga"
#: the function a worker runs for each job (by name: studio processes never import the worker's models)
PERFORM = "llmga.serve.broker_worker.perform"
#: events kept per job, and for how long (seconds) after the last one
STREAM_LENGTH = 5000
STREAM_SECONDS = 3600


def connect(url: str) -> Any:
    """A Redis client for ``url`` that gives up on a dead server in seconds (its errors say so) and reconnects."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10, health_check_interval=5,
                                retry_on_timeout=False)


def stream_key(job_id: str) -> str:
    return f"llmga:events:{job_id}"


def publish(connection: Any, job_id: str, event: dict[str, Any]) -> None:
    """Add an event to the job's stream; a broker that is down loses the event, not the job."""
    try:
        key = stream_key(job_id)
        pipe = connection.pipeline(transaction=False)
        pipe.xadd(key, {"event": json.dumps(event)}, maxlen=STREAM_LENGTH, approximate=True)
        pipe.expire(key, STREAM_SECONDS)
        pipe.execute()
    except Exception as exc:  # redis errors of any kind: the store still records the turn
        log.debug("could not publish an event of job %s: %s", job_id, exc)


def decode(fields: dict[bytes, bytes]) -> dict[str, Any]:
    """An event as :func:`publish` wrote it."""
    return json.loads(fields[b"event"])
