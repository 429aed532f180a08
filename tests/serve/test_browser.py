"""The studio's web app in a real browser, used as a person would: headless Chromium driven by Playwright.

A real ``python -m llmga serve`` on a free loopback port runs tiny random
Stable Diffusion painters (``llmga.testing.build_tiny_sd``: text-to-image and
inpainting) with the echo brain of ``llmga.testing.doubles`` (its reply is known
in advance). In the page the test types a request and sees the reply and the
painted image; then uploads a picture, paints a mask on it with mouse strokes
in the ImageEditor, asks for an inpainting and sees the result; the session's
record (over the HTTP API) shows the mask arrived where it was painted.

Screenshots go to ``$LLMGA_TEST_ARTIFACTS/studio_browser`` (default
``tests/serve/artifacts/studio_browser``, not tracked), one more named ``failure.png`` when a step fails.

Needs Debian's Chromium (``apt-get install -y chromium``: ``/usr/bin/chromium``)
and the ``playwright`` package (``pip install torch==2.13.0 playwright``; no
``playwright install``: the system browser is used); skipped without them.
"""

import os
import re
import signal
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 20_000
SCROLL_TO_TOP = """element => {
    element.scrollIntoView({block: "start"});
    let box = element.parentElement;
    while (box && box.scrollHeight <= box.clientHeight) box = box.parentElement;
    if (box) box.scrollTop -= 40;  // clear of the chat's label
}"""
HIGHLIGHTED = re.compile(r"\bhighlight\b")  # the class of the editor's selected tool

pytest.importorskip("gradio", reason="the web app needs gradio (the 'studio' extra)")
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need playwright: pip install torch==2.13.0 playwright")
pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK), reason=f"browser tests need Debian's Chromium at {CHROMIUM}: "
                                             "apt-get install -y chromium")
expect = playwright_api.expect

FACTORY = """
import os
from pathlib import Path

from llmga.assistant import Assistant
from llmga.painter.suite import PainterSuite
from llmga.testing.doubles import EchoBrain
from llmga.settings import PaintSettings
from llmga.testing import build_tiny_sd


def make():
    root = Path(os.environ["LLMGA_BROWSER_MODELS"])
    painters = PainterSuite.load(build_tiny_sd(root / "sd"), build_tiny_sd(root / "sd-inpaint", "sd15-inpaint"))
    return Assistant(EchoBrain(), painters, paint=PaintSettings(steps=2, width=64, height=64, seed=0))
"""


def artifacts_dir() -> Path:
    root = os.environ.get("LLMGA_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts"
    out = Path(root) / "studio_browser"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    return out


@pytest.fixture
def server(tmp_path):
    """``python -m llmga serve`` with tiny painters and the echo brain; yields its base URL."""
    (tmp_path / "browser_factory.py").write_text(FACTORY)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "HF_HUB_OFFLINE": "1", "LLMGA_BROWSER_MODELS": str(tmp_path / "models")}
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "llmga", "serve", "--factory", "browser_factory:make", "--port", "0",
             "--data-dir", str(tmp_path / "data")], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        url, deadline = None, time.monotonic() + 90
        while url is None and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            url = next((line.split()[2] for line in log_path.read_text().splitlines()
                        if line.startswith("llmga studio: http")), None)
        if url is None:
            pytest.fail(f"the server did not start:\n{log_path.read_text()[-3000:]}")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def page(tmp_path):
    """A page in headless Debian Chromium with a fresh profile; failing steps leave ``failure.png``."""
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True,
            viewport={"width": 1280, "height": 1400})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            page.errors = []
            page.on("pageerror", lambda error: page.errors.append(str(error)))
            yield page
        finally:
            context.close()


def photo(path: Path) -> Path:
    """A 128x128 landscape: sky, sun, grass."""
    image = Image.new("RGB", (128, 128), (120, 180, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 80, 127, 127), fill=(60, 150, 60))
    draw.ellipse((92, 10, 118, 36), fill=(250, 210, 60))
    image.save(path)
    return path


def loaded_image(locator, width: int) -> None:
    """The <img> has finished loading a picture ``width`` pixels wide (not a broken link)."""
    expect(locator).to_have_js_property("complete", True)
    expect(locator).to_have_js_property("naturalWidth", width)


def test_a_person_generates_then_inpaints_in_the_browser(server, page, tmp_path):
    shots = artifacts_dir()
    try:
        use_the_studio(server, page, tmp_path, shots)
    except BaseException:
        page.screenshot(path=shots / "failure.png", full_page=True)
        raise
    assert page.errors == [], page.errors


def use_the_studio(url, page, tmp_path, shots):
    page.goto(f"{url}/ui/")
    message, send, status = page.locator("#studio-message textarea"), page.locator("#studio-send"), \
        page.locator("#studio-status")
    chat, gallery, editor = page.locator("#studio-chat"), page.locator("#studio-gallery"), page.locator("#studio-editor")
    expect(send).to_be_enabled()
    page.screenshot(path=shots / "01-empty-studio.png", full_page=True)

    # 1. a request in words: the reply streams in, the prompt and the painted image appear
    message.fill("a red fox in the snow")
    send.click()
    expect(status).to_contain_text("done in")
    expect(chat.locator(".message.user")).to_have_count(1)
    expect(chat.locator(".message.user").first).to_contain_text("a red fox in the snow")
    reply = chat.locator(".message.bot").first
    expect(reply).to_contain_text("Here is your picture.")
    expect(reply).to_contain_text("prompt: a red fox in the snow")
    expect(reply).to_contain_text("task: generate")
    loaded_image(reply.locator("img[src*='/files/']"), 64)
    expect(gallery.locator("img")).to_have_count(1)
    loaded_image(gallery.locator("img").first, 64)
    expect(page.get_by_label("Generation prompt (edit and re-paint)")).to_have_value("a red fox in the snow")
    expect(message).to_have_value("")  # cleared for the next message
    page.screenshot(path=shots / "02-generated.png", full_page=True)
    reply.evaluate(SCROLL_TO_TOP)  # the chat keeps its bottom in view; show the reply's first lines
    chat.screenshot(path=shots / "03-generate-reply.png")

    # 2. upload a picture, paint a mask over its middle with the brush, ask for an inpainting
    expect(editor.locator("canvas").first).to_be_attached()  # the editor's drawing surface is up
    editor.locator("input[type=file]").set_input_files(photo(tmp_path / "photo.png"))
    expect(editor.get_by_text("Upload an image")).to_be_hidden()
    brush = editor.get_by_role("button", name="Brush", exact=True)
    expect(brush).to_have_class(HIGHLIGHTED)  # uploading selects the brush
    box = editor.locator("canvas").last.bounding_box()
    middle_x, middle_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2  # the picture is centred
    for dy in (-20, 20):  # two horizontal strokes across the middle
        page.mouse.move(middle_x - 50, middle_y + dy)
        page.mouse.down()
        page.mouse.move(middle_x, middle_y + dy)
        page.mouse.move(middle_x + 50, middle_y + dy)
        page.mouse.up()
    expect(editor.get_by_role("button", name="Undo", exact=True)).to_be_enabled()  # the strokes were taken
    editor.screenshot(path=shots / "04-mask-painted.png")

    message.fill("put a stone fountain here")
    send.click()
    expect(chat.locator(".message.bot")).to_have_count(2)
    expect(status).to_contain_text("done in")
    expect(chat.locator(".message.user").nth(1)).to_contain_text("put a stone fountain here")
    loaded_image(chat.locator(".message.user").nth(1).locator("img[src*='/files/']"), 128)  # the upload
    result = chat.locator(".message.bot").nth(1)
    expect(result).to_contain_text("task: inpaint")
    expect(result).to_contain_text("prompt: put a stone fountain here")
    loaded_image(result.locator("img[src*='/files/']"), 128)
    expect(gallery.locator("img")).to_have_count(2)
    page.screenshot(path=shots / "05-inpainted.png", full_page=True)
    result.evaluate(SCROLL_TO_TOP)
    chat.screenshot(path=shots / "06-inpaint-reply.png")

    # 3. what the server recorded: the mask is where the strokes were
    with httpx.Client(base_url=url, timeout=30) as client:
        [session] = client.get("/api/sessions").json()["sessions"]
        turns = client.get(f"/api/sessions/{session['id']}").json()["turns"]
        assert [t["status"] for t in turns] == ["done", "done"]
        images = {i["role"]: i for i in turns[1]["images"]}
        assert sorted(images) == ["input", "mask", "output"]

        def fetch(role):
            return np.asarray(Image.open(BytesIO(client.get(images[role]["url"]).content)))

        mask, before, after = fetch("mask"), fetch("input"), fetch("output")
    assert mask.shape == (128, 128) and mask[64, 64] == 255  # painted over the middle
    assert mask[:8, :8].max() == 0 and mask[-8:, -8:].max() == 0  # not in the corners
    assert 0.05 < (mask > 0).mean() < 0.8
    assert after.shape == before.shape == (128, 128, 3)  # inpainting keeps the picture's size
    assert (after[mask > 0] != before[mask > 0]).any()  # repainted where masked

