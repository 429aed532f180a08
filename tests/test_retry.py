"""Which replies are asked again: letters of a script the conversation never used."""

from llmga.protocol import parse_reply
from llmga.retry import foreign_scripts


def test_letters_of_a_script_the_conversation_never_used_are_foreign():
    english = "You draw shapes. could you draw a cat on a sofa?"
    assert foreign_scripts(parse_reply("I can'אים a cat on grass at night."), english) == {"HEBREW"}
    assert foreign_scripts(parse_reply("I can'想！"), english) == {"CJK"}
    assert not foreign_scripts(parse_reply("Sorry, a café is beyond me — shall I draw a blue star?"), english)


def test_chinese_replies_to_chinese_and_english_prompts_in_tags_are_not_foreign():
    chinese = "You draw shapes. 画一个蓝色的正方形"
    assert not foreign_scripts(parse_reply("好的！ <gen_img>a small blue square</gen_img>"), chinese)
    assert foreign_scripts(parse_reply("好的，Привет"), chinese) == {"CYRILLIC"}
