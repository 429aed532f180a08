"""The mixer: per-set ratios, determinism by seed, rebased paths, Alpaca rows, broken records."""

import json
from collections import Counter
from pathlib import Path

import pytest

from llmga.data import (
    PAPER_RATIOS,
    BrokenSampleError,
    MixInput,
    Problems,
    make_record,
    mix,
    parse_mix_input,
    read_records,
    validate_record,
    write_records,
)
from llmga.errors import InvalidInputError
from tests.data.support import make_image


def text_set(path: Path, name: str, n: int) -> Path:
    return write_records([make_record(f"{name}{i}", [(f"q{i}", f"a{i}")]) for i in range(n)], path)


def image_set(folder: Path, n: int) -> Path:
    for i in range(n):
        make_image(folder / "imgs" / f"{i}.png", i)
    return write_records(
        [make_record(str(i), [("What is it?", "A square.")], image=f"imgs/{i}.png") for i in range(n)],
        folder / "vqa.json",
    )


def set_of(record):
    return record["id"].split("/")[0]


def test_ratios_take_shares_and_repeats_and_the_summary_counts_them(tmp_path):
    inputs = [
        MixInput("vqa", image_set(tmp_path / "vqa", 40), 1.0),
        MixInput("qa", text_set(tmp_path / "qa.json", "qa", 50), 0.3),
        MixInput("refine", text_set(tmp_path / "refine.json", "r", 20), 0.3),
        MixInput("edit", text_set(tmp_path / "edit.json", "e", 10), 2.5),
    ]
    report = mix(inputs, tmp_path / "out" / "mix.json", seed=0)
    records = read_records(tmp_path / "out" / "mix.json")
    assert Counter(map(set_of, records)) == {"vqa": 40, "qa": 15, "refine": 6, "edit": 25}
    assert report.written == 86 and report.counts == {"vqa": 40, "qa": 15, "refine": 6, "edit": 25}
    assert "qa: 15 of 50 records (ratio 0.3)" in report.summary()
    assert len({r["id"] for r in records}) == len(records)  # repeats are told apart: edit/e3#1
    assert Counter(r["id"].split("#")[0] for r in records if set_of(r) == "edit")["edit/e0"] in (2, 3)
    assert len({r["id"] for r in records if set_of(r) == "qa"}) == 15
    assert [set_of(r) for r in records[:10]] != ["vqa"] * 10  # shuffled together
    for record in records:
        validate_record(record)
        if "image" in record:
            assert (tmp_path / "out" / record["image"]).is_file()


def test_the_mix_is_deterministic_by_seed(tmp_path):
    inputs = [MixInput("qa", text_set(tmp_path / "qa.json", "qa", 30), 0.5)]
    mix(inputs, tmp_path / "a.json", seed=1)
    mix(inputs, tmp_path / "b.json", seed=1)
    mix(inputs, tmp_path / "c.json", seed=2)
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()
    ids = lambda name: {r["id"] for r in read_records(tmp_path / name)}  # noqa: E731
    assert ids("a.json") != ids("c.json")


def test_alpaca_rows_become_conversations(tmp_path):
    rows = [
        {"instruction": "Add 2 and 3.", "input": "", "output": "5"},
        {"instruction": "Translate.", "input": "bonjour", "output": "hello"},
    ]
    (tmp_path / "alpaca.json").write_text(json.dumps(rows))
    mix([MixInput("qa", tmp_path / "alpaca.json", 1.0)], tmp_path / "out.json")
    records = sorted(read_records(tmp_path / "out.json"), key=lambda r: r["id"])
    assert records[1]["conversations"] == [
        {"from": "human", "value": "Translate.\n\nbonjour"},
        {"from": "gpt", "value": "hello"},
    ]
    assert records[0]["id"] == "qa/0"


def test_broken_records_are_skipped_and_reported_or_stop_the_mix(tmp_path):
    folder = tmp_path / "vqa"
    path = image_set(folder, 3)
    records = json.loads(path.read_text())
    records[1]["image"] = "imgs/missing.png"
    records.append({"id": "bad", "conversations": [{"from": "gpt", "value": "no question"}]})
    path.write_text(json.dumps(records))
    problems = Problems("skip")
    report = mix([MixInput("vqa", path)], tmp_path / "out.json", problems=problems)
    assert report.written == 2 and [s for s, _ in problems.skipped] == ["vqa/1", "vqa/bad"]
    assert "does not exist" in problems.skipped[0][1]
    with pytest.raises(BrokenSampleError, match="vqa/1"):
        mix([MixInput("vqa", path)], tmp_path / "out.json", problems=Problems("stop"))


def test_image_roots_and_mix_specs(tmp_path):
    image_set(tmp_path / "playground", 2)
    (tmp_path / "vqa.json").write_text((tmp_path / "playground" / "vqa.json").read_text())
    spec = parse_mix_input(f"vqa={tmp_path / 'vqa.json'}", {"vqa": tmp_path / "playground"})
    assert spec.ratio == PAPER_RATIOS["vqa"] == 1.0 and spec.root == tmp_path / "playground"
    mix([spec], tmp_path / "out" / "m.json")
    assert all((tmp_path / "out" / r["image"]).is_file() for r in read_records(tmp_path / "out" / "m.json"))
    assert parse_mix_input("qa=a.json").ratio == 0.3
    assert parse_mix_input("other=a.json").ratio == 1.0
    assert parse_mix_input("edit=dir/a.json:0.5") == MixInput("edit", Path("dir/a.json"), 0.5)
    assert parse_mix_input("x=C:/data/a.json").path == Path("C:/data/a.json")
    with pytest.raises(InvalidInputError, match="NAME=PATH"):
        parse_mix_input("a.json")
    with pytest.raises(InvalidInputError, match="unique"):
        mix([MixInput("a", Path("x")), MixInput("a", Path("y"))], tmp_path / "o.json")


def test_a_record_trains_every_assistant_turn_or_only_its_last():
    record = make_record("r", [("hi", "hello"), ("draw a fox", "Sure.")])
    validate_record({**record, "train_on": "last"})
    with pytest.raises(InvalidInputError, match="record r: 'train_on' must be 'all'"):
        validate_record({**record, "train_on": "first"})
