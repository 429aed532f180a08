"""The world assistant asked as people ask: a brain answering as taught scores full marks, a careless one not."""

import re
from dataclasses import replace

import pytest

from llmga.data import world_chinese
from llmga.data.world_chat import after_small_talk, held_out_chat
from llmga.data.world_english import RELATION
from llmga.world.captions import RELATIONS
from llmga.eval.world_assistant import (
    Verdict,
    agreement,
    chat_items,
    contradicts,
    format_summary,
    measure_chat,
    new_word_items,
    relation_items,
    summarise,
)
from llmga.retry import RETRY_TEMPERATURE
from llmga.protocol import parse_reply, tag_prompt
from llmga.testing.doubles import ScriptedBrain
from llmga.world import parse_detailed
from llmga.world.captions import detailed_caption
from llmga.world.render import render
from llmga.world.scene import POSITIONS, Scene
from llmga.world.requests import Request


def taught(items, multimodal=False):
    """A brain that answers every item with the reply it was built with (keyed by the whole conversation)."""
    replies = {(tuple(item.history), item.request): item.reply for item in items}

    def reply(request):
        said = [m["content"] if isinstance(m["content"], str) else m["content"][-1]["text"]
                for m in request.messages if m["role"] != "system"]
        history = tuple(zip(said[:-1:2], said[1:-1:2]))
        return replies[(history, said[-1])]

    return ScriptedBrain(reply, multimodal=multimodal)


@pytest.fixture(scope="module")
def items():
    return held_out_chat(3, seed=0) + new_word_items(6, seed=0) + relation_items(4, seed=0)


def test_a_multimodal_brain_is_shown_the_last_picture_painted_as_the_assistant_shows_it(items):
    brain = taught(items, multimodal=True)
    summary, _ = measure_chat(brain, n=3, seed=0, new_words=6, relations=4, retry_edits=False)
    assert summary["task"]["right"]["value"] == 1.0
    shown = 0
    for request in brain.requests:
        painted = [m for m in request.messages if m["role"] == "assistant"
                   and parse_reply(m["content"][-1]["text"]).prompts]
        assert len(request.images) == min(len(painted), 1)
        if painted:
            assert painted[-1]["content"][0] == {"type": "image"}
            prompt = parse_reply(painted[-1]["content"][-1]["text"]).prompts[-1]
            assert request.images[0].tobytes() == render(parse_detailed(prompt), 32).tobytes()
            shown += 1
    assert 0 < shown < len(brain.requests)


def test_a_brain_answering_as_taught_scores_full_marks(items):
    summary, verdicts = measure_chat(taught(items), n=3, seed=0, new_words=6, relations=4)
    assert len(verdicts) == len(items)
    assert {"en", "zh", "new words", "relative, en", "relative, zh"} == set(summary["faithfulness"])
    assert summary["requests"]["items"] == sum(i.task is not None and i.kind != "relative" for i in items)
    for key, figures in summary["faithfulness"].items():
        assert figures["whole"]["value"] == 1.0, key
        assert all(value["value"] == 1.0 for value in figures["attributes"].values()), key
    assert summary["non_requests"]["failed"] == 0 and summary["requests"]["failed"] == 0
    assert summary["task"]["right"]["value"] == 1.0 and summary["task"]["edits_from_scratch"] == 0
    assert set(summary["task"]["confusion"]) == {"none", "generate", "edit", "similar"}
    assert summary["language"]["value"] == 1.0 and summary["contradictions"] == 0 and summary["garbled"] == 0
    assert summary["broken_words"]["replies"] == 0 and summary["broken_words"]["of"] > 0
    assert summary["questions"]["right"] == summary["questions"]["items"] > 0
    assert summary["looks"]["right"] == summary["looks"]["whole"] == summary["looks"]["items"] > 0
    assert summary["looks"]["painted"] == 0


def test_relation_probes_place_the_second_object_next_to_the_first_in_held_out_words():
    probes = relation_items(8, seed=0)
    held_words = {word for phrasings in RELATION.values() for word in phrasings.held}
    for item in probes:
        first, second = item.wanted.scene.objects
        (r1, c1), (r2, c2) = (o.row_col for o in (first, second))
        assert (r2 - r1, c2 - c1) in RELATIONS.values()
        if item.language == "en":
            assert any(word in item.request for word in held_words), item.request


def test_a_brain_that_puts_the_second_object_in_another_cell_fails_the_relations_probe():
    probes = relation_items(4, seed=0)

    def elsewhere(request):
        item = next(i for i in probes if i.request == request.messages[-1]["content"])
        first, second = item.wanted.scene.objects
        cell = next(p for p in POSITIONS if p not in (first.position, second.position))
        wrong = Scene((first, replace(second, position=cell)), item.wanted.scene.background)
        return "Here. " + tag_prompt(detailed_caption(wrong), "generate")

    summary, _ = measure_chat(ScriptedBrain(elsewhere, multimodal=False), n=0, seed=0, new_words=0, relations=4)
    for code in ("en", "zh"):
        figures = summary["faithfulness"][f"relative, {code}"]
        assert figures["whole"]["value"] == 0.0 and figures["attributes"]["position"]["value"] == 0.0
        assert figures["attributes"]["colour"]["value"] == 1.0


def test_a_surprise_me_request_is_kept_by_any_scene_and_a_named_one_only_by_its_own(items):
    from llmga.eval.world_assistant import judge_items
    from llmga.world.judge import Judge

    anything = next(i for i in items if i.kind == "anything")
    named = next(i for i in items if i.kind == "request")
    other = Scene((replace(named.wanted.scene.objects[0], colour="pink", shape="cross", position="top left"),
                   replace(named.wanted.scene.objects[0], colour="pink", shape="cross", position="bottom right")),
                  named.wanted.scene.background)
    answer = "Here. " + tag_prompt(detailed_caption(other), "generate")
    verdicts = judge_items([anything, named], [answer, answer], Judge.load())
    assert [v.whole for v in verdicts] == [True, False]


def test_a_wrong_sum_or_capital_is_counted_wrong_and_a_reworded_right_one_right(items):
    questions = [i for i in items if i.kind == "question"]
    assert {i.language for i in questions} == {"en", "zh"}

    def judged(text_of):
        return summarise([Verdict(i, parse_reply(text_of(i.reply)), "none") for i in questions])["questions"]

    def wrong(answer):  # every number one more, every name another word
        return re.sub(r"\d+|[A-Z][a-z]+", lambda m: str(int(m[0]) + 1) if m[0].isdigit() else "Nowhere", answer)

    assert judged(wrong) == {"items": len(questions), "right": 0}
    assert judged(lambda answer: "Well: " + answer.rstrip("。.") + "!") == {"items": len(questions),
                                                                              "right": len(questions)}


def test_a_question_about_the_picture_answered_with_another_colour_or_painted_is_counted(items):
    looks = [i for i in items if i.kind == "look"]
    assert {i.language for i in looks} == {"en", "zh"}

    def judged(reply_of):
        return summarise([Verdict(i, parse_reply(reply_of(i)), "none") for i in looks])["looks"]

    def other_colour(item):
        colours = {o.colour for o in item.scenes[-1].objects}
        swap = next(c for c in ("red", "blue", "green") if c not in colours)
        return (re.sub("|".join(colours), swap, item.reply) if item.language == "en"
                else item.reply + f"还有{world_chinese.COLOUR[swap]}的。")

    every = len(looks)
    assert judged(lambda item: item.reply) == {"items": every, "painted": 0, "right": every, "whole": every}
    assert judged(other_colour) == {"items": every, "painted": 0, "right": 0, "whole": 0}
    painted = judged(lambda item: item.history[-1][1])  # the last picture painted again
    assert painted == {"items": every, "painted": every, "right": 0, "whole": 0}


def test_every_answer_about_the_picture_is_made_of_taught_words():
    from llmga.data.world_english import LOOK_ANSWER
    from llmga.eval.world_assistant import taught_words

    for template in LOOK_ANSWER.all():
        words = set(re.findall(r"[a-z]+", template.format(scene="").lower()))
        assert words and words <= taught_words(), template


def test_one_kind_can_be_asked_alone(items):
    summary, verdicts = measure_chat(taught(items), n=3, seed=0, new_words=0, relations=0, kinds=("look",))
    assert {v.item.kind for v in verdicts} == {"look"} and len(verdicts) == 6
    assert summary["looks"] == {"items": 6, "painted": 0, "right": 6, "whole": 6} and summary["non_requests"]["items"] == 6
    shown = format_summary(summary)
    assert "faithful" not in shown and "questions about the last picture: painted 0 of 6" in shown


def test_sampled_measurement_asks_each_item_with_a_seed_of_its_own(items):
    brain = taught(items)
    summary, verdicts = measure_chat(brain, n=3, seed=0, new_words=6, temperature=0.2, relations=4)
    assert summary["task"]["right"]["value"] == 1.0 and len(brain.requests) == len(items)
    assert {r.settings.temperature for r in brain.requests} == {0.2}
    conversations = {(tuple(item.history), item.request) for item in items}  # some items repeat
    assert len({r.settings.seed for r in brain.requests}) == len(conversations)


def test_a_world_assistant_is_asked_with_its_prompts_kept_to_the_caption_form(items):
    from llmga.world.assistants import SYSTEM_PROMPT
    from llmga.world.captions import CAPTION_FORM

    brain = taught(items)
    brain.system_prompt = SYSTEM_PROMPT
    measure_chat(brain, n=3, seed=0, new_words=6, relations=4)
    assert len(brain.requests) == len(items) and {r.prompt_form for r in brain.requests} == {CAPTION_FORM}


def test_sampled_a_brain_that_keeps_to_scripts_is_kept_to_each_last_messages_from_the_start(items):
    brain = taught(items)
    brain.keeps_scripts = True
    measure_chat(brain, n=3, seed=0, new_words=6, temperature=0.2, relations=4)
    assert len(brain.requests) == len(items)  # nothing asked again
    for request, item in zip(brain.requests, items):
        chinese = bool(re.search(r"[\u4e00-\u9fff]", item.request))
        assert request.scripts == frozenset({"LATIN", "CJK"} if chinese else {"LATIN"})


def test_a_brain_that_paints_one_picture_for_everything_is_caught(items):
    star = 'Sure. <gen_img>a small red star at the center, on grass under a day sky</gen_img>'
    summary, _ = measure_chat(ScriptedBrain(star, multimodal=False), n=3, seed=0, new_words=6)
    assert summary["faithfulness"]["en"]["whole"]["value"] < 0.3
    non_requests = summary["non_requests"]
    assert non_requests["failed"] == non_requests["items"] > 0
    asked = {(i.history, i.request) for i in items if i.task is None}
    assert non_requests["failed_distinct"] == non_requests["distinct"] == len(asked) < non_requests["items"]
    assert f"{non_requests['failed']} of {non_requests['items']} ({len(asked)} of {len(asked)} distinct" in \
        format_summary(summary)
    confusion = summary["task"]["confusion"]
    assert confusion["edit"].get("edit", 0) == 0 and summary["task"]["edits_from_scratch"] == summary["task"]["edits"]
    assert summary["language"]["value"] < 1.0  # English sentences to Chinese requests


def test_agreement_counts_objects_and_compares_each_named_attribute_over_all_objects():
    wanted = Request(parse_detailed("a small green circle at the top left and a small green circle at the center, "
                                    "on snow under a night sky"), frozenset({"shape", "colour", "time"}))
    one = parse_detailed("a small green circle at the top left, on snow under a night sky")
    assert agreement(one, wanted) == {"count": False, "time": True, "shape": False, "colour": False}
    moved = parse_detailed("a large green circle at the bottom left and a small green circle at the center, "
                           "on snow under a night sky")
    assert all(agreement(moved, wanted).values())


def test_a_reply_contradicts_its_prompt_when_its_text_names_another_colour_shape_or_ground():
    assert contradicts(parse_reply("Here is a cat on snow. <gen_img>a small red star at the center, on grass "
                                   "under a day sky</gen_img>"))
    assert not contradicts(parse_reply("Here is a red star. <gen_img>a small red star at the center, on grass "
                                       "under a day sky</gen_img>"))
    assert contradicts(parse_reply("好的，这是蓝色的。<gen_img>a small red star at the center, on grass under a day "
                                   "sky</gen_img>"))
    assert contradicts(parse_reply("好的，换成圆了。<gen_img>a small red star at the center, on grass under a day "
                                   "sky</gen_img>"))
    assert not contradicts(parse_reply("好的，换成五角星了。<gen_img>a small red star at the center, on grass under a "
                                       "day sky</gen_img>"))


def test_fills_say_how_often_the_commonest_choice_was_made(items):
    same = "Here. " + tag_prompt("a large red star at the top right, on sand under a sunset sky", "generate")
    alike, _ = measure_chat(ScriptedBrain(lambda request: same, multimodal=False), n=3, seed=0, new_words=0,
                            relations=0)
    assert alike["fill_variety"]["position"] == "1/9, commonest 100%"
    varied, _ = measure_chat(taught(items), n=3, seed=0, new_words=6, relations=4)
    assert int(re.search(r"commonest (\d+)%", varied["fill_variety"]["position"])[1]) < 100


def test_an_edit_that_paints_the_last_picture_again_is_asked_again_as_the_assistant_does(items):
    answer = taught(items).replies[0]

    def stubborn_until_hotter(request):
        taught_reply = answer(request)
        if 'task="edit"' not in taught_reply or request.settings.temperature >= RETRY_TEMPERATURE:
            return taught_reply
        last = parse_reply(request.messages[-2]["content"]).prompts[-1]
        return f"Sure. {tag_prompt(last, 'edit')}"

    edits = sum(i.task == "edit" for i in items if i.kind != "relative")
    assert edits > 0
    retried, verdicts = measure_chat(ScriptedBrain(stubborn_until_hotter, multimodal=False), n=3, seed=0,
                                     new_words=6, relations=4)
    assert retried["edits_asked_again"] == {"asked": edits, "changed": edits}
    assert all(figures["whole"]["value"] == 1.0 for figures in retried["faithfulness"].values())
    assert sum(v.first_reply is not None for v in verdicts) == edits
    first_only, _ = measure_chat(ScriptedBrain(stubborn_until_hotter, multimodal=False), n=3, seed=0,
                                 new_words=6, relations=4, retry_edits=False)
    assert first_only["edits_asked_again"] == {"asked": 0, "changed": 0}
    assert min(figures["whole"]["value"] for figures in first_only["faithfulness"].values()) < 1.0


def test_several_draws_pool_their_items_and_show_each_draws_share(items):
    other = held_out_chat(3, seed=0, draw=1) + new_word_items(6, seed=0, draw=1) + relation_items(4, seed=0, draw=1)
    answer = taught(items + other).replies[0]
    wrong_on_draw_1 = {item.request for item in other if item.wanted is not None and item.language == "en"
                       and item.kind != "relative"} - {item.request for item in items}

    def reply(request):
        said = request.messages[-1]["content"]
        said = said if isinstance(said, str) else said[-1]["text"]
        taught_reply = answer(request)
        return taught_reply.replace("red", "blue").replace("green", "red") if said in wrong_on_draw_1 else taught_reply

    assert wrong_on_draw_1
    summary, verdicts = measure_chat(ScriptedBrain(reply, multimodal=False), n=3, seed=0, new_words=6, relations=4,
                                     draws=(0, 1))
    assert len(verdicts) == len(items) + len(other) and {v.draw for v in verdicts} == {0, 1}
    english = summary["whole_by_draw"]["en"]
    assert english["0"]["value"] == 1.0 and english["1"]["value"] < 1.0
    pooled = summary["faithfulness"]["en"]["whole"]
    assert pooled["n"] == english["0"]["n"] + english["1"]["n"]
    assert english["1"]["value"] < pooled["value"] < 1.0
    assert "by draw 0: 100.0%" in format_summary(summary)


def test_small_talk_opens_every_conversation_asked(items):
    opened = after_small_talk(items, seed=0)
    answer = taught(opened).replies[0]
    summary, verdicts = measure_chat(ScriptedBrain(answer, multimodal=False), n=3, seed=0, new_words=6, relations=4,
                                     small_talk=True)
    assert [v.item for v in verdicts] == opened
    assert summary["faithfulness"]["en"]["whole"]["value"] == 1.0 and summary["non_requests"]["failed"] == 0



def test_a_reply_in_the_language_of_earlier_turns_is_counted_when_the_user_changes_language():
    switched = chat_items(3, 0, ("en", "zh"), 6, 4, draw=0, switched=True)
    assert all(item.history for item in switched)
    answer = taught(switched).replies[0]

    def stays(request):  # prose in the language of the conversation's first message, the painted prompt as taught
        first, last = request.messages[1]["content"], request.messages[-1]["content"]
        in_chinese = [bool(re.search(r"[\u4e00-\u9fff]", text)) for text in (first, last)]
        assert in_chinese[0] != in_chinese[1]
        prompts = re.findall(r"<gen_img.*?</gen_img>", answer(request))
        return " ".join(["好的。" if in_chinese[0] else "Sure.", *prompts])

    for brain, language in ((ScriptedBrain(answer, multimodal=False), 1.0), (ScriptedBrain(stays, multimodal=False), 0.0)):
        summary, verdicts = measure_chat(brain, n=3, seed=0, new_words=6, relations=4, switched=True)
        assert [v.item for v in verdicts] == switched
        worded = sum(bool(v.reply.text.strip()) for v in verdicts if v.item.kind != "relative")  # probed apart
        assert summary["language"]["value"] == language and summary["language"]["n"] == worded > len(switched) / 2
        assert summary["faithfulness"]["en"]["whole"]["value"] == summary["faithfulness"]["zh"]["whole"]["value"] == 1.0


def test_a_reply_with_letters_of_another_script_is_counted_garbled(items):
    answer = taught(items).replies[0]

    def reply(request):  # the out-of-world answers break off into another script, as a small model's may
        taught_reply = answer(request)
        return taught_reply if "<gen_img" in taught_reply or not taught_reply.startswith(("Sorry", "I can")) \
            else "I can'אים a cat on grass at night."

    summary, _ = measure_chat(ScriptedBrain(reply, multimodal=False), n=3, seed=0, new_words=6, relations=4)
    english_outside = sum(i.kind == "outside" and i.language == "en" and i.task is None for i in items)
    assert english_outside and summary["garbled"] == english_outside
    assert summary["non_requests"]["failed"] == 0  # no picture: the old figures could not see it
    assert "garbled (another script): " + str(english_outside) in format_summary(summary)
    assert summary["scripts_asked_again"] == {"asked": english_outside, "kept": 0}

    def mended_when_hotter(request):  # as the assistant asks again: hotter, where this brain answers as taught
        return answer(request) if request.settings.temperature >= RETRY_TEMPERATURE else reply(request)

    mended, _ = measure_chat(ScriptedBrain(mended_when_hotter, multimodal=False), n=3, seed=0, new_words=6, relations=4)
    assert mended["garbled"] == 0 and mended["scripts_asked_again"] == {"asked": english_outside, "kept": english_outside}


def test_a_reply_with_a_broken_english_word_is_counted(items):
    answer = taught(items).replies[0]

    def reply(request):  # "You're welcome" broken as a fragile small model broke it
        return answer(request).replace("You're", "You'ht")

    summary, _ = measure_chat(ScriptedBrain(reply, multimodal=False), n=3, seed=0, new_words=6, relations=4)
    thanked = sum("You're" in item.reply for item in items)
    assert thanked and summary["broken_words"]["replies"] == thanked
    assert summary["broken_words"]["words"] == ["you'ht"] and summary["garbled"] == 0
    assert f"replies with words no taught reply or user uses: {thanked} of" in format_summary(summary)
