"""A corpus of bad requests: each gets a clear 4xx JSON error, and the server keeps serving.

Runs against a live uvicorn server on loopback, with small limits so that
"too large" is cheap to send.
"""

import base64
import io
import os
import struct
import zlib

import httpx
import pytest
from PIL import Image

from llmga.assistant import Assistant
from llmga.serve.app import create_app
from llmga.serve.store import open_store
from llmga.serve.studio import Studio
from llmga.settings import Limits, PaintSettings
from llmga.testing.doubles import EchoBrain, SlowPainter, live_server

LIMITS = Limits(max_body_bytes=2 * 2**20, max_image_bytes=300_000, max_image_pixels=1024 * 1024, max_text_chars=8000)


def png(size=(64, 64), colour="red", mode="RGB"):
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def png_claiming(width, height):
    """A small PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape)."""
    data = bytearray(png((8, 8)))
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def url(data, kind="image/png"):
    return f"data:{kind};base64," + base64.b64encode(data).decode()


def chat(text="hi", image=None, **extra):
    content = text if image is None else [{"type": "text", "text": text},
                                          {"type": "image_url", "image_url": {"url": image}}]
    return {"json": {"messages": [{"role": "user", "content": content}], **extra}}


def edit(image=png(), mask=None, image_type="image/png", prompt="a fountain", **fields):
    files = {"image": ("../../etc/passwd; rm -rf ~", image, image_type)}
    if mask is not None:
        files["mask"] = ("mask.png", mask, "image/png")
    return {"data": {"prompt": prompt, **fields}, "files": files}


BLACK_MASK = png((64, 64), 0, "L")
HEX = "a" * 64
CHAT, GEN, EDIT = "/v1/chat/completions", "/v1/images/generations", "/v1/images/edits"
JSON = {"Content-Type": "application/json"}

CORPUS = [
    # malformed bodies
    ("malformed JSON", "POST", CHAT, {"content": b'{"messages": [', "headers": JSON}, 400),
    ("JSON that is not an object", "POST", CHAT, {"content": b"[1, 2]", "headers": JSON}, 422),
    ("binary garbage as JSON", "POST", CHAT, {"content": os.urandom(300), "headers": JSON}, 400),
    ("deeply nested JSON", "POST", CHAT, {"content": b"[" * 100_000 + b"]" * 100_000, "headers": JSON}, 400),
    ("no messages", "POST", CHAT, {"json": {"model": "x"}}, 422),
    ("empty messages", "POST", CHAT, {"json": {"messages": []}}, 422),
    ("unknown role", "POST", CHAT, {"json": {"messages": [{"role": "wizard", "content": "hi"}]}}, 422),
    ("last message not the user's", "POST", CHAT,
     {"json": {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}}, 400),
    ("empty message", "POST", CHAT, chat("   "), 400),
    ("n > 1", "POST", CHAT, chat(n=3), 400),
    ("temperature out of range", "POST", CHAT, chat(temperature=-1), 422),
    ("unknown llmga option", "POST", CHAT, chat(llmga={"colour": "red"}), 422),
    ("unknown task", "POST", CHAT, chat(llmga={"task": "dance"}), 400),
    # images in chat
    ("remote image URL (never fetched)", "POST", CHAT, chat(image="http://169.254.169.254/latest/meta-data"), 400),
    ("file path as image", "POST", CHAT, chat(image="/etc/passwd"), 400),
    ("data URL without base64", "POST", CHAT, chat(image="data:image/png,abc"), 400),
    ("broken base64", "POST", CHAT, chat(image="data:image/png;base64,@@@not base64@@@"), 400),
    ("data URL of text", "POST", CHAT, chat(image=url(b"hello", "text/plain")), 415),
    ("not an image", "POST", CHAT, chat(image=url(b"GIF89a but not really")), 400),
    ("truncated PNG", "POST", CHAT, chat(image=url(png((64, 64))[:60])), 400),
    ("empty image", "POST", CHAT, chat(image=url(b"")), 400),
    ("image over the pixel limit", "POST", CHAT, chat(image=url(png_claiming(20000, 20000))), 413),
    ("decompression bomb", "POST", CHAT, chat(image=url(png_claiming(100000, 100000))), 413),
    ("image over the byte limit", "POST", CHAT, chat(image=url(os.urandom(400_000))), 413),
    ("two images in one message", "POST", CHAT, {"json": {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url(png())}},
        {"type": "image_url", "image_url": {"url": url(png())}}]}]}}, 400),
    ("unknown stored image", "POST", CHAT, chat(image=f"/files/{HEX}.png"), 404),
    # sizes and prompts
    ("10,000-token message", "POST", CHAT, chat("fox " * 10_000), 413),
    ("10,000-token image prompt", "POST", GEN, {"json": {"prompt": "fox " * 10_000}}, 413),
    ("huge negative prompt", "POST", GEN, {"json": {"prompt": "a", "llmga": {"paint": {"negative_prompt": "x" * 9000}}}}, 413),
    ("body over the limit", "POST", GEN, {"json": {"prompt": "x" * (3 * 2**20)}}, 413),
    ("size not WxH", "POST", GEN, {"json": {"prompt": "a", "size": "large"}}, 400),
    ("size over the limit", "POST", GEN, {"json": {"prompt": "a", "size": "99999x99999"}}, 400),
    ("size not a multiple of 8", "POST", GEN, {"json": {"prompt": "a", "size": "13x13"}}, 400),
    ("n = 0", "POST", GEN, {"json": {"prompt": "a", "n": 0}}, 422),
    ("n over the limit", "POST", GEN, {"json": {"prompt": "a", "n": 50}}, 400),
    ("steps over the limit", "POST", GEN, {"json": {"prompt": "a", "llmga": {"paint": {"steps": 100000}}}}, 400),
    ("prompt of the wrong type", "POST", GEN, {"json": {"prompt": {"$gt": ""}}}, 422),
    ("unknown response format", "POST", GEN, {"json": {"prompt": "a", "response_format": "gif"}}, 422),
    # multipart edits
    ("edit without an image", "POST", EDIT, {"data": {"prompt": "a"}, "files": {"mask": ("m.png", png(), "image/png")}}, 422),
    ("edit as JSON", "POST", EDIT, {"json": {"prompt": "a", "image": url(png())}}, 422),
    ("edit with a text file", "POST", EDIT, edit(image=b"just text", image_type="text/plain"), 415),
    ("edit with a broken image", "POST", EDIT, edit(image=b"\x89PNG\r\n\x1a\n" + os.urandom(100)), 400),
    ("edit with a huge image", "POST", EDIT, edit(image=png_claiming(5000, 5000)), 413),
    ("mask of the wrong size", "POST", EDIT, edit(mask=png((32, 32))), 400),
    ("empty mask", "POST", EDIT, edit(mask=BLACK_MASK), 400),
    ("broken mask", "POST", EDIT, edit(mask=b"not a mask"), 400),
    ("broken multipart", "POST", EDIT, {"content": b"--xyz\r\nbroken", "headers": {
        "Content-Type": "multipart/form-data; boundary=xyz"}}, 422),
    # sessions, jobs, files
    ("unknown session", "GET", "/api/sessions/nope", {}, 404),
    ("turn to an unknown session", "POST", "/api/sessions/nope/turns", {"json": {"text": "a"}}, 404),
    ("undo on an unknown session", "POST", "/api/sessions/nope/undo", {}, 404),
    ("unknown job", "GET", "/api/jobs/nope", {}, 404),
    ("cancel an unknown job", "POST", "/api/jobs/nope/cancel", {}, 404),
    ("unknown turn", "GET", "/api/turns/nope", {}, 404),
    ("bad paging", "GET", "/api/sessions?limit=-5", {}, 422),
    ("path traversal", "GET", "/files/..%2Fstudio.db", {}, 404),
    ("path traversal, encoded dots", "GET", "/files/%2e%2e", {}, 404),
    ("traversal inside a name", "GET", "/files/..%2f..%2fetc%2fpasswd.png", {}, 404),
    ("database by name", "GET", "/files/studio.db", {}, 404),
    ("hash without .png", "GET", f"/files/{HEX}", {}, 404),
    ("unknown hash", "GET", f"/files/{HEX}.png", {}, 404),
    ("uppercase hash", "GET", f"/files/{HEX.upper()}.png", {}, 404),
    ("unknown route", "GET", "/v2/everything", {}, 404),
    ("wrong method", "GET", CHAT, {}, 405),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("bad") / "data"
    assistant = Assistant(EchoBrain(multimodal=False), SlowPainter(), paint=PaintSettings(steps=2))
    studio = Studio.start(open_store(data), lambda: assistant, limits=LIMITS)
    with live_server(create_app(studio)) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client, data
    studio.close()


@pytest.mark.parametrize("name, method, path, kwargs, status", CORPUS, ids=[c[0] for c in CORPUS])
def test_bad_request_gets_a_clear_4xx(server, name, method, path, kwargs, status):
    client, _ = server
    answer = client.request(method, path, **kwargs)
    assert answer.status_code == status, answer.text[:300]
    error = answer.json()["error"]
    assert error["message"] and error["type"] and len(error["message"]) < 2000


def test_the_server_still_serves_after_the_corpus(server):
    client, data = server
    answer = client.post(CHAT, json={"messages": [{"role": "user", "content": "a fox after all that"}]})
    assert answer.status_code == 200 and answer.json()["llmga"]["turn"]["status"] == "done"
    assert client.get("/health").json()["queue"]["running"] == 0
    written = {p.relative_to(data).parts[0] for p in data.rglob("*")}
    assert written <= {"studio.db", "studio.db-wal", "studio.db-shm", "studio.lock", "images"}  # nothing a client named
    sessions = client.get("/api/sessions").json()["sessions"]
    assert len(sessions) <= 3  # refused requests leave no sessions behind
    turns = [t for s in sessions for t in client.get(f"/api/sessions/{s['id']}").json()["turns"]]
    assert all(t["status"] in ("done", "failed") for t in turns)


def test_a_crash_inside_a_turn_is_a_500_that_names_no_internals(server):
    client, _ = server  # the test painter cannot inpaint: an AttributeError deep inside the turn
    failed = client.post(EDIT, **edit(mask=png((64, 64), 255, "L")))
    assert failed.status_code == 500 and failed.json()["error"]["type"] == "server_error"
    assert "Traceback" not in failed.text and "SlowPainter" not in failed.text
    turn = client.get(f"/api/turns/{failed.headers['X-LLMGA-Turn']}").json()
    assert turn["status"] == "failed" and "internal error" in turn["error"]
    assert client.post(GEN, json={"prompt": "still here"}).status_code == 200
