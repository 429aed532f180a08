"""The web app: its actions over the studio (no browser), and the Gradio app mounted at /ui, driven by gradio_client."""

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from llmga.assistant import Assistant
from llmga.errors import LLMGAError
from llmga.serve.app import create_app
from llmga.serve.store import open_store
from llmga.serve.studio import Studio
from llmga.serve.web import StudioWeb, editor_uploads, paint_settings, task_extras
from llmga.settings import PaintSettings, ServeConfig
from llmga.testing.doubles import EchoBrain, SlowPainter, live_server

gr = pytest.importorskip("gradio")


@pytest.fixture(autouse=True)
def pillow_guard(monkeypatch):
    """mount_web sets Pillow's process-wide pixel guard: put it back after each test."""
    monkeypatch.setattr("PIL.Image.MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


@pytest.fixture
def web(tmp_path):
    assistant = Assistant(EchoBrain(), SlowPainter(0.01), paint=PaintSettings(steps=2))
    studio = Studio.start(open_store(tmp_path / "data"), lambda: assistant)
    yield StudioWeb(studio)
    studio.close()


def last(generator):
    *_, final = generator
    return final


def test_the_advanced_panel_maps_to_paint_settings():
    assert paint_settings(None, None, None, "default", "default", "") == {}
    assert paint_settings(7, 20.0, 5.5, "512", "384", "blurry") == {
        "seed": 7, "steps": 20, "guidance": 5.5, "width": 512, "height": 384, "negative_prompt": "blurry"}
    assert paint_settings(None, None, None, "default", "default", "", False) == {"restore": False}  # seams left


def test_strokes_on_the_editor_become_the_mask(web):
    background = Image.new("RGB", (64, 48), "blue")
    layer = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (10, 10, 20, 20))
    image, mask = editor_uploads({"background": background, "layers": [layer], "composite": None}, web.studio)
    assert image.image.size == (64, 48) and mask.image.mode == "L"
    assert np.asarray(mask.image).sum() == 255 * 100 and mask.image.getpixel((15, 15)) == 255
    image, mask = editor_uploads({"background": np.asarray(background), "layers": [], "composite": None}, web.studio)
    assert image.image.size == (64, 48) and mask is None
    assert editor_uploads(None, web.studio) == (None, None)
    with pytest.raises(LLMGAError, match="limit"):
        editor_uploads({"background": Image.new("RGB", (5000, 5000)), "layers": []}, web.studio)


def test_send_streams_progress_then_shows_reply_prompt_and_image(web):
    updates = list(web.send(None, "a red fox", None, "auto", {"steps": 60}))
    session, (chat, gallery, prompt, status, hashes) = updates[-1]
    assert len(updates) >= 2 and any("step" in u[1][3] for u in updates[:-1])
    assert chat[0] == {"role": "user", "content": "a red fox"}
    assert "> **prompt:** a red fox" in chat[1]["content"]
    assert f"/files/{session}/{hashes[0]}.png?sig=" in chat[1]["content"]
    assert prompt == "a red fox" and status.startswith("done") and gallery[0][1] == "turn 1: a red fox"
    assert web.session_choices()[0][1] == session


def test_repaint_undo_branch_and_cancel(web):
    session, _ = last(web.send(None, "a red fox", None, "auto", {}))
    _, (chat, *_) = last(web.send(session, "a red fox, watercolour", None, "auto", {"seed": 3}, refine=False))
    assert len(chat) == 4 and "Here is your picture" not in chat[3]["content"]  # painted as it is
    chat, *_ = web.undo(session)
    assert len(chat) == 2
    first_image = web.view(session)[4][0]
    branch = web.branch(session, first_image)
    assert branch != session and len(web.view(branch)[0]) == 2
    running = web.send(session, "slow", None, "auto", {"steps": 150})
    next(running)
    assert web.cancel(session) == "cancelling…"
    assert "cancelled" in last(running)[1][3]
    assert web.cancel(session) == "nothing is running"


def test_errors_show_in_the_status_line(web):
    _, (_, _, _, status, _) = last(web.send(None, "a fox", None, "auto", {"steps": 10_000}))
    assert status.startswith("⚠") and "steps" in status


def test_the_mounted_app_works_through_gradio_client(tmp_path):
    from gradio_client import Client, handle_file

    from llmga.serve.web import mount_web

    assistant = Assistant(EchoBrain(), SlowPainter(), paint=PaintSettings(steps=2))
    studio = Studio.start(open_store(tmp_path / "data"), lambda: assistant)
    app = create_app(studio)
    mount_web(app, studio)
    picture, stroke = tmp_path / "photo.png", tmp_path / "stroke.png"
    Image.new("RGB", (32, 32), "green").save(picture)
    layer = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (0, 0, 8, 8))
    layer.save(stroke)
    try:
        with live_server(app) as url:
            client = Client(f"{url}/ui/", verbose=False)
            editor = {"background": handle_file(str(picture)), "layers": [handle_file(str(stroke))], "composite": None}
            _, _, gallery, prompt, status = client.predict(
                "what is this?", editor, "answer", None, None, None, "default", "default", "", True, "", "", None, False, "",
                api_name="/send")
            assert status.startswith("done") and prompt == "what is this?" and len(gallery) == 1
            [session] = studio.sessions()
            roles = [r.role for r in studio.session(session.id)[1][0].images]
            assert roles == ["input", "mask", "output"]
    finally:
        studio.close()


def test_the_web_app_behind_a_token(tmp_path):
    from llmga.serve.web import mount_web

    assistant = Assistant(EchoBrain(), SlowPainter())
    studio = Studio.start(open_store(tmp_path / "data"), lambda: assistant)
    app = create_app(studio, ServeConfig(token="s3cret"))
    mount_web(app, studio)
    app.state.web = True
    client = TestClient(app, raise_server_exceptions=False, follow_redirects=False, base_url="http://localhost")
    try:
        assert client.get("/ui/").status_code == 401
        assert client.get("/login?token=wrong").status_code == 401
        login = client.get("/login?token=s3cret")
        assert login.status_code == 303 and login.headers["location"] == "/ui/"
        assert "httponly" in login.headers["set-cookie"].lower()
        assert client.get("/ui/").status_code == 200  # the cookie now opens it
        assert client.get("/").headers["location"] == "/ui/"
    finally:
        studio.close()


def test_the_advanced_panel_carries_every_task_input(web):
    assert task_extras("", "", None, False, "", web.studio) == {}
    extras = task_extras("0 32 16 0", "2048x512", Image.new("RGB", (64, 64)), True, " a cat on a sofa ", web.studio)
    assert extras["outpaint"] == {"right": 32, "top": 16, "direction": "both"}
    assert extras["expand_to"] == (2048, 512) and extras["control_from_photo"] is True
    assert extras["control"].image.size == (64, 64) and extras["source_prompt"] == "a cat on a sofa"
    assert task_extras("16:9", "", None, False, "", web.studio)["outpaint"]["aspect"] == "16:9"
    with pytest.raises(LLMGAError, match="LEFT RIGHT TOP BOTTOM"):
        task_extras("1 2", "", None, False, "", web.studio)
    with pytest.raises(LLMGAError, match="WIDTHxHEIGHT"):
        task_extras("", "wide", None, False, "", web.studio)


def test_task_inputs_reach_the_stored_turn(web):
    extras = task_extras("", "", None, False, "a cat on a sofa", web.studio)
    session, _ = last(web.send(None, "a red fox", None, "auto", {}, extras=extras))
    _, turns = web.studio.session(session)
    assert turns[-1].request["source_prompt"] == "a cat on a sofa"


def test_a_selected_image_goes_into_the_editor_for_masking(web):
    session, _ = last(web.send(None, "a red fox", None, "auto", {}))
    [image] = web.view(session)[4]
    value = web.editor_value(image)
    assert value["background"].endswith(f"{image}.png") and value["layers"] == []
    assert web.editor_value(None) is None


def test_delete_a_session_from_the_web_app(web):
    session, _ = last(web.send(None, "a red fox", None, "auto", {}))
    chat, gallery, prompt, status, hashes = web.delete(session)
    assert (chat, gallery, hashes) == ([], [], []) and status.startswith("deleted the session")
    assert session not in [s.id for s in web.studio.sessions()]
    assert web.delete(session)[3].startswith("⚠")  # already gone: said, not raised


def test_uploads_are_checked_from_their_header_before_anything_decodes_them(web, tmp_path, monkeypatch):
    from llmga.serve.web import mount_web
    from tests.serve.test_bad_requests import png_claiming

    huge, thin = tmp_path / "huge.png", tmp_path / "thin.png"
    huge.write_bytes(png_claiming(10_000, 10_000))  # 100 megapixels claimed in a few bytes
    thin.write_bytes(png_claiming(8000, 100))
    decoded = []
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", lambda self: decoded.append(self.size))
    with pytest.raises(LLMGAError, match="10000x10000 is over the limit"):
        editor_uploads({"background": str(huge), "layers": []}, web.studio)
    with pytest.raises(LLMGAError, match="longer than 16 times"):
        editor_uploads({"background": str(thin), "layers": []}, web.studio)
    with pytest.raises(LLMGAError, match="over the limit"):
        task_extras("", "", str(huge), False, "", web.studio)
    mount_web(FastAPI(), web.studio)  # what Gradio opens itself is refused from the header too
    editor = gr.ImageEditor(type="filepath")
    payload = editor.data_model.model_validate({"background": {"path": str(huge)}, "layers": [], "composite": None})
    with pytest.raises(Image.DecompressionBombError):
        editor.preprocess(payload)
    assert decoded == []
