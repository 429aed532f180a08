"""The studio scaled out, for real on loopback: 2 studio processes and 2 workers sharing PostgreSQL, Redis and
an image folder; 50 clients at once; a worker killed mid-job; PostgreSQL and Redis restarted under it.

The servers are real (the ``postgres`` and ``redis_server`` fixtures); the
studio and workers are ``python -m llmga serve|worker`` processes with test
doubles for models (a brain that echoes, a painter that takes ``DELAY`` s a step).
"""

import concurrent.futures
import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from llmga.testing.servers import LlmgaProcess

DELAY = 0.02
FACTORY = f"""
from llmga.testing.doubles import double_assistant

def make():
    return double_assistant(delay={DELAY})
"""


class Cluster:
    """Studios A and B and two workers on one store, broker and image folder."""

    def __init__(self, root: Path, store: str, broker: str) -> None:
        (root / "scale_factory.py").write_text(FACTORY)
        self.root, self.path = root, [root]
        self.common = ["--store", store, "--broker", broker, "--data-dir", root / "data", "--factory",
                       "scale_factory:make"]
        self.workers = [self.start_worker() for _ in range(2)]
        self.studios = [LlmgaProcess(["serve", "--port", "0", "--no-web", "--max-pending", "6", *self.common],
                                     path=self.path, wait=False) for _ in range(2)]
        for process in self.workers + self.studios:  # started together: they load at once
            process.wait_ready()
        self.a, self.b = (httpx.Client(base_url=s.url, timeout=60) for s in self.studios)

    def start_worker(self) -> LlmgaProcess:
        return LlmgaProcess(["worker", *self.common], path=self.path, ready="llmga worker ", wait=False)

    def close(self) -> None:
        self.a.close()
        self.b.close()
        for process in self.studios + self.workers:
            process.send()
        for process in self.studios + self.workers:
            process.stop(timeout=20)
            assert process.process.returncode != -signal.SIGKILL, process.lines[-15:]  # it stopped when told


@pytest.fixture(scope="module")
def cluster(postgres, redis_server, tmp_path_factory):
    schema = f"scale{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    store = f"{postgres.url}?options=-csearch_path%3D{schema}"
    cluster = Cluster(tmp_path_factory.mktemp("scale"), store, redis_server.url)
    yield cluster
    cluster.close()


def wait_until(predicate, timeout=30.0, every=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


def turn_of(client, turn_id):
    return client.get(f"/api/turns/{turn_id}").json()


def test_two_studios_share_sessions_images_and_jobs(cluster):
    a, b = cluster.a, cluster.b
    painted = a.post("/v1/images/generations", json={"prompt": "a red fox", "n": 2})
    assert painted.status_code == 200, painted.text
    for item in painted.json()["data"]:  # the other studio serves the image (the same folder and signature)
        other = b.get(item["url"].replace(cluster.studios[0].url, cluster.studios[1].url))
        assert other.status_code == 200 and other.headers["content-type"] == "image/png"
    session = a.post("/api/sessions").json()["id"]
    sent = a.post(f"/api/sessions/{session}/turns", json={"text": "a slow fox", "paint": {"steps": 40}}).json()
    with b.stream("GET", f"/api/jobs/{sent['job']['id']}/events") as stream:  # followed on the other studio
        kinds = [line[7:] for line in stream.iter_lines() if line.startswith("event: ")]
    assert kinds[0] == "start" and kinds.count("progress") == 40 and kinds[-1] == "end"
    assert turn_of(b, sent["turn"]["id"])["status"] == "done"
    assert b.get("/health").json()["queue"]["workers"] == 2


def test_fifty_clients_at_once_get_no_server_error(cluster):
    statuses = []

    def client(index):
        http = (cluster.a, cluster.b)[index % 2]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            answer = http.post("/v1/images/generations", json={"prompt": f"fox {index}", "llmga": {
                "paint": {"steps": 3}}})
            statuses.append(answer.status_code)
            if answer.status_code != 429:
                return answer.status_code
            time.sleep(min(float(answer.headers["Retry-After"]), 1.0) * (0.5 + index % 5 / 10))
        return "gave up"

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        finals = list(pool.map(client, range(50)))
    assert finals == [200] * 50
    assert not [s for s in statuses if s >= 500] and 429 in statuses  # the bound held, and said so


def test_a_worker_killed_mid_job_loses_nothing_done(cluster):
    from rq.job import Job

    a = cluster.a
    session = a.post("/api/sessions").json()["id"]
    done = a.post(f"/api/sessions/{session}/turns", json={"text": "kept", "wait": True}).json()["turn"]
    sent = a.post(f"/api/sessions/{session}/turns", json={"text": "slow", "paint": {"steps": 100}}).json()
    wait_until(lambda: turn_of(a, sent["turn"]["id"])["job"]["progress"]["step"] >= 3)
    redis = _redis(cluster)
    runner = Job.fetch(sent["turn"]["id"], connection=redis).worker_name
    victim = next(w for w in cluster.workers if runner and runner in "\n".join(w.lines))
    os.kill(victim.pid, signal.SIGKILL)  # the machine goes down
    victim.stop()
    cluster.workers.remove(victim)
    ended = wait_until(lambda: (turn := turn_of(a, sent["turn"]["id"]))["status"] != "pending" and turn, timeout=60)
    assert ended["status"] in ("done", "interrupted")  # retried by the other worker, or said so
    if ended["status"] == "done":
        assert len(ended["images"]) == 1
    kept = turn_of(a, done["id"])
    assert kept["status"] == "done" and [i["hash"] for i in kept["images"]] == [i["hash"] for i in done["images"]]


def test_cancelling_a_turn_in_a_worker_stops_it_and_frees_the_worker(cluster):
    a, b = cluster.a, cluster.b
    session = a.post("/api/sessions").json()["id"]
    sent = a.post(f"/api/sessions/{session}/turns", json={"text": "slow", "paint": {"steps": 150}}).json()
    wait_until(lambda: turn_of(a, sent["turn"]["id"])["job"]["progress"]["step"] >= 2)
    start = time.monotonic()
    assert b.post(f"/api/jobs/{sent['job']['id']}/cancel").status_code == 200  # from the other studio
    assert turn_of(a, sent["turn"]["id"])["status"] == "cancelled"
    again = a.post(f"/api/sessions/{session}/turns", json={"text": "next", "wait": True})
    assert again.status_code == 200 and again.json()["turn"]["status"] == "done"
    assert time.monotonic() - start < 3  # the worker dropped the cancelled turn at its next step
    assert len(turn_of(a, sent["turn"]["id"])["images"]) == 0


def test_postgresql_restarting_gives_503_then_the_studios_recover(cluster, postgres):
    a = cluster.a
    session = a.post("/api/sessions").json()["id"]
    postgres.stop()
    try:
        down = a.post("/v1/images/generations", json={"prompt": "while the database is down"})
        assert down.status_code == 503 and down.json()["error"]["code"] == "store_unavailable"
        assert int(down.headers["Retry-After"]) >= 1
    finally:
        postgres.start()
    wait_until(lambda: a.get(f"/api/sessions/{session}").status_code == 200)
    again = a.post("/v1/images/generations", json={"prompt": "after the restart"})
    assert again.status_code == 200, again.text


def test_redis_restarting_gives_503_then_the_studios_recover(cluster, redis_server):
    a, b = cluster.a, cluster.b
    redis_server.stop()
    try:
        refused = a.post("/v1/images/generations", json={"prompt": "while the broker is down"})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "broker_unavailable"
        assert int(refused.headers["Retry-After"]) >= 1
        listed = b.get("/api/sessions")
        assert listed.status_code == 200, listed.text  # what needs only the store still works
    finally:
        redis_server.start()
    painted = wait_until(lambda: (r := a.post("/v1/images/generations", json={"prompt": "after"})).status_code == 200
                         and r, timeout=60, every=0.5)
    assert painted.json()["data"][0]["url"]


def _redis(cluster):
    from llmga.serve.broker import connect

    broker = cluster.common[cluster.common.index("--broker") + 1]
    return connect(broker)
