"""Cache keys name a model by what it is: a model retrained in place, or a shipped one replaced, is new."""

from llmga import registry
from llmga.eval.runs import identity


def test_a_model_retrained_in_place_gets_a_new_key(tmp_path):
    folder = tmp_path / "painter"
    (folder / "unet").mkdir(parents=True)
    weights = folder / "unet" / "model.safetensors"
    weights.write_bytes(b"a" * 300_000)
    before = identity(str(folder))
    assert before.startswith(f"{folder}:{folder.resolve()}:") and identity(str(folder)) == before
    (folder / "README.md").write_text("# painter\n\nA card, edited later.\n")
    assert identity(str(folder)) == before  # a model card changes no model
    weights.write_bytes(b"a" * 299_999 + b"b")  # same size, one byte changed at the end
    assert identity(str(folder)) != before


def test_shipped_names_are_fingerprinted_and_unknown_specs_stay_as_given():
    key = identity("world-restore")
    assert key.startswith(f"world-restore:{registry.shipped('world-restore', registry.RESTORER).resolve()}:")
    assert identity("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1" and identity(None) is None
