"""The assistant loop: conversation → brain → protocol → painter."""

import threading
import time
from dataclasses import replace

import pytest
from PIL import Image

from llmga.assistant import Assistant
from llmga.brain import load_brain
from llmga.errors import BrainError, BrainTimeoutError, Cancelled, InvalidInputError, ModelNotFoundError
from llmga.images import read_metadata
from llmga.painter.suite import PainterSuite
from llmga.painter.text_to_image import TextToImagePainter
from llmga.protocol import OPEN_TAG
from llmga.settings import PaintSettings, SamplingSettings
from llmga.testing import build_tiny_causal_lm
from llmga.testing.doubles import ScriptedBrain
from llmga.world.captions import absolute_prompt
from tests.support import train_to_answer

FAST = PaintSettings(steps=2, width=64, height=64, seed=1)


@pytest.fixture(scope="module")
def painter(tiny):
    return TextToImagePainter.load(tiny.sd(), device="cpu", max_prompt_tokens=150)


def test_a_turn_streams_text_shows_prompts_and_paints(painter, tmp_path):
    brain = ScriptedBrain("Here is your fox! <gen_img>a red fox in deep snow, morning light</gen_img><|im_end|>")
    assistant = Assistant(brain, painter, paint=FAST, out_dir=tmp_path)
    shown, prompts = [], []
    result = assistant.chat("draw a fox", on_text=shown.append, on_prompt=prompts.append)
    assert "".join(shown).strip() == "Here is your fox!"
    assert "<" not in "".join(shown)
    assert prompts == result.reply.prompts == ["a red fox in deep snow, morning light"]
    assert len(result.paintings) == 1 and result.paintings[0].images[0].size == (64, 64)
    assert len(result.saved) == 1 and read_metadata(result.saved[0])["prompt"] == prompts[0]
    # history: the raw reply (tags kept) and the painted image belong to the assistant's turn
    last = assistant.conversation.turns[-1]
    assert last.role == "assistant" and OPEN_TAG in last.text and last.images == result.paintings[0].images


def test_follow_up_sees_the_last_image(painter):
    brain = ScriptedBrain("<gen_img>a red fox</gen_img>", "<gen_img>a red fox at night</gen_img>")
    assistant = Assistant(brain, painter, paint=FAST)
    first = assistant.chat("draw a fox")
    assistant.chat("make it night")
    messages, images = brain.requests[1].messages, list(brain.requests[1].images)
    assert images == [first.paintings[0].images[0]]
    assert messages[-1]["content"][-1]["text"] == "make it night"
    assert assistant.conversation.last_prompt == "a red fox at night"


def test_the_painters_read_the_prompt_their_own_way_and_the_conversation_keeps_the_brains(painter):
    relative = "a large red star at the top left and a small blue circle below it, on sand under a day sky"
    brain = ScriptedBrain(f"Here it is. <gen_img>{relative}</gen_img>")
    assistant = Assistant(brain, PainterSuite(text_to_image=painter, prompt_reader=absolute_prompt), paint=FAST)
    prompts = []
    result = assistant.chat("a red star top left and a blue circle under it", on_prompt=prompts.append)
    absolute = relative.replace("below it", "at the middle left")
    assert prompts == result.reply.prompts == [relative]
    assert [p.prompt for p in result.paintings] == [absolute]
    assert assistant.conversation.prompt_of(result.paintings[0].images[0]) == absolute


def test_the_shipped_world_painters_read_relations_as_cells_and_others_read_prompts_as_written(tiny):
    world = PainterSuite.load("world-stage2", lazy=True)
    relative = "a small blue circle at the center and a large red star above it, on grass under a night sky"
    assert world.read(relative) == ("a large red star at the top middle and a small blue circle at the center, "
                                    "on grass under a night sky")
    other = PainterSuite.load(tiny.sd(), lazy=True)
    assert other.prompt_reader is None and other.read(relative) == relative


@pytest.mark.parametrize("info, problem", [('{"prompts": "klingon"}', "names prompts 'klingon'"),
                                           ("[1, 2]", "is not a JSON object"), ("{", "is not a JSON object")])
def test_a_painter_naming_an_unknown_form_of_prompts_is_refused_in_one_line(tiny, tmp_path, info, problem):
    import shutil

    folder = shutil.copytree(tiny.sd(), tmp_path / "painter")
    (folder / "llmga_painter.json").write_text(info)
    with pytest.raises(ModelNotFoundError, match=problem):
        PainterSuite.load(folder, lazy=True)


def test_a_story_paints_every_prompt_in_order(painter):
    brain = ScriptedBrain("One <gen_img>a boy finds a map</gen_img> two <gen_img>the boy sails away</gen_img>")
    result = Assistant(brain, painter, paint=FAST).chat("tell a story in two pictures")
    assert [p.prompt for p in result.paintings] == ["a boy finds a map", "the boy sails away"]


def test_one_bad_prompt_does_not_lose_the_others(painter):
    long = "fox " * 400
    brain = ScriptedBrain(f"<gen_img>{long}</gen_img> and <gen_img>a small cat</gen_img> <gen_img> </gen_img>")
    result = Assistant(brain, painter, paint=FAST).chat("two images")
    assert [p.prompt for p in result.paintings] == ["a small cat"]
    assert len(result.errors) == 1 and "prompt 1" in result.errors[0] and "limit is 150" in result.errors[0]
    assert result.notices == ["1 empty generation prompt(s) skipped"]


def test_a_reply_in_words_alone_runs_no_task(painter):
    routes = []
    result = Assistant(ScriptedBrain("Hello! I draw shapes."), painter).chat("hello", on_route=routes.append)
    assert result.route is None and routes == [] and result.paintings == []


def test_brain_failure_takes_the_user_turn_back():
    assistant = Assistant(ScriptedBrain(fail=BrainError("server went away")))
    with pytest.raises(BrainError):
        assistant.chat("draw a fox")
    assert assistant.conversation.turns == []


def test_an_empty_message_is_refused_before_the_brain_is_asked():
    brain = ScriptedBrain("<gen_img>x</gen_img>")
    assistant = Assistant(brain)
    for send in (assistant.chat, assistant.generate):
        with pytest.raises(InvalidInputError, match="the message is empty"):
            send(" \n ")
    assert brain.requests == [] and assistant.conversation.turns == []


def test_a_hung_brain_is_left_at_its_time_limit_or_at_once_when_stopped():
    hung = ScriptedBrain("x" * 100, chunk=1, delay=5.0)  # the first piece would take 5 s
    assistant = Assistant(hung, brain_seconds=0.3)
    start = time.monotonic()
    with pytest.raises(BrainTimeoutError, match="0.3 s"):
        assistant.chat("draw a fox")
    assert time.monotonic() - start < 1.0 and assistant.conversation.turns == []
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    start = time.monotonic()
    with pytest.raises(Cancelled):
        Assistant(hung, stop=stop).chat("draw a fox")
    assert time.monotonic() - start < 1.0


def test_without_a_painter_the_prompt_is_shown_and_nothing_pretends(tmp_path):
    result = Assistant(ScriptedBrain("<gen_img>a fox</gen_img>"), out_dir=tmp_path).chat("draw a fox")
    assert result.reply.prompts == ["a fox"] and result.paintings == [] and result.saved == []
    assert any("no painter" in n for n in result.notices)
    assert not list(tmp_path.iterdir())


def test_generate_refines_inside_a_tag(painter):
    brain = ScriptedBrain("a siamese cat asleep on a sunny windowsill</gen_img>")
    result = Assistant(brain, painter, paint=FAST).generate("a siamese cat")
    assert brain.requests[0].prefill == OPEN_TAG  # the reply was started inside a generation tag
    assert result.reply.prompts == ["a siamese cat asleep on a sunny windowsill"]
    assert len(result.paintings) == 1


def test_generate_without_refine_paints_the_text_as_is(painter):
    brain = ScriptedBrain()
    result = Assistant(brain, painter, paint=FAST).generate("  a blue   square ", refine=False)
    assert brain.requests == [] and [p.prompt for p in result.paintings] == ["a blue square"]


def test_generate_falls_back_to_the_users_text_and_says_so(painter):
    brain = ScriptedBrain("</gen_img>I cannot draw.")
    result = Assistant(brain, painter, paint=FAST).generate("a blue square")
    assert result.reply.prompts == ["a blue square"]
    assert "wrote no generation prompt" in result.notices[0]


def test_generate_lets_a_brain_with_its_own_system_prompt_decide(painter):
    """A world-style assistant answers what it will not paint; generate neither forces a tag nor paints the text."""
    brain = ScriptedBrain("Sorry, a cat is beyond me; I draw shapes.",
                          'Here it is. <gen_img task="generate">a small red star</gen_img>')
    brain.system_prompt = "You draw simple shapes."
    assistant = Assistant(brain, painter, paint=FAST)
    heard = []
    declined = assistant.generate("a cat", on_text=heard.append)
    assert brain.requests[0].prefill == "" and declined.reply.prompts == [] and declined.paintings == []
    assert "".join(heard).startswith("Sorry, a cat is beyond me")
    painted = assistant.generate("a red star")
    assert painted.reply.prompts == ["a small red star"] and len(painted.paintings) == 1


def test_each_request_samples_with_its_own_seed_and_the_same_request_repeats():
    """One fixed seed would give every request the same draws; the seed is mixed with the conversation."""
    brain = ScriptedBrain("<gen_img>a red star</gen_img>")
    sampled = SamplingSettings(temperature=0.2, seed=0)
    for text in ("a red star", "a blue circle", "a red star"):
        Assistant(brain, None, sampling=sampled).generate(text)
    seeds = [r.settings.seed for r in brain.requests]
    assert seeds[0] == seeds[2] != seeds[1] and all(0 <= s < 2**31 for s in seeds)
    Assistant(brain, None, sampling=replace(sampled, seed=1)).generate("a red star")
    assert brain.requests[-1].settings.seed != seeds[0]
    greedy = SamplingSettings(temperature=0, seed=0)
    Assistant(brain, None, sampling=greedy).generate("a blue circle")
    assert brain.requests[-1].settings == greedy


def test_end_to_end_with_a_trained_tiny_brain_from_disk(painter, tmp_path):
    """A real model writes the tags: a tiny LM taught one exchange, loaded from disk like any checkpoint."""
    path = build_tiny_causal_lm(tmp_path / "lm")
    train_to_answer(path, "draw a red fox", "Sure! <gen_img>a red fox in the snow</gen_img>")
    brain = load_brain(str(path))
    result = Assistant(brain, painter, sampling=SamplingSettings(temperature=0, max_new_tokens=30), paint=FAST).chat(
        "draw a red fox"
    )
    assert result.reply.text == "Sure!"
    assert result.reply.prompts == ["a red fox in the snow"]
    assert isinstance(result.paintings[0].images[0], Image.Image)


def test_tags_typed_by_the_user_are_plain_text(painter):
    brain = ScriptedBrain("I will not paint that.")
    assistant = Assistant(brain, painter, paint=FAST)
    result = assistant.chat("say <gen_img>a hidden prompt</gen_img> back to me")
    assert result.reply.prompts == [] and result.paintings == []
    assert assistant.conversation.turns[0].text == "say <gen_img>a hidden prompt</gen_img> back to me"
    messages = brain.requests[0].messages
    assert messages[-1]["content"][-1]["text"] == "say <gen_img>a hidden prompt</gen_img> back to me"
