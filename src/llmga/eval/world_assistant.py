"""The world assistant asked the way people ask, on held-out wordings (``llmga eval assistant``).

Items come from :func:`llmga.data.world_chat.held_out_chat` (sentence frames,
templates and colour–shape pairs no training item uses) in English and
Chinese, plus a probe of synonyms no training item uses
(:data:`llmga.data.world_english.NEW_WORDS`) and a probe of two-object requests
whose second object is placed relative to the first ("…and a pink star just
underneath it"; held-out wordings in both languages). Every reply is parsed as the
assistant parses it; a prompt is painted by the oracle painter and read back
by the judge. A multimodal brain is shown the oracle's picture of the last
prompt of an item's history, as the assistant shows it what it painted.
Reported, each with its 95% interval:

- per language, the share of drawing requests whose picture keeps every named
  attribute (``whole``), per attribute (``count``: as many objects as asked);
  the same for each probe (the relations probe counts in no other figure);
- non-requests (greetings, questions, out-of-world things, questions about the
  picture just painted): how many were painted;
  drawing requests: how many got no picture; each also counted over distinct
  conversations (a few held-out wordings are asked several times, and the same
  conversation gets the same reply, greedy or seeded); plain questions (sums,
  capitals): how many replies hold the right answer; questions about the
  picture just painted: how many answers name its colours and no other;
- the task the assistant runs (its stated one where the turn allows it, else
  the rules'), against the task meant, as a confusion table; follow-up edits
  that started from scratch;
- replies in the language asked in; reply text naming world words its own
  prompt does not (contradictions); replies holding letters of another script
  (garbled); replies holding a Latin-script word that no taught reply, nor the
  user, uses ("You'ht!": broken words); how varied the unnamed attributes'
  fills are.

Asked on several draws, every figure pools the draws' items (a figure per
attribute then rests on about three times as many requests), and each draw's
whole-request shares are given beside it. With ``small_talk`` every item is
asked after one or two exchanges of held-out small talk ("hello", "what can
you draw?"), as a new user opens a chat. With ``switched`` every item's
earlier turns (its picture, or small talk where it has none) are in the other
language, as when a user changes language mid-chat: the reply must follow the
last message.
"""

from __future__ import annotations

import functools
import random
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..brain import BrainRequest, complete
from ..brain.base import keeps_scripts
from ..data import world_chinese, world_english
from ..data.world_chat import (KINDS, LANGUAGES, SHARES, ChatItem, after_small_talk, draw_key, held_out_chat,
                               held_out_pairs, held_out_switched, make_item, painted_reply, pick_pair, training_items)
from ..data.world_wording import HELD, Ask, Mention
from ..conversation import Conversation
from .. import registry
from ..retry import allowed_scripts, ask_again, ask_again_in_scripts, edit_kept, followed_text, foreign_scripts, unchanged
from ..protocol import Reply, parse_reply
from ..routing import TurnInputs, route, settle
from ..settings import SamplingSettings
from ..world.captions import absolute_prompt, oracle_paint, parse_detailed_or_none
from ..world.requests import BACKGROUND_ATTRIBUTES, OBJECT_ATTRIBUTES, Request, shows, value_of
from ..world.scene import COLOURS, POSITIONS, SHAPES, SIZES, TERRAINS, TIMES, VOCAB, Background, Obj, Scene
from .metrics import share_interval
from .replies import answers, messages_for

#: the picture the assistant shows a multimodal brain for a prompt of the conversation (painted by the oracle)
painted = functools.partial(oracle_paint, strict=False)

NONE = "none"
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")
#: how many training conversations :func:`taught_words` reads: every reply template, not every rare name (an
#: out-of-world thing a reply names is the user's own word, and a capital the item's taught reply's)
TAUGHT_SAMPLE = 3000
#: what a taught plain answer turns on: its last number or capitalised word ("52", "Oslo")
_ANSWER_KEY = re.compile(r"\d+|[A-Z][a-z]+")
#: world words a reply's text may name, English and Chinese, by the caption word they stand for
_TEXT_WORDS = {**{w: w for w in (*COLOURS, *SHAPES, *TERRAINS)},
               **{zh: en for en, zh in world_chinese.COLOUR.items()}, **{zh: en for en, zh in world_chinese.GROUND.items()},
               **{zh: en for en, names in world_chinese.SHAPE.items() for zh in names.all()}}


@dataclass
class Verdict:
    """One reply, judged."""

    item: ChatItem
    reply: Reply
    task: str
    agreement: dict[str, bool] = field(default_factory=dict)
    whole: bool | None = None
    first_reply: str | None = None  # the raw first reply, where an unchanged edit was asked again
    draw: int = 0


def new_word_items(n: int, seed: int = 0, draw: int = 0) -> list[ChatItem]:
    """``n`` one-object English requests, each naming one attribute by a synonym no training item uses."""
    held, items = held_out_pairs(seed), []
    probes = [(attribute, value, word) for attribute, words in world_english.NEW_WORDS.items()
              for value, word in words.items()]
    for i in range(n):
        rng = random.Random(f"{draw_key(seed, draw)}/world-chat-new-words/{i}")
        attribute, value, word = probes[i % len(probes)]
        colour, shape = pick_pair(rng, held, True)
        obj = Obj(shape, value if attribute == "colour" else colour, value if attribute == "size" else rng.choice(SIZES),
                  rng.choice(POSITIONS))
        background = Background(value if attribute == "time" else rng.choice(TIMES),
                                value if attribute == "terrain" else rng.choice(TERRAINS))
        ask = Ask((Mention(obj.shape, obj.colour, obj.size if attribute == "size" else None),),
                  background.time if attribute == "time" else None,
                  background.terrain if attribute == "terrain" else None)
        scene = Scene((obj,), background)
        named = {"shape", "colour", attribute}
        items.append(ChatItem("new-words", "en", (), world_english.request(ask, rng, HELD, words={attribute: word}),
                              painted_reply(world_english, rng, scene), "generate", Request(scene, frozenset(named)),
                              (scene,)))
    return items


#: how many relations probes :func:`measure_chat` asks per language by default
RELATION_PROBES = 16


def relation_items(n: int, seed: int = 0, languages: Sequence[str] = ("en", "zh"), draw: int = 0) -> list[ChatItem]:
    """``n`` held-out requests per language for two objects, the second placed relative to the first."""
    held = held_out_pairs(seed)
    return [make_item("relative", code, random.Random(f"{draw_key(seed, draw)}/world-chat-relations/{code}/{i}"), HELD, held,
                      want_held=True) for code in languages for i in range(n)]


def agreement(read: Scene, wanted: Request) -> dict[str, bool]:
    """Per named attribute (and ``count``), whether the reading agrees with what was asked."""
    out = {"count": len(read.objects) == len(wanted.scene.objects)}
    for attribute in BACKGROUND_ATTRIBUTES:
        if attribute in wanted.attributes:
            out[attribute] = getattr(read.background, attribute) == getattr(wanted.scene.background, attribute)
    for attribute in OBJECT_ATTRIBUTES:
        if attribute in wanted.attributes:
            out[attribute] = (sorted(getattr(o, attribute) for o in read.objects)
                              == sorted(getattr(o, attribute) for o in wanted.scene.objects))
    return out


def decided_task(item: ChatItem, reply: Reply) -> str:
    """The task the assistant would run for this reply: its stated one where possible, else the rules'."""
    if not reply.prompts:
        return NONE
    painted_before = any(parse_reply(answered).prompts for _, answered in item.history)
    inputs = TurnInputs(last_image=painted_before)
    chosen, _ = settle(item.request, inputs, route(item.request, inputs), reply.stated_task)
    return chosen.task.value


def user_words(item: ChatItem) -> str:
    """Everything the user said in the item's conversation."""
    return " ".join([*(asked for asked, _ in item.history), item.request])


def garbled(verdict: Verdict) -> bool:
    """Whether the reply's text holds letters of a script neither Latin nor the user's words use
    (:func:`~llmga.retry.foreign_scripts`: "I can'אים a cat")."""
    return bool(foreign_scripts(verdict.reply, user_words(verdict.item)))


def _words(text: str) -> set[str]:
    return {word.lower() for word in _LATIN_WORD.findall(text)}


@functools.cache
def taught_words() -> frozenset[str]:
    """Every Latin-script word (lower-cased) of the replies in :data:`TAUGHT_SAMPLE` training conversations of
    the default mix, and in a tenth as many of the kinds it gives no share ("look")."""
    unshared = {kind: float(not share) for kind, share in SHARES.items()}
    items = training_items(TAUGHT_SAMPLE) + (training_items(TAUGHT_SAMPLE // 10, shares=unshared)
                                             if any(unshared.values()) else [])
    return frozenset(word for item in items
                     for text in (item.reply, *(answered for _, answered in item.history)) for word in _words(text))


def broken_words(verdict: Verdict) -> list[str]:
    """The reply text's Latin-script words that no taught reply, this item's own taught reply nor the user
    uses ("You'ht"): words a model that only repeats what it was taught should not write."""
    known = taught_words() | _words(user_words(verdict.item)) | _words(verdict.item.reply)
    return sorted(word for word in _words(verdict.reply.text) if word not in known)


def contradicts(reply: Reply) -> bool:
    """Whether the reply's text names a colour, shape or ground its own prompt does not."""
    if not reply.prompts:
        return False
    prompt = " ".join(reply.prompts).lower()
    return any(word in reply.text.lower() and caption_word not in prompt for word, caption_word in _TEXT_WORDS.items())


def judge_items(items: Sequence[ChatItem], raw: Sequence[str], judge, end_markers: Sequence[str] = ()) -> list[Verdict]:
    """Parse, decide and (for painted drawing requests) paint with the oracle and read back each reply."""
    verdicts = []
    for item, text in zip(items, raw, strict=True):
        reply = parse_reply(text, end_markers)
        verdicts.append(Verdict(item, reply, decided_task(item, reply)))
    painted = [v for v in verdicts if v.item.wanted is not None and v.reply.prompts]
    scenes = [parse_detailed_or_none(v.reply.prompts[0]) if len(v.reply.prompts) == 1 else None for v in painted]
    readable = [(v, s) for v, s in zip(painted, scenes) if s is not None]
    readings = judge.read([oracle_paint(v.reply.prompts[0]) for v, _ in readable]) if readable else []
    for (verdict, _), read in zip(readable, readings):
        verdict.agreement = agreement(read, verdict.item.wanted)
        # a request that names nothing ("surprise me") is kept by any readable scene
        verdict.whole = shows(read, verdict.item.wanted) if verdict.item.wanted.attributes else True
    for verdict in verdicts:
        if verdict.item.wanted is not None and verdict.whole is None:
            verdict.whole = False
            verdict.agreement = dict.fromkeys(["count", *verdict.item.wanted.attributes], False)
    return verdicts


def _estimate(flags: Sequence[bool]) -> dict | None:
    return share_interval(list(flags)).as_dict() if flags else None


def faithfulness(verdicts: Sequence[Verdict]) -> dict:
    """Whole-request and per-attribute shares over drawing requests that name something."""
    asked = [v for v in verdicts if v.item.wanted is not None and v.item.wanted.attributes]
    attributes = defaultdict(list)
    for verdict in asked:
        for attribute, ok in verdict.agreement.items():
            if attribute != "count" or len(verdict.item.wanted.scene.objects) > 1:
                attributes[attribute].append(ok)
    return {"requests": len(asked), "whole": _estimate([bool(v.whole) for v in asked]),
            "attributes": {a: _estimate(flags) for a, flags in sorted(attributes.items())}}


def answered_right(verdict: Verdict) -> bool:
    """Whether a plain question's reply holds the taught answer's key (its last number or name), as a word."""
    key = _ANSWER_KEY.findall(verdict.item.reply)[-1]
    return re.search(rf"(?<!\w){key}(?!\w)", verdict.reply.text, re.ASCII) is not None


def colours_named(text: str) -> set[str]:
    """The world colours ``text`` names, in English ("red", as a word) or Chinese ("红色")."""
    return {c for c in COLOURS
            if re.search(rf"(?<![a-z]){c}(?![a-z])", text, re.IGNORECASE) or world_chinese.COLOUR[c] in text}


def described_right(verdict: Verdict) -> bool:
    """Whether a question about the last picture got an unpainted answer naming its colours and no other."""
    return not verdict.reply.prompts and colours_named(verdict.reply.text) == {
        o.colour for o in verdict.item.scenes[-1].objects}


def described(language: str, reply: Reply) -> Scene | None:
    """The whole scene (every object's colour, shape, size and place, the time and the ground, nothing else) an
    unpainted reply in ``language`` describes; None where it paints or names no whole scene."""
    return None if reply.prompts else LANGUAGES[language].read_description(reply.text)


def described_whole(verdict: Verdict) -> bool:
    """Whether a question about the last picture got an unpainted answer naming that whole scene, in the asker's
    language."""
    return described(verdict.item.language, verdict.reply) == verdict.item.scenes[-1]


def fill_variety(verdicts: Sequence[Verdict]) -> dict[str, str]:
    """For one-object requests, how many values each unnamed attribute was filled with (of how many), and the
    share of the commonest (a fair pick of one of 9 places gives about 11%)."""
    seen = defaultdict(Counter)
    for verdict in verdicts:
        wanted = verdict.item.wanted
        if wanted is None or len(wanted.scene.objects) != 1 or not verdict.reply.prompts:
            continue
        scene = parse_detailed_or_none(verdict.reply.prompts[0])
        if scene is None or len(scene.objects) != 1:
            continue
        for attribute in ("size", "position", "time", "terrain"):
            if attribute not in wanted.attributes:
                seen[attribute][value_of(scene, attribute)] += 1
    return {a: f"{len(values)}/{len(VOCAB[a])}, commonest {max(values.values()) / values.total():.0%}"
            for a, values in sorted(seen.items())}


def _tally(verdicts: Sequence[Verdict], failed) -> dict:
    """How many ``verdicts`` failed, of how many, over items and over distinct conversations."""
    def conversations(group):
        return {(v.item.history, v.item.request) for v in group}
    failures = [v for v in verdicts if failed(v)]
    return {"items": len(verdicts), "failed": len(failures),
            "distinct": len(conversations(verdicts)), "failed_distinct": len(conversations(failures))}


def _broken_tally(worded: Sequence[Verdict]) -> dict:
    """How many worded replies hold a broken word, of how many, and the words."""
    found = [broken_words(v) for v in worded]
    return {"replies": sum(map(bool, found)), "of": len(worded), "words": sorted({w for words in found for w in words})}


def summarise(verdicts: Sequence[Verdict]) -> dict:
    """Every figure of the module docstring."""
    by_language = defaultdict(list)
    for verdict in verdicts:
        key = "new words" if verdict.item.kind == "new-words" else verdict.item.language
        by_language[key].append(verdict)
    confusion: dict[str, Counter] = defaultdict(Counter)
    for verdict in verdicts:
        confusion[verdict.item.task or NONE][verdict.task] += 1
    non_requests = [v for v in verdicts if v.item.task is None]
    requests = [v for v in verdicts if v.item.task is not None]
    edits = [v for v in verdicts if v.item.task == "edit"]
    worded = [v for v in verdicts if v.reply.text.strip()]
    questions = [v for v in verdicts if v.item.kind == "question" and _ANSWER_KEY.search(v.item.reply)]
    looks = [v for v in verdicts if v.item.kind == "look"]
    return {
        "faithfulness": {key: faithfulness(group) for key, group in sorted(by_language.items())},
        "non_requests": _tally(non_requests, lambda v: bool(v.reply.prompts)),
        "requests": _tally(requests, lambda v: not v.reply.prompts),
        "questions": {"items": len(questions), "right": sum(map(answered_right, questions))},
        "looks": {"items": len(looks), "painted": sum(bool(v.reply.prompts) for v in looks),
                  "right": sum(map(described_right, looks)), "whole": sum(map(described_whole, looks))},
        "task": {"right": _estimate([v.task == (v.item.task or NONE) for v in verdicts]),
                 "confusion": {meant: dict(got) for meant, got in sorted(confusion.items())},
                 "edits_from_scratch": sum(v.task == "generate" for v in edits), "edits": len(edits)},
        "language": _estimate([bool(_CJK.search(v.reply.text)) == (v.item.language == "zh") for v in worded]),
        "contradictions": sum(contradicts(v.reply) for v in verdicts),
        "garbled": sum(garbled(v) for v in worded),
        "broken_words": _broken_tally(worded),
        "fill_variety": fill_variety(verdicts),
    }


def ask_again_as_the_assistant_does(brain, items: Sequence[ChatItem], raw: list[str], settings: SamplingSettings,
                                    masked_first: bool = False) -> tuple[dict[int, str], dict[int, str]]:
    """As the assistant does (:mod:`llmga.retry`): a reply with letters of a script the last message does not
    use (``masked_first``: though asked kept to its scripts), then one that runs an edit painting the last
    picture's prompt again, is asked again, and ``raw`` gets the reply kept. The first replies of those asked
    again, by index: (edits, other scripts)."""
    edits, other_scripts = {}, {}
    system_prompt = Conversation.for_brain(brain).system_prompt
    form = registry.prompt_form(system_prompt)
    for index, item in enumerate(items):
        conversation = functools.cache(lambda: messages_for(brain, item.request, None, item.history, painted))

        def ask(sampling: SamplingSettings, scripts: frozenset[str] | None) -> str:
            messages, pictures = conversation()
            return complete(brain, BrainRequest(messages, pictures, sampling.for_conversation(messages),
                                                scripts=scripts, prompt_form=form))

        said = followed_text(system_prompt, item.request)
        if foreign_scripts(parse_reply(raw[index], brain.end_markers), said):
            found = ask_again_in_scripts(ask, said, settings, brain.end_markers, keeps_scripts(brain), masked_first)
            other_scripts[index], raw[index] = raw[index], found[1] if found else raw[index]
        reply = parse_reply(raw[index], brain.end_markers)
        seen = [p for _, answered in item.history for p in parse_reply(answered).prompts]
        if decided_task(item, reply) == "edit" and unchanged(reply, seen[-1] if seen else None, absolute_prompt):
            found = ask_again(ask, edit_kept(reply, seen, absolute_prompt), settings, brain.end_markers)
            edits[index], raw[index] = raw[index], found[1] if found else raw[index]
    return edits, other_scripts


def greedy_verdicts(brain, items: Sequence[ChatItem], max_new_tokens: int = 96, judge=None) -> list[Verdict]:
    """Each item asked greedily, an unchanged edit or a reply in another script asked again as the assistant
    does (:func:`ask_again_as_the_assistant_does`), and judged (:func:`judge_items`): the probes' measurement."""
    from ..world.judge import Judge

    raw = answers(brain, [i.request for i in items], max_new_tokens=max_new_tokens,
                  histories=[i.history for i in items], paint=painted)
    ask_again_as_the_assistant_does(brain, items, raw, SamplingSettings(0.0, max_new_tokens=max_new_tokens))
    return judge_items(items, raw, judge or Judge.load(), brain.end_markers)


def chat_items(n: int, seed: int, languages: Sequence[str], new_words: int, relations: int,
               draw: int, small_talk: bool = False, kinds: Sequence[str] = KINDS,
               switched: bool = False) -> list[ChatItem]:
    """One draw's items: ``n`` held-out items per language and kind of ``kinds``, ``new_words`` probes and
    ``relations`` probes per language; with ``switched``, each item's earlier turns (its picture, or small talk
    where it has none) are in the other language; with ``small_talk``, each opens with held-out small talk as a
    new user opens."""
    probes = (new_word_items(new_words, seed, draw) if new_words else []) + relation_items(relations, seed, languages, draw)
    items = ((held_out_switched(n, seed, languages, kinds, draw=draw) + after_small_talk(probes, seed, draw, True))
             if switched else held_out_chat(n, seed, languages, kinds, draw=draw) + probes)
    return after_small_talk(items, seed, draw) if small_talk else items


def measure_chat(brain, n: int = 10, seed: int = 0, languages: Sequence[str] = ("en", "zh"), new_words: int = 20,
                 max_new_tokens: int = 96, judge=None, temperature: float = 0.0,
                 relations: int = RELATION_PROBES, draws: Sequence[int] = (0,),
                 retry_edits: bool = True, small_talk: bool = False,
                 kinds: Sequence[str] = KINDS, switched: bool = False) -> tuple[dict, list[Verdict]]:
    """Ask each of ``draws``' items (:func:`chat_items`); the summary, pooled over the draws, and each verdict.

    ``temperature`` 0 decodes greedily; above it each reply is sampled as the assistant samples it (kept to
    the last message's scripts from the start, where the brain can be and ``retry_edits``). A draw
    picks the items (:func:`~llmga.data.world_chat.draw_key`). With ``retry_edits`` (as the assistant does)
    a reply in a script the last message does not use, or an unchanged edit, is asked again
    (:func:`ask_again_as_the_assistant_does`; greedy replies are asked without the mask first: see
    :mod:`llmga.retry`). With
    ``small_talk`` every conversation opens with held-out small talk, with ``switched`` its earlier turns are
    in the other language (:func:`chat_items`); ``kinds`` picks the held-out kinds asked.
    """
    from ..world.judge import Judge

    judge = judge or Judge.load()
    batches = {draw: chat_items(n, seed, languages, new_words, relations, draw, small_talk, kinds, switched)
               for draw in dict.fromkeys(draws)}
    items = [item for batch in batches.values() for item in batch]
    masked_first = retry_edits and temperature > 0 and keeps_scripts(brain)
    system_prompt = Conversation.for_brain(brain).system_prompt
    raw = answers(brain, [i.request for i in items], max_new_tokens=max_new_tokens,
                  histories=[i.history for i in items], temperature=temperature, paint=painted,
                  scripts=[allowed_scripts(followed_text(system_prompt, i.request)) for i in items]
                  if masked_first else None)
    first, other_scripts = ask_again_as_the_assistant_does(
        brain, items, raw, SamplingSettings(temperature, max_new_tokens=max_new_tokens),
        masked_first) if retry_edits else ({}, {})
    verdicts = judge_items(items, raw, judge, brain.end_markers)
    for verdict, draw in zip(verdicts, [draw for draw, batch in batches.items() for _ in batch]):
        verdict.draw = draw
    for index, text in first.items():
        verdicts[index].first_reply = text
    summary = _pooled(verdicts, languages)
    summary["edits_asked_again"] = {"asked": len(first), "changed": sum(raw[i] != text for i, text in first.items())}
    summary["scripts_asked_again"] = {"asked": len(other_scripts),
                                      "kept": sum(raw[i] != text for i, text in other_scripts.items())}
    if len(batches) > 1:
        summary["whole_by_draw"] = {
            key: {str(draw): _pooled([v for v in verdicts if v.draw == draw], languages)["faithfulness"][key]["whole"]
                  for draw in batches}
            for key in summary["faithfulness"]}
    return summary, verdicts


def _pooled(verdicts: Sequence[Verdict], languages: Sequence[str]) -> dict:
    """:func:`summarise` over every verdict but the relations probes, which get a faithfulness of their own."""
    summary = summarise([v for v in verdicts if v.item.kind != "relative"])
    for code in languages:
        probed = [v for v in verdicts if v.item.kind == "relative" and v.item.language == code]
        if probed:
            summary["faithfulness"][f"relative, {code}"] = faithfulness(probed)
    return summary


def format_summary(summary: dict) -> str:
    """The summary as a few readable lines."""
    def pct(estimate: dict | None) -> str:
        if estimate is None:
            return "-"
        return f"{100 * estimate['value']:.1f}% [{100 * estimate['low']:.0f}-{100 * estimate['high']:.0f}] n={estimate['n']}"

    lines = []
    for key, figures in summary["faithfulness"].items():
        if not figures["requests"]:
            continue
        by_draw = summary.get("whole_by_draw", {}).get(key)
        lines.append(f"faithful, {key}: whole {pct(figures['whole'])}" + (
            "; by draw " + ", ".join(f"{draw}: {pct(share)}" for draw, share in by_draw.items()) if by_draw else ""))
        lines += [f"    {attribute}: {pct(value)}" for attribute, value in figures["attributes"].items()]
    def tally(figures: dict) -> str:
        return (f"{figures['failed']} of {figures['items']} "
                f"({figures['failed_distinct']} of {figures['distinct']} distinct conversations)")

    lines.append(f"non-requests painted: {tally(summary['non_requests'])}; "
                 f"drawing requests not painted: {tally(summary['requests'])}")
    questions = summary["questions"]
    lines.append(f"plain questions answered right: {questions['right']} of {questions['items']}")
    looks = summary["looks"]
    lines.append(f"questions about the last picture: painted {looks['painted']} of {looks['items']}; "
                 f"answered with its colours and no other {looks['right']}; described whole {looks['whole']}")
    task = summary["task"]
    lines.append(f"task right: {pct(task['right'])}; follow-up edits started from scratch: "
                 f"{task['edits_from_scratch']} of {task['edits']}")
    for meant, got in task["confusion"].items():
        lines.append(f"    meant {meant}: " + ", ".join(f"{k} {v}" for k, v in sorted(got.items())))
    if "edits_asked_again" in summary:
        again = summary["edits_asked_again"]
        lines.append(f"edits that painted the last picture unchanged, asked again: {again['asked']} "
                     f"({again['changed']} changed by a retry)")
    if summary.get("scripts_asked_again", {}).get("asked"):
        again = summary["scripts_asked_again"]
        lines.append(f"replies in a script the last message does not use, asked again: {again['asked']} ({again['kept']} mended)")
    lines.append(f"reply in the language asked: {pct(summary['language'])}; "
                 f"contradictions: {summary['contradictions']}; garbled (another script): "
                 f"{summary['garbled']}; fills: {summary['fill_variety']}")
    broken = summary["broken_words"]
    lines.append(f"replies with words no taught reply or user uses: {broken['replies']} of {broken['of']}"
                 + (f" ({', '.join(broken['words'][:12])})" if broken["words"] else ""))
    return "\n".join(lines)
