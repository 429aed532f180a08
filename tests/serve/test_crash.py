"""Kill a real server with SIGKILL in the middle of a generation: nothing completed is lost, nothing is half-written.

The server is a subprocess (``python -m llmga serve``) on loopback with a slow
painter; after the kill a new server opens the same data folder.
"""

import hashlib
import signal
import sqlite3
import time

import httpx

from llmga.testing.servers import LlmgaProcess

FACTORY = """
from llmga.testing.doubles import double_assistant

def make():
    return double_assistant(delay=0.05)
"""


class Server(LlmgaProcess):
    """``python -m llmga serve`` on a free loopback port, with the test factory, and a client for it."""

    def __init__(self, tmp_path, data):
        (tmp_path / "crash_factory.py").write_text(FACTORY)
        super().__init__(["serve", "--factory", "crash_factory:make", "--port", "0", "--data-dir", data, "--no-web"],
                         path=[tmp_path])
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def stop(self, sig=signal.SIGTERM):
        self.client.close()
        self.tail = super().stop(sig)


def test_sigkill_mid_generation_loses_no_completed_turn(tmp_path):
    data = tmp_path / "data"
    first = Server(tmp_path, data)
    try:
        client = first.client
        session = client.post("/api/sessions", json={"title": "kept"}).json()["id"]
        done = [client.post(f"/api/sessions/{session}/turns", json={"text": text, "wait": True}).json()["turn"]
                for text in ("a fox", "a fox at night")]
        painted = client.post("/v1/images/generations", json={"prompt": "a lamp", "n": 2}).json()
        assert all(t["status"] == "done" for t in done) and len(painted["data"]) == 2
        running = client.post(f"/api/sessions/{session}/turns", json={"text": "slow", "paint": {"steps": 150}}).json()
        other = client.post("/api/sessions").json()["id"]
        queued = client.post(f"/api/sessions/{other}/turns", json={"text": "waiting"}).json()
        deadline = time.monotonic() + 20
        while client.get(f"/api/jobs/{running['job']['id']}").json()["progress"]["step"] < 3:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        first.stop(signal.SIGKILL)  # no chance to clean up
    assert first.process.returncode == -signal.SIGKILL

    second = Server(tmp_path, data)
    try:
        assert any("recovered" in line and "'interrupted': 2" in line for line in second.lines), second.lines
        client = second.client
        turns = client.get(f"/api/sessions/{session}").json()["turns"]
        assert [t["id"] for t in turns] == [done[0]["id"], done[1]["id"], running["turn"]["id"]]
        for before, after in zip(done, turns):
            assert after["status"] == "done" and after["reply"] == before["reply"]
            assert [i["hash"] for i in after["images"]] == [i["hash"] for i in before["images"]]
        assert turns[2]["status"] == "interrupted" and turns[2]["images"] == [] and turns[2]["error"]
        assert client.get(f"/api/turns/{queued['turn']['id']}").json()["status"] == "interrupted"
        for image in [i for t in turns for i in t["images"]] + painted["data"]:
            url = image["url"]
            body = client.get(url.replace(first.url, second.url)).content
            assert hashlib.sha256(body).hexdigest() in url
        # the conversation goes on from what was kept
        again = client.post(f"/api/sessions/{session}/turns", json={"text": "and in spring", "wait": True})
        assert again.json()["turn"]["status"] == "done" and again.json()["turn"]["seq"] == 4
    finally:
        second.stop()  # SIGTERM: a graceful stop (uvicorn then re-raises the signal, as is customary)
    assert second.process.returncode in (0, -signal.SIGTERM)
    assert "llmga studio: stopped" in second.tail
    check_store_is_whole(data)


def check_store_is_whole(data):
    """No half-written record: every row is complete, every file it names exists whole, no stray files."""
    db = sqlite3.connect(data / "studio.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT COUNT(*) FROM turns WHERE status = 'pending'").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM turns WHERE status = 'done' AND finished IS NULL").fetchone()[0] == 0
    for (digest,) in db.execute("SELECT hash FROM images"):
        path = data / "images" / digest[:2] / f"{digest}.png"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    linked = db.execute("SELECT COUNT(*) FROM turn_images WHERE hash NOT IN (SELECT hash FROM images)").fetchone()[0]
    assert linked == 0
    assert not list((data / "images").rglob(".tmp-*"))
    db.close()
