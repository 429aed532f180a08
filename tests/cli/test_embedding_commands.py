"""The embedding-control commands as a user runs them: llmga index build, generate --control embedding,
train gill."""

from llmga.world.render import render
from llmga.world.scene import Background, Obj, Scene
from tests.cli.test_assistant_commands import SMALL, llmga, saved_paths
from tests.embedding.support import write_records


def test_index_build_names_the_broken_pictures_it_skips(tmp_path):
    render(Scene((Obj("star", "red", "large", "center"),), Background("day", "grass"))).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"broken")
    run = llmga("index", "build", tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"indexed 1 pictures of {tmp_path}" in run.stdout and "skipped 1 unreadable" in run.stdout
    assert f"skipped {tmp_path / 'b.png'}" in run.stderr
    found = llmga("index", "search", tmp_path, "a large red star at the center", "--k", "1")
    assert found.returncode == 0 and found.stdout.strip().endswith(str(tmp_path / "a.png"))


def test_train_then_generate_with_embedding_control(tiny, tmp_path):
    data = write_records(tmp_path / "train.json", n=4)
    trained = llmga("train", "gill", "--model", tiny.causal_lm(), "--painter", tiny.sd(), "--data", data,
                    "--out", tmp_path / "run", "--max-steps", "1", "--batch-size", "2", "--mapper", "linear",
                    "--threads", "1")
    assert trained.returncode == 0, trained.stderr
    model = tmp_path / "run" / "final"
    run = llmga("generate", "a red star", "--control", "embedding", "--control-model", model, "--painter",
                tiny.sd(), "--out", tmp_path / "out", "--max-new-tokens", "24", "--temperature", "0", *SMALL)
    assert run.returncode == 0, run.stderr
    assert "[generation prompt] [IMG1][IMG2]" in run.stdout and "painted from the [IMG] embeddings" in run.stdout
    assert len(saved_paths(run.stdout)) == 1


def test_embedding_control_without_a_model_or_with_an_unknown_control_is_refused(tiny):
    run = llmga("generate", "a red star", "--control", "embedding", "--painter", tiny.sd())
    assert run.returncode == 2 and "--control embedding needs an embedding-control model" in run.stderr
    run = llmga("generate", "a red star", "--control", "telepathy", "--painter", tiny.sd())
    assert run.returncode == 2 and "unknown control 'telepathy'" in run.stderr
