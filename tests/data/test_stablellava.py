"""StableLLaVA-style data: LLM prompts and dialogues per ability, painted images, malformed output counted."""

import json

import pytest
from PIL import Image

from llmga.data import AnswerCache, Problems, StableLLaVA, read_records, validate_record
from llmga.data.stablellava import ABILITIES, parse_dialogue, parse_prompt, plain_prompt
from llmga.errors import InvalidInputError, PromptTooLongError
from tests.data.support import ScriptedBrain

DIALOGUE = (
    "Description: A crimson car parked on a wet street at dusk.\n"
    "Question: What colour is the car?\nAnswer: Crimson.\n"
    "Question: Is the street dry?\nResponse: No, it is wet.<|im_end|>"
)


def scripted_llm():
    """Good answers, except a malformed prompt for animals and a malformed dialogue for counting."""

    def reply(request):
        messages = request.messages
        system = messages[0]["content"]
        if "prompt design" in system:
            return (
                "I like animals!" if "kinds of animals" in system else "Prompt: ((a crimson car)), street, 4k"
            )
        return "Question: How many?\nAnswer:" if "how many" in system else DIALOGUE

    return ScriptedBrain(reply, multimodal=False)


class Canvas:
    """A callable painter that records the prompts it was asked to paint."""

    def __init__(self):
        self.prompts = []

    def __call__(self, prompt):
        self.prompts.append(prompt)
        return Image.new("RGB", (16, 16), (180, 20, 40))


def test_items_become_image_dialogues_and_malformed_answers_are_counted(tmp_path):
    canvas = Canvas()
    generator = StableLLaVA(scripted_llm(), canvas)
    report = generator.build(tmp_path / "out", ["color", "animals", "counting"], per_ability=3, seed=0)
    records = read_records(tmp_path / "out" / "data.json")
    assert report.written == len(records) == 3
    assert report.counts["malformed prompt"] == 3 and report.counts["malformed dialogue"] == 3
    assert report.counts["color"] == 3 and report.counts["images painted"] == 3
    assert canvas.prompts == ["a crimson car, street, 4k"] * 3
    for index, record in enumerate(records):
        validate_record(record)
        assert record["id"] == f"color-{index:05d}" and record["prompt"] == "((a crimson car)), street, 4k"
        values = [turn["value"] for turn in record["conversations"]]
        assert values[0].startswith("<image>\n") and values[1].startswith("A crimson car parked")
        assert values[2:] == ["What colour is the car?", "Crimson.", "Is the street dry?", "No, it is wet."]
        with Image.open(tmp_path / "out" / record["image"]) as image:
            assert json.loads(image.text["llmga"])["prompt"] == "a crimson car, street, 4k"


def test_a_rerun_resumes_from_the_cache_and_the_painted_files(tmp_path):
    cache = tmp_path / "cache.sqlite"
    StableLLaVA(scripted_llm(), Canvas(), AnswerCache(cache)).build(tmp_path / "out", ["color"], 2, seed=5)
    first = (tmp_path / "out" / "data.json").read_text()
    llm, canvas = scripted_llm(), Canvas()
    report = StableLLaVA(llm, canvas, AnswerCache(cache)).build(tmp_path / "out", ["color"], 2, seed=5)
    assert llm.requests == [] and canvas.prompts == [] and report.counts["images reused"] == 2
    assert (tmp_path / "out" / "data.json").read_text() == first


def test_each_item_samples_with_its_own_seed_from_the_abilitys_examples(tmp_path):
    llm = scripted_llm()
    StableLLaVA(llm, Canvas()).build(tmp_path / "out", ["color"], 3, seed=0)
    seeds = [request.settings.seed for request in llm.requests]
    assert seeds[0::2] == seeds[1::2] and len(set(seeds)) == 3  # prompt and dialogue of an item share one
    assert all(
        "Prompt: ((a crimson vintage car))" in messages[0]["content"] for messages in [request.messages for request in llm.requests[::2]]
    )


def test_a_failed_painting_is_a_broken_item_under_the_policy(tmp_path):
    def refuse(prompt):
        raise PromptTooLongError("too long")

    problems = Problems("skip")
    report = StableLLaVA(scripted_llm(), refuse).build(tmp_path / "out", ["color"], 2, problems=problems)
    assert report.written == 0 and [s for s, _ in problems.skipped] == ["color-00000", "color-00001"]
    with pytest.raises(InvalidInputError, match="painting failed"):
        StableLLaVA(scripted_llm(), refuse).build(tmp_path / "out", ["color"], 1, problems=Problems("stop"))


def test_parsers_and_abilities():
    assert parse_prompt("Sure.\nPrompt: ((a teal pot)), table\n") == "((a teal pot)), table"
    assert parse_prompt("((a teal pot)), table") is None
    dialogue = parse_dialogue("Description: A pot.\nIt is teal.\nQuestion: Colour?\nAnswer: Teal.")
    assert dialogue.description == "A pot. It is teal." and dialogue.qa == (("Colour?", "Teal."),)
    assert parse_dialogue("Description: A pot.").qa == ()
    assert parse_dialogue("Question: Colour?\nAnswer: Teal.") is None
    assert parse_dialogue("Description: A pot.\nAnswer: Teal.\nQuestion: Colour?") is None
    assert plain_prompt("((a [red] fox)), snow") == "a red fox, snow"
    assert {"color", "animals", "scenes", "styles", "counting"} <= set(ABILITIES)
    with pytest.raises(InvalidInputError, match="unknown abilities"):
        StableLLaVA(scripted_llm(), Canvas()).build("unused", ["colour"], 1)
