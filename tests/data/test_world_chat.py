"""The world assistant's conversations: taught replies keep what was asked, and the held-out set stays apart."""

import importlib.util
import json
import random
import re
from dataclasses import replace
from pathlib import Path

import pytest

from llmga.data import world_chinese, world_english
from llmga.data import world_chat
from llmga.data.world_chat import (CHINESE_SHARE, KINDS, PICTURE_FIRST, SHARES, SWITCH_SHARE, after_small_talk, build_world_chat,
                                   colour_shapes, held_out_chat, held_out_pairs, held_out_switched, training_items)
from llmga.data.world_wording import HELD, OUTSIDE_THINGS, SPLITS, Ask, Mention, Phrasings, phrasings, whole_ask
from llmga.protocol import parse_reply
from llmga.world.captions import parse_caption, parse_detailed
from llmga.world.requests import shows
from llmga.world.scene import Background, Obj, Scene, sample_scene, sample_scenes

TRAINING_SHARES = {"look": 0.05, "look-after-edit": 0.03, "new-after-picture": 0.03}  # no share by default
TRAINING = training_items(3000, seed=0, shares=TRAINING_SHARES)
HELD_OUT = held_out_chat(15, seed=0)


def wording_pattern(template: str) -> re.Pattern:
    """A template as a regular expression (fields match anything)."""
    fixed = ".+?".join(re.escape(part.strip()) for part in re.split(r"\{\w+\}", template))
    return re.compile(("\\b" if template[0].isascii() and template[0].isalpha() else "") + fixed)


def held_wordings(module):
    """Every held-out template of a language module, as a regular expression."""
    banks = [value for value in vars(module).values() if isinstance(value, Phrasings)]
    banks += [v for value in vars(module).values() if isinstance(value, dict)
              for v in value.values() if isinstance(v, Phrasings)]
    for bank in banks:
        for template in bank.held:
            yield template, wording_pattern(template)


def test_phrasings_refuse_a_wording_both_trained_and_held_out():
    with pytest.raises(ValueError, match="both trained and held out"):
        phrasings("at night|by night", "by night")


@pytest.mark.parametrize("module", [world_english, world_chinese], ids=["en", "zh"])
def test_no_training_request_uses_a_held_out_wording(module):
    said = [turn for item in TRAINING for turn in (item.request, *(h[0] for h in item.history))]
    for template, pattern in held_wordings(module):
        found = next((text for text in said if pattern.search(text)), None)
        assert found is None, f"held-out wording {template!r} is in training: {found!r}"


def test_no_training_request_uses_a_fresh_wording_of_the_probe():
    """benchmarks/probe_fresh_wordings.py asks in wordings neither training nor the held-out set uses."""
    path = Path(__file__).parents[2] / "benchmarks" / "probe_fresh_wordings.py"
    spec = importlib.util.spec_from_file_location("probe_fresh_wordings", path)
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    said = [turn for item in TRAINING for turn in (item.request, *(h[0] for h in item.history))]
    for module, tables in probe.FRESH.items():
        for table, fresh in tables.items():
            bank = getattr(module, table)
            for key, words in fresh.items():
                known = (bank if key is None else bank[key]).all()
                for template in words.split("|"):
                    assert template not in known, f"{template!r} is already a wording of {table}"
                    found = next((text for text in said if wording_pattern(template).search(text)), None)
                    assert found is None, f"fresh wording {template!r} is in training: {found!r}"


@pytest.mark.parametrize("column", [0, 1], ids=["en", "zh"])
def test_no_training_conversation_names_a_held_out_thing(column):
    said = [turn for item in TRAINING for turn in (item.request, *(t for pair in item.history for t in pair))]
    for key, entry in OUTSIDE_THINGS[HELD].items():
        assert not any(entry[column] in text for text in said), f"held-out thing {key!r} is in training"
    assert sum(item.kind == "outside" for item in TRAINING) > 200


def test_an_out_of_world_answer_offers_in_the_worlds_own_colour_words():
    answers = [item.reply for item in TRAINING if item.kind == "outside" and item.language == "en" and not item.task]
    synonyms = {word for colour, words in world_english.COLOUR.items() for word in words.train if word != colour}
    assert answers and synonyms >= {"navy", "crimson"}
    assert not [a for a in answers if any(re.search(rf"\b{word}\b", a) for word in synonyms)]


def test_training_never_shows_a_held_out_pair_and_the_measurement_always_asks_for_one():
    held = held_out_pairs(0)
    assert not any(colour_shapes(*item.scenes) & held for item in TRAINING)
    asked = [item for item in HELD_OUT if item.kind in ("request", "count", "several")]
    assert asked and all(colour_shapes(item.wanted.scene) & held for item in asked)


def test_another_draw_asks_new_combinations_of_the_same_held_out_pairs():
    other = held_out_chat(15, seed=0, draw=1)
    assert [i.kind for i in other] == [i.kind for i in HELD_OUT]
    asked = [item for item in other if item.kind in ("request", "count", "several")]
    first = {item.request for item in HELD_OUT if item.kind in ("request", "count", "several")}
    assert len(first & {item.request for item in asked}) < len(asked) / 10
    assert asked and all(colour_shapes(item.wanted.scene) & held_out_pairs(0) for item in asked)


def test_every_taught_reply_paints_what_was_asked_and_states_its_task():
    for item in TRAINING + HELD_OUT:
        reply = parse_reply(item.reply)
        if item.task is None:
            assert not reply.prompts and reply.text, item
            continue
        assert len(reply.prompts) == 1 and reply.tasks == [item.task], item
        if item.wanted is not None:
            assert shows(parse_detailed(reply.prompts[0]), item.wanted), item


def test_the_set_covers_every_kind_both_languages_and_every_task():
    assert {item.kind for item in TRAINING} == set(SHARES) > set(KINDS)  # "relative" is trained only
    assert {item.kind for item in HELD_OUT} == set(KINDS)
    relations = set()
    for item in (item for item in TRAINING if item.kind == "relative"):  # two objects in neighbouring cells
        (r1, c1), (r2, c2) = (o.row_col for o in item.wanted.scene.objects)
        assert abs(r1 - r2) + abs(c1 - c2) == 1 and "position" in item.wanted.attributes, item
        # the reply copies the relation asked for, in the order asked, instead of working out the second cell
        relations.add(re.search(r" (to its left|to its right|above it|below it), on ", item.reply).group(1))
    assert relations == {"to its left", "to its right", "above it", "below it"}
    chinese = [item for item in TRAINING if item.language == "zh"]
    assert abs(len(chinese) / len(TRAINING) - CHINESE_SHARE) < 0.05
    assert all(re.search(r"[\u4e00-\u9fff]", item.request) for item in chinese)
    assert {item.task for item in TRAINING} == {None, "generate", "edit", "similar"}
    named = {attribute for item in TRAINING if item.wanted for attribute in item.wanted.attributes}
    assert named == {"shape", "colour", "size", "position", "time", "terrain"}
    assert any(len(item.wanted.scene.objects) == 3 for item in TRAINING if item.kind == "count")


def test_a_question_about_the_picture_is_answered_with_its_scene_in_the_language_asked():
    looks = [item for item in TRAINING + HELD_OUT if item.kind == "look"]
    assert {item.language for item in looks} == {"en", "zh"}
    for item in looks:
        _, painted = item.history[-1]
        scene = parse_detailed(parse_reply(painted).prompts[0])
        assert item.task is None and item.scenes[-1] == scene
        for obj in scene.objects:
            assert (obj.colour if item.language == "en" else world_chinese.COLOUR[obj.colour]) in item.reply, item
        assert bool(re.search(r"[\u4e00-\u9fff]", item.reply)) == (item.language == "zh")


def test_a_question_after_an_edit_is_answered_with_the_edited_scene():
    items = [item for item in TRAINING if item.kind == "look-after-edit"]
    assert {item.language for item in items} == {"en", "zh"}
    for item in items:
        first, edited = (parse_detailed(parse_reply(reply).prompts[0]) for _, reply in item.history[-2:])
        assert parse_reply(item.history[-1][1]).tasks == ["edit"] and first != edited, item
        assert item.task is None and item.scenes == (first, edited)
        assert world_chat.LANGUAGES[item.language].read_description(item.reply) == edited, item.reply


def test_a_new_request_after_a_picture_is_a_new_picture_whose_open_attributes_are_not_the_last_ones():
    items = [item for item in TRAINING if item.kind == "new-after-picture"]
    assert {item.language for item in items} == {"en", "zh"} and len(items) > 40
    kept = total = 0
    for item in items:
        last = parse_detailed(parse_reply(item.history[-1][1]).prompts[0])
        new = parse_detailed(parse_reply(item.reply).prompts[0])
        assert item.task == "generate" and parse_reply(item.reply).tasks == ["generate"], item
        assert item.scenes == (last, new) == (last, item.wanted.scene) and len(last.objects) == len(new.objects) == 1
        for attribute, read in (("position", lambda s: s.objects[0].position), ("time", lambda s: s.background.time),
                                ("terrain", lambda s: s.background.terrain)):
            if attribute not in item.wanted.attributes:
                kept, total = kept + (read(new) == read(last)), total + 1
    assert kept / total < 0.4  # by chance: 1/9 of places, 1/3 of times, 1/4 of grounds


def test_the_default_mix_trains_no_question_about_the_picture():
    assert SHARES["look"] == SHARES["look-after-edit"] == SHARES["new-after-picture"] == 0
    assert not any(item.kind.startswith("look") or item.kind == "new-after-picture"
                   for item in training_items(500, seed=0))


def test_a_set_can_be_mostly_chinese_and_keeps_its_held_out_pairs_out():
    items = training_items(300, seed=0, chinese_share=0.8)
    share = sum(item.language == "zh" for item in items) / len(items)
    assert 0.72 < share < 0.88
    assert not any(colour_shapes(*item.scenes) & held_out_pairs(0) for item in items)


def test_a_follow_up_edit_is_a_two_turn_conversation_on_the_first_picture():
    edit = next(item for item in TRAINING if item.task == "edit")
    (first_request, first_reply), = edit.history
    before = parse_detailed(parse_reply(first_reply).prompts[0])
    after = parse_detailed(parse_reply(edit.reply).prompts[0])
    assert before != after and edit.scenes == (before, after)


def test_objects_are_named_in_the_order_asked_and_an_edit_keeps_the_order_of_the_caption_it_edits():
    asked_out_of_reading_order = edits_out_of_reading_order = 0
    for item in TRAINING + HELD_OUT:
        if item.task is None:
            continue
        named = parse_caption(parse_reply(item.reply).prompts[0]).objects
        if item.task == "generate" and item.kind in ("several", "relative"):
            # the caption's objects in the order the request names their colours (where the colours differ)
            words = world_english.COLOUR if item.language == "en" else world_chinese.COLOUR
            options = [(w.all() if isinstance(w, Phrasings) else (w,)) for w in (words[o.colour] for o in named)]
            at = [min(item.request.find(w) for w in ws if w in item.request) for ws in options]
            assert len({o.colour for o in named}) < len(named) or at == sorted(at), item
            asked_out_of_reading_order += [o.cell for o in named] != sorted(o.cell for o in named)
        if item.task in ("edit", "similar"):
            before = parse_caption(parse_reply(item.history[-1][1]).prompts[0]).objects
            kept = [o for o in named if o in before]
            assert kept == [o for o in before if o in kept], item  # unchanged objects keep their order
            changed = [(i, o) for i, o in enumerate(named) if o not in before]
            if len(named) > len(before):  # an object added goes last
                assert [i for i, _ in changed] == [len(named) - 1], item
            elif changed:  # a changed object stays where it stood
                (index, now), = changed
                (old,) = [o for o in before if o not in named]
                assert before.index(old) == index, item
            edits_out_of_reading_order += [o.cell for o in named] != sorted(o.cell for o in named)
    assert asked_out_of_reading_order > 50 and edits_out_of_reading_order > 50


def test_a_resize_is_made_or_answered_by_the_size_the_object_has():
    items = [item for item in TRAINING if item.kind == "resize"]
    assert {item.language for item in items} == {"en", "zh"}
    answered = [item for item in items if item.task is None]
    assert 0.35 < len(answered) / len(items) < 0.65
    sizes = set()
    for item in items:
        source = parse_detailed(parse_reply(item.history[-1][1]).prompts[0])
        reply = parse_reply(item.reply)
        if item.task == "edit":  # made: one object the other size, nothing else changed
            after = parse_detailed(reply.prompts[0])
            (old,), (new,) = set(source.objects) - set(after.objects), set(after.objects) - set(source.objects)
            assert new == replace(old, size=new.size) and new.size != old.size, item
            continue
        assert not reply.prompts and item.scenes == (source,), item
        # the answer says the object is the size the request's trained resize wording asks for, as one object is
        language = world_english if item.language == "en" else world_chinese
        said = {"large": ("already large", "already as big", "已经是大的", "最大"),
                "small": ("already small", "already as small", "已经是小的", "最小")}
        size = next(size for size, words in said.items() if any(w in item.reply for w in words))
        assert any(re.fullmatch(wording_pattern(t).pattern, item.request.rstrip("."), re.IGNORECASE)
                   for t in language.RESIZE[size].train), item
        assert size in {o.size for o in source.objects}, item
        sizes.add(size)
    assert sizes == {"large", "small"}


def test_an_edit_of_one_of_two_objects_trains_only_the_edit():
    items = [item for item in TRAINING if item.kind == "two-object-edit"]
    mix = world_chat.mix_shares(TRAINING_SHARES)
    assert abs(len(items) / len(TRAINING) - mix["two-object-edit"] / sum(mix.values())) < 0.02
    kinds = set()
    for item in items:
        assert not item.train_history and item.task == "edit"
        before = parse_detailed(parse_reply(item.history[-1][1]).prompts[0])
        after = parse_detailed(parse_reply(item.reply).prompts[0])
        assert len(before.objects) == 2 and before.background == after.background, item
        gone, new = set(before.objects) - set(after.objects), set(after.objects) - set(before.objects)
        if not (gone and new):
            kinds.add({3: "add", 1: "remove"}[len(after.objects)])
            continue
        (old,), (now,) = gone, new
        kinds.update(f for f in ("colour", "shape", "size", "position") if getattr(old, f) != getattr(now, f))
    assert kinds == {"add", "remove", "colour", "shape", "size", "position"}
    assert all(item.train_history for item in TRAINING if item.kind != "two-object-edit")


def test_some_conversations_open_with_small_talk_answered_in_words_and_are_otherwise_as_before(monkeypatch):
    share = world_chat.SMALL_TALK_SHARE
    monkeypatch.setattr(world_chat, "SMALL_TALK_SHARE", 0.0)
    plain = training_items(3000, seed=0, shares=TRAINING_SHARES)
    opened = [(item, before) for item, before in zip(TRAINING, plain) if item != before]
    assert abs(len(opened) / len(TRAINING) - share) < 0.03
    assert {item.language for item, _ in opened} == {"en", "zh"}
    for item, before in opened:
        extra = item.history[:len(item.history) - len(before.history)]
        assert item.history[len(extra):] == before.history and 1 <= len(extra) <= 2
        assert (item.kind, item.request, item.reply, item.task) == (before.kind, before.request, before.reply, before.task)
        assert not any(parse_reply(answer).prompts for _, answer in extra)


@pytest.mark.parametrize("module", [world_english, world_chinese], ids=["en", "zh"])
def test_the_held_out_items_after_small_talk_open_with_held_out_wordings(module):
    code = "en" if module is world_english else "zh"
    patterns = [pattern for _, pattern in held_wordings(module)]
    pairs = [(item, before) for item, before in zip(after_small_talk(HELD_OUT), HELD_OUT) if before.language == code]
    lengths = set()
    for item, before in pairs:
        extra = item.history[:len(item.history) - len(before.history)]
        assert item.history[len(extra):] == before.history and (item.request, item.reply) == (before.request, before.reply)
        for asked, _ in extra:
            assert any(pattern.search(asked) for pattern in patterns), f"{asked!r} is not a held-out wording"
        lengths.add(len(extra))
    assert lengths == {1, 2}


def in_chinese(text: str) -> bool:
    """Whether ``text`` (its generation prompts left out) holds Chinese characters."""
    return bool(re.search(r"[\u4e00-\u9fff]", parse_reply(text).text))


def changes_language(item) -> bool:
    """Whether any earlier turn of ``item`` is asked in the other language than its own."""
    return any(in_chinese(asked) != (item.language == "zh") for asked, _ in item.history)


def test_some_training_conversations_change_language_and_the_reply_follows_the_last_message():
    switched = [item for item in TRAINING if changes_language(item)]
    assert abs(len(switched) / len(TRAINING) - SWITCH_SHARE) < 0.03
    assert {item.language for item in switched} == {"en", "zh"} and {"followup", "request", "look"} <= {i.kind for i in switched}
    for item in switched:
        assert in_chinese(item.request) == in_chinese(item.reply) == (item.language == "zh"), item
        assert all(in_chinese(asked) == in_chinese(answer) for asked, answer in item.history), item
        assert in_chinese(item.history[0][0]) != (item.language == "zh"), item  # an outside offer stays in its own


def test_the_share_of_conversations_that_change_language_is_a_choice():
    items = training_items(1500, 0, switch_share=0.4)
    assert abs(sum(map(changes_language, items)) / len(items) - 0.4) < 0.04
    assert not any(map(changes_language, training_items(300, 0, switch_share=0.0)))


@pytest.mark.parametrize("module", [world_english, world_chinese], ids=["en", "zh"])
def test_the_held_out_items_in_a_changed_language_follow_held_out_turns_in_the_other(module):
    code = "zh" if module is world_english else "en"  # items whose earlier turns are in ``module``'s language
    items = [item for item in held_out_switched(10, seed=0) if item.language == code]
    assert {item.kind for item in items} == set(KINDS) and all(item.history for item in items)
    patterns = [pattern for _, pattern in held_wordings(module)]
    for item in items:
        assert in_chinese(item.request) == (code == "zh") and in_chinese(item.reply) == (code == "zh"), item
        assert in_chinese(item.history[0][0]) == (code == "en"), item  # an outside offer then stays in its own
        assert all(in_chinese(asked) == in_chinese(answer) for asked, answer in item.history), item
        assert item.kind in PICTURE_FIRST or any(p.search(item.history[0][0]) for p in patterns), item


def test_the_built_file_holds_every_turn(tmp_path):
    written = build_world_chat(tmp_path / "new" / "chat.json", n=200, seed=0)  # a folder not there yet
    records = json.loads(written.read_text())
    assert len(records) == 200 and (written.parent / "system_prompt.txt").read_text().strip()
    followups = [r for r in records if r["kind"] == "followup"]
    assert followups and all(len(r["conversations"]) in (4, 6, 8) for r in followups)
    assert sum(len(r["conversations"]) == 4 for r in followups) > 0.7 * len(followups)  # most without small talk
    assert {r["language"] for r in records} == {"en", "zh"}
    assert {r.get("train_on") for r in records if r["kind"] == "two-object-edit"} == {"last"}
    assert not any("train_on" in r for r in records if r["kind"] != "two-object-edit")


def test_every_answer_about_the_picture_reads_back_as_its_scene():
    looks = [item for item in TRAINING + HELD_OUT if item.kind == "look"]
    for item in looks:
        assert world_chat.LANGUAGES[item.language].read_description(item.reply) == item.scenes[-1], item.reply


@pytest.mark.parametrize("split", SPLITS)
def test_a_chinese_description_in_any_wording_reads_as_the_scene_it_names(split):
    rng = random.Random(5)
    for scene in sample_scenes(rng, 300, max_objects=3, min_objects=1):
        text = world_chinese.LOOK_ANSWER.pick(rng, split, scene=world_chinese.body(whole_ask(scene), rng, split))
        assert world_chinese.read_description(text) == scene, text
    first, second = Obj("star", "red", "small", "top left"), Obj("circle", "blue", "large", "middle left")
    ask = Ask((Mention("star", "red", "small", position="top left"), Mention("circle", "blue", "large", relation="below")),
              "night", "snow")
    assert world_chinese.read_description(world_chinese.body(ask, rng, split)) == Scene(
        (first, second), Background("night", "snow"))


@pytest.mark.parametrize("text", ["一个红色的小星星，在左上角，在右上角，夜晚，在雪地上",  # two places
                                  "一个红色的小星星，在左上角，夜晚",  # no ground
                                  "一个红色的星星，在左上角，夜晚，在雪地上",  # no size
                                  "一个红色的小星星，在它下面，夜晚，在雪地上",  # below nothing
                                  "一个红色的小星星，在左上角，一个蓝色的大圆形，在左上角，夜晚，在雪地上",  # one cell twice
                                  "两个红色的小星星，在左上角，夜晚，在雪地上",  # two objects in one phrase
                                  "", "It shows a small red star at the top left, on snow under a night sky."])
def test_a_chinese_description_that_names_no_whole_scene_reads_as_none(text):
    assert world_chinese.read_description(text) is None


def test_the_longest_chinese_word_is_read_first():
    scene = world_chinese.read_description("我画了一个红色的小星星，在左上角，大白天，在绿草地上。")
    assert scene == Scene((Obj("star", "red", "small", "top left"),), Background("day", "grass"))


def test_an_english_description_reads_as_its_scene_and_anything_else_as_none():
    assert world_english.read_description("I drew a small red star at the top left, on snow under a night sky.") == \
        Scene((Obj("star", "red", "small", "top left"),), Background("night", "snow"))
    assert world_english.read_description("It shows a red star.") is None
    assert world_english.read_description("A small red star at the top left, on snow under a night sky.") is None


def test_every_prompt_a_world_assistant_is_taught_or_measured_by_is_in_the_caption_form():
    from llmga.world.captions import CAPTION_FORM

    items = world_chat.training_items(3000, 0) + world_chat.held_out_chat(5) + world_chat.held_out_switched(3)
    prompts = [p for i in items for said in [*(a for _, a in i.history), i.reply] for p in parse_reply(said).prompts]
    assert len(prompts) > 2000 and all(CAPTION_FORM.fullmatch(p) for p in prompts)


@pytest.mark.parametrize("module", [world_english, world_chinese], ids=["en", "zh"])
def test_size_and_place_edits_name_the_new_size_or_cell_and_call_a_lone_object_it(module):
    from llmga.world.edits import move, resize

    pronoun = "it" if module is world_english else "它"
    named = {"it": 0, "other": 0}
    for seed in range(200):
        scene = sample_scene(seed, 1 + seed % 2, min_objects=1 + seed % 2)
        pair = (resize if seed % 4 < 2 else move)(scene, seed)
        asked = module.edit(pair, random.Random(seed), ("train", HELD)[seed % 3 == 0])
        said_it = re.search(r"\bit\b" if module is world_english else pronoun, asked) is not None
        assert not said_it or len(scene.objects) == 1, asked  # "it" only where one object could be meant
        named["it" if said_it else "other"] += 1
        (new,) = set(pair.target.objects) - set(pair.source.objects)
        side = next((word for word in ("left", "right") if word in new.position), None)
        if pair.kind == "move" and module is world_english and side:
            assert side in asked, asked  # the cell asked for is the target's
    assert named["it"] > 20 and named["other"] > 20
