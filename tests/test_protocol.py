"""The generation-tag protocol: examples and properties."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmga.protocol import END_MARKERS, TASKS, ReplyParser, assemble, parse_reply, tag_prompt
from llmga.routing import Task


@pytest.mark.parametrize("open_tag,close_tag", [("<gen_img>", "</gen_img>"), ("<gen_image>", "</gen_image>")])
def test_both_tag_spellings(open_tag, close_tag):
    reply = parse_reply(f"Sure, here it is. {open_tag}a red fox in the snow, dusk{close_tag}")
    assert reply.text == "Sure, here it is."
    assert reply.prompts == ["a red fox in the snow, dusk"]


def test_plain_answer_has_no_prompt():
    reply = parse_reply("Paris is the capital of France.")
    assert reply.text == "Paris is the capital of France."
    assert reply.prompts == [] and not reply.wants_image


def test_several_prompts_make_a_story_in_order():
    reply = parse_reply(
        "Scene one: <gen_img>a boy finds a map</gen_img> Scene two: <gen_image>the boy sails</gen_image>"
        " The end."
    )
    assert reply.prompts == ["a boy finds a map", "the boy sails"]
    assert reply.text == "Scene one: Scene two: The end."


def test_unclosed_tag_at_end_still_yields_prompt():
    reply = parse_reply("Here you go: <gen_img>a lighthouse on a cliff at night, stormy sea")
    assert reply.prompts == ["a lighthouse on a cliff at night, stormy sea"]
    assert reply.text == "Here you go:"


def test_empty_prompts_are_reported_not_painted():
    reply = parse_reply("Oops <gen_img>   </gen_img> and <gen_img></gen_img> done <gen_img>\n")
    assert reply.prompts == []
    assert reply.empty_prompts == 3


def test_stray_closing_tags_do_not_leak():
    reply = parse_reply("</gen_img>Hello</gen_image> there <gen_img>a cat</gen_img></gen_img>")
    assert reply.text == "Hello there"
    assert reply.prompts == ["a cat"]


def test_nested_tags_join_the_outer_prompt():
    reply = parse_reply("<gen_img>a castle <gen_img>with towers</gen_img> on a hill</gen_img> ok")
    assert reply.prompts == ["a castle with towers on a hill"]
    assert reply.text == "ok"


@pytest.mark.parametrize("marker", END_MARKERS)
def test_end_token_ends_the_reply(marker):
    reply = parse_reply(f"Done! <gen_img>a blue square{marker}garbage <gen_img>never</gen_img>")
    assert reply.prompts == ["a blue square"]
    assert reply.text == "Done!"
    assert marker not in reply.text


def test_model_specific_end_marker():
    reply = parse_reply("Hi there[[END]] more", end_markers=["[[END]]"])
    assert reply.text == "Hi there"


def test_tags_are_case_and_space_tolerant():
    reply = parse_reply("ok < GEN_IMG >a dog</ gen_img >")
    assert reply.prompts == ["a dog"]
    assert reply.text == "ok"


def test_prompt_whitespace_is_normalised():
    assert parse_reply("<gen_img>\n  a   dog,\n\tsunny </gen_img>").prompts == ["a dog, sunny"]


def test_reply_keeps_line_breaks():
    reply = parse_reply("Line one.\nLine two <gen_img>x</gen_img>\n\n\n\nLine three.")
    assert reply.text == "Line one.\nLine two\n\nLine three."


def test_streaming_holds_back_a_split_tag():
    parser = ReplyParser()
    shown = []
    for chunk in ["Sure <ge", "n_im", "g>a red", " fox</gen_", "img> done<|im", "_end|>tail"]:
        shown.extend(parser.feed(chunk))
    shown.extend(parser.close())
    text = "".join(p.text for p in shown if p.kind == "text")
    assert "<" not in text and "tail" not in text
    assert assemble(shown).prompts == ["a red fox"]


def test_tag_prompt_round_trips():
    assert parse_reply(tag_prompt("a green hill")).prompts == ["a green hill"]


@pytest.mark.parametrize("tag", ['<gen_img task="edit">', "<gen_image task=edit>", "<GEN_IMG  TASK = 'Edit' >",
                                 '< gen_img task="edit" >'])
def test_a_tag_names_its_task(tag):
    reply = parse_reply(f"Here it is at night. {tag}a red star at the top left, on grass under a night sky</gen_img>")
    assert reply.prompts == ["a red star at the top left, on grass under a night sky"] and reply.tasks == ["edit"]
    assert reply.text == "Here it is at night." and reply.notices == []


def test_each_prompt_keeps_its_own_task_and_a_bare_tag_names_none():
    reply = parse_reply('<gen_img task="generate">a</gen_img> <gen_img>b</gen_img> <gen_img task=outpaint>c</gen_img>')
    assert reply.prompts == ["a", "b", "c"] and reply.tasks == ["generate", None, "outpaint"]


def test_an_attribute_that_names_no_task_is_dropped_with_a_notice():
    reply = parse_reply('Sure. <gen_img task="paint">a blue square</gen_img> <gen_img colour=red>x</gen_img>')
    assert reply.prompts == ["a blue square", "x"] and reply.tasks == [None, None]
    assert len(reply.notices) == 2 and "'task=\"paint\"'" in reply.notices[0] and "rules" in reply.notices[0]


def test_the_protocol_names_the_painting_tasks_of_the_router():
    assert set(TASKS) == {t.value for t in Task} - {"answer"}
    assert tag_prompt("a fox", task="similar") == '<gen_img task="similar">a fox</gen_img>'
    with pytest.raises(ValueError):
        tag_prompt("a fox", task="dance")


def test_streaming_holds_back_a_split_task_attribute():
    parser = ReplyParser()
    got = []
    for chunk in ["Here. <gen_im", 'g task="ed', 'it">a red st', "ar</gen", "_img> done"]:
        got.extend(parser.feed(chunk))
    got.extend(parser.close())
    assert all("<" not in p.text and "task" not in p.text for p in got if p.kind == "text")
    reply = assemble(got)
    assert reply.tasks == ["edit"] and reply.prompts == ["a red star"] and reply.text == "Here. done"


# --- properties -----------------------------------------------------------------

plain = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="<>"), max_size=40
)
open_tags = st.sampled_from(["<gen_img>", "<gen_image>", "<GEN_IMG>", "< gen_img >", '<gen_img task="edit">',
                             "<gen_image task=similar>", '<gen_img task="nonsense">'])
close_tags = st.sampled_from(["</gen_img>", "</gen_image>", "</ gen_image>"])


@given(st.lists(st.tuples(plain, plain, open_tags, close_tags), max_size=5), plain)
def test_prompts_are_recovered_in_order(segments, tail):
    raw = "".join(f"{text}{o}{prompt}{c}" for text, prompt, o, c in segments) + tail
    reply = parse_reply(raw)
    expected = [" ".join(p.split()) for _, p, _, _ in segments]
    assert reply.prompts == [p for p in expected if p]
    assert reply.empty_prompts == sum(1 for p in expected if not p)
    assert reply.text.split() == "".join(t + " " for t, _, _, _ in segments).split() + tail.split()


pieces = st.lists(
    st.sampled_from(["a", "b", " ", "<", ">", "/", "\n", "gen_img", "gen_image", "<gen_img>", "</gen_img>",
                     "<gen_image>", "</gen_image>", "<|im_end|>", "</s>", "<|eot_id|>", "task=", '"edit"',
                     '<gen_img task="edit">']),
    max_size=40,
).map("".join)


@given(pieces)
def test_no_tag_or_end_token_ever_leaks(raw):
    reply = parse_reply(raw)
    for out in [reply.text, *reply.prompts]:
        assert not re.search(r"<\s*/?\s*gen_im(g|age)[^<>]*>", out, re.IGNORECASE)
        for marker in END_MARKERS:
            assert marker not in out
    assert all(p.strip() == p and p for p in reply.prompts)


@settings(max_examples=200)
@given(pieces, st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_streaming_equals_whole_parse(raw, cuts):
    parser = ReplyParser()
    got = []
    points = sorted({min(c, len(raw)) for c in cuts})
    start = 0
    for point in [*points, len(raw)]:
        got.extend(parser.feed(raw[start:point]))
        start = point
    got.extend(parser.close())
    streamed, whole = assemble(got), parse_reply(raw)
    assert (streamed.text, streamed.prompts, streamed.empty_prompts, streamed.tasks) == (
        whole.text,
        whole.prompts,
        whole.empty_prompts,
        whole.tasks,
    )


@given(pieces)
def test_parsing_the_visible_text_again_changes_nothing(raw):
    reply = parse_reply(raw)
    again = parse_reply(reply.text)
    assert again.prompts == [] and again.empty_prompts == 0
    assert again.text == reply.text


def test_where_an_open_tags_prompt_starts():
    from llmga.protocol import last_open_tag_end

    assert last_open_tag_end('Sure. <gen_img task="edit">a red') == len('Sure. <gen_img task="edit">')
    assert last_open_tag_end("<gen_image>a red") == len("<gen_image>")  # the other spelling
    assert last_open_tag_end("<gen_img>a</gen_img> and") is None and last_open_tag_end("<gen_img task=") is None
