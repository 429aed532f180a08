"""The four stage-1 builders: LLaVA-format output, files, determinism by seed, counts."""

import json

import numpy as np
import pytest
from PIL import Image

from llmga.data import (
    BrokenSampleError,
    Captioner,
    EditPairWriter,
    Problems,
    build_editing,
    build_inpainting,
    build_refinement,
    build_similar,
    open_source,
    read_records,
    validate_record,
)
from llmga.data.templates import DESCRIBE_CAPTION, GENERATE_FROM_CAPTION, INPAINT, OUTPAINT, OUTPAINT_TOWARD
from llmga.protocol import OPEN_TAG, parse_reply
from tests.data.support import ScriptedBrain, describing_brain, tiny_coco, user_text


@pytest.fixture
def samples(tmp_path):
    captions, images = tiny_coco(tmp_path / "src", n=6)
    return list(open_source(captions, images=images).samples(show_progress=False))


def check_dataset(out):
    """The records are valid LLaVA-format and every file they name exists."""
    records = read_records(out / "data.json")
    for record in records:
        validate_record(record)
        for key in ("image", "mask"):
            if key in record:
                assert (out / record[key]).is_file()
    return records


def test_refinement_pairs_a_short_caption_with_a_tagged_or_plain_description(samples, tmp_path):
    report = build_refinement(samples, Captioner(describing_brain()), tmp_path / "out", seed=0)
    records = check_dataset(tmp_path / "out")
    assert report.written == len(records) == 6 and report.counts["generate"] + report.counts["describe"] == 6
    assert report.counts["generate"] and report.counts["describe"]
    for record, sample in zip(records, samples, strict=True):
        human, gpt = (turn["value"] for turn in record["conversations"])
        assert "image" not in record and "<image>" not in human
        assert any(caption in human for caption in (sample.captions[0], "A thing number"))
        description = f"A detailed view: {sample.caption} (32x24) Soft light."
        if OPEN_TAG in gpt:
            assert parse_reply(gpt).prompts == [description] and parse_reply(gpt).text
            assert any(
                human.replace(c, "{caption}") in GENERATE_FROM_CAPTION.templates for c in _sentences(sample)
            )
        else:
            assert gpt == description
            assert any(
                human.replace(c, "{caption}") in DESCRIBE_CAPTION.templates for c in _sentences(sample)
            )


def _sentences(sample):
    return [c[0].upper() + c[1:] + ("" if c.endswith(".") else ".") for c in sample.captions]


def test_a_build_depends_on_the_seed_only_not_on_sample_order(samples, tmp_path):
    brain = describing_brain()
    build_refinement(samples, Captioner(brain), tmp_path / "a", seed=3)
    build_refinement(samples, Captioner(brain), tmp_path / "b", seed=3)
    build_refinement(samples[::-1], Captioner(brain), tmp_path / "c", seed=3)
    build_refinement(samples, Captioner(brain), tmp_path / "d", seed=4)
    a = (tmp_path / "a" / "data.json").read_text()
    assert a == (tmp_path / "b" / "data.json").read_text()
    by_id = lambda name: {r["id"]: r for r in read_records(tmp_path / name / "data.json")}  # noqa: E731
    assert by_id("a") == by_id("c")
    assert a != (tmp_path / "d" / "data.json").read_text()


def test_similar_image_records_carry_the_image(samples, tmp_path):
    report = build_similar(samples, Captioner(describing_brain()), tmp_path / "out", seed=1)
    records = check_dataset(tmp_path / "out")
    assert report.written == 6
    for record, sample in zip(records, samples, strict=True):
        assert record["image"].startswith("images/") and record["conversations"][0]["value"].startswith(
            "<image>\n"
        )
        with Image.open(tmp_path / "out" / record["image"]) as image:
            assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(sample.image))


def test_inpainting_writes_masked_images_and_masks_and_asks_for_the_whole_picture(samples, tmp_path):
    report = build_inpainting(
        samples, Captioner(describing_brain()), tmp_path / "out", seed=2, fill=(0, 0, 0)
    )
    records = check_dataset(tmp_path / "out")
    masks = {kind: n for kind, n in report.counts.items() if not kind.startswith("descriptions")}
    assert (
        report.written == 6
        and sum(masks.values()) == 6
        and set(masks) <= {"brush", "box", "outpaint (narrow)", "outpaint (wide)"}
    )
    for record, sample in zip(records, samples, strict=True):
        masked = np.asarray(Image.open(tmp_path / "out" / record["image"]).convert("RGB"))
        mask = np.asarray(Image.open(tmp_path / "out" / record["mask"])) == 255
        assert mask.any() and (masked[mask] == 0).all()
        assert np.array_equal(masked[~mask], np.asarray(sample.image)[~mask])
        human, gpt = (turn["value"].removeprefix("<image>\n") for turn in record["conversations"])
        assert parse_reply(gpt).prompts == [f"A detailed view: {sample.caption} (32x24) Soft light."]
        outpaint = any(human == t or human.startswith(t.split("{")[0]) for t in OUTPAINT_TOWARD.templates)
        assert human in INPAINT.templates or human in OUTPAINT.templates or outpaint


def test_inpainting_can_be_outpaint_only_with_wide_borders(samples, tmp_path):
    report = build_inpainting(
        samples, Captioner(describing_brain()), tmp_path / "out", kinds=("outpaint",), widths=("wide",)
    )
    assert report.counts["outpaint (wide)"] == 6
    for record in check_dataset(tmp_path / "out"):
        mask = np.asarray(Image.open(tmp_path / "out" / record["mask"])) == 255
        assert not mask[12, 16]  # the middle stays visible
        assert mask[0].all() or mask[-1].all() or mask[:, 0].all() or mask[:, -1].all()


def edit_brain():
    """Answers with one good pair, one unchanged and one malformed, depending on the caption."""

    def reply(request):
        messages = request.messages
        caption = user_text(messages).removeprefix("Caption: ")
        return (
            f"Instruction: Make it blue., Target caption: {caption[:-1]} painted blue.\n"
            f"Instruction: Keep it., Target caption: {caption}\nInstruction: Oops."
        )

    return ScriptedBrain(reply, multimodal=False)


def test_editing_records_come_from_cleaned_pairs_with_counts(samples, tmp_path):
    report = build_editing(samples, EditPairWriter(edit_brain()), tmp_path / "out", seed=0, image_share=0.5)
    records = check_dataset(tmp_path / "out")
    assert report.written == 6
    assert report.counts["pairs kept"] == 6 and report.counts["pairs unchanged"] == 6
    assert report.counts["pairs malformed"] == 6
    assert report.counts["with image"] + report.counts["with caption"] == 6
    assert report.counts["with image"] and report.counts["with caption"]
    for record in records:
        human, gpt = (turn["value"] for turn in record["conversations"])
        assert "Make it blue." in human and parse_reply(gpt).prompts[0].endswith("painted blue.")
        if "image" not in record:
            assert "A small" in human or "A thing number" in human


def test_editing_from_detailed_descriptions(samples, tmp_path):
    brain = edit_brain()
    build_editing(
        samples[:1],
        EditPairWriter(brain),
        tmp_path / "out",
        image_share=0.0,
        captioner=Captioner(describing_brain()),
    )
    assert user_text(brain.requests[0].messages).startswith("Caption: A detailed view:")


def test_broken_samples_stop_or_are_reported_by_the_build(tmp_path):
    captions, images = tiny_coco(tmp_path / "src", n=2, broken=True)
    problems = Problems("skip")
    samples = open_source(captions, images=images).samples(problems, show_progress=False)
    report = build_similar(samples, Captioner(describing_brain()), tmp_path / "out", problems=problems)
    assert report.written == 2 and report.skipped == 3
    summary = report.summary()
    assert "skipped (broken samples): 3" in summary and "corrupt: " in summary and "is not an image" in summary
    listed = json.loads((tmp_path / "out" / "data.skipped.json").read_text())
    assert [entry["sample"] for entry in listed] == ["corrupt", "nocaption", "missing"]
    assert str(tmp_path / "out" / "data.skipped.json") in summary
    with pytest.raises(BrokenSampleError, match="sample corrupt"):
        build_similar(
            open_source(captions, images=images).samples(Problems("stop"), show_progress=False),
            Captioner(describing_brain()),
            tmp_path / "stopped",
            problems=Problems("stop"),
        )
    assert not (tmp_path / "stopped" / "data.json").exists()


def test_unchecked_entries_are_checked_by_the_builder(tmp_path):
    captions, images = tiny_coco(tmp_path / "src", n=2, broken=True)
    problems = Problems("skip")
    report = build_refinement(open_source(captions, images=images).entries, Captioner(describing_brain()),
                              tmp_path / "out", problems=problems)
    assert report.written == 2 and report.skipped == 3
