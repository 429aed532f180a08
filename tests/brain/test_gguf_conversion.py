"""A GGUF model converted once into transformers' form (``materialize_gguf``)."""

import torch

from llmga.checkpoints import smollm2_gguf


def test_a_gguf_file_is_parsed_once_to_convert_it_and_the_copy_runs(tmp_path, monkeypatch):
    import gguf

    from llmga.brain.transformers_brain import TransformersBrain, materialize_gguf

    parsed = []

    class CountingReader(gguf.GGUFReader):
        def __init__(self, path, *args, **kwargs):
            parsed.append(path)
            super().__init__(path, *args, **kwargs)

    monkeypatch.setattr(gguf, "GGUFReader", CountingReader)
    folder = materialize_gguf(smollm2_gguf(), tmp_path)
    assert len(parsed) == 1  # transformers reads it three times: config, tokenizer, weights
    assert gguf.GGUFReader is CountingReader  # put back as it was

    brain = TransformersBrain.load_causal(folder)
    ids = brain.tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        top = brain.model(ids).logits[0, -1].argmax()
    assert brain.tokenizer.decode(top).strip() == "Paris"
