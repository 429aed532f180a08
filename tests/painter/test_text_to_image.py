"""Long-prompt encoding and text-to-image painting on tiny SD 1.5 and SDXL stacks."""

import logging
import math
import shutil
import time

import pytest
import torch

from llmga.checkpoints import check_diffusers_dir
from llmga.errors import ModelNotFoundError, PromptTooLongError
from llmga.images import read_metadata, save_png
from llmga.painter.long_prompt import WINDOW, LongPromptEncoder
from llmga.painter.text_to_image import TextToImagePainter
from llmga.settings import PaintSettings
from llmga.testing import build_tiny_sd

WORDS = "a red fox runs through deep snow under a pale winter sky with pine trees".split()


def long_prompt(n_words: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n_words))


@pytest.fixture(scope="module", params=["sd15", "sd2", "sdxl"])
def painter(request, tiny):
    path = tiny.sd(request.param)
    return TextToImagePainter.load(path, device="cpu")


def test_short_prompt_encodes_exactly_as_the_pipeline(painter):
    pipe, prompt = painter.pipeline, "a red fox in deep snow"
    ours = painter.encoder.encode(prompt, "blurry")
    theirs = pipe.encode_prompt(prompt=prompt, negative_prompt="blurry", device="cpu", num_images_per_prompt=1,
                                do_classifier_free_guidance=True)
    assert ours.windows == 1
    torch.testing.assert_close(ours.prompt_embeds, theirs[0])
    torch.testing.assert_close(ours.negative_prompt_embeds, theirs[1])
    if len(theirs) == 4:  # SDXL: pooled embeddings too
        torch.testing.assert_close(ours.pooled_prompt_embeds, theirs[2])
        torch.testing.assert_close(ours.negative_pooled_prompt_embeds, theirs[3])


def test_long_prompt_is_split_into_windows_not_truncated(painter, caplog):
    enc = painter.encoder
    prompt = long_prompt(120)
    n_tokens = enc.count_tokens(prompt)
    assert n_tokens > 2 * WINDOW  # the point of the test: a prompt CLIP alone would cut
    with caplog.at_level(logging.WARNING):
        out = enc.encode(prompt)
    assert not any("truncat" in r.message.lower() or "longer than" in r.message for r in caplog.records)
    windows = math.ceil(n_tokens / WINDOW)
    assert out.windows == windows
    assert out.prompt_embeds.shape[:2] == (1, windows * (WINDOW + 2))
    assert out.negative_prompt_embeds.shape == out.prompt_embeds.shape

    # each window is encoded on its own: the first window equals the encoding of the first 75 tokens alone
    tok = enc.tokenizers[0]
    first = tok.decode(enc.token_ids(prompt, tok)[:WINDOW])
    alone = enc.encode(first)
    assert alone.windows == 1
    torch.testing.assert_close(out.prompt_embeds[:, : WINDOW + 2], alone.prompt_embeds, atol=1e-5, rtol=1e-4)
    # and the later windows carry different text, so different features
    assert not torch.allclose(out.prompt_embeds[:, : WINDOW + 2], out.prompt_embeds[:, WINDOW + 2 : 2 * (WINDOW + 2)])


def test_negative_prompt_is_padded_to_the_prompts_windows(painter):
    out = painter.encoder.encode(long_prompt(40), negative_prompt=long_prompt(130))
    assert out.prompt_embeds.shape == out.negative_prompt_embeds.shape
    assert out.windows == math.ceil(painter.encoder.count_tokens(long_prompt(130)) / WINDOW)


def test_batched_windows_equal_windows_one_by_one(painter):
    one_by_one = LongPromptEncoder(
        painter.encoder.tokenizers, painter.encoder.text_encoders, penultimate=painter.encoder.penultimate,
        zero_empty_negative=painter.encoder.zero_empty_negative, batched=False,
    )
    prompt = long_prompt(100)
    a, b = painter.encoder.encode(prompt, "ugly"), one_by_one.encode(prompt, "ugly")
    torch.testing.assert_close(a.prompt_embeds, b.prompt_embeds, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a.negative_prompt_embeds, b.negative_prompt_embeds, atol=1e-5, rtol=1e-4)


def test_prompt_over_the_limit_is_refused_clearly(painter):
    enc = LongPromptEncoder(painter.encoder.tokenizers, painter.encoder.text_encoders, max_tokens=150)
    with pytest.raises(PromptTooLongError, match=r"tokens long; the limit is 150"):
        enc.encode(long_prompt(10_000))
    with pytest.raises(PromptTooLongError):
        enc.encode("a fox", negative_prompt=long_prompt(10_000))


def test_paint_long_prompt_is_deterministic_and_sized(painter):
    settings = PaintSettings(seed=7, steps=2, width=64, height=64, num_images=2)
    first = painter.paint(long_prompt(100), settings)
    again = painter.paint(long_prompt(100), settings)
    other = painter.paint(long_prompt(100), PaintSettings(seed=8, steps=2, width=64, height=64))
    assert len(first.images) == 2 and first.images[0].size == (64, 64)
    assert first.images[0].tobytes() == again.images[0].tobytes()
    assert first.images[0].tobytes() != other.images[0].tobytes()
    assert first.prompt_tokens > WINDOW


def test_progress_is_reported_per_step(painter):
    seen = []
    painter.paint("a fox", PaintSettings(steps=3, width=64, height=64), progress=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_saved_png_carries_prompt_and_settings(painter, tmp_path):
    painting = painter.paint("a red fox", PaintSettings(seed=3, steps=2, width=64, height=64, negative_prompt="dark"))
    path = save_png(painting.images[0], tmp_path, painting.metadata(0))
    meta = read_metadata(path)
    assert meta["prompt"] == "a red fox" and meta["seed"] == 3 and meta["steps"] == 2
    assert meta["negative_prompt"] == "dark" and meta["model"] == painter.name
    from PIL import Image

    with Image.open(path) as im:
        assert im.text["parameters"].startswith("a red fox\nNegative prompt: dark\nSteps: 2")


def test_incomplete_pipeline_dir_fails_fast_naming_the_part(tmp_path):
    path = build_tiny_sd(tmp_path / "sd", variant="sd15")
    for weights in (path / "unet").glob("*.safetensors"):
        weights.unlink()
    shutil.rmtree(path / "tokenizer")
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError) as err:
        TextToImagePainter.load(path)
    assert time.perf_counter() - start < 1.0
    assert "'unet/' has no weights" in str(err.value) and "'tokenizer/' is missing" in str(err.value)


def test_missing_dir_and_non_pipeline_dir(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        check_diffusers_dir(tmp_path / "nope")
    with pytest.raises(ModelNotFoundError, match="no model_index.json"):
        check_diffusers_dir(tmp_path)


@pytest.mark.parametrize(("kind", "task", "expected"), [
    ("sd15", "text2image", "StableDiffusionPipeline"), ("sdxl", "text2image", "StableDiffusionXLPipeline"),
    ("sd15", "inpainting", "AutoPipelineForInpainting"), ("sd15-inpaint", "inpainting", "StableDiffusionInpaintPipeline"),
])
def test_a_folder_already_saved_for_the_task_loads_with_its_own_class(tiny, kind, task, expected):
    from llmga.painter.preload import pipeline_class

    assert pipeline_class(task, check_diffusers_dir(tiny.sd(kind))).__name__ == expected
    assert pipeline_class(task, check_diffusers_dir(tiny.sd(kind)), extra_components=True).__name__.startswith("Auto")


def test_loading_a_text_to_image_folder_imports_no_other_pipeline(tiny):
    import subprocess
    import sys

    code = ("import sys; from llmga.painter.text_to_image import TextToImagePainter; "
            f"p = TextToImagePainter.load({str(tiny.sd())!r}, device='cpu'); "
            "print(type(p.pipeline).__name__, 'diffusers.pipelines.auto_pipeline' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["StableDiffusionPipeline", "False"]


def test_a_lazy_painter_is_checked_at_once_and_loads_on_first_painting(tiny, tmp_path):
    with pytest.raises(ModelNotFoundError):
        TextToImagePainter.load(tmp_path / "nothing", device="cpu", lazy=True)
    lazy = TextToImagePainter.load(tiny.sd(), device="cpu", lazy=True)
    assert "pipeline" not in vars(lazy) and lazy.describe().endswith("(loads on first painting)")
    settings = PaintSettings(seed=1, steps=2, width=64, height=64)
    painted = lazy.paint("a red fox", settings).images[0]
    assert "StableDiffusionPipeline" in lazy.describe()
    eager = TextToImagePainter.load(tiny.sd(), device="cpu").paint("a red fox", settings).images[0]
    assert painted.tobytes() == eager.tobytes()
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        lazy.nothing


def test_a_load_waits_for_the_painters_imports_started_in_the_background(tiny, monkeypatch):
    import threading

    from llmga.painter import preload, runtime

    release, order = threading.Event(), []
    real = preload.pipeline_class

    def slow_imports(task, path, extra_components=False):
        if threading.current_thread().name == "painter-imports":
            release.wait(10)
            order.append("imported")
        return real(task, path, extra_components)

    monkeypatch.setattr(preload, "pipeline_class", slow_imports)
    preload.import_in_background("text2image", check_diffusers_dir(tiny.sd()))
    loader = threading.Thread(target=lambda: order.append(type(runtime.load_pipeline("text2image", tiny.sd(),
                                                                                      device="cpu")).__name__))
    loader.start()
    time.sleep(0.3)
    assert order == []  # still waiting: a half-imported diffusers is never used
    release.set()
    loader.join(10)
    assert order == ["imported", "StableDiffusionPipeline"]
