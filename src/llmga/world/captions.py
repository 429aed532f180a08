"""Captions of scenes, and the parser that turns a detailed caption back into its scene.

The detailed caption has one fixed grammar::

    detailed   := objects ", " background
    objects    := "an empty scene" | object (" and " object)*        (objects in reading order)
    object     := "a " SIZE " " COLOUR " " SHAPE (" at the " POSITION | " " RELATION)
    RELATION   := "to its left" | "to its right" | "above it" | "below it"
    background := "on " TERRAIN " under a " TIME " sky"

for example ``a large red star at the top left and a small blue circle at the
center, on grass under a sunset sky``. An object after the first may be placed
by a relation to the one before it (``a red star at the top left and a small
blue circle below it``): :func:`relative_caption` writes that form, keeping
the objects in the order asked, and :func:`absolute_prompt` turns it
back into cells, the form the world painters were trained on. The short
caption names colour and shape only: ``a red star`` (``a red star and a blue
circle``).

The parser accepts more than the writer produces: any case, extra spaces and
punctuation ("top-left"; full stops and semicolons count as commas), "an" for "a", "the" before a
terrain, objects separated by commas or "and", the two background phrases in
either order or apart, and a few position and relation aliases ("centre", "top
center", "under it", "below that one").
Text that does not fully parse raises :class:`CaptionParseError`, whose
``partial`` holds what did parse and a list of problems;
:func:`parse_caption` returns that partial result without raising.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import regex
from PIL import Image

from .render import render
from .scene import COLOURS, GRID, POSITIONS, SHAPES, SIZES, TERRAINS, TIMES, Background, Obj, Scene, WorldError

EMPTY = "an empty scene"
#: Other names the parser accepts for a position.
POSITION_ALIASES = {
    "centre": "center",
    "middle": "center",
    "center middle": "center",
    "middle center": "center",
    "top center": "top middle",
    "top centre": "top middle",
    "top": "top middle",
    "bottom center": "bottom middle",
    "bottom centre": "bottom middle",
    "bottom": "bottom middle",
    "center left": "middle left",
    "centre left": "middle left",
    "left": "middle left",
    "center right": "middle right",
    "centre right": "middle right",
    "right": "middle right",
}
#: the cell one step away from a cell, by relation: row and column offsets
RELATIONS = {"below": (1, 0), "above": (-1, 0), "right": (0, 1), "left": (0, -1)}
#: how the writer places an object by a relation to the one before it
RELATION_PHRASES = {"below": "below it", "above": "above it", "right": "to its right", "left": "to its left"}
#: every phrase the parser reads as a relation
_RELATION_FORMS = {"below": ("below {}", "under {}", "beneath {}"), "above": ("above {}", "over {}"),
                   "left": ("to the left of {}", "left of {}"), "right": ("to the right of {}", "right of {}")}
_RELATION_WORDS = {**{phrase: name for name, phrase in RELATION_PHRASES.items()},
                   **{form.format(referent): name for name, forms in _RELATION_FORMS.items() for form in forms
                      for referent in ("it", "that", "that one")}}
_ARTICLES = ("a", "an", "one")


def _any_of(words) -> str:
    return "(?:" + "|".join(map(re.escape, words)) + ")"


class CaptionForm:
    """The grammar above, for keeping a world assistant's prompts to it (:mod:`llmga.brain.forms`): exactly
    what :func:`detailed_caption` and :func:`relative_caption` write, with no object placed by a relation that
    leads off the grid. :meth:`fullmatch` is a ``regex`` pattern's (``partial``: whether a text is the
    beginning of a caption)."""

    _STEP = re.compile(f"at the ({_any_of(POSITIONS)})|({_any_of(RELATION_PHRASES.values())})")

    def __init__(self) -> None:
        looks = f"a {_any_of(SIZES)} {_any_of(COLOURS)} {_any_of(SHAPES)}"
        placed = f"at the {_any_of(POSITIONS)}"
        objects = (f"(?:{re.escape(EMPTY)}|{looks} {placed}"
                   f"(?: and {looks} (?:{placed}|{_any_of(RELATION_PHRASES.values())}))*)")
        self.pattern = regex.compile(f"{objects}, on {_any_of(TERRAINS)} under a {_any_of(TIMES)} sky")

    def fullmatch(self, text: str, partial: bool = False):
        """The match of the whole ``text`` (or of a beginning of a caption, ``partial``), or None."""
        match = self.pattern.fullmatch(text, partial=partial)
        return match if match is not None and self._on_grid(text) else None

    def _on_grid(self, text: str) -> bool:
        """Whether every relation written so far leads from the cell before it to a cell on the grid."""
        cell = None
        for step in self._STEP.finditer(text):
            cell = step.group(1) or (cell and neighbour(cell, _RELATION_WORDS[step.group(2)]))
            if cell is None:
                return False
        return True


#: the detailed caption's grammar (:class:`CaptionForm`)
CAPTION_FORM = CaptionForm()
_WORD_KIND = {**{w: "size" for w in SIZES}, **{w: "colour" for w in COLOURS}, **{w: "shape" for w in SHAPES}}


class CaptionParseError(WorldError):
    """A detailed caption that does not describe a scene; ``partial`` holds what did parse."""

    def __init__(self, message: str, partial: ParsedCaption):
        super().__init__(message)
        self.partial = partial


@dataclass
class ParsedCaption:
    """What a (possibly broken) detailed caption says: objects read in full, background parts, problems."""

    objects: list[Obj] = field(default_factory=list)
    time: str | None = None
    terrain: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the caption parsed with no problem."""
        return not self.problems

    def scene(self, default: Background | None = None) -> Scene:
        """The scene; a missing time or terrain is taken from ``default`` (day on grass)."""
        default = default or Background()
        return Scene(
            tuple(self.objects), Background(self.time or default.time, self.terrain or default.terrain)
        )


def object_phrase(obj: Obj, relation: str | None = None) -> str:
    """``a large red star at the top left`` (``relation``: ``a large red star below it``)."""
    where = RELATION_PHRASES[relation] if relation else f"at the {obj.position}"
    return f"a {obj.size} {obj.colour} {obj.shape} {where}"


def neighbour(position: str, relation: str) -> str | None:
    """The cell ``relation`` ("below") leads to from ``position``, or None off the grid."""
    row, column = divmod(POSITIONS.index(position), GRID)
    row, column = row + RELATIONS[relation][0], column + RELATIONS[relation][1]
    return POSITIONS[row * GRID + column] if 0 <= row < GRID and 0 <= column < GRID else None


def relation_between(first: str, second: str) -> str | None:
    """The relation that leads from cell ``first`` to the next cell ``second``, or None if they are not neighbours."""
    return next((r for r in RELATIONS if neighbour(first, r) == second), None)


def background_phrase(background: Background) -> str:
    """``on grass under a sunset sky``."""
    return f"on {background.terrain} under a {background.time} sky"


def detailed_caption(scene: Scene) -> str:
    """Every object (size, colour, shape, position) and the background, in the fixed grammar."""
    return ordered_caption(scene.objects, scene.background)


def ordered_caption(objects: Sequence[Obj], background: Background) -> str:
    """The detailed caption of ``objects`` in the order given, each at its cell (:func:`detailed_caption`
    lists a scene's in reading order)."""
    return _caption([object_phrase(obj) for obj in objects], background)


def relative_caption(objects: Sequence[Obj], background: Background) -> str:
    """The detailed caption of ``objects`` in the order given, each in a cell next to the one before it placed
    by that relation (``a large red star at the top left and a small blue circle below it, …``)."""
    return _caption([object_phrase(obj, relation_between(objects[i - 1].position, obj.position) if i else None)
                     for i, obj in enumerate(objects)], background)


def _caption(phrases: Sequence[str], background: Background) -> str:
    return f"{' and '.join(phrases) or EMPTY}, {background_phrase(background)}"


def short_caption(scene: Scene) -> str:
    """Colour and shape of each object: ``a red star`` (``an empty scene`` when there is none)."""
    return " and ".join(f"a {o.colour} {o.shape}" for o in scene.objects) or EMPTY


def _normalise(text: str) -> str:
    text = re.sub(r"[^a-z,]+", " ", re.sub(r"[;:.!?]", ",", text.lower()))
    return re.sub(r"\s*,\s*", ", ", re.sub(r"\s+", " ", text)).strip(" ,")


def _take(
    pattern: str, text: str, what: str, vocab: tuple[str, ...], hint: str, parsed: ParsedCaption
) -> tuple[str | None, str]:
    """Find the phrase ``pattern`` in ``text``; return its word (if in ``vocab``) and the text without it."""
    found = list(re.finditer(pattern, text))
    known = [m for m in found if m.group(1) in vocab]
    if known:  # "on the left" is no terrain when "on sand" is there too
        found = known
    if not found:
        parsed.problems.append(f"no {what}: expected {hint.replace('*', '<' + '|'.join(vocab) + '>')!r}")
        return None, text
    words = [m.group(1) for m in found]
    if len(set(words)) > 1:
        parsed.problems.append(f"more than one {what}: {', '.join(words)}")
    word = words[0]
    for m in reversed(found):
        text = text[: m.start()] + "," + text[m.end() :]
    if word not in vocab:
        parsed.problems.append(f"unknown {what} {word!r}; the world knows {', '.join(vocab)}")
        return None, text
    return word, text


def _chunks(text: str) -> list[str]:
    """Object phrases: split at commas and "and", rejoining pieces that do not start with an article."""
    chunks: list[str] = []
    for piece in (p.strip() for p in re.split(r",|\band\b", text)):
        if not piece:
            continue
        if chunks and piece.split()[0] not in _ARTICLES and not piece.startswith("empty"):
            chunks[-1] += " " + piece
        else:
            chunks.append(piece)
    return chunks


def _parse_object(chunk: str, parsed: ParsedCaption) -> Obj | None:
    relative = re.fullmatch(rf"(?:(?:a|an|one) )?(.+?) ({'|'.join(_RELATION_WORDS)})", chunk)
    match = relative or re.fullmatch(r"(?:(?:a|an|one) )?(.+?) (?:at|in|on) (?:the )?(.+)", chunk)
    if not match:
        parsed.problems.append(
            f"cannot read {chunk!r}: expected 'a <size> <colour> <shape> at the <position>'"
        )
        return None
    words, where = match.group(1).split(), match.group(2)
    position = POSITION_ALIASES.get(where, where)
    if relative:
        relation = _RELATION_WORDS[where]
        before = parsed.objects[-1].position if parsed.objects else None
        position = neighbour(before, relation) if before else None
        if position is None:
            parsed.problems.append(f"in {chunk!r}: {where!r} " + (
                f"leads off the grid from the {before}" if before else "follows no object"))
            return None
    found: dict[str, str] = {}
    problems = []
    for word in words:
        kind = _WORD_KIND.get(word)
        if kind is None:
            problems.append(f"unknown word {word!r}")
        elif kind in found:
            problems.append(f"two {kind}s ({found[kind]}, {word})")
        else:
            found[kind] = word
    problems += [f"no {kind}" for kind in ("size", "colour", "shape") if kind not in found]
    if position not in POSITIONS:
        problems.append(f"unknown position {where!r}; the world knows {', '.join(POSITIONS)}")
    if problems:
        parsed.problems.append(f"in {chunk!r}: {'; '.join(problems)}")
        return None
    return Obj(found["shape"], found["colour"], found["size"], position)


def parse_caption(text: str) -> ParsedCaption:
    """Read a detailed caption as far as it goes: never raises; problems are listed in the result."""
    parsed = ParsedCaption()
    norm = _normalise(text)
    if not norm:
        parsed.problems.append("empty caption")
        return parsed
    parsed.time, norm = _take(
        r"\bunder (?:an? |the )?(\w+) sky\b", norm, "time of day", TIMES, "under a * sky", parsed
    )
    parsed.terrain, norm = _take(r"\bon (?:the )?(\w+)\b", norm, "terrain", TERRAINS, "on *", parsed)
    chunks = _chunks(norm)
    empty = [c for c in chunks if c in (EMPTY, "empty scene")]
    for chunk in (c for c in chunks if c not in empty):
        obj = _parse_object(chunk, parsed)
        if obj is None:
            continue
        if any(o.position == obj.position for o in parsed.objects):
            parsed.problems.append(f"two objects at the {obj.position}; kept the first")
        else:
            parsed.objects.append(obj)
    if empty and parsed.objects:
        parsed.problems.append("says 'an empty scene' but also names objects")
    if not empty and not chunks:
        parsed.problems.append(f"no objects: name them, or say '{EMPTY}'")
    return parsed


def parse_detailed(text: str) -> Scene:
    """The scene a detailed caption describes.

    Raises :class:`CaptionParseError` (with ``.partial``) if it does not fully parse.
    """
    parsed = parse_caption(text)
    if parsed.problems:
        raise CaptionParseError(f"cannot parse caption {text!r}: {'; '.join(parsed.problems)}", parsed)
    return parsed.scene()


def parse_detailed_or_none(text: str) -> Scene | None:
    """The scene a detailed caption describes, or None if ``text`` does not fully parse as one."""
    parsed = parse_caption(text)
    return None if parsed.problems else parsed.scene()


def absolute_prompt(prompt: str) -> str:
    """``prompt`` as the world painters were trained to read it, where it is a whole world caption: each object
    at its cell and in reading order (``a small blue circle at the bottom left and a large red star at the top
    right, …`` → ``a large red star at the top right and a small blue circle at the bottom left, …``; ``… and a
    small blue circle below it`` → ``… at the …``); any other prompt as it is. The painters take much of an
    object's place from where its phrase stands (``docs/world-experiments.md``), and the world assistants name
    objects in the order asked."""
    scene = parse_detailed_or_none(prompt)
    return prompt if scene is None else detailed_caption(scene)


def oracle_paint(prompt: str, size: int = 32, strict: bool = True) -> Image.Image:
    """Render exactly what a detailed caption says (the oracle painter).

    ``strict=False`` paints whatever parsed: unreadable objects are left out and
    a missing time or terrain defaults to day on grass.
    """
    scene = parse_detailed(prompt) if strict else parse_caption(prompt).scene()
    return render(scene, size)
