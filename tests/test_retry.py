"""Which replies are asked again: letters of a script the conversation never used."""

from llmga.protocol import parse_reply
from llmga.retry import (RETRY_TEMPERATURE, allowed_scripts, ask_again, ask_again_in_scripts, edit_kept, foreign_scripts,
                         unchanged)
from llmga.settings import SamplingSettings
from llmga.world.captions import absolute_prompt


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


def test_kept_to_scripts_it_is_asked_as_it_is_first_then_hotter():
    asked = []

    def ask(sampling, scripts):
        asked.append((sampling, scripts))
        return "still wrong" if len(asked) < 3 else "right"

    settings = SamplingSettings(temperature=0.0, seed=7)
    latin = frozenset({"LATIN"})
    attempt, raw, _ = ask_again(ask, lambda reply: reply.text == "right", settings, scripts=latin, as_asked_first=True)
    assert (attempt, raw) == (3, "right") and {scripts for _, scripts in asked} == {latin}
    samplings = [sampling for sampling, _ in asked]
    assert samplings[0] == settings and [s.temperature for s in samplings[1:]] == [RETRY_TEMPERATURE] * 2
    assert samplings[1].seed != samplings[2].seed


def test_a_broken_reply_is_kept_to_the_conversations_scripts_only_where_the_brain_masks_them():
    asked = []

    def ask(sampling, scripts):
        asked.append((sampling, scripts))
        return "Sorry, a cat is beyond me."

    settings = SamplingSettings(temperature=0.0)
    assert ask_again_in_scripts(ask, "画一只猫", settings, masks=True)[0] == 1
    assert asked[-1] == (settings, frozenset({"LATIN", "CJK"}))
    ask_again_in_scripts(ask, "画一只猫", settings, masks=False)
    assert asked[-1][1] is None and asked[-1][0].temperature == RETRY_TEMPERATURE


def test_a_reply_masked_already_is_asked_again_hotter_at_once():
    asked = []

    def ask(sampling, scripts):
        asked.append((sampling, scripts))
        return "Sorry, a cat is beyond me."

    ask_again_in_scripts(ask, "draw a cat", SamplingSettings(temperature=0.0), masks=True, masked_first=True)
    assert asked == [(asked[0][0], frozenset({"LATIN"}))] and asked[0][0].temperature == RETRY_TEMPERATURE


def test_an_edit_is_unchanged_when_the_painters_read_it_as_the_same_picture():
    asked = "a small blue circle at the bottom left and a large red star at the top right, on sand under a day sky"
    reading = "a large red star at the top right and a small blue circle at the bottom left, on sand under a day sky"
    same = parse_reply(f'<gen_img task="edit">{reading}</gen_img>')
    assert not unchanged(same, asked)  # as text they differ
    assert unchanged(same, asked, absolute_prompt)  # the world painters paint one picture from both
    assert not edit_kept(same, [asked], absolute_prompt)(same)
    moved = parse_reply(f'<gen_img task="edit">{reading.replace("top right", "top middle")}</gen_img>')
    assert not unchanged(moved, asked, absolute_prompt) and edit_kept(same, [asked], absolute_prompt)(moved)
