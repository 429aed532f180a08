"""What only real weights show: the picture is of what was asked, inpainting keeps the rest, the converted
LLMGA model writes a tagged prompt, an edit changes what was asked. See conftest.py for the variables."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

from llmga.settings import PaintSettings, RuntimeSettings

from .conftest import device, real

pytestmark = pytest.mark.real

APPLE = "a red apple on a wooden table"
OTHERS = ["a blue car on a city street", "a snowy mountain at night", "a cat sleeping on a sofa"]


def painter(*names):
    from llmga.painter.text_to_image import TextToImagePainter

    (path,) = real(*names)
    return TextToImagePainter.load(path, runtime=RuntimeSettings(painter_device=device()))


def native(pipeline) -> int:
    """The side a model paints at natively (512 for SD 1.5, 1024 for SDXL)."""
    return pipeline.unet.config.sample_size * pipeline.vae_scale_factor


@pytest.mark.parametrize("variable", ["LLMGA_SD15", "LLMGA_SDXL"])
def test_a_painting_scores_higher_with_its_caption_than_with_others(judge, variable):
    picture = painter(variable).paint(APPLE, PaintSettings(seed=1, steps=25)).images[0]
    scores = judge.scores(picture, [APPLE, *OTHERS])
    assert scores[0] > max(scores[1:]), scores


def test_inpainting_keeps_the_outside_and_paints_the_object(judge):
    from llmga.painter.inpaint import InpaintPainter

    base = painter("LLMGA_SD15").paint("an empty wooden table in a kitchen", PaintSettings(seed=2, steps=25))
    (path,) = real("LLMGA_SD15_INPAINT")
    inpaint = InpaintPainter.load(path, runtime=RuntimeSettings(painter_device=device()))
    side = base.images[0].width
    box = (side * 5 // 16, side * 5 // 16, side * 11 // 16, side * 11 // 16)
    mask = Image.new("L", base.images[0].size)
    mask.paste(255, box)
    out = inpaint.paint(base.images[0], mask, APPLE, PaintSettings(seed=3, steps=25)).images[0]
    band = inpaint.blend + 2
    before, after = np.asarray(base.images[0]), np.asarray(out)
    outside = np.ones(before.shape[:2], bool)
    outside[box[1] - band:box[3] + band, box[0] - band:box[2] + band] = False
    assert (before[outside] == after[outside]).all()
    crop = out.crop(box)
    scores = judge.scores(crop, ["a red apple", "an empty wooden table"])
    assert scores[0] > scores[1], scores


def test_a_canny_controlnet_follows_the_edges():
    from llmga.painter.controlnet import ControlNetPainter, canny_edges

    base, net = real("LLMGA_SD15", "LLMGA_CONTROLNET")
    cn = ControlNetPainter.load(base, net, control_type="canny", runtime=RuntimeSettings(painter_device=device()))
    s = native(cn.pipeline) // 16  # two white bars, 4 of 16 and 12 of 16 down
    control = Image.new("RGB", (16 * s, 16 * s), "black")
    control.paste((255, 255, 255), (4 * s, 4 * s, 12 * s, 4 * s + max(1, s // 8)))
    control.paste((255, 255, 255), (4 * s, 12 * s, 12 * s, 12 * s + max(1, s // 8)))
    out = cn.paint(control, "a photo of a wooden box", PaintSettings(seed=4, steps=20)).images[0]
    edges = np.asarray(canny_edges(out))[..., 0] > 0
    near = np.zeros_like(edges)
    near[4 * s - s // 2:4 * s + s // 2, 4 * s:12 * s] = near[12 * s - s // 2:12 * s + s // 2, 4 * s:12 * s] = True
    assert edges[near].mean() > 2 * edges[~near].mean()


def test_an_edit_changes_what_was_asked(judge):
    from llmga.painter.edit import EditPainter, EditSettings

    t2i = painter("LLMGA_SD15")
    source = t2i.paint(APPLE, PaintSettings(seed=5, steps=30)).images[0]
    edited = EditPainter.from_painter(t2i).edit(source, APPLE, "a green apple on a wooden table",
                                                EditSettings(seed=5)).images[0]
    before = judge.scores(source, ["a green apple", "a red apple"])
    after = judge.scores(edited, ["a green apple", "a red apple"])
    assert after[0] - after[1] > before[0] - before[1]


def test_the_converted_llmga_model_writes_a_tagged_prompt(tmp_path_factory):
    from llmga.brain import BrainRequest, complete, load_brain
    from llmga.conversation import Conversation
    from llmga.convert import convert_llava_checkpoint
    from llmga.protocol import parse_reply
    from llmga.settings import SamplingSettings

    src, tower = real("LLMGA_ORIGINAL", "LLMGA_VISION_TOWER")
    dst = convert_llava_checkpoint(src, tower, tmp_path_factory.mktemp("llmga") / "hf",
                                   template=os.environ.get("LLMGA_ORIGINAL_TEMPLATE"))
    brain = load_brain(str(dst), runtime=RuntimeSettings(brain_device=device()))
    conv = Conversation()
    conv.add_user("draw a cat")
    messages, _ = conv.to_messages(multimodal=True)
    reply = parse_reply(complete(brain, BrainRequest(messages, settings=SamplingSettings(temperature=0,
                                                                                         max_new_tokens=200))))
    assert reply.prompts and "cat" in reply.prompts[0].lower(), reply.raw


def test_a_llava_sees_what_was_painted():
    from llmga.brain import BrainRequest, complete, load_brain
    from llmga.conversation import Conversation
    from llmga.settings import SamplingSettings

    (path,) = real("LLMGA_LLAVA")
    picture = painter("LLMGA_SD15").paint(APPLE, PaintSettings(seed=1, steps=25)).images[0]
    brain = load_brain(str(path), runtime=RuntimeSettings(brain_device=device()))
    conv = Conversation(system_prompt="")
    conv.add_user("What fruit is on the table? Answer in one word.", [picture])
    messages, images = conv.to_messages(multimodal=True)
    reply = complete(brain, BrainRequest(messages, images, SamplingSettings(temperature=0, max_new_tokens=10)))
    assert "apple" in reply.lower(), reply


def test_real_bf16_weights_give_finite_latents_on_the_device():
    t2i = painter("LLMGA_SD15")
    out = t2i.pipeline(prompt="a red apple", num_inference_steps=2, output_type="latent",
                       generator=torch.Generator("cpu").manual_seed(0)).images
    assert torch.isfinite(out).all()
