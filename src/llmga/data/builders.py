"""Builders of the four stage-1 data sets of LLMGA (paper, section 3.2).

Each builder reads checked samples (see :meth:`~llmga.data.sources.Source.samples`),
writes ``<out>/data.json`` (LLaVA-format records) and the image files they
name under ``<out>/images/``, and returns a :class:`~llmga.data.report.Report`.
The choices made for a sample (caption, instruction phrasing, mask) come from
a random generator seeded by ``seed``, the set's name and the sample's id, so a
build is the same whatever order or subset the samples come in.

1. prompt refinement: short caption + generation instruction → tagged detailed
   description; + description instruction → the plain description;
2. similar image: image + "generate a similar image" → tagged description;
   + "describe this image" → the plain description;
3. inpainting & outpainting: masked image + instruction → tagged description of
   the whole image;
4. instruction editing: image or caption + instruction → tagged target caption.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from pathlib import Path

from ..masks import BORDER_WIDTHS, MASK_KINDS, apply_mask, random_mask
from ..protocol import tag_prompt
from .captioner import Captioner
from .edit_writer import EditPairWriter
from .records import DATA_FILE, Record, make_record, place_image, safe_name, save_image
from .report import BrokenSampleError, Problems, Report
from .sources import Sample, check_sample
from .templates import (
    DESCRIBE_CAPTION,
    DESCRIBE_IMAGE,
    EDIT_CAPTION,
    EDIT_IMAGE,
    GENERATE_FROM_CAPTION,
    GENERATE_SIMILAR,
    INPAINT,
    OUTPAINT,
    OUTPAINT_TOWARD,
    REPLIES,
    Pool,
    as_sentence,
    join_sides,
)

#: makes the records of one sample: (sample, its random generator, the output folder, the report)
SampleRecords = Callable[[Sample, random.Random, Path, Report], list[Record]]


def sample_rng(seed: int, name: str, sample_id: str) -> random.Random:
    """The random generator of one sample of one set."""
    return random.Random(f"{seed}/{name}/{sample_id}")


def tagged_reply(rng: random.Random, task: str, prompt: str, named: bool = False) -> str:
    """A short reply for ``task`` followed by ``prompt`` in generation tags (that name the task if ``named``,
    as the world assistants are taught; the released LLMGA's tags name none)."""
    return f"{REPLIES[task].pick(rng)} {tag_prompt(prompt, task if named else None)}"


def generate_or_describe(
    rng: random.Random,
    report: Report,
    generate_share: float,
    pools: tuple[Pool, Pool, str],
    description: str,
    **fields: str,
) -> tuple[str, str]:
    """A (request, answer) turn: with chance ``generate_share`` a generation request (``pools[0]``)
    answered by the tagged description (the reply for task ``pools[2]``), else a description request
    (``pools[1]``) answered by the plain description; counted as "generate" or "describe"."""
    generate, describe, task = pools
    if rng.random() < generate_share:
        report.counts["generate"] += 1
        return generate.pick(rng, **fields), tagged_reply(rng, task, description)
    report.counts["describe"] += 1
    return describe.pick(rng, **fields), description


def build(
    name: str,
    samples: Iterable[Sample],
    out: str | Path,
    records_of: SampleRecords,
    seed: int = 0,
    problems: Problems | None = None,
    captioner: Captioner | None = None,
) -> Report:
    """Run ``records_of`` over ``samples`` and write the set; the skeleton of every builder.

    Samples not checked yet (no image loaded) are checked here; broken ones go to ``problems``.
    """
    out = Path(out)
    report = Report(name, problems=problems or Problems())
    asked, reused = (captioner.asked, captioner.reused) if captioner else (0, 0)
    if captioner is not None and not captioner.sees_images:
        report.notes.append(
            "the captioner is text-only: descriptions elaborate on the captions, not the images"
        )

    def run(sample: Sample) -> list[Record]:
        if sample.image is None:  # not checked yet (e.g. ``source.entries``)
            sample = check_sample(sample)
        return records_of(sample, sample_rng(seed, name, sample.id), out, report)

    records = [record for batch in report.problems.each(samples, run) for record in batch]
    report.save(records, out / DATA_FILE)
    if captioner is not None:
        report.counts["descriptions asked"] += captioner.asked - asked
        report.counts["descriptions from cache"] += captioner.reused - reused
    return report


def build_refinement(
    samples: Iterable[Sample],
    captioner: Captioner,
    out: str | Path,
    seed: int = 0,
    generate_share: float = 0.5,
    problems: Problems | None = None,
) -> Report:
    """Prompt refinement: a short caption with a generation request (share ``generate_share``) or a
    description request."""

    def records_of(sample: Sample, rng: random.Random, root: Path, report: Report) -> list[Record]:
        description = captioner.describe(sample)
        caption = as_sentence(rng.choice(sample.captions))
        pools = (GENERATE_FROM_CAPTION, DESCRIBE_CAPTION, "generate")
        turn = generate_or_describe(rng, report, generate_share, pools, description, caption=caption)
        return [make_record(f"refine-{safe_name(sample.id)}", [turn])]

    return build("refine", samples, out, records_of, seed, problems, captioner)


def build_similar(
    samples: Iterable[Sample],
    captioner: Captioner,
    out: str | Path,
    seed: int = 0,
    generate_share: float = 0.5,
    problems: Problems | None = None,
) -> Report:
    """Similar image: the image with a generate-similar (share ``generate_share``) or describe request."""

    def records_of(sample: Sample, rng: random.Random, root: Path, report: Report) -> list[Record]:
        description = captioner.describe(sample)
        image = place_image(_image_path(sample), root, f"similar-{sample.id}")
        pools = (GENERATE_SIMILAR, DESCRIBE_IMAGE, "similar")
        turn = generate_or_describe(rng, report, generate_share, pools, description)
        return [make_record(f"similar-{safe_name(sample.id)}", [turn], image=image)]

    return build("similar", samples, out, records_of, seed, problems, captioner)


def build_inpainting(
    samples: Iterable[Sample],
    captioner: Captioner,
    out: str | Path,
    seed: int = 0,
    kinds: tuple[str, ...] = MASK_KINDS,
    widths: tuple[str, ...] = tuple(BORDER_WIDTHS),
    fill: tuple[int, int, int] = (0, 0, 0),
    problems: Problems | None = None,
) -> Report:
    """Inpainting & outpainting: a masked image (brush, box or outpaint border) → the whole description.

    Writes ``images/<id>-masked.png`` (the record's image) and ``images/<id>-mask.png``
    (white = hidden; the record's ``"mask"``), each with the mask's making in its PNG metadata.
    """

    def records_of(sample: Sample, rng: random.Random, root: Path, report: Report) -> list[Record]:
        description = captioner.describe(sample)
        mask = random_mask(sample.image.size, rng, kinds, widths)
        meta = {"source": str(sample.image_path), "kind": mask.kind, "sides": mask.sides, "seed": seed}
        name = f"inpaint-{sample.id}"
        image = save_image(apply_mask(sample.image, mask.image, fill), root, f"{name}-masked", meta)
        mask_file = save_image(mask.image, root, f"{name}-mask", meta)
        report.counts[mask.kind if mask.kind != "outpaint" else f"outpaint ({mask.width})"] += 1
        if mask.task == "outpaint" and rng.random() < 0.5:
            instruction = OUTPAINT_TOWARD.pick(rng, sides=join_sides(list(mask.sides)))
        else:
            instruction = (OUTPAINT if mask.task == "outpaint" else INPAINT).pick(rng)
        turn = (instruction, tagged_reply(rng, mask.task, description))
        return [make_record(f"inpaint-{safe_name(sample.id)}", [turn], image=image, mask=mask_file)]

    return build("inpaint", samples, out, records_of, seed, problems, captioner)


def build_editing(
    samples: Iterable[Sample],
    writer: EditPairWriter,
    out: str | Path,
    seed: int = 0,
    image_share: float = 0.5,
    captioner: Captioner | None = None,
    problems: Problems | None = None,
) -> Report:
    """Instruction editing: the LLM's (instruction, target) pairs of each caption, cleaned.

    The source caption is a short caption, or the captioner's detailed
    description when a ``captioner`` is given. A share ``image_share`` of the
    records show the image with the instruction, the rest the source caption.
    """

    def records_of(sample: Sample, rng: random.Random, root: Path, report: Report) -> list[Record]:
        source = captioner.describe(sample) if captioner else as_sentence(rng.choice(sample.captions))
        pairs, counts = writer.pairs(source)
        report.counts.update({f"pairs {key}": value for key, value in counts.items()})
        records = []
        for index, pair in enumerate(pairs):
            record_id = f"edit-{safe_name(sample.id)}-{index}"
            reply = tagged_reply(rng, "edit", pair.target)
            if rng.random() < image_share:
                report.counts["with image"] += 1
                image = place_image(_image_path(sample), root, f"edit-{sample.id}")
                records.append(
                    make_record(
                        record_id, [(EDIT_IMAGE.pick(rng, instruction=pair.instruction), reply)], image=image
                    )
                )
            else:
                report.counts["with caption"] += 1
                human = EDIT_CAPTION.pick(rng, caption=pair.source, instruction=pair.instruction)
                records.append(make_record(record_id, [(human, reply)]))
        return records

    return build("edit", samples, out, records_of, seed, problems, captioner)


def _image_path(sample: Sample) -> Path:
    if sample.image_path is None:
        raise BrokenSampleError(sample.id, "names no image")
    return sample.image_path
