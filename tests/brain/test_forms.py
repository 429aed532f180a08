"""Keeping what a brain writes inside a generation tag to a form (:mod:`llmga.brain.forms`)."""

import numpy as np
import pytest

from llmga.brain import BrainRequest, complete, load_brain
from llmga.brain.forms import TOP, fits, keep_to_form
from llmga.checkpoints import smollm2_gguf
from llmga.protocol import OPEN_TAG, parse_reply
from llmga.settings import RuntimeSettings, SamplingSettings
from llmga.world.captions import CAPTION_FORM

#: a toy vocabulary: token i spells VOCAB[i] ("" is an end-of-turn token, which spells nothing)
VOCAB = ["Sure. ", '<gen_img task="generate">', "a large red star", " left", " to its left", " at the center",
         ", on sand under a night sky", "</gen_img>", "", " middle", " and a small blue circle"]


def text_of(tokens):
    return "".join(VOCAB[t] for t in tokens)


def logits_favouring(*order):
    """Logits whose likeliest tokens are ``order``, first to last (every other token far below)."""
    logits = np.full(len(VOCAB), -10.0, dtype=np.float32)
    logits[list(order)] = np.arange(len(order), 0, -1, dtype=np.float32)
    return logits


def test_a_prompt_fits_while_it_can_still_become_a_whole_caption_and_then_only_closes():
    assert fits(CAPTION_FORM, "a large red star at the ce")
    assert not fits(CAPTION_FORM, "a large red star left")
    assert not fits(CAPTION_FORM, "a large red star at the middle middle")
    assert fits(CAPTION_FORM, "a large red star at the center, on sand under a night sky</gen")
    assert not fits(CAPTION_FORM, "a large red star at the center</gen_img>")  # closed before it was whole


def test_outside_a_tag_nothing_changes():
    logits = logits_favouring(3, 0)
    assert keep_to_form(CAPTION_FORM, [0], text_of, logits.copy()).tolist() == logits.tolist()


def test_inside_a_tag_the_likeliest_token_that_keeps_the_form_is_left_the_only_chance():
    written = [0, 1, 2, 5, 10]  # "... a large red star at the center and a small blue circle"
    kept = keep_to_form(CAPTION_FORM, written, text_of, logits_favouring(3, 8, 9, 4))
    assert np.isfinite(kept).nonzero()[0].tolist() == [4, 5]  # " left", the end and " middle" do not fit
    assert kept.argmax() == 4


def test_the_tag_closes_only_after_a_whole_caption_and_an_unfittable_step_is_left_alone():
    whole = [1, 2, 5, 6]
    assert keep_to_form(CAPTION_FORM, whole, text_of, logits_favouring(8, 7)).argmax() == 7
    after_a_slip = logits_favouring(3, 9)  # "a large red star left": no token mends it
    assert keep_to_form(CAPTION_FORM, [1, 2, 3], text_of, after_a_slip.copy()).tolist() == after_a_slip.tolist()


def test_a_prefill_may_open_the_tag():
    kept = keep_to_form(CAPTION_FORM, [2], text_of, logits_favouring(3, 5), prefill=OPEN_TAG)
    assert kept.argmax() == 5


def test_only_the_likeliest_tokens_are_looked_at():
    vocabulary = ["x"] * (TOP + 10) + [" at the center"]
    logits = np.zeros(len(vocabulary), dtype=np.float32)
    logits[-1] = -5.0  # fits, but below TOP tokens that do not

    def spell(tokens):
        return "".join([OPEN_TAG, "a large red star", *(vocabulary[t] for t in tokens)])

    assert keep_to_form(CAPTION_FORM, [], spell, logits.copy()).tolist() == logits.tolist()


@pytest.mark.parametrize("engine", ["llama.cpp", "transformers"])
def test_a_local_brain_keeps_its_prompt_to_the_form(engine):
    brain = load_brain(str(smollm2_gguf()), runtime=RuntimeSettings(brain_device="cpu")) if engine == "llama.cpp" \
        else load_brain("smollm2")
    messages = [{"role": "user", "content": "Describe a picture of a red star on a beach at night, in the form "
                 "'a small blue circle at the center, on grass under a day sky'."}]
    settings = SamplingSettings(temperature=0, max_new_tokens=40)
    start = OPEN_TAG + "a large red star"

    def prompt(form):
        raw = complete(brain, BrainRequest(messages, settings=settings, prefill=start, prompt_form=form))
        return parse_reply(raw, brain.end_markers).prompts

    assert not any(CAPTION_FORM.fullmatch(p) for p in prompt(None))  # SmolLM2 never learnt the world's captions
    [kept] = prompt(CAPTION_FORM)
    assert CAPTION_FORM.fullmatch(kept), kept
