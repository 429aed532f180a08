"""Choosing the painting task from what the user gave and said."""

import pytest

from llmga.errors import InvalidInputError
from llmga.routing import Task, TurnInputs, route


@pytest.mark.parametrize(
    "text,inputs,task,last",
    [
        ("a husky fighting a monster", TurnInputs(), Task.GENERATE, False),
        ("make it night", TurnInputs(), Task.GENERATE, False),  # nothing to edit yet
        ("make it night", TurnInputs(last_image=True), Task.EDIT, True),
        ("move the star to the top left", TurnInputs(last_image=True), Task.EDIT, True),
        ("shrink it", TurnInputs(last_image=True), Task.EDIT, True),
        ("Replace the cat with a dog", TurnInputs(last_image=True), Task.EDIT, True),
        ("a red car", TurnInputs(last_image=True), Task.GENERATE, False),
        ("put a fountain here", TurnInputs(image=True, mask=True), Task.INPAINT, False),
        ("put a fountain here", TurnInputs(mask=True, last_image=True), Task.INPAINT, True),
        ("extend it", TurnInputs(image=True, outpaint=True), Task.OUTPAINT, False),
        ("extend it", TurnInputs(outpaint=True, last_image=True), Task.OUTPAINT, True),
        ("make it look like winter", TurnInputs(image=True), Task.EDIT, False),
        ("draw something like this", TurnInputs(image=True), Task.SIMILAR, False),
        ("generate a similar image", TurnInputs(image=True), Task.SIMILAR, False),
        ("what breed is this dog?", TurnInputs(image=True), Task.ANSWER, False),
        ("a castle at dusk", TurnInputs(control=True), Task.CONTROLNET, False),
    ],
)
def test_task_follows_inputs_and_words(text, inputs, task, last):
    chosen = route(text, inputs)
    assert (chosen.task, chosen.uses_last_image) == (task, last)
    assert chosen.reason


def test_override_wins_when_its_inputs_are_there():
    assert route("what is this?", TurnInputs(image=True), task="similar").task is Task.SIMILAR
    chosen = route("a dog", TurnInputs(last_image=True), task=Task.EDIT)
    assert chosen.task is Task.EDIT and chosen.uses_last_image and chosen.reason == "chosen by the user"


@pytest.mark.parametrize(
    "task,inputs,missing",
    [("inpaint", TurnInputs(image=True), "mask"), ("edit", TurnInputs(), "image"), ("controlnet", TurnInputs(), "control")],
)
def test_override_without_its_inputs_is_a_clear_error(task, inputs, missing):
    with pytest.raises(InvalidInputError, match=f"needs {missing}"):
        route("x", inputs, task=task)


def test_a_mask_without_any_image_is_an_error():
    with pytest.raises(InvalidInputError, match="mask needs an image"):
        route("x", TurnInputs(mask=True))


def test_unknown_task_name():
    with pytest.raises(InvalidInputError, match="unknown task 'paint-by-numbers'; choose one of: generate"):
        route("x", TurnInputs(), task="paint-by-numbers")
