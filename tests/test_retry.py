"""Which replies are asked again: letters of a script the conversation never used."""

from llmga.protocol import parse_reply
from llmga.retry import RETRY_TEMPERATURE, allowed_scripts, ask_again, foreign_scripts
from llmga.settings import SamplingSettings


def test_letters_of_a_script_the_conversation_never_used_are_foreign():
    english = "You draw shapes. could you draw a cat on a sofa?"
    assert foreign_scripts(parse_reply("I can'אים a cat on grass at night."), english) == {"HEBREW"}
    assert foreign_scripts(parse_reply("I can'想！"), english) == {"CJK"}
    assert not foreign_scripts(parse_reply("Sorry, a café is beyond me — shall I draw a blue star?"), english)


def test_chinese_replies_to_chinese_and_english_prompts_in_tags_are_not_foreign():
    chinese = "You draw shapes. 画一个蓝色的正方形"
    assert not foreign_scripts(parse_reply("好的！ <gen_img>a small blue square</gen_img>"), chinese)
    assert foreign_scripts(parse_reply("好的，Привет"), chinese) == {"CYRILLIC"}


def test_a_reply_may_use_latin_and_the_scripts_of_its_conversation():
    assert allowed_scripts("You draw shapes. 画一个蓝色的正方形") == {"LATIN", "CJK"}


def test_asked_as_it_is_first_then_hotter():
    asked = []

    def ask(sampling):
        asked.append(sampling)
        return "still wrong" if len(asked) < 3 else "right"

    settings = SamplingSettings(temperature=0.0, seed=7)
    attempt, raw, _ = ask_again(ask, lambda reply: reply.text == "right", settings, as_is_first=True)
    assert (attempt, raw) == (3, "right")
    assert asked[0] == settings and [s.temperature for s in asked[1:]] == [RETRY_TEMPERATURE] * 2
    assert asked[1].seed != asked[2].seed
