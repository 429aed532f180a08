"""``llmga train gill`` on the tiny stacks: what is learnt where, and GILL's mapper ablation on cached states."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmga.embedding.embedding_brain import load_control_brain
from llmga.embedding.heads import ControlConfig
from llmga.embedding.tokens import add_image_tokens
from llmga.train.chat_data import IGNORE, ChatEncoder, load_records
from llmga.train.gill import MapperConfig, collate_control, control_samples, gather_groups, train_mappers
from tests.embedding.support import CAPTIONS, train, write_records


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_records(tmp_path_factory.mktemp("gill-records") / "train.json", n=4)


def test_the_img_tokens_stand_for_the_prompts_and_only_img1_is_learnt(tiny, data):
    tokenizer = AutoTokenizer.from_pretrained(tiny.causal_lm())
    model = AutoModelForCausalLM.from_pretrained(tiny.causal_lm())
    config = ControlConfig(base="lm", hidden=32, width=32, tokens=4)
    ids = add_image_tokens(tokenizer, model, config)
    samples, problems = control_samples(load_records([data]), ChatEncoder(tokenizer), config, ids)
    assert problems == [] and [s.prompts for s in samples[:2]] == [[CAPTIONS[0]], [CAPTIONS[1]]]
    first = samples[0]
    [start] = first.starts
    assert first.sample.input_ids[start : start + 4].tolist() == ids
    assert first.sample.labels[start] == ids[0]  # the model learns to begin an image
    assert (first.sample.labels[start + 1 : start + 4] == IGNORE).all()  # the rest is forced at inference
    assert samples[-1].prompts == [] and samples[-1].starts == []  # a plain answer has no image

    batch = collate_control(samples[:2], pad_id=0)
    hidden = torch.randn(2, batch["input_ids"].shape[1], 32)
    states, embedded = gather_groups(model, hidden, batch["input_ids"], batch["group_rows"], batch["group_starts"], 4)
    assert torch.equal(states[1], hidden[1, samples[1].starts[0] : samples[1].starts[0] + 4])
    assert torch.equal(embedded[0], model.get_input_embeddings().weight[ids])


def test_the_mapper_ablation_trains_each_variant_on_the_same_states_and_resumes(tiny, data, tmp_path):
    model = train(tiny, data, tmp_path / "run", lora=False, style="bare", mapper="mlp", retrieval_clip="world-clip")
    config = MapperConfig(model=str(model), data=[str(data)], out=str(tmp_path / "ablation"),
                          mappers=("linear", "gillmapper"), steps=5, batch_size=2)
    lines = []
    results = train_mappers(config, log_line=lines.append)
    assert set(results) == {"linear", "gillmapper"} and all(r["held_out_mse"] > 0 for r in results.values())
    assert json.loads((tmp_path / "ablation" / "mappers.json").read_text()) == results
    brain = load_control_brain(tmp_path / "ablation" / "gillmapper")  # each variant is a whole model
    assert brain.config.mapper == "gillmapper" and brain.heads.retrieval is not None
    original = load_control_brain(model)
    assert torch.equal(brain.heads.retrieval.weight, original.heads.retrieval.weight)  # only the mapper changes
    lines.clear()
    train_mappers(config, log_line=lines.append)
    assert lines == []  # done variants and the state cache are reused


def test_a_shipped_copy_has_float16_heads_and_loads_as_the_model_did(tiny, data, tmp_path):
    from safetensors.torch import load_file

    from llmga.train.gill import ship_control

    model = train(tiny, data, tmp_path / "run", mapper="linear")
    shipped = ship_control(model, tmp_path / "shipped")
    assert all(t.dtype == torch.float16 for t in load_file(shipped / "heads.safetensors").values())
    brain, original = load_control_brain(shipped), load_control_brain(model)
    states = torch.randn(1, 8, 32)
    torch.testing.assert_close(brain.heads.embeddings(states, states)[0], original.heads.embeddings(states, states)[0],
                               atol=2e-2, rtol=2e-2)


def test_calibration_sets_the_image_bias_that_best_separates_requests_and_the_brain_uses_it(tiny, data, tmp_path):
    import math

    from llmga.train.gill import calibrate_image_bias

    model = train(tiny, data, tmp_path / "run", lora=False, style="bare", mapper="linear")
    found = calibrate_image_bias(model, [str(data)], n=10)
    assert found["records"] == 5 and 0.6 <= found["accuracy"] <= 1.0  # 4 requests, 1 question: at worst all "image"
    brain = load_control_brain(model)
    assert brain.config.image_bias == found["image_bias"] and math.isfinite(found["image_bias"])
