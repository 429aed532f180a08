"""Averaging LoRA adapters: the mean weight change at the adapters' rank, from the command as users run it."""

import json

import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from llmga.cli import main
from llmga.train.adapter_average import average_adapters

MODULE = "base_model.model.model.layers.0.self_attn.q_proj"


def write_adapter(folder, b, a, rank=2, modules=("q_proj", "v_proj")):
    folder.mkdir(parents=True)
    save_file({f"{MODULE}.lora_A.weight": a, f"{MODULE}.lora_B.weight": b}, folder / "adapter_model.safetensors")
    config = {"base_model_name_or_path": "gemma3", "r": rank, "lora_alpha": 2 * rank, "target_modules": list(modules)}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    (folder / "llmga_base.json").write_text('{"base": "gemma3"}')
    return folder


def change(folder):
    weights = load_file(folder / "adapter_model.safetensors")
    return weights[f"{MODULE}.lora_B.weight"] @ weights[f"{MODULE}.lora_A.weight"]


def test_the_average_is_the_mean_weight_change_and_loads_as_its_parts_do(tmp_path):
    torch.manual_seed(0)
    shared_a = torch.randn(2, 6)
    first = write_adapter(tmp_path / "one", torch.randn(5, 2), shared_a)
    second = write_adapter(tmp_path / "two", torch.randn(5, 2), shared_a, modules=("v_proj", "q_proj"))
    out, kept = average_adapters([first, second], tmp_path / "soup")
    assert kept > 0.9999  # both changes share their rows: the mean fits the rank
    assert torch.allclose(change(out), (change(first) + change(second)) / 2, atol=1e-5)
    assert load_file(out / "adapter_model.safetensors")[f"{MODULE}.lora_A.weight"].shape == (2, 6)
    assert (out / "llmga_base.json").read_text() == '{"base": "gemma3"}'


def test_a_mean_beyond_the_rank_keeps_its_leading_directions_and_says_how_much(tmp_path):
    torch.manual_seed(1)
    parts = [write_adapter(tmp_path / str(i), torch.randn(5, 2), torch.randn(2, 6)) for i in range(3)]
    out, kept = average_adapters(parts, tmp_path / "soup")
    assert 0.5 < kept < 1.0
    mean = sum(change(p) for p in parts) / 3
    u, s, vh = torch.linalg.svd(mean)
    assert torch.allclose(change(out), (u[:, :2] * s[:2]) @ vh[:2], atol=1e-5)


def llmga(*args):
    """``llmga ARGS`` as the script runs it: the exit code and everything it wrote."""
    with CliRunner().isolation() as (out, err, _):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exit:
            code = exit.code
        return code, out.getvalue().decode() + err.getvalue().decode()


def test_the_command_refuses_adapters_that_do_not_match_or_are_not_adapters(tmp_path):
    a = write_adapter(tmp_path / "a", torch.ones(5, 2), torch.ones(2, 6))
    b = write_adapter(tmp_path / "b", torch.ones(5, 4), torch.ones(4, 6), rank=4)
    code, said = llmga("train", "average", "--adapter", a, "--adapter", b, "--out", tmp_path / "o")
    assert code == 2 and "differ in base, rank, alpha or modules" in said and len(said.strip().splitlines()) == 1
    code, said = llmga("train", "average", "--adapter", a, "--adapter", tmp_path, "--out", tmp_path / "o")
    assert code == 2 and "is not a LoRA adapter folder" in said
    code, said = llmga("train", "average", "--adapter", a, "--adapter", a, "--out", tmp_path / "o")
    assert code == 0 and "keeps 100.0000% of the mean change" in said
