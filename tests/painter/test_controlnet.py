"""ControlNet painting on tiny SD 1.5 and SDXL stacks (64x64, 2 steps)."""

import time

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from llmga.errors import InvalidInputError, ModelNotFoundError
from llmga.painter.controlnet import DETECTORS, ControlNetPainter, canny_edges, check_controlnet_dir, luminance, soften
from llmga.painter.long_prompt import WINDOW
from llmga.painter.text_to_image import TextToImagePainter
from llmga.settings import PaintSettings

FAST = PaintSettings(seed=3, steps=2, width=64, height=64)
WORDS = "a red fox runs through deep snow under a pale winter sky with pine trees".split()


def square(box=(16, 16, 48, 48), size=(64, 64), fill=200, background=60) -> Image.Image:
    """A flat grey picture with a lighter square: its borders are the only edges."""
    image = Image.new("RGB", size, (background,) * 3)
    ImageDraw.Draw(image).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=(fill,) * 3)
    return image


def same(a: Image.Image, b: Image.Image) -> bool:
    return a.tobytes() == b.tobytes()


@pytest.fixture(scope="module")
def dirs(tiny):
    sd15, sdxl = tiny.sd(), tiny.sd("sdxl")
    return {
        "sd15": (sd15, tiny.controlnet()),
        "sdxl": (sdxl, tiny.controlnet("sdxl")),
    }


@pytest.fixture(scope="module", params=["sd15", "sdxl"])
def painter(request, dirs):
    return ControlNetPainter.load(*dirs[request.param], device="cpu")


def test_loads_from_directories_and_guesses_the_kind(painter):
    xl = "XL" in type(painter.pipeline).__name__
    assert type(painter.pipeline).__name__ == ("StableDiffusionXLControlNetPipeline" if xl
                                               else "StableDiffusionControlNetPipeline")
    assert painter.control_type == ("depth" if xl else "canny")


def test_canny_marks_the_squares_borders_and_nothing_flat():
    edges = np.asarray(canny_edges(square()))
    assert edges.shape == (64, 64, 3) and set(np.unique(edges)) == {0, 255}
    on = edges[..., 0] > 0
    assert not on[22:42, 22:42].any()  # inside the square
    assert not on[:10].any() and not on[:, :10].any() and not on[54:].any()  # background
    for side in (on[14:18, 20:44], on[46:50, 20:44], on[20:44, 14:18], on[20:44, 46:50]):
        assert side.any(axis=0 if side.shape[0] == 4 else 1).all()  # every border is traced along its length
    # thresholds on OpenCV's 0-255 scale: above the step's gradient, no edge survives
    assert not np.asarray(canny_edges(square(), low=2000, high=2000)).any()
    with pytest.raises(InvalidInputError, match="0 < low <= high"):
        canny_edges(square(), low=200, high=100)


def test_control_image_steers_the_painting(painter):
    first = painter.paint(square(), "a fox", FAST)
    again = painter.paint(square(), "a fox", FAST)
    moved = painter.paint(square(box=(8, 30, 30, 60)), "a fox", FAST)
    assert first.images[0].size == (64, 64)
    assert same(first.images[0], again.images[0])
    assert not same(first.images[0], moved.images[0])


def test_conditioning_scale_zero_is_plain_text_to_image(painter, dirs):
    base = dirs["sdxl" if "XL" in type(painter.pipeline).__name__ else "sd15"][0]
    plain = TextToImagePainter.load(base, device="cpu").paint("a fox", FAST)
    for control in (square(), square(box=(8, 30, 30, 60))):
        ignored = painter.paint(control, "a fox", FAST, conditioning_scale=0)
        assert same(ignored.images[0], plain.images[0])
    assert not same(painter.paint(square(), "a fox", FAST, conditioning_scale=0.5).images[0], plain.images[0])


def test_long_prompt_reaches_the_unet_whole(painter):
    prompt = " ".join(WORDS[i % len(WORDS)] for i in range(120))
    painting = painter.paint(square(), prompt, FAST)
    assert painting.prompt_tokens > 2 * WINDOW
    tok = painter.encoder.tokenizers[0]
    first_window = tok.decode(painter.encoder.token_ids(prompt, tok)[:WINDOW])
    assert not same(painting.images[0], painter.paint(square(), first_window, FAST).images[0])


def test_output_size_follows_settings_or_control_in_multiples_of_8(dirs):
    painter = ControlNetPainter.load(*dirs["sd15"], device="cpu")
    one_step = PaintSettings(steps=1)
    cases = [
        (square(size=(80, 48)), one_step, (80, 48)),
        (square(size=(67, 45)), one_step, (64, 48)),  # rounded to multiples of 8
        (square(size=(128, 64)), PaintSettings(steps=1, width=64), (64, 32)),  # aspect of the control
        (square(size=(80, 48)), PaintSettings(steps=1, width=64, height=64), (64, 64)),  # control stretched
    ]
    for control, settings, size in cases:
        painting = painter.paint(control, "a fox", settings)
        assert painting.images[0].size == size and painting.control.size == size
        meta = painting.metadata(0)
        assert (meta["width"], meta["height"]) == size
    assert meta["task"] == "controlnet" and meta["control_type"] == "canny"
    assert meta["control_source"] == "map" and meta["conditioning_scale"] == 1.0


def test_from_photo_computes_the_map_for_the_kind(dirs):
    canny = ControlNetPainter.load(*dirs["sd15"], device="cpu")
    steps = []
    photo = square(size=(128, 128), box=(32, 32, 96, 96))
    painting = canny.paint(photo, "a fox", FAST, from_photo=True, progress=lambda i, n: steps.append((i, n)))
    # the photo is resized to the output size, then traced (tracing first would blur the edges)
    assert same(painting.control, canny_edges(photo.resize((64, 64), Image.Resampling.LANCZOS)))
    assert painting.metadata()["control_source"] == "canny" and steps == [(1, 2), (2, 2)]
    depth = ControlNetPainter(canny.pipeline, control_type="depth")
    with pytest.raises(InvalidInputError, match="no built-in detector for depth"):
        depth.paint(square(), "a fox", FAST, from_photo=True)


def test_from_loaded_pipeline_shares_weights_and_paints_the_same(dirs):
    from diffusers import ControlNetModel

    base, controlnet = dirs["sd15"]
    pipe = TextToImagePainter.load(base, device="cpu").pipeline
    model = ControlNetModel.from_pretrained(controlnet)
    painter = ControlNetPainter.from_pipeline(pipe, model, control_type="canny")
    assert painter.pipeline.unet is pipe.unet
    loaded = ControlNetPainter.load(base, controlnet, device="cpu")
    ours, theirs = (p.paint(square(), "a fox", FAST).images[0] for p in (painter, loaded))
    assert same(ours, theirs)


def test_missing_or_wrong_controlnet_fails_fast_and_clearly(dirs, tmp_path):
    base, controlnet = dirs["sd15"]
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match=r"ControlNet path .*nope does not exist.*huggingface-cli"):
        ControlNetPainter.load(base, tmp_path / "nope")
    assert time.perf_counter() - start < 1.0
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match="config.json is missing; no weights"):
        check_controlnet_dir(empty)
    with pytest.raises(ModelNotFoundError, match="whole pipeline, not a ControlNet"):
        check_controlnet_dir(base)
    with pytest.raises(ModelNotFoundError, match="holds a UNet2DConditionModel"):
        check_controlnet_dir(base / "unet")
    with pytest.raises(InvalidInputError, match="cross-attention dim 80.*has 32"):
        ControlNetPainter.load(base, dirs["sdxl"][1])  # an SDXL ControlNet on an SD 1.5 base
    with pytest.raises(InvalidInputError, match="conditioning_scale"):
        ControlNetPainter(ControlNetPainter.load(base, controlnet).pipeline).paint(square(), "a", FAST, -1.0)


def test_tiny_controlnet_directory_format(dirs):
    from diffusers import ControlNetModel

    path = dirs["sd15"][1]
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]
    model = ControlNetModel.from_pretrained(path)
    assert model.config.cross_attention_dim == 32 and tuple(model.config.block_out_channels) == (32, 64)
    assert torch.count_nonzero(model.controlnet_mid_block.weight) > 0  # not a fresh (zero) ControlNet
    xl = ControlNetModel.from_pretrained(dirs["sdxl"][1])
    assert xl.config.addition_embed_type == "text_time"


@pytest.fixture(scope="module")
def two_nets(tiny, tmp_path_factory):
    """The tiny SD 1.5 painter with a canny and a tile ControlNet steering together."""
    from llmga.painter.suite import PainterSuite
    from llmga.testing.tiny_controlnet import build_tiny_controlnet

    tile = build_tiny_controlnet(tmp_path_factory.mktemp("nets") / "sd15-controlnet-tile", seed=5)
    return PainterSuite.load(tiny.sd(), controlnet=[tiny.controlnet(), tile]).controlnet


def test_several_controlnets_steer_one_painting_each_with_its_map_and_weight(two_nets):
    assert type(two_nets.pipeline.controlnet).__name__ == "MultiControlNetModel"
    assert two_nets.control_types == ["canny", "tile"]
    photo = square()
    painting = two_nets.paint(photo, "a castle", FAST, conditioning_scale=[1.0, 0.5], from_photo=True)
    assert painting.control_type == "canny+tile" and painting.metadata()["conditioning_scale"] == [1.0, 0.5]
    assert same(painting.controls[0], canny_edges(photo)) and same(painting.controls[1], soften(photo))
    only_canny = two_nets.paint(photo, "a castle", FAST, conditioning_scale=[1.0, 0.0], from_photo=True)
    assert not same(only_canny.images[0], painting.images[0])
    maps = two_nets.paint([canny_edges(photo), soften(photo)], "a castle", FAST, conditioning_scale=[1.0, 0.5])
    assert same(maps.images[0], painting.images[0])  # the same maps given ready paint the same
    with pytest.raises(InvalidInputError, match="2 ControlNets .* one control image"):
        two_nets.paint([photo] * 3, "a castle", FAST)


def test_detectors_that_need_no_weights():
    photo = square()
    grey = np.asarray(luminance(photo))
    assert grey.shape == (64, 64, 3) and (grey[..., 0] == grey[..., 2]).all() and grey[32, 32, 0] == 200
    soft = np.asarray(soften(photo), dtype=int)
    assert soft.shape == (64, 64, 3) and soft[32, 32, 0] == 200 and 60 < soft[16, 14, 0] < 200  # edges blurred
    assert set(DETECTORS) == {"canny", "tile", "recolor"}
