"""Stage-1 training on tiny models: labels, LoRA and full runs, resume, broken samples."""

import json
import shutil
from types import SimpleNamespace

import pytest
from PIL import Image
from safetensors import safe_open

from llmga.assistant import Assistant
from llmga.brain import load_brain
from llmga.errors import InvalidInputError
from llmga.settings import SamplingSettings
from llmga.train.chat_data import IGNORE, ChatEncoder
from llmga.train.stage1 import Stage1Config, answer_loss, train_stage1
from llmga.train.trainable import load_trainable, save_adapter

ANSWER = "Sure! <gen_img>a red fox in the snow</gen_img>"


def write_data(path, records):
    path.write_text(json.dumps(records))
    return str(path)


def refine_record(i, request="draw a red fox", answer=ANSWER):
    return {"id": f"s{i}", "conversations": [{"from": "human", "value": request}, {"from": "gpt", "value": answer}]}


def learned_text(tok, sample):
    """The text of the tokens ``sample`` trains on."""
    return tok.decode([t for t, label in zip(sample.input_ids.tolist(), sample.labels.tolist()) if label != IGNORE])


def test_labels_cover_only_the_assistant_turns(tiny, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny.causal_lm())
    record = {"id": "x", "conversations": [
        {"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello there"},
        {"from": "human", "value": "draw a fox"}, {"from": "gpt", "value": ANSWER}]}
    sample = ChatEncoder(tok).encode(record, tmp_path)
    assert learned_text(tok, sample) == f"hello there<|im_end|>\n{ANSWER}<|im_end|>\n"
    everything = tok.decode(sample.input_ids.tolist())
    assert everything.startswith("<|im_start|>system\nYou are LLMGA")  # the same system prompt as serving
    last_only = ChatEncoder(tok).encode({**record, "train_on": "last"}, tmp_path)
    assert learned_text(tok, last_only) == f"{ANSWER}<|im_end|>\n"
    assert last_only.input_ids.tolist() == sample.input_ids.tolist()


def test_the_loss_over_answer_positions_alone_is_the_models_own_loss(tiny, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmga.train.chat_data import collate

    tok = AutoTokenizer.from_pretrained(tiny.causal_lm())
    model = AutoModelForCausalLM.from_pretrained(tiny.causal_lm())
    encoder = ChatEncoder(tok)
    samples = [encoder.encode(refine_record(0), tmp_path),
               encoder.encode(refine_record(1, "draw a red fox on a hill under a moon, please", "ok"), tmp_path)]
    batch = collate(samples, tok.pad_token_id)
    with torch.no_grad():
        assert torch.allclose(answer_loss(model, batch), model(**batch).loss, atol=1e-6)


def test_llava_sample_carries_the_image(tiny, tmp_path):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny.llava())
    Image.new("RGB", (40, 40), "blue").save(tmp_path / "a.png")
    record = {"id": "v", "image": "a.png", "conversations": [
        {"from": "human", "value": "<image>\nGenerate a similar image."}, {"from": "gpt", "value": ANSWER}]}
    sample = ChatEncoder(processor.tokenizer, processor).encode(record, tmp_path)
    assert sample.pixel_values is not None and sample.pixel_values.shape[0] == 1
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert (sample.input_ids == image_id).sum() == 16
    assert (sample.labels[sample.input_ids == image_id] == IGNORE).all()


def test_lora_run_teaches_the_format_and_the_result_loads_as_a_brain(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMGA_CACHE", str(tmp_path / "cache"))
    data = write_data(tmp_path / "d.json", [refine_record(i) for i in range(4)])
    final = train_stage1(Stage1Config(model=str(tiny.causal_lm()), data=[data],
                                      out=str(tmp_path / "run"), lora=True, lora_rank=8, max_steps=60,
                                      batch_size=4, lr=1e-2, warmup_steps=0, save_every=20))
    greedy = SamplingSettings(temperature=0, max_new_tokens=30)
    adapter = final / "adapter"
    # merged; base + small adapter (merged by peft and kept); the same adapter again (read from the cache)
    for brain in (load_brain(str(final)), load_brain(str(adapter)), load_brain(str(adapter))):
        result = Assistant(brain, sampling=greedy).chat("draw a red fox")
        assert result.reply.prompts == ["a red fox in the snow"]
    merged = tmp_path / "cache" / "merged"
    assert len(list(merged.iterdir())) == 1
    from safetensors.torch import load_file, save_file

    weights = load_file(adapter / "adapter_model.safetensors")  # the adapter changed in place: merged anew
    save_file({k: v * 0 if "lora_B" in k else v for k, v in weights.items()}, adapter / "adapter_model.safetensors")
    result = Assistant(load_brain(str(adapter)), sampling=greedy).chat("draw a red fox")
    assert result.reply.prompts != ["a red fox in the snow"] and len(list(merged.iterdir())) == 2
    assert (final / "adapter" / "adapter_model.safetensors").stat().st_size < (final / "model.safetensors").stat().st_size
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-0000020", "step-0000040", "step-0000060"]
    with safe_open(str(tmp_path / "run" / "checkpoints" / "step-0000060" / "model.safetensors"), "pt") as file:
        assert file.keys() and all("lora_" in key for key in file.keys())  # the adapter, not the frozen base
    assert list((tmp_path / "run" / "logs").rglob("events.out.tfevents*"))

    from safetensors import SafetensorError
    from transformers import PreTrainedModel

    def disk_full(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    # a full disk keeps no merged copy, and the brain is merged and answers all the same
    monkeypatch.setenv("LLMGA_CACHE", str(tmp_path / "full"))
    monkeypatch.setattr(PreTrainedModel, "save_pretrained", disk_full)
    assert Assistant(load_brain(str(adapter)), sampling=greedy).chat("draw a red fox").reply.prompts == result.reply.prompts
    assert list((tmp_path / "full" / "merged").iterdir()) == []
    monkeypatch.undo()  # a disk that would keep under 2 GB free beside the copy keeps none either
    monkeypatch.setenv("LLMGA_CACHE", str(tmp_path / "nearly"))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(total=10 << 30, used=9 << 30, free=1 << 30))
    assert Assistant(load_brain(str(adapter)), sampling=greedy).chat("draw a red fox").reply.prompts == result.reply.prompts
    assert list((tmp_path / "nearly" / "merged").iterdir()) == []


def test_a_trained_adapter_is_continued_from_its_weights_and_the_result_names_its_base(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMGA_CACHE", str(tmp_path / "cache"))
    data = write_data(tmp_path / "d.json", [refine_record(i) for i in range(4)])
    first = train_stage1(Stage1Config(model=str(tiny.causal_lm()), data=[data], out=str(tmp_path / "first"),
                                      lora=True, lora_rank=8, max_steps=60, batch_size=4, lr=1e-2, warmup_steps=0))
    bundle = load_trainable(str(first / "adapter"), lora=True, rank=32)
    trained = [name for name, p in bundle.model.named_parameters() if p.requires_grad]
    assert bundle.spec == str(tiny.causal_lm()) and trained and all("lora_" in name for name in trained)
    full = load_trainable(str(first / "adapter"), lora=False).model  # merged in, every weight trains
    assert not hasattr(full, "peft_config") and all(p.requires_grad for p in full.parameters())
    # one more step at a tiny rate: a new adapter would know nothing yet, a continued one answers as before
    more = train_stage1(Stage1Config(model=str(first / "adapter"), data=[data], out=str(tmp_path / "more"),
                                     lora=True, max_steps=1, batch_size=4, lr=1e-6, warmup_steps=0))
    assert json.loads((more / "adapter" / "llmga_base.json").read_text())["base"] == str(tiny.causal_lm())
    greedy = SamplingSettings(temperature=0, max_new_tokens=30)
    assert Assistant(load_brain(str(more / "adapter")), sampling=greedy).chat("draw a red fox").reply.prompts == [
        "a red fox in the snow"]


def test_a_base_given_by_a_relative_path_is_named_by_its_absolute_one(tiny, tmp_path, monkeypatch):
    """What an adapter records as its base must name the same folder when read from anywhere else."""
    lm = tiny.causal_lm()
    monkeypatch.chdir(lm.parent)
    bundle = load_trainable(lm.name, lora=True, rank=4)
    save_adapter(bundle.model, tmp_path / "adapter", bundle.spec)
    assert json.loads((tmp_path / "adapter" / "llmga_base.json").read_text())["base"] == str(lm.resolve())
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        lm.resolve())


def test_projector_only_trains_the_projector_and_leaves_the_language_model_as_it_was(tiny, tmp_path, capsys):
    import torch
    from safetensors.torch import load_file

    Image.new("RGB", (40, 40), "blue").save(tmp_path / "a.png")
    pictured = {"id": "v", "image": "a.png", "conversations": [
        {"from": "human", "value": "<image>\nGenerate a similar image."}, {"from": "gpt", "value": ANSWER}]}
    data = write_data(tmp_path / "d.json", [pictured, refine_record(1)])
    final = train_stage1(Stage1Config(model=str(tiny.llava()), data=[data], out=str(tmp_path / "run"), lora=True,
                                      projector_only=True, max_steps=3, batch_size=2, lr=1e-2, warmup_steps=0))
    assert "1 samples with a picture, 1 left out" in capsys.readouterr().out  # text alone never reaches it
    before, after = load_file(tiny.llava() / "model.safetensors"), load_file(final / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("multi_modal_projector" in k for k in changed)
    with pytest.raises(InvalidInputError, match="text-only"):
        load_trainable(str(tiny.causal_lm()), lora=True, projector_only=True)
    with pytest.raises(InvalidInputError, match="no usable training samples with a picture"):
        train_stage1(Stage1Config(model=str(tiny.llava()), data=[write_data(tmp_path / "t.json", [refine_record(0)])],
                                  out=str(tmp_path / "text"), projector_only=True, max_steps=1))


def test_a_run_resumes_from_its_latest_checkpoint(tiny, tmp_path, capsys):
    data = write_data(tmp_path / "d.json", [refine_record(i) for i in range(4)])
    lm = str(tiny.causal_lm())
    config = dict(model=lm, data=[data], out=str(tmp_path / "run"), lora=False, batch_size=2, save_every=2, lr=1e-3)
    train_stage1(Stage1Config(max_steps=2, **config))
    train_stage1(Stage1Config(max_steps=4, **config))
    assert "resumed from" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-0000002", "step-0000004"]


def test_broken_samples_are_named_and_skipped_or_stop_the_run(tiny, tmp_path, capsys):
    records = [refine_record(0), {"id": "bad-turns", "conversations": "nope"},
               {"id": "no-image", "image": "missing.png", "conversations": [
                   {"from": "human", "value": "<image>\nx"}, {"from": "gpt", "value": "y"}]}]
    data = write_data(tmp_path / "d.json", records)
    lm = str(tiny.causal_lm())
    with pytest.raises(InvalidInputError, match="sample bad-turns"):
        train_stage1(Stage1Config(model=lm, data=[data], out=str(tmp_path / "a"), on_error="stop", max_steps=1))
    train_stage1(Stage1Config(model=lm, data=[data], out=str(tmp_path / "b"), max_steps=1))
    assert "2 samples, 1 skipped" in capsys.readouterr().out  # text-only: the image placeholder is dropped


def test_train_command_runs_a_short_lora_run(tiny, tmp_path):
    from typer.testing import CliRunner

    from llmga.cli import app

    data = write_data(tmp_path / "d.json", [refine_record(i) for i in range(2)])
    result = CliRunner().invoke(app, ["train", "stage1", "--model", str(tiny.causal_lm()),
                                      "--data", data, "--out", str(tmp_path / "run"), "--max-steps", "2",
                                      "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert load_brain(str(tmp_path / "run" / "final"))


def test_a_brain_trained_under_its_own_system_prompt_is_asked_under_it(tiny, tmp_path):
    data = write_data(tmp_path / "d.json", [refine_record(0)])
    final = train_stage1(Stage1Config(model=str(tiny.causal_lm()), data=[data], out=str(tmp_path / "run"),
                                      lora=True, max_steps=1, batch_size=1, system_prompt="Draw shapes only."))
    for folder in (final, final / "adapter"):
        brain = load_brain(str(folder))
        assert brain.system_prompt == "Draw shapes only."
        messages, _ = Assistant(brain).conversation.to_messages(False)
        assert messages[0] == {"role": "system", "content": "Draw shapes only."}
    assert load_brain(str(tiny.causal_lm())).system_prompt is None  # ours, then


def test_length_grouped_batches_cover_every_sample_once_a_pass_with_little_padding():
    import random

    from llmga.train.chat_data import LengthGroupedBatches

    lengths = [random.Random(i).randint(10, 300) for i in range(1000)]
    sampler = LengthGroupedBatches(lengths, batch_size=8, seed=0)
    first, second = list(sampler), list(sampler)
    assert sorted(i for batch in first for i in batch) == list(range(1000)) and len(first) == len(sampler) == 125
    assert first != second  # each pass is shuffled anew
    padded = sum(8 * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in first)
    assert padded / sum(lengths) < 0.05  # shuffled batches of these lengths pad 73%


@pytest.mark.parametrize("model", ["causal_lm", "llava"])  # text-only batches leave the LLaVA projector unused
def test_two_processes_train_to_the_end_and_save_the_model(tiny, tmp_path, model):
    import os
    import subprocess
    import sys

    data = write_data(tmp_path / "d.json", [refine_record(i) for i in range(4)])
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "llmga",
                           "train", "stage1", "--model", str(getattr(tiny, model)()), "--data", data, "--out",
                           str(tmp_path / "run"), "--lora", "--max-steps", "2", "--batch-size", "1"],
                          env=dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1"), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run" / "final").is_dir()
