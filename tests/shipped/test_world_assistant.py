"""The shipped text-only world assistants (`gemma3-world`, the offline default's, and `smollm2-world`),
asked as the chat asks them (their own system prompt)."""

import pytest

pytestmark = [pytest.mark.shipped, pytest.mark.xdist_group("gemma3-world")]  # one worker prepares it


@pytest.fixture(scope="module", params=["gemma3-world", "smollm2-world"])
def ask(request):
    from llmga.brain import BrainRequest, complete, load_brain
    from llmga.conversation import Conversation
    from llmga.protocol import parse_reply
    from llmga.settings import SamplingSettings

    brain = load_brain(request.param)

    def reply(text, history=()):
        conv = Conversation.for_brain(brain)
        for said, answered in history:
            conv.add_user(said)
            conv.add_assistant(answered)
        conv.add_user(text)
        messages, _ = conv.to_messages(False)
        request = BrainRequest(messages, settings=SamplingSettings(temperature=0, max_new_tokens=80))
        return parse_reply(complete(brain, request), brain.end_markers)

    return reply


def seen(prompt):
    from llmga.world.captions import oracle_paint
    from llmga.world.judge import Judge

    return [(o.colour, o.shape) for o in Judge.load().read([oracle_paint(prompt)])[0].objects]


def test_its_prompt_for_a_blue_square_renders_as_a_blue_square(ask):
    reply = ask("Draw a blue square.")
    assert len(reply.prompts) == 1 and seen(reply.prompts[0]) == [("blue", "square")]


def test_it_keeps_a_count(ask):
    [prompt] = ask("Could you draw two green circles on sand at night?").prompts
    assert seen(prompt) == [("green", "circle"), ("green", "circle")] and "sand" in prompt and "night" in prompt


def test_a_chinese_request_is_painted_and_a_greeting_is_answered_in_words(ask):
    [prompt] = ask("画一个红色的星星").prompts
    assert seen(prompt) == [("red", "star")]
    hello = ask("hello!")
    assert hello.prompts == [] and hello.text.strip()


@pytest.mark.parametrize("ask", ["gemma3-world"], indirect=True)  # smollm2-world paints it (its card)
def test_gemma3_world_answers_a_held_out_question_about_what_it_draws_in_words(ask):
    answer = ask("你都会画些什么？")
    assert answer.prompts == [] and "圆形" in answer.text


@pytest.mark.parametrize("ask", ["gemma3-world"], indirect=True)  # smollm2-world was never taught it
@pytest.mark.parametrize(("request_", "question", "colour"), [
    ("Draw a purple star.", "What's in this picture?", "purple"),  # held-out wordings of the question
    ("画一个红色的星星", "这张图里有什么？", "red"),
])
def test_gemma3_world_answers_a_question_about_the_picture_it_just_painted_in_words(ask, request_, question, colour):
    from llmga.eval.world_assistant import colours_named

    painted = ask(request_)
    assert len(painted.prompts) == 1
    answer = ask(question, history=[(request_, painted.raw)])
    assert answer.prompts == [] and colours_named(answer.text) == {colour}  # not a list of every colour it draws


def test_once_prepared_loading_gemma3_world_prints_nothing(capfd):
    """The first load on a machine prepares the brain with transformers' progress bars (README: about a
    minute); every later one is silent, llama.cpp's 'full-size SWA cache' line included."""
    from llmga.brain import load_brain

    load_brain("gemma3-world")  # prepares it where no other test on this worker has
    capfd.readouterr()
    load_brain("gemma3-world")
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("ask", ["gemma3-world"], indirect=True)  # smollm2-world was never taught it
def test_gemma3_world_answers_in_the_language_of_the_last_message_when_the_user_changes_it(ask):
    import re

    painted = ask("画一个红色的星星")
    edit = ask("could it be on snow?", history=[("画一个红色的星星", painted.raw)])
    assert not re.search(r"[\u4e00-\u9fff]", edit.text) and len(edit.prompts) == 1 and "snow" in edit.prompts[0]
    hello = ask("你好", history=[("Draw a purple star.", ask("Draw a purple star.").raw)])
    assert hello.prompts == [] and re.search(r"[\u4e00-\u9fff]", hello.text)
