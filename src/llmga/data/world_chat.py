"""The world assistant's conversations, asked the way people ask (``llmga data world-chat``).

Each :class:`ChatItem` is a conversation (earlier turns, a request) and the
reply taught for it:

- ``request``, ``count``, ``several``: a drawing request naming any of size,
  colour, shape, place, time and ground, for one object, several alike ("two
  green circles") or two different ones, placed absolutely or one relative to
  the other ("... and a blue circle below it"); the reply's caption keeps
  every named attribute and fills the rest with varied choices; a second
  object asked for by its relation to the first is written by that relation
  (the caption grammar's "… and a small blue circle below it"), so the
  assistant copies the relation instead of working out the cell; objects are
  named in the order asked, not in the reading order the painters read
  (:func:`llmga.world.captions.absolute_prompt` puts them in it), so that the
  assistant need not work out a cell before it writes the object;
- ``anything``: "surprise me": everything is the assistant's choice;
- ``followup``: after a painted picture, an edit of it (the reply's tag says
  ``task="edit"``), another one like it (``task="similar"``), a new picture,
  or thanks; an edit's (and a similar picture's) caption names the objects in the
  order the picture's caption named them, a changed one where it stood and an
  added one last, so that the assistant copies the caption and changes one phrase;
- ``two-object-edit`` (trained only): after a two-object picture, an edit of
  one of the two (recolour, replace, remove, resize, move) or an added third; only the edit's
  reply is trained (the record's ``"train_on": "last"``), so these items teach
  which object an edit names without teaching more two-object first pictures;
- ``resize`` (trained only): after a painted picture, a resize of one
  object, bigger or smaller by chance: made where the object is the other
  size, else ("make it bigger" of a large star) an answer that says it
  already is that size and offers the other, nothing painted;
- ``look``: after a painted picture, a question about it ("what's in the
  picture?"): a plain answer describing the scene, nothing painted (no share
  of the default mix: ``--share look=…`` trains it);
- ``look-after-edit`` (trained only): the same question after a picture and
  an edit of it, answered with the edited scene, not the first (no share of
  the default mix either);
- ``new-after-picture`` (trained only): after a painted picture, a new
  one-object request ("Now draw a red star."): a new picture whose unnamed
  attributes are filled afresh, not copied from the last one (the
  ``followup`` kind's "new" turn alone; no share of the default mix);
- ``chat``, ``question``: greetings, thanks, what the assistant can draw,
  sums and capitals: a plain answer, no painting;
- ``outside``: a request for something the world has not (a cat on a sofa):
  an honest answer offering the nearest thing it can draw, and sometimes the
  user's "yes please" painted.

Some conversations (:data:`SMALL_TALK_SHARE`) open with small talk first
(:func:`small_talk`), as a new user's do: "hello", "what can you draw?".

Every reply that paints states its task (``<gen_img task="generate">``), so
the assistant, not the wording rules, decides what a turn does.

**Held out.** Training items use the ``train`` wordings of
:mod:`.world_english` and :mod:`.world_chinese` and never show a held-out
colour–shape pair (:func:`held_out_pairs`); the
measurement (:func:`held_out_chat`) uses only the ``held`` wordings (sentence
frames, place and relation templates, edit, chat and out-of-world phrasings,
out-of-world things) and, wherever a pair is named, a held-out pair.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

from ..errors import InvalidInputError
from ..protocol import parse_reply, tag_prompt
from ..world.assistants import SYSTEM_PROMPT
from ..world.captions import RELATIONS, detailed_caption, neighbour, ordered_caption, parse_caption, relative_caption
from ..world.edits import EDIT_KINDS, OBJECT_KINDS, EditPair, resize, sample_edit
from ..world.requests import EVERYTHING, Request
from ..world.scene import COLOURS, POSITIONS, SHAPES, SIZES, TERRAINS, TIMES, Background, Obj, Scene
from . import world_chinese, world_english
from .records import make_record, write_records
from .world_wording import HELD, OUTSIDE_THINGS, TRAIN, Ask, Mention

HELD_OUT_SHARE = 0.2
LANGUAGES: dict[str, ModuleType] = {"en": world_english, "zh": world_chinese}
#: the kinds of held-out items
KINDS = ("request", "count", "several", "anything", "followup", "chat", "question", "outside", "look")
#: how often each kind comes up in training, and the share of Chinese items; "relative" (trained only) is a
#: "several" request whose second object is placed relative to the first ("and a pink star below it")
SHARES = {"request": 0.12, "count": 0.05, "several": 0.10, "relative": 0.20, "anything": 0.08, "followup": 0.20,
          "two-object-edit": 0.35, "chat": 0.07, "question": 0.06, "outside": 0.12, "look": 0.0, "resize": 0.03,
          "look-after-edit": 0.0, "new-after-picture": 0.0}
#: the edits a ``two-object-edit`` item makes: of one of the two objects, or a third added
OBJECT_EDITS = (*OBJECT_KINDS, "add")
CHINESE_SHARE = 0.3
#: the share of trained conversations that open with small talk (a greeting, what it draws, a plain question)
SMALL_TALK_SHARE = 0.08
#: the share of trained conversations whose earlier turns are in the other language (the reply follows the last)
SWITCH_SHARE = 0.15
#: the share of trained questions that are facts naming world words (the language's ``FACTS``)
FACT_SHARE = 0.3
#: how often a one-object request names each attribute (shape is always named)
NAMING = {"colour": 0.9, "size": 0.5, "position": 0.5, "time": 0.4, "terrain": 0.4}
#: out-of-world things, trained and held out, with the nearest thing the world has (shape, colour or None)
OUTSIDE = {split: {key: tuple(entry[2]) if entry[2] else None for key, entry in things.items()}
           for split, things in OUTSIDE_THINGS.items()}


def held_out_pairs(seed: int = 0) -> set[tuple[str, str]]:
    """Colour–shape pairs never requested or shown in training."""
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    random.Random(seed).shuffle(pairs)
    return set(pairs[: round(len(pairs) * HELD_OUT_SHARE)])


def colour_shapes(*scenes: Scene) -> set[tuple[str, str]]:
    """The colour–shape pairs the scenes' objects show."""
    return {(o.colour, o.shape) for scene in scenes for o in scene.objects}


@dataclass(frozen=True)
class ChatItem:
    """One conversation: earlier (user, assistant) turns, the request, the reply taught, and what it must do.

    ``task`` is what the reply's prompt is for (None: nothing is painted);
    ``wanted`` what the painted prompt must show, where anything is asked for;
    ``scenes`` every scene the item shows or names (for the held-out check);
    ``train_history`` whether the replies in ``history`` are trained too.
    """

    kind: str
    language: str
    history: tuple[tuple[str, str], ...]
    request: str
    reply: str
    task: str | None = None
    wanted: Request | None = None
    scenes: tuple[Scene, ...] = ()
    train_history: bool = True


def painted_reply(language: ModuleType, rng: random.Random, scene: Scene, task: str = "generate",
                  caption: str | None = None) -> str:
    """A short sentence and ``scene``'s detailed caption (or ``caption``) in tags naming ``task``."""
    return f"{language.reply(task, rng)} {tag_prompt(caption or detailed_caption(scene), task)}"


def reply_caption(ask: Ask, scene: Scene) -> str | None:
    """Where the request names two objects or more: the caption in the order asked, an object placed by its
    relation to the one before placed by the same relation (else None: the plain detailed caption)."""
    if len(ask.mentions) < 2:
        return None
    by_look = {(o.colour, o.shape): o for o in scene.objects}
    objects = [by_look[m.colour, m.shape] for m in ask.mentions]
    caption = relative_caption if any(mention.relation for mention in ask.mentions) else ordered_caption
    return caption(objects, scene.background)


def last_prompt(item: ChatItem) -> str:
    """The prompt ``item``'s reply paints."""
    return parse_reply(item.reply).prompts[-1]


def caption_after(pair: EditPair, picture: ChatItem) -> str:
    """The caption of ``pair``'s target with its objects in the order ``picture``'s caption named the source's:
    a changed object where it stood, a removed one left out, an added one last."""
    previous = parse_caption(last_prompt(picture)).objects  # in the order the caption names them
    old = [o for o in pair.source.objects if o not in pair.target.objects]
    new = [o for o in pair.target.objects if o not in pair.source.objects]
    changed = dict(zip(old, new)) if len(old) == len(new) else {}
    ordered = [changed.get(o, o) for o in previous if o in changed or o in pair.target.objects]
    return ordered_caption(ordered + [o for o in pair.target.objects if o not in ordered], pair.target.background)


def _background(rng: random.Random) -> Background:
    return Background(rng.choice(TIMES), rng.choice(TERRAINS))


def pick_pair(rng: random.Random, held: set, want_held: bool, avoid: set | None = None) -> tuple[str, str]:
    """A colour–shape pair, held out exactly when ``want_held``."""
    while True:
        pair = (rng.choice(COLOURS), rng.choice(SHAPES))
        if (pair in held) == want_held and pair not in (avoid or set()):
            return pair


def _scenery(rng: random.Random, background: Background) -> tuple[str | None, str | None, set[str]]:
    time = background.time if rng.random() < NAMING["time"] else None
    terrain = background.terrain if rng.random() < NAMING["terrain"] else None
    return time, terrain, {name for name, value in (("time", time), ("terrain", terrain)) if value}


def one_object(rng: random.Random, held: set, want_held: bool) -> tuple[Ask, Request]:
    """A one-object request naming its shape and, each by chance, colour, size, place, time and ground."""
    colour, shape = pick_pair(rng, held, want_held)
    obj = Obj(shape, colour, rng.choice(SIZES), rng.choice(POSITIONS))
    named = {"shape"} | {a for a in ("colour", "size", "position") if rng.random() < NAMING[a]}
    background = _background(rng)
    time, terrain, scenery = _scenery(rng, background)
    mention = Mention(shape, colour if "colour" in named else None, obj.size if "size" in named else None,
                      position=obj.position if "position" in named else None)
    return Ask((mention,), time, terrain), Request(Scene((obj,), background), frozenset(named | scenery))


def alike(rng: random.Random, held: set, want_held: bool) -> tuple[Ask, Request]:
    """Two or three objects alike: "two green circles" (places are the assistant's choice)."""
    colour, shape = pick_pair(rng, held, want_held)
    count = rng.choice((2, 3))
    size = rng.choice(SIZES) if rng.random() < 0.4 else None
    objects = [Obj(shape, colour, size or rng.choice(SIZES), p) for p in rng.sample(POSITIONS, count)]
    background = _background(rng)
    time, terrain, scenery = _scenery(rng, background)
    named = {"shape", "colour"} | ({"size"} if size else set()) | scenery
    return Ask((Mention(shape, colour, size, count),), time, terrain), Request(Scene(tuple(objects), background),
                                                                          frozenset(named))


def _neighbour(rng: random.Random) -> tuple[str, str, str]:
    """A cell, a relation and the cell that relation leads to."""
    while True:
        first, relation = rng.choice(POSITIONS), rng.choice(sorted(RELATIONS))
        second = neighbour(first, relation)
        if second is not None:
            return first, relation, second


def two_objects(rng: random.Random, held: set, want_held: bool, placing: str | None = None) -> tuple[Ask, Request]:
    """Two different objects, both placed, the second placed relative to the first, or neither placed
    (``placing``: "absolute", "relative" or "none"; by chance when None)."""
    first_pair = pick_pair(rng, held, want_held)
    second_pair = pick_pair(rng, held, False, avoid={first_pair})
    pairs = [first_pair, second_pair]
    rng.shuffle(pairs)
    placing = placing or rng.choice(("absolute", "relative", "none"))
    if placing == "relative":
        first, relation, second = _neighbour(rng)
        cells = (first, second)
    else:
        relation, cells = None, tuple(rng.sample(POSITIONS, 2))
    sized = rng.random() < 0.4
    objects = [Obj(shape, colour, rng.choice(SIZES), cell) for (colour, shape), cell in zip(pairs, cells)]
    mentions = tuple(
        Mention(o.shape, o.colour, o.size if sized else None,
                position=o.position if placing == "absolute" or (placing == "relative" and i == 0) else None,
                relation=relation if placing == "relative" and i == 1 else None)
        for i, o in enumerate(objects))
    background = _background(rng)
    time, terrain, scenery = _scenery(rng, background)
    named = {"shape", "colour"} | ({"size"} if sized else set()) | ({"position"} if placing != "none" else set())
    return Ask(mentions, time, terrain), Request(Scene(tuple(objects), background), frozenset(named | scenery))


ASKERS = {"request": one_object, "count": alike, "several": two_objects,
          "relative": functools.partial(two_objects, placing="relative")}


def drawing_item(kind: str, language: ModuleType, rng: random.Random, split: str, held: set, want_held: bool,
                 code: str) -> ChatItem:
    """A ``request``, ``count``, ``several`` or ``relative`` item."""
    ask, wanted = ASKERS[kind](rng, held, want_held)
    return ChatItem(kind, code, (), language.request(ask, rng, split),
                    painted_reply(language, rng, wanted.scene, caption=reply_caption(ask, wanted.scene)), "generate",
                    wanted, (wanted.scene,))


def anything_item(language: ModuleType, rng: random.Random, split: str, code: str, held: set) -> ChatItem:
    """"Surprise me": a picture entirely of the assistant's choosing."""
    while True:
        scene = Scene(tuple(Obj(rng.choice(SHAPES), rng.choice(COLOURS), rng.choice(SIZES), p)
                            for p in rng.sample(POSITIONS, rng.choice((1, 1, 2)))), _background(rng))
        if not colour_shapes(scene) & held:
            break
    return ChatItem("anything", code, (), language.anything(rng, split), painted_reply(language, rng, scene),
                    "generate", Request(scene, frozenset()), (scene,))


def edit_item(kind: str, first: ChatItem, language: ModuleType, rng: random.Random, split: str, held: set,
              want_held: bool, code: str, kinds: tuple[str, ...] = EDIT_KINDS) -> ChatItem:
    """``first``'s picture, then an edit of it of one of ``kinds`` asked in ``language``."""
    source = first.wanted.scene
    pair = sample_edit(source, rng, kinds, max_objects=3)
    while want_held is False and colour_shapes(pair.target) & held:
        pair = sample_edit(source, rng, kinds, max_objects=3)
    return ChatItem(kind, code, ((first.request, first.reply),), language.edit(pair, rng, split),
                    painted_reply(language, rng, pair.target, "edit", caption_after(pair, first)), "edit",
                    Request(pair.target, EVERYTHING), (source, pair.target))


def two_object_edit_item(language: ModuleType, rng: random.Random, split: str, held: set, code: str,
                         earlier: str) -> ChatItem:
    """A two-object picture asked in language ``earlier``, then an edit of one of the two (or a third added);
    only the edit is trained."""
    first = drawing_item(rng.choice(("several", "relative")), LANGUAGES[earlier], rng, split, held, False, earlier)
    return replace(edit_item("two-object-edit", first, language, rng, split, held, False, code, OBJECT_EDITS),
                   train_history=False)


def followup_item(language: ModuleType, rng: random.Random, split: str, held: set, want_held: bool,
                  code: str, earlier: str) -> ChatItem:
    """A picture asked in language ``earlier``, then an edit of it, one like it, a new picture or thanks."""
    first = drawing_item(rng.choice(("request", "request", "several")), LANGUAGES[earlier], rng, split, held,
                         want_held, earlier)
    history = ((first.request, first.reply),)
    source = first.wanted.scene
    turn = rng.choices(("edit", "similar", "new", "thanks"), (0.6, 0.1, 0.2, 0.1))[0]
    if turn == "edit":
        return edit_item("followup", first, language, rng, split, held, want_held, code)
    if turn == "similar":
        return ChatItem("followup", code, history, language.similar(rng, split),
                        painted_reply(language, rng, source, "similar", last_prompt(first)), "similar",
                        Request(source, EVERYTHING), (source,))
    if turn == "new":
        return new_request_item("followup", first, language, rng, split, held, want_held, code)
    asked, answer = language.chat("thanks", rng, split)
    return ChatItem("followup", code, history, asked, answer, scenes=(source,))


def new_request_item(kind: str, first: ChatItem, language: ModuleType, rng: random.Random, split: str, held: set,
                     want_held: bool, code: str) -> ChatItem:
    """``first``'s conversation (its picture last), then a new one-object request asked in ``language``: painted
    as a new picture, what it leaves open filled afresh."""
    ask, wanted = one_object(rng, held, want_held)
    return ChatItem(kind, code, (*first.history, (first.request, first.reply)),
                    language.request(ask, rng, split, after_picture=True), painted_reply(language, rng, wanted.scene),
                    "generate", wanted, (first.wanted.scene, wanted.scene))


def new_after_picture_item(language: ModuleType, rng: random.Random, split: str, held: set, code: str,
                           earlier: str) -> ChatItem:
    """A one-object picture asked in language ``earlier``, then a new one-object request."""
    first = drawing_item("request", LANGUAGES[earlier], rng, split, held, False, earlier)
    return new_request_item("new-after-picture", first, language, rng, split, held, False, code)


def resize_item(language: ModuleType, rng: random.Random, split: str, held: set, code: str,
                earlier: str) -> ChatItem:
    """A picture of one or two objects asked in language ``earlier``, then a resize of one of them, bigger or
    smaller by chance: painted where the object is the other size, else answered that it already is that size
    (nothing painted). Both come from the same pictures, so that only the size asked decides the reply."""
    first = drawing_item(rng.choice(("request", "several")), LANGUAGES[earlier], rng, split, held, False, earlier)
    history, source = ((first.request, first.reply),), first.wanted.scene
    pair = resize(source, rng)
    if rng.random() < 0.5:
        return ChatItem("resize", code, history, language.edit(pair, rng, split),
                        painted_reply(language, rng, pair.target, "edit", caption_after(pair, first)), "edit",
                        Request(pair.target, EVERYTHING), (source, pair.target))
    obj = next(o for o in source.objects if o not in pair.target.objects)
    asked, answer = language.same_size(source, obj, rng, split)
    return ChatItem("resize", code, history, asked, answer, scenes=(source,))


def look_item(language: ModuleType, rng: random.Random, split: str, held: set, want_held: bool,
              code: str, earlier: str) -> ChatItem:
    """A picture asked in language ``earlier``, then a question about it: an answer describing the picture's
    scene, nothing painted."""
    kind = rng.choice(("request", "request", "several", "anything"))
    first = (anything_item(LANGUAGES[earlier], rng, split, earlier, held) if kind == "anything"
             else drawing_item(kind, LANGUAGES[earlier], rng, split, held, want_held, earlier))
    asked, answer = language.look(first.wanted.scene, rng, split)
    return ChatItem("look", code, ((first.request, first.reply),), asked, answer, scenes=first.scenes)


def look_after_edit_item(language: ModuleType, rng: random.Random, split: str, held: set, code: str,
                         earlier: str) -> ChatItem:
    """A picture asked in language ``earlier`` and an edit of it, then a question about the picture: an answer
    describing the edited scene, not the first one, nothing painted."""
    first = drawing_item(rng.choice(("request", "several")), LANGUAGES[earlier], rng, split, held, False, earlier)
    edited = edit_item("followup", first, LANGUAGES[earlier], rng, split, held, False, earlier)
    while not edited.wanted.scene.objects:  # the only object removed: nothing left to describe
        edited = edit_item("followup", first, LANGUAGES[earlier], rng, split, held, False, earlier)
    asked, answer = language.look(edited.wanted.scene, rng, split)
    return ChatItem("look-after-edit", code, (*edited.history, (edited.request, edited.reply)), asked, answer,
                    scenes=edited.scenes)


def chat_item(language: ModuleType, rng: random.Random, split: str, code: str) -> ChatItem:
    """A greeting, thanks or question about what the assistant draws: a plain answer."""
    asked, answer = language.chat(rng.choice(("greeting", "thanks", "capability")), rng, split)
    return ChatItem("chat", code, (), asked, answer)


def question_item(language: ModuleType, rng: random.Random, split: str, code: str) -> ChatItem:
    """A sum or a capital (in training, sometimes a fact naming world words): a plain answer."""
    if split == TRAIN and rng.random() < FACT_SHARE:
        asked, answer = rng.choice(language.FACTS)
    else:
        asked, answer = language.question(rng, split)
    return ChatItem("question", code, (), asked, answer)


def outside_item(language: ModuleType, rng: random.Random, split: str, held: set, code: str) -> ChatItem:
    """Something the world has not: an honest answer and an offer; sometimes the offer is taken and painted."""
    thing = rng.choice(sorted(OUTSIDE[split]))
    shape, colour = OUTSIDE[split][thing] or (rng.choice(SHAPES), None)
    while colour is None or (colour, shape) in held:
        colour = rng.choice(COLOURS)
    asked, answer = language.outside(thing, Mention(shape, colour), rng, split)
    if rng.random() < 0.7:
        return ChatItem("outside", code, (), asked, answer)
    scene = Scene((Obj(shape, colour, rng.choice(SIZES), rng.choice(POSITIONS)),), _background(rng))
    return ChatItem("outside", code, ((asked, answer),), language.accept(rng, split),
                    painted_reply(language, rng, scene), "generate", Request(scene, frozenset({"shape", "colour"})),
                    (scene,))


def small_talk(language: ModuleType, rng: random.Random, split: str) -> tuple[tuple[str, str], ...]:
    """One or two opening exchanges answered in words: a greeting, what the assistant draws, a plain question."""
    exchanges = []
    for _ in range(rng.choice((1, 2))):
        kind = rng.choice(("greeting", "capability", "question"))
        exchanges.append(language.question(rng, split) if kind == "question" else language.chat(kind, rng, split))
    return tuple(exchanges)


def opened_with_small_talk(item: ChatItem, rng: random.Random, split: str, language: str | None = None) -> ChatItem:
    """``item`` with :func:`small_talk` in ``language`` (default: the item's) before its own turns."""
    return replace(item, history=small_talk(LANGUAGES[language or item.language], rng, split) + item.history)


def other_language(code: str) -> str:
    """The other of the world's two languages."""
    return "zh" if code == "en" else "en"


#: the kinds whose earlier turns (a picture asked for and painted) :func:`make_item` writes in another language
PICTURE_FIRST = ("followup", "two-object-edit", "resize", "look", "look-after-edit", "new-after-picture")


def make_item(kind: str, code: str, rng: random.Random, split: str, held: set, want_held: bool = False,
              earlier: str | None = None) -> ChatItem:
    """An item of ``kind`` in language ``code`` ("en", "zh") with wordings of ``split``; its earlier turns, where
    it has any, in language ``earlier`` (default ``code``)."""
    language, earlier = LANGUAGES[code], earlier or code
    if kind in ASKERS:
        return drawing_item(kind, language, rng, split, held, want_held, code)
    if kind == "anything":
        return anything_item(language, rng, split, code, held)
    if kind == "followup":
        return followup_item(language, rng, split, held, want_held, code, earlier)
    if kind == "two-object-edit":
        return two_object_edit_item(language, rng, split, held, code, earlier)
    if kind == "resize":
        return resize_item(language, rng, split, held, code, earlier)
    if kind == "look":
        return look_item(language, rng, split, held, want_held, code, earlier)
    if kind == "look-after-edit":
        return look_after_edit_item(language, rng, split, held, code, earlier)
    if kind == "new-after-picture":
        return new_after_picture_item(language, rng, split, held, code, earlier)
    if kind == "chat":
        return chat_item(language, rng, split, code)
    if kind == "question":
        return question_item(language, rng, split, code)
    if kind == "outside":
        return outside_item(language, rng, split, held, code)
    raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")


def mix_shares(changes: Mapping[str, float] | None = None) -> dict[str, float]:
    """:data:`SHARES` with some kinds' weights changed (weights need not sum to 1)."""
    mix = {**SHARES, **(changes or {})}
    unknown = sorted(set(mix) - set(SHARES))
    if unknown:
        raise InvalidInputError(f"no kind of conversation is called {', '.join(unknown)}; "
                                f"the kinds are {', '.join(SHARES)}")
    if not all(weight >= 0 for weight in mix.values()) or not any(mix.values()):
        raise InvalidInputError("a kind's share must be 0 or more, and some kind's above 0")
    return mix


def training_items(n: int, seed: int = 0, chinese_share: float = CHINESE_SHARE,
                   shares: Mapping[str, float] | None = None, switch_share: float = SWITCH_SHARE) -> list[ChatItem]:
    """``n`` training items: trained wordings, no held-out colour–shape pair anywhere; ``chinese_share`` of
    them in Chinese; the kinds mixed by ``shares`` (:func:`mix_shares`' changes to :data:`SHARES`);
    ``switch_share`` of them with their earlier turns in the other language."""
    held = held_out_pairs(seed)
    mix = mix_shares(shares)
    kinds, weights = list(mix), list(mix.values())
    items = []
    for index in range(n):
        rng = random.Random(f"{seed}/world-chat/{index}")
        code = "zh" if rng.random() < chinese_share else "en"
        kind = rng.choices(kinds, weights)[0]
        # separate generators, so that every item drawn before these choices existed stays as it was
        opening = random.Random(f"{seed}/world-chat/{index}/small-talk")
        switched = random.Random(f"{seed}/world-chat/{index}/switch").random() < switch_share
        items.append(switched_item(kind, code, rng, TRAIN, held, opening) if switched else
                     opened(make_item(kind, code, rng, TRAIN, held), opening, TRAIN, SMALL_TALK_SHARE))
    return items


def opened(item: ChatItem, rng: random.Random, split: str, share: float, language: str | None = None) -> ChatItem:
    """``item`` opened with small talk (in ``language``) ``share`` of the time, by ``rng``'s first draw."""
    return opened_with_small_talk(item, rng, split, language) if rng.random() < share else item


def switched_item(kind: str, code: str, rng: random.Random, split: str, held: set, opening: random.Random,
                  want_held: bool = False) -> ChatItem:
    """An item of ``kind`` in language ``code`` whose earlier turns are in the other language: its picture, or
    (where it has none) small talk; the reply follows the user's last message."""
    other = other_language(code)
    item = make_item(kind, code, rng, split, held, want_held, earlier=other)
    return opened(item, opening, split, SMALL_TALK_SHARE if kind in PICTURE_FIRST else 1.0, other)


def draw_key(seed: int, draw: int = 0) -> str:
    """The random key of one draw of held-out items: draw 0 is the measurement every figure uses; another draw
    combines the same held-out wordings and pairs anew, to confirm a choice that draw 0 was used to make."""
    return f"{seed}" if draw == 0 else f"{seed}~{draw}"


def held_out_chat(n: int, seed: int = 0, languages: Sequence[str] = ("en", "zh"),
                  kinds: Sequence[str] = KINDS, draw: int = 0) -> list[ChatItem]:
    """``n`` held-out items per language and kind: held-out wordings, held-out pairs where a pair is named."""
    held, key = held_out_pairs(seed), draw_key(seed, draw)
    return [make_item(kind, code, random.Random(f"{key}/world-chat-bench/{code}/{kind}/{i}"), HELD, held,
                      want_held=True)
            for code in languages for kind in kinds for i in range(n)]


def held_out_switched(n: int, seed: int = 0, languages: Sequence[str] = ("en", "zh"),
                      kinds: Sequence[str] = KINDS, draw: int = 0) -> list[ChatItem]:
    """:func:`held_out_chat`'s kinds with the earlier turns in the other language (:func:`switched_item`)."""
    held, key = held_out_pairs(seed), draw_key(seed, draw)
    return [switched_item(kind, code, random.Random(f"{key}/world-chat-switched/{code}/{kind}/{i}"), HELD, held,
                          random.Random(f"{key}/world-chat-switched-opening/{code}/{kind}/{i}"), want_held=True)
            for code in languages for kind in kinds for i in range(n)]


def after_small_talk(items: Sequence[ChatItem], seed: int = 0, draw: int = 0,
                     switched: bool = False) -> list[ChatItem]:
    """The same held-out items, each opened with held-out small talk (:func:`small_talk`), in the other
    language if ``switched``."""
    key = draw_key(seed, draw) + ("/switched" if switched else "")
    return [opened_with_small_talk(item, random.Random(f"{key}/world-chat-small-talk/{i}"), HELD,
                                   other_language(item.language) if switched else None)
            for i, item in enumerate(items)]


def build_world_chat(out: str | Path, n: int = 4000, seed: int = 0, chinese_share: float = CHINESE_SHARE,
                     shares: Mapping[str, float] | None = None, switch_share: float = SWITCH_SHARE) -> Path:
    """Write ``n`` LLaVA-format training conversations to ``out`` (kinds mixed as :func:`training_items`
    mixes them), and the world assistant's :data:`SYSTEM_PROMPT` to ``system_prompt.txt`` beside it
    (for ``llmga train stage1 --system-prompt``)."""
    records = [make_record(f"world-chat-{i}", [*item.history, (item.request, item.reply)], kind=item.kind,
                           language=item.language, **({} if item.train_history else {"train_on": "last"}))
               for i, item in enumerate(training_items(n, seed, chinese_share, shares, switch_share))]
    written = write_records(records, out)  # makes the folder
    (written.parent / "system_prompt.txt").write_text(SYSTEM_PROMPT)
    return written
