"""The captioner: detailed descriptions asked once, cached on disk, resumed after an interruption."""

from dataclasses import replace

import pytest
from PIL import Image

from llmga.data import AnswerCache, BrokenSampleError, Captioner, Problems, build_refinement, open_source
from tests.data.support import ScriptedBrain, describing_brain, tiny_coco


def samples_of(tmp_path, n=4):
    captions, images = tiny_coco(tmp_path, n=n)
    return list(open_source(captions, images=images).samples(show_progress=False))


def test_the_description_sees_the_image_and_the_caption_and_is_cleaned(tmp_path):
    brain = describing_brain()
    sample = samples_of(tmp_path, 1)[0]
    assert Captioner(brain).describe(sample) == "A detailed view: A small red thing 0. (32x24) Soft light."
    messages, images = brain.requests[0].messages, list(brain.requests[0].images)
    assert images == [sample.image] and messages[1]["content"][0] == {"type": "image"}


def test_nothing_is_asked_twice_even_by_a_new_process(tmp_path):
    sample = samples_of(tmp_path, 1)[0]
    brain = describing_brain()
    first = Captioner(brain, AnswerCache(tmp_path / "cache.sqlite"))
    text = first.describe(sample)
    assert first.describe(sample) == text and len(brain.requests) == 1 and first.reused == 1
    again = Captioner(brain, AnswerCache(tmp_path / "cache.sqlite"))  # as a later run would
    assert again.describe(sample) == text and len(brain.requests) == 1


def test_the_key_is_image_caption_and_captioner(tmp_path):
    sample = samples_of(tmp_path, 1)[0]
    brain = describing_brain()
    cache = AnswerCache(tmp_path / "cache.sqlite")
    Captioner(brain, cache).describe(sample)
    Captioner(brain, cache).describe(replace(sample, captions=("Another caption.",)))
    Captioner(brain, cache).describe(replace(sample, image=Image.new("RGB", (32, 24), "white")))
    Captioner(brain, cache, identity="another-captioner").describe(sample)
    Captioner(brain, cache).describe(
        replace(sample, id="renamed", image=sample.image.copy())
    )  # same pixels: cached
    assert len(brain.requests) == 4


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    captions, images = tiny_coco(tmp_path, n=4)
    source = open_source(captions, images=images)
    cache_path = tmp_path / "cache.sqlite"
    with pytest.raises(KeyboardInterrupt):
        build_refinement(
            source.samples(show_progress=False),
            Captioner(describing_brain(fail=KeyboardInterrupt(), fail_after=2), AnswerCache(cache_path)),
            tmp_path / "out",
        )
    assert not (tmp_path / "out" / "data.json").exists()
    brain = describing_brain()
    report = build_refinement(
        source.samples(show_progress=False), Captioner(brain, AnswerCache(cache_path)), tmp_path / "out"
    )
    assert len(brain.requests) == 2 and report.written == 4
    assert report.counts["descriptions asked"] == 2 and report.counts["descriptions from cache"] == 2


def test_a_text_only_captioner_reads_the_caption_and_the_build_says_so(tmp_path):
    captions, images = tiny_coco(tmp_path, n=1)
    brain = describing_brain(multimodal=False)
    report = build_refinement(
        open_source(captions, images=images).samples(show_progress=False), Captioner(brain), tmp_path / "out"
    )
    assert list(brain.requests[0].images) == [] and isinstance(brain.requests[0].messages[1]["content"], str)
    assert any("text-only" in note for note in report.notes)


def test_an_empty_description_is_a_broken_sample_and_is_asked_again_later(tmp_path):
    sample = samples_of(tmp_path, 1)[0]
    brain = ScriptedBrain("<|im_end|>")
    captioner = Captioner(brain, AnswerCache(tmp_path / "c.sqlite"))
    with pytest.raises(BrokenSampleError, match="no description"):
        captioner.describe(sample)
    problems = Problems("skip")
    report = build_refinement([sample], captioner, tmp_path / "out", problems=problems)
    assert len(brain.requests) == 2 and report.written == 0 and report.skipped == 1
    assert "sample 000000000000" not in problems.skipped[0][1] and "no description" in problems.skipped[0][1]


def test_a_real_tiny_llava_captions_through_its_processor(tiny, tmp_path):
    from llmga.brain import load_brain
    from llmga.data import build_similar
    from llmga.settings import SamplingSettings

    brain = load_brain(str(tiny.llava()))
    captions, images = tiny_coco(tmp_path, n=2)
    captioner = Captioner(brain, settings=SamplingSettings(max_new_tokens=8, temperature=0))
    report = build_similar(
        open_source(captions, images=images).samples(show_progress=False), captioner, tmp_path / "out"
    )
    assert captioner.asked == 2 and report.written + report.skipped == 2
