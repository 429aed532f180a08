"""The studio's HTTP API: OpenAI-compatible endpoints, sessions, jobs, files, auth and the queue bound.

Most tests use an assistant of known behaviour (llmga.serve.testing: a brain
that echoes the request as its prompt, a painter of flat colours); the last
ones run the real Assistant with tiny random models.
"""

import base64
import hashlib
import io
import json
import time

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from llmga.assistant import Assistant
from llmga.errors import InvalidInputError
from llmga.images import read_metadata
from llmga.serve.app import create_app
from llmga.serve.store import open_store
from llmga.serve.studio import Studio
from llmga.settings import PaintSettings, ServeConfig, is_loopback
from llmga.testing.doubles import EchoBrain, SlowPainter, live_server


def data_url(image, fmt="PNG"):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()


def client_of(app):
    """A test client that reaches the app by a loopback name, as a browser on this machine would."""
    return TestClient(app, raise_server_exceptions=False, base_url="http://localhost")


def make_studio(path, delay=0.0, max_pending=4, brain=None, painter=None, **kw):
    assistant = Assistant(brain or EchoBrain(), painter or SlowPainter(delay), paint=PaintSettings(steps=2))
    studio = Studio.start(open_store(path), lambda: assistant, max_pending=max_pending, **kw)
    return studio, assistant


@pytest.fixture
def served(tmp_path):
    studio, assistant = make_studio(tmp_path / "data")
    client = client_of(create_app(studio))
    yield client, studio, assistant.brain
    studio.close()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_models_and_the_openapi_document(served):
    client, _, _ = served
    assert client.get("/v1/models").json()["data"][0]["id"] == "llmga"
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/chat/completions", "/v1/images/generations", "/v1/images/edits", "/api/sessions",
                 "/api/sessions/{session_id}/turns", "/api/sessions/{session_id}/undo",
                 "/api/sessions/{session_id}/branch", "/files/{session_id}/{name}"):
        assert path in paths


def test_chat_completion_gives_reply_prompt_and_stored_image(served):
    client, studio, _ = served
    answer = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": [
        {"role": "system", "content": "be nice"}, {"role": "user", "content": "a red fox in the snow"}]})
    assert answer.status_code == 200
    body = answer.json()
    content = body["choices"][0]["message"]["content"]
    assert content.startswith("Here is your picture.") and "<gen_img>a red fox in the snow</gen_img>" in content
    turn = body["llmga"]["turn"]
    assert answer.headers["X-LLMGA-Session"] == body["llmga"]["session_id"] == turn["session_id"]
    [image] = turn["images"]
    assert f"]({image['url']})" in content and image["prompt"] == "a red fox in the snow"
    png = client.get(image["url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert hashlib.sha256(png.content).hexdigest() == image["hash"]
    assert read_metadata(io.BytesIO(png.content))["prompt"] == "a red fox in the snow"
    assert studio.session(turn["session_id"])[1][0].status == "done"


def test_an_image_part_reaches_the_brain_and_the_store(served):
    client, _, brain = served
    photo = Image.new("RGB", (40, 24), "blue")
    answer = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is in this photo?"},
        {"type": "image_url", "image_url": {"url": data_url(photo)}}]}]}).json()
    turn = answer["llmga"]["turn"]
    assert turn["task"] == "answer" and [i["role"] for i in turn["images"]] == ["input", "output"]
    images = list(brain.requests[-1].images)
    assert len(images) == 1 and images[0].size == (40, 24)


def test_history_sent_back_by_a_client_brings_its_images_along(served):
    client, _, brain = served
    first = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "a red fox"}]}).json()
    content = first["choices"][0]["message"]["content"]
    client.post("/v1/chat/completions", json={"messages": [
        {"role": "user", "content": "a red fox"}, {"role": "assistant", "content": content},
        {"role": "user", "content": "draw one more"}]})
    messages, images = brain.requests[-1].messages, list(brain.requests[-1].images)
    assert len(images) == 1 and images[0].tobytes() == brain_image(client, first).tobytes()
    assert "<gen_img>a red fox</gen_img>" in messages[-2]["content"][-1]["text"]


def brain_image(client, answer):
    url = answer["llmga"]["turn"]["images"][-1]["url"]
    return Image.open(io.BytesIO(client.get(url).content)).convert("RGB")


def test_streaming_sends_the_reply_as_it_is_written(served):
    client, _, _ = served
    with client.stream("POST", "/v1/chat/completions",
                       json={"stream": True, "messages": [{"role": "user", "content": "a quiet lake"}]}) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
        lines = [line[6:] for line in answer.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.startswith("Here is your picture.") and "<gen_img>a quiet lake</gen_img>" in text and "/files/" in text
    assert len(chunks) > 3 and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["llmga"]["turn"]["status"] == "done"


def test_images_generations_urls_and_base64(served):
    client, _, brain = served
    answer = client.post("/v1/images/generations", json={"prompt": "a cat", "n": 2, "size": "32x48"}).json()
    assert [d["revised_prompt"] for d in answer["data"]] == ["a cat", "a cat"]
    assert Image.open(io.BytesIO(client.get(answer["data"][0]["url"]).content)).size == (32, 48)
    assert brain.requests == []  # painted as it is
    b64 = client.post("/v1/images/generations", json={"prompt": "a cat", "response_format": "b64_json"}).json()
    assert Image.open(io.BytesIO(base64.b64decode(b64["data"][0]["b64_json"]))).size == (64, 64)
    refined = client.post("/v1/images/generations", json={"prompt": "a dog", "llmga": {"refine": True}}).json()
    assert refined["data"][0]["revised_prompt"] == "a dog" and len(brain.requests) == 1


def test_the_openai_python_client_works_unchanged(tmp_path):
    from openai import OpenAI

    studio, _ = make_studio(tmp_path / "data")
    try:
        with live_server(create_app(studio)) as url:
            client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
            assert [m.id for m in client.models.list().data] == ["llmga"]
            reply = client.chat.completions.create(model="llmga", messages=[{"role": "user", "content": "a boat"}])
            assert "<gen_img>a boat</gen_img>" in reply.choices[0].message.content
            pieces = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
                model="llmga", messages=[{"role": "user", "content": "a tree"}], stream=True) if c.choices]
            assert "<gen_img>a tree</gen_img>" in "".join(pieces)
            picture = client.images.generate(prompt="a lamp", size="256x256", model="llmga")
            assert picture.data[0].url.startswith(url) and picture.data[0].revised_prompt == "a lamp"
    finally:
        studio.close()


def test_session_turns_undo_and_branch(served):
    client, _, brain = served
    session = client.post("/api/sessions", json={"title": "foxes"}).json()
    turns_url = f"/api/sessions/{session['id']}/turns"
    first = client.post(turns_url, json={"text": "a fox", "wait": True,
                                         "paint": {"seed": 5, "num_images": 2, "restore": False}})
    assert first.status_code == 200 and first.json()["turn"]["request"]["paint"]["seed"] == 5
    assert first.json()["turn"]["request"]["paint"]["restore"] is False  # seams left unrepaired, this turn only
    first = first.json()["turn"]
    second = client.post(turns_url, json={"text": "a fox at night", "wait": True}).json()["turn"]
    assert len(brain.requests[-1].images) == 1  # the follow-up saw the last image
    opened = client.get(f"/api/sessions/{session['id']}").json()
    assert [t["id"] for t in opened["turns"]] == [first["id"], second["id"]] and opened["session"]["title"] == "foxes"
    assert client.post(f"/api/sessions/{session['id']}/undo").json()["undone"]["id"] == second["id"]
    assert [t["id"] for t in client.get(f"/api/sessions/{session['id']}").json()["turns"]] == [first["id"]]
    picked = first["images"][0]
    branch = client.post(f"/api/sessions/{session['id']}/branch", json={"image": picked["url"]})
    assert branch.status_code == 201 and branch.json()["parent_session"] == session["id"]
    branch_id = branch.json()["id"]
    client.post(f"/api/sessions/{branch_id}/turns", json={"text": "now in autumn", "wait": True})
    assert brain.requests[-1].images[0].tobytes() == Image.open(io.BytesIO(client.get(picked["url"]).content)).tobytes()
    listed = [s["id"] for s in client.get("/api/sessions").json()["sessions"]]
    assert listed[:2] == [branch_id, session["id"]]
    assert client.patch(f"/api/sessions/{branch_id}", json={"title": "autumn"}).json()["title"] == "autumn"


def test_a_turn_by_reference_to_a_stored_image_and_a_mask(served):
    client, _, _ = served
    made = client.post("/v1/images/generations", json={"prompt": "a red square", "size": "64x64"}).json()
    session = client.post("/api/sessions").json()["id"]
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 32))
    answer = client.post(f"/api/sessions/{session}/turns", json={
        "text": "what is this?", "image": made["data"][0]["url"], "mask": data_url(mask), "task": "answer",
        "wait": True})
    turn = answer.json()["turn"]
    assert answer.status_code == 200 and [i["role"] for i in turn["images"]][:2] == ["input", "mask"]
    assert turn["images"][0]["hash"] in made["data"][0]["url"]


def test_turns_run_as_jobs_with_progress_events(tmp_path):
    studio, _ = make_studio(tmp_path / "data", delay=0.02)
    client = client_of(create_app(studio))
    try:
        session = client.post("/api/sessions").json()["id"]
        answer = client.post(f"/api/sessions/{session}/turns", json={"text": "a fox", "paint": {"steps": 5}})
        assert answer.status_code == 202 and answer.json()["turn"]["status"] == "pending"
        job = answer.json()["job"]["id"]
        with client.stream("GET", f"/api/jobs/{job}/events") as stream:
            kinds = [line[7:] for line in stream.iter_lines() if line.startswith("event: ")]
        assert kinds[0] == "start" and kinds.count("progress") == 5 and kinds[-1] == "end"
        assert {"route", "text", "prompt"} <= set(kinds)
        assert client.get(f"/api/jobs/{job}").json()["progress"] == {"step": 5, "total": 5}
        assert client.get(f"/api/turns/{answer.json()['turn']['id']}").json()["status"] == "done"
    finally:
        studio.close()


def test_cancel_a_running_turn_and_one_turn_at_a_time_per_session(tmp_path):
    studio, _ = make_studio(tmp_path / "data", delay=0.05)
    client = client_of(create_app(studio))
    try:
        session = client.post("/api/sessions").json()["id"]
        answer = client.post(f"/api/sessions/{session}/turns", json={"text": "a fox", "paint": {"steps": 100}}).json()
        job = answer["job"]["id"]
        wait_for(lambda: client.get(f"/api/jobs/{job}").json()["progress"]["step"] > 0)
        busy = client.post(f"/api/sessions/{session}/turns", json={"text": "another"})
        assert busy.status_code == 409 and "still running" in busy.json()["error"]["message"]
        assert client.post(f"/api/sessions/{session}/undo").status_code == 409
        client.post(f"/api/jobs/{job}/cancel")
        assert client.get(f"/api/turns/{answer['turn']['id']}").json()["status"] == "cancelled"  # at once
        wait_for(lambda: client.get(f"/api/jobs/{job}").json()["status"] == "cancelled")
        later = client.post(f"/api/sessions/{session}/turns", json={"text": "again", "wait": True})
        assert later.status_code == 200 and later.json()["turn"]["status"] == "done"
    finally:
        studio.close()


def test_a_full_queue_answers_429_with_retry_after_at_once(tmp_path):
    studio, _ = make_studio(tmp_path / "data", delay=0.05, max_pending=1)
    try:
        with live_server(create_app(studio)) as url:
            import httpx

            session = httpx.post(f"{url}/api/sessions").json()["id"]
            running = httpx.post(f"{url}/api/sessions/{session}/turns", json={"text": "a", "paint": {"steps": 40}})
            assert running.status_code == 202
            start = time.monotonic()
            refused = httpx.post(f"{url}/v1/images/generations", json={"prompt": "b"}, timeout=5)
            assert time.monotonic() - start < 2
            assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
            assert refused.json()["error"]["code"] == "queue_full"
            assert httpx.get(f"{url}/health").json()["queue"]["running"] == 1
            httpx.post(f"{url}/api/jobs/{running.json()['job']['id']}/cancel")
            assert len(studio.sessions()) == 1  # the refused request left no session behind
    finally:
        studio.close()


def test_sessions_and_conversations_survive_a_restart(tmp_path):
    studio, _ = make_studio(tmp_path / "data")
    client = client_of(create_app(studio))
    session = client.post("/api/sessions").json()["id"]
    client.post(f"/api/sessions/{session}/turns", json={"text": "a fox", "wait": True})
    studio.close()
    again, assistant = make_studio(tmp_path / "data")
    client = client_of(create_app(again))
    try:
        assert len(client.get(f"/api/sessions/{session}").json()["turns"]) == 1
        client.post(f"/api/sessions/{session}/turns", json={"text": "one more", "wait": True})
        messages, images = assistant.brain.requests[-1].messages, list(assistant.brain.requests[-1].images)
        assert len(images) == 1 and len(messages) == 4  # system, the first exchange, the new message
    finally:
        again.close()


def test_a_token_guards_everything_but_health(tmp_path):
    studio, _ = make_studio(tmp_path / "data")
    client = client_of(create_app(studio, ServeConfig(token="s3cret")))
    try:
        assert client.get("/health").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            refused = client.get("/v1/models", headers=headers)
            assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
        assert client.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        client.cookies.set("llmga_token", "s3cret")
        assert client.get("/api/sessions").status_code == 200
    finally:
        studio.close()


def test_with_a_token_images_go_by_capability_urls_bound_to_their_session(tmp_path):
    studio, _ = make_studio(tmp_path / "data")
    client = client_of(create_app(studio, ServeConfig(token="s3cret")))
    auth = {"Authorization": "Bearer s3cret"}
    try:
        fox = client.post("/v1/images/generations", json={"prompt": "a red fox"}, headers=auth).json()
        boat = client.post("/v1/images/generations", json={"prompt": "a blue boat"}, headers=auth).json()
        url = fox["data"][0]["url"]
        fox_session, boat_session = fox["llmga"]["session_id"], boat["llmga"]["session_id"]
        fox_hash, boat_hash = fox["llmga"]["turn"]["images"][0]["hash"], boat["llmga"]["turn"]["images"][0]["hash"]
        assert client.get(url).status_code == 200  # no token: the URL is the capability (a chat client shows it)
        for bent in (url.replace(fox_hash, boat_hash), url.replace(fox_session, boat_session), url.split("?")[0],
                     url.replace("sig=", "sig=0")):
            assert client.get(bent).status_code == 404
        turns = f"/api/sessions/{boat_session}/turns"
        by_hash = client.post(turns, json={"text": "what is it?", "image": fox_hash, "wait": True}, headers=auth)
        assert by_hash.status_code == 404  # another session's image, even with the token
        own = client.post(turns, json={"text": "what is it?", "image": boat_hash, "wait": True}, headers=auth)
        assert own.status_code == 200
        by_url = client.post(turns, json={"text": "and this?", "image": url, "wait": True}, headers=auth)
        assert by_url.status_code == 200  # whoever holds the URL may use the image
        assert client.delete(f"/api/sessions/{fox_session}", headers=auth).json()["deleted"] == fox_session
        assert client.get(url).status_code == 404  # its URLs end with the session
        assert client.get(f"/api/sessions/{fox_session}", headers=auth).status_code == 404
    finally:
        studio.close()


def test_image_urls_can_expire(tmp_path, monkeypatch):
    studio, _ = make_studio(tmp_path / "data", image_url_seconds=120)
    client = client_of(create_app(studio))
    try:
        url = client.post("/v1/images/generations", json={"prompt": "a fox"}).json()["data"][0]["url"]
        assert "&exp=" in url and client.get(url).status_code == 200
        later = time.time() + 600
        monkeypatch.setattr("llmga.serve.image_urls.time.time", lambda: later)
        assert client.get(url).status_code == 404
    finally:
        studio.close()


def test_sessions_idle_past_the_retention_are_deleted_before_the_first_request(tmp_path, monkeypatch):
    studio, _ = make_studio(tmp_path / "data")
    old = studio.create_session("old").id
    tidy = studio.tidy
    monkeypatch.setattr(studio, "tidy", lambda days: time.sleep(0.5) or tidy(days))  # a slow store
    try:
        with client_of(create_app(studio, ServeConfig(retention_days=1e-9))) as client:  # its start runs the sweep
            assert client.get(f"/api/sessions/{old}").status_code == 404
            assert client.post("/api/sessions").status_code == 201  # new ones are kept until they idle
    finally:
        studio.close()


def test_only_loopback_is_served_without_a_token():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    ServeConfig(host="127.0.0.1").check()
    ServeConfig(host="0.0.0.0", token="t").check()
    with pytest.raises(InvalidInputError, match="token"):
        ServeConfig(host="0.0.0.0").check()


# -- the real Assistant with tiny random models -------------------------------


@pytest.fixture(scope="module")
def tiny_studio(tiny, tmp_path_factory):
    from llmga.brain import load_brain
    from llmga.painter.text_to_image import TextToImagePainter

    root = tmp_path_factory.mktemp("studio")
    painter = TextToImagePainter.load(tiny.sd(), device="cpu", max_prompt_tokens=150)
    brain = load_brain(str(tiny.llava()))
    assistant = Assistant(brain, painter, paint=PaintSettings(steps=2, width=64, height=64))
    studio = Studio.start(open_store(root / "data"), lambda: assistant)
    yield client_of(create_app(studio))
    studio.close()


def test_tiny_models_chat_with_an_image(tiny_studio):
    answer = tiny_studio.post("/v1/chat/completions", json={"max_tokens": 12, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "describe this"},
        {"type": "image_url", "image_url": {"url": data_url(Image.new("RGB", (30, 30), "red"), "JPEG")}}]}]})
    assert answer.status_code == 200 and answer.json()["llmga"]["turn"]["status"] == "done"


def test_tiny_models_paint_generations_and_inpainting_edits(tiny_studio):
    made = tiny_studio.post("/v1/images/generations", json={"prompt": "a red fox", "size": "64x64"}).json()
    picture = tiny_studio.get(made["data"][0]["url"]).content
    assert Image.open(io.BytesIO(picture)).size == (64, 64)
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (16, 16, 48, 48))  # transparent = repaint, as OpenAI's edits take it
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    edited = tiny_studio.post("/v1/images/edits", data={"prompt": "a fountain", "steps": "2"}, files={
        "image": ("photo.png", picture, "image/png"), "mask": ("mask.png", buffer.getvalue(), "image/png")})
    assert edited.status_code == 200, edited.text
    turn = edited.json()["llmga"]["turn"]
    assert turn["task"] == "inpaint" and [i["role"] for i in turn["images"]] == ["input", "mask", "output"]
    out = Image.open(io.BytesIO(tiny_studio.get(edited.json()["data"][0]["url"]).content))
    before = Image.open(io.BytesIO(picture)).convert("RGB")
    assert out.size == (64, 64) and out.getpixel((1, 1)) == before.getpixel((1, 1))  # outside the mask: kept


def test_tiny_models_refuse_a_prompt_over_the_painter_limit(tiny_studio):
    answer = tiny_studio.post("/v1/images/generations", json={"prompt": "a red fox, " * 120})
    assert answer.status_code == 400 and "limit is 150" in answer.json()["error"]["message"]


def test_stopping_the_server_marks_unfinished_turns_interrupted(tmp_path):
    studio, _ = make_studio(tmp_path / "data", delay=0.05)
    client = client_of(create_app(studio))
    session = client.post("/api/sessions").json()["id"]
    running = client.post(f"/api/sessions/{session}/turns", json={"text": "slow", "paint": {"steps": 100}}).json()
    wait_for(lambda: client.get(f"/api/jobs/{running['job']['id']}").json()["status"] == "running")
    studio.close()
    store = open_store(tmp_path / "data")
    try:
        turn = store.get_turn(running["turn"]["id"])
        assert turn.status == "interrupted" and "send it again" in turn.error
    finally:
        store.close()


def test_any_text_is_kept_exactly(served):
    client, _, _ = served
    text = "a fox 🦊 in \u202eRTL\u202c, with a NUL \x00 and quotes ' \" ; $(rm -rf ~)"
    answer = client.post("/v1/images/generations", json={"prompt": text})
    assert answer.status_code == 200 and answer.json()["data"][0]["revised_prompt"] == " ".join(text.split())
    turn = client.get(f"/api/turns/{answer.headers['X-LLMGA-Turn']}").json()
    assert turn["user_text"] == text
