"""Building and training the world painter: tokenizer, CLIP, VAE, UNet (tiny runs), and its SD-format result."""

import json

import numpy as np
import pytest
import torch

from llmga.errors import InvalidInputError
from llmga.painter.suite import PainterSuite
from llmga.painter.text_to_image import TextToImagePainter
from llmga.settings import PaintSettings
from llmga.train.world_clip import world_words, write_world_tokenizer
from llmga.train.world_painter import PainterConfig, new_unet, train_painter, widen_for_inpainting
from llmga.train.world_vae import train_vae
from llmga.world.captions import detailed_caption
from llmga.world.scene import Background, Obj, Scene


def test_every_world_word_is_one_token_and_a_caption_fits_one_window(tmp_path):
    tokenizer = write_world_tokenizer(tmp_path)
    for word in world_words():
        assert len(tokenizer.tokenize(word)) == 1, word
    busy = Scene(tuple(Obj("star", "red", "large", p) for p in ("top left", "center", "bottom right")),
                 Background("night", "snow"))
    ids = tokenizer(detailed_caption(busy)).input_ids
    assert len(ids) <= tokenizer.model_max_length == 77
    assert tokenizer.unk_token_id not in ids[1:-1]


def test_clip_and_vae_runs_write_standard_directories_and_reports(world_parts):
    from diffusers import AutoencoderKL
    from transformers import AutoImageProcessor, CLIPModel, CLIPTextModel, CLIPTokenizer, CLIPVisionModel

    assert CLIPTextModel.from_pretrained(world_parts / "clip" / "text_encoder").config.hidden_size == 32
    assert CLIPVisionModel.from_pretrained(world_parts / "clip" / "vision_encoder").config.image_size == 32
    whole = world_parts / "clip" / "model"  # the whole CLIP (projections too), for scoring
    assert CLIPModel.from_pretrained(whole).config.projection_dim > 0
    assert len(CLIPTokenizer.from_pretrained(whole)) > 2 and AutoImageProcessor.from_pretrained(whole, backend="pil")
    report = json.loads((world_parts / "clip" / "report.json").read_text())
    assert 0 <= report["image_to_text"] <= 1
    vae = AutoencoderKL.from_pretrained(world_parts / "vae")
    assert vae.config.scaling_factor > 0
    latents = vae.encode(torch.zeros(1, 3, 32, 32)).latent_dist.mode()
    assert latents.shape == (1, 4, 16, 16)
    assert "judge_reads_scene_exactly" in json.loads((world_parts / "vae" / "report.json").read_text())


def test_painter_training_resumes_records_its_curve_and_saves_a_pipeline_the_painter_loads(world_parts, tmp_path):
    config = PainterConfig(out=str(tmp_path / "run"), clip=str(world_parts / "clip"), vae=str(world_parts / "vae"),
                           steps=2, batch_size=4, save_every=1, eval_every=2, eval_n=2, eval_steps=2)
    train_painter(config, log=lambda _: None)
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert checkpoints == ["step-0000001", "step-0000002"]
    config.steps = 3
    logs = []
    final = train_painter(config, log=logs.append)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-0000002", "step-0000003"]
    curve = [json.loads(line) for line in (tmp_path / "run" / "curve.jsonl").read_text().splitlines()]
    assert [p["step"] for p in curve] == [2]  # step 3 is not a multiple of eval_every
    assert 0 <= curve[0]["success_short"] <= 1
    for saved in (tmp_path / "run" / "latest", final):  # world painters have no safety checker; loading must not warn
        assert json.loads((saved / "model_index.json").read_text())["requires_safety_checker"] is False
    painter = TextToImagePainter.load(final)
    image = painter.paint("a red star", PaintSettings(steps=2, guidance=4.0)).images[0]
    assert image.size == (32, 32)
    relative = "a large red star at the top left and a small blue circle below it, on grass under a day sky"
    for saved in (tmp_path / "run" / "latest", final):  # a world painter it trained reads a relation as its cell
        assert PainterSuite.load(saved, lazy=True).read(relative) == relative.replace("below it", "at the middle left")


def test_widened_inpainting_unet_starts_as_the_text_to_image_unet():
    torch.manual_seed(0)
    unet = new_unet(cross_attention_dim=32).eval()
    wide = widen_for_inpainting(unet).eval()
    latents, cond = torch.randn(1, 4, 16, 16), torch.randn(1, 5, 32)
    extra = torch.randn(1, 5, 16, 16)
    with torch.no_grad():
        narrow_out = unet(latents, 10, encoder_hidden_states=cond).sample
        wide_out = wide(torch.cat([latents, extra], 1), 10, encoder_hidden_states=cond).sample
    assert wide.config.in_channels == 9
    torch.testing.assert_close(wide_out, narrow_out)


def test_a_grown_first_convolution_computes_what_it_did_and_the_painter_still_loads(world_parts, tmp_path):
    from diffusers import UNet2DConditionModel

    from llmga.train.world_painter import assemble, enlarge_conv_in

    torch.manual_seed(0)
    unet = new_unet(cross_attention_dim=32).eval()
    grown = enlarge_conv_in(unet, 31).eval()
    latents, cond = torch.randn(1, 4, 16, 16), torch.randn(1, 5, 32)
    with torch.no_grad():
        torch.testing.assert_close(grown(latents, 10, encoder_hidden_states=cond).sample,
                                   unet(latents, 10, encoder_hidden_states=cond).sample)
    assert grown.conv_in.weight.shape[-2:] == (31, 31)
    with pytest.raises(InvalidInputError, match="odd size of at least 3"):
        enlarge_conv_in(unet, 4)
    start = assemble(tmp_path / "start", world_parts / "clip", world_parts / "vae")
    final = train_painter(PainterConfig(out=str(tmp_path / "run"), pipeline=str(start), conv_in_kernel=15, steps=1,
                                        batch_size=2, save_every=10, eval_every=10), log=lambda _: None)
    assert UNet2DConditionModel.from_pretrained(final / "unet").config.conv_in_kernel == 15
    painter = TextToImagePainter.load(final, device="cpu")
    assert painter.paint("a large red star at the top left, on grass under a day sky",
                         PaintSettings(steps=2, width=32, height=32)).images[0].size == (32, 32)






def test_decoder_only_vae_training_keeps_the_latents_a_unet_learnt(world_parts, tmp_path):
    from diffusers import AutoencoderKL

    train_vae(tmp_path / "vae2", steps=1, batch_size=2, decoder_of=world_parts / "vae", eval_n=8, log=lambda _: None)
    before, after = (AutoencoderKL.from_pretrained(p) for p in (world_parts / "vae", tmp_path / "vae2"))
    assert after.config.scaling_factor == before.config.scaling_factor
    decoder = ("decoder.", "post_quant_conv.")
    same = {name: torch.equal(value, after.state_dict()[name]) for name, value in before.state_dict().items()}
    assert all(kept for name, kept in same.items() if not name.startswith(decoder))
    assert not all(kept for name, kept in same.items() if name.startswith(decoder))


def test_a_painter_takes_only_a_decoder_that_keeps_its_latents(world_parts, tmp_path):
    from llmga.train.world_painter import assemble
    from llmga.train.world_vae import ship_painter

    pipeline = assemble(tmp_path / "p", world_parts / "clip", world_parts / "vae")
    index = pipeline / "model_index.json"  # as a training run saves it: diffusers' default asks for a checker
    index.write_text(index.read_text().replace('"requires_safety_checker": false', '"requires_safety_checker": true'))
    train_vae(tmp_path / "dec", steps=1, batch_size=2, decoder_of=world_parts / "vae", eval_n=8, log=lambda _: None)
    shipped = ship_painter(pipeline, tmp_path / "shipped", tmp_path / "dec")
    assert json.loads((shipped / "model_index.json").read_text())["requires_safety_checker"] is False
    assert TextToImagePainter.load(shipped).paint("a red star", PaintSettings(steps=1)).images[0].size == (32, 32)
    train_vae(tmp_path / "other", steps=1, batch_size=2, seed=1, eval_n=8, log=lambda _: None)
    with pytest.raises(InvalidInputError, match="encodes differently"):
        ship_painter(pipeline, tmp_path / "bad", tmp_path / "other")


def test_a_half_painter_is_half_the_size_and_paints_as_the_full_one(world_parts, tmp_path):
    from llmga.train.world_painter import assemble
    from llmga.train.world_vae import ship_painter

    pipeline = assemble(tmp_path / "p", world_parts / "clip", world_parts / "vae")
    full, half = ship_painter(pipeline, tmp_path / "full"), ship_painter(pipeline, tmp_path / "half", half=True)

    def size(folder, part):
        return sum(f.stat().st_size for f in (folder / part).glob("*.safetensors"))

    assert size(half, "unet") < 0.6 * size(full, "unet") and size(half, "vae") < 0.6 * size(full, "vae")
    assert size(half, "text_encoder") == size(full, "text_encoder")
    settings = PaintSettings(steps=2, seed=3)
    a, b = (np.asarray(TextToImagePainter.load(f).paint("a red star", settings).images[0], dtype=float)
            for f in (full, half))
    assert np.abs(a - b).mean() < 2.0  # out of 255: float16 storage barely moves the picture
    assert PainterSuite.load(half, lazy=True).prompt_reader is not None  # it still reads world captions


def test_batch_cache_computes_each_key_once_and_keeps_the_latest():
    from llmga.train.world_painter import BatchCache

    calls = []

    def square(keys):
        calls.append(list(keys))
        return torch.tensor([float(k * k) for k in keys])

    cache = BatchCache(square, size=3)
    assert cache([1, 2, 2]).tolist() == [1.0, 4.0, 4.0]
    assert cache([2, 3]).tolist() == [4.0, 9.0]
    assert calls == [[1, 2], [3]]
    cache([4])  # four keys seen, room for three: 1 (used least recently) goes
    assert cache([1, 4]).tolist() == [1.0, 16.0]
    assert calls[-1] == [1]


def test_an_epsilon_painter_continued_as_v_prediction_saves_a_v_prediction_scheduler(world_parts, tmp_path):
    from diffusers import DDIMScheduler

    from llmga.train.world_painter import assemble, new_scheduler

    start = assemble(tmp_path / "eps", world_parts / "clip", world_parts / "vae")
    new_scheduler("epsilon").save_pretrained(start / "scheduler")
    final = train_painter(PainterConfig(out=str(tmp_path / "run"), pipeline=str(start), prediction="v_prediction",
                                        steps=1, batch_size=2, save_every=10, eval_every=10),
                          log=lambda _: None)
    assert DDIMScheduler.from_pretrained(final / "scheduler").config.prediction_type == "v_prediction"
    with pytest.raises(InvalidInputError, match="prediction must be one of"):
        PainterConfig(out=str(tmp_path / "bad"), prediction="sample")




def test_the_text_encoder_is_frozen_unless_asked_to_train_and_then_resumes_with_the_unet(world_parts, tmp_path):
    from transformers import CLIPTextModel

    def text_weights(folder):
        return CLIPTextModel.from_pretrained(folder).state_dict()

    start = text_weights(world_parts / "clip" / "text_encoder")
    common = {"clip": str(world_parts / "clip"), "vae": str(world_parts / "vae"), "batch_size": 4, "save_every": 1,
              "eval_every": 10, "lr": 1e-2, "warmup_steps": 0}
    frozen = train_painter(PainterConfig(out=str(tmp_path / "frozen"), steps=1, **common), log=lambda _: None)
    assert all(torch.equal(start[k], v) for k, v in text_weights(frozen / "text_encoder").items())
    config = PainterConfig(out=str(tmp_path / "tuned"), steps=1, train_text_encoder=True, **common)
    one = text_weights(train_painter(config, log=lambda _: None) / "text_encoder")
    assert any(not torch.equal(start[k], v) for k, v in one.items())
    config.steps = 2
    two = text_weights(train_painter(config, log=lambda _: None) / "text_encoder")
    assert any(not torch.equal(one[k], v) for k, v in two.items())

    def saved_models(run):  # accelerate saves each prepared model of a checkpoint: a resume restores both
        return len(list((tmp_path / run / "checkpoints" / "step-0000001").glob("model*.safetensors")))

    assert (saved_models("frozen"), saved_models("tuned")) == (1, 2)


def test_the_caption_head_reads_every_attribute_of_one_object_detailed_captions_only():
    from llmga.train.world_painter import CaptionHead
    from llmga.world.scene import VOCAB

    one = Scene((Obj("star", "red", "large", "top right"),), Background("night", "snow"))
    two = Scene((Obj("star", "red", "large", "top left"), Obj("circle", "blue", "small", "center")),
                Background("day", "grass"))
    scenes, captions = [one, two], [detailed_caption(one), detailed_caption(two)]
    head = CaptionHead(8)
    states = torch.zeros(2, 5, 8)
    states[0, :, 0] = 1.0
    truth = {"shape": "star", "colour": "red", "size": "large", "position": "top right", "time": "night",
             "terrain": "snow"}
    with torch.no_grad():
        for name, layer in head.heads.items():
            layer.weight.zero_()
            layer.bias.zero_()
            layer.weight[VOCAB[name].index(truth[name]), 0] = 10.0  # feature 0 says each true value
    assert head.loss(states, captions, scenes).item() < 1e-3  # only the one-object caption counts
    assert head.loss(states, ["a red star", captions[1]], scenes).item() == 0.0  # a short caption names none
    with torch.no_grad():
        head.heads["time"].weight.neg_()  # one attribute read wrong
    assert head.loss(states, captions, scenes).item() > 10 / len(VOCAB)
    cell_heavy = CaptionHead(8, cell_weight=5)
    cell_heavy.load_state_dict(head.state_dict())
    with torch.no_grad():  # the time read right again, the cell wrong: counted 5 times of 10
        cell_heavy.heads["time"].weight.neg_()
        cell_heavy.heads["position"].weight.neg_()
    assert 10 * 5 / 10 < cell_heavy.loss(states, captions, scenes).item() < 20 * 5 / 10


def test_object_heads_read_each_object_of_a_caption_from_its_own_words(tmp_path):
    from llmga.train.world_painter import CaptionHead, object_spans
    from llmga.world.scene import VOCAB

    tokenizer = write_world_tokenizer(tmp_path)
    first, second = Obj("star", "red", "large", "top left"), Obj("circle", "blue", "small", "center")
    scene = Scene((first, second), Background("night", "snow"))
    ids = tokenizer(detailed_caption(scene)).input_ids
    spans = object_spans(tokenizer, scene)
    assert [tokenizer.decode(ids[a:b]).strip() for a, b in spans] == [
        "a large red star at the top left", "and a small blue circle at the center"]

    head = CaptionHead(4, tokenizer=tokenizer)
    with torch.no_grad():  # feature 0 says the first object, 1 the second, 2 the background
        for name, layer in head.heads.items():
            layer.weight.zero_()
            layer.bias.zero_()
            if name in ("time", "terrain"):
                layer.weight[VOCAB[name].index(getattr(scene.background, name)), 2] = 40.0
            else:
                layer.weight[VOCAB[name].index(getattr(first, name)), 0] = 40.0
                layer.weight[VOCAB[name].index(getattr(second, name)), 1] = 40.0

    def states(order):
        x = torch.zeros(1, len(ids), 4)
        x[0, :, 2] = 1.0
        for (a, b), feature in zip(spans, order):
            x[0, a:b, feature] = 1.0
        return x

    assert head.loss(states((0, 1)), [detailed_caption(scene)], [scene]).item() < 1e-3
    assert head.loss(states((1, 0)), [detailed_caption(scene)], [scene]).item() > 1.0  # words swapped between objects
    pooled = CaptionHead(4)
    assert pooled.loss(states((0, 1)), [detailed_caption(scene)], [scene]).item() == 0.0  # one-object captions only
    with pytest.raises(InvalidInputError, match="--caption-loss"):
        PainterConfig(out=str(tmp_path / "x"), train_text_encoder=True, object_heads=True)


def test_caption_loss_needs_the_text_encoder_trained_and_its_head_resumes_with_the_run(world_parts, tmp_path):
    with pytest.raises(InvalidInputError, match="--train-text-encoder"):
        PainterConfig(out=str(tmp_path / "x"), caption_loss=1.0)
    config = PainterConfig(out=str(tmp_path / "run"), clip=str(world_parts / "clip"), vae=str(world_parts / "vae"),
                           steps=2, batch_size=4, save_every=1, eval_every=2, eval_n=2, eval_steps=2,
                           train_text_encoder=True, caption_loss=1.0, captions="detailed", max_objects=2,
                           object_heads=True)
    final = train_painter(config, log=lambda _: None)
    step = tmp_path / "run" / "checkpoints" / "step-0000002"
    assert len(list(step.glob("model*.safetensors"))) == 3  # the UNet, the text encoder and the head
    assert not list(final.rglob("*heads*"))
    curve = json.loads((tmp_path / "run" / "curve.jsonl").read_text().splitlines()[0])
    assert 0 <= curve["text_column_separation"]
    assert 0 <= curve["success_two"] <= 1  # two-object scenes are scored when the run trains on them


def test_column_separation_is_zero_for_an_encoder_blind_to_the_column():
    from llmga.train.world_painter import column_separation

    vocabulary = {}

    class Tokens:  # each word its own id
        def __call__(self, captions, return_tensors):
            ids = [vocabulary.setdefault(w, len(vocabulary)) for w in captions[0].replace(",", "").split()]
            return type("T", (), {"input_ids": torch.tensor([ids])})

    def seeing(ids):
        return (torch.nn.functional.one_hot(ids, 64).float(),)

    def blind(ids):  # "right" written as "left"
        return seeing(torch.where(ids == vocabulary.get("right", -1), vocabulary.get("left", -1), ids))

    assert column_separation(seeing, Tokens()) > 0.1
    assert column_separation(blind, Tokens()) == 0.0
