"""World requests, edits and chat in English, each wording trained or held out (:mod:`.world_wording`).

Size, colour, shape, time and ground words are shared by both splits; the
held-out measurement differs in the sentence frames, the phrase templates
around them (places, relations, edits, chat) and their combinations.
:data:`NEW_WORDS` holds synonyms no training item uses, for a separate probe.
"""

from __future__ import annotations

import random
import re

from ..world.edits import EditPair, refer
from ..world.captions import detailed_caption, parse_detailed_or_none
from ..world.scene import GRID, POSITIONS, Obj, Scene
from .refine_demo import QA_CAPITALS
from .templates import REPLIES
from .world_wording import Ask, Mention, Phrasings, phrasings, thing_names

SIZE = {"small": phrasings("small|little|tiny|very small", "really small|quite small"),
        "large": phrasings("large|big|huge|very big", "really big|quite large")}
COLOUR = {c: phrasings(words) for c, words in {
    "red": "red|crimson", "orange": "orange|amber", "yellow": "yellow|gold", "green": "green|lime",
    "blue": "blue|navy", "purple": "purple|violet", "pink": "pink"}.items()}
SHAPE = {"circle": ("circle", "circles"), "square": ("square", "squares"), "triangle": ("triangle", "triangles"),
         "star": ("star", "stars"), "diamond": ("diamond", "diamonds"), "cross": ("cross", "crosses")}
TIME = {
    "day": phrasings("during the day|by day|in daylight|in the daytime|at noon|under a day sky",
                     "in broad daylight|at midday"),
    "sunset": phrasings("at sunset|at dusk|in the evening|as the sun goes down|under a sunset sky",
                        "at sundown|when the sun sets"),
    "night": phrasings("at night|at midnight|under the stars|in the dark|under a night sky",
                       "late at night|on a dark night"),
}
TIME_WORD = {"day": phrasings("day|daytime"), "sunset": phrasings("sunset|dusk"), "night": phrasings("night|nighttime")}
TERRAIN = {
    "grass": phrasings("on grass|on the grass|on a lawn|in a meadow|in a field", "on a green lawn|in a grassy field"),
    "sand": phrasings("on sand|on the beach|in the desert|on sand dunes", "on a sandy beach|on the sand"),
    "snow": phrasings("on snow|in the snow|on a snowfield|on snowy ground", "on fresh snow|in a snowy landscape"),
    "water": phrasings("on water|on the sea|on a lake|on the ocean", "on a pond|over the water"),
}
VERTICAL = {0: phrasings("top|upper"), 2: phrasings("bottom|lower")}
HORIZONTAL = {0: "left", 2: "right"}
CORNER = phrasings("at the {v} {h}|in the {v} {h} corner|in the {v}-{h} corner|at the {v} {h} of the picture|in the {v} {h}|"
                   "placed at the {v} {h}|near the {v} {h} corner|in the {v} {h} area|off in the {v} {h}|"
                   "at the far {v} {h}|in the far {v}-{h} corner|over at the {v} {h}|into the {v} {h} corner|"
                   "in the {v} {h} quadrant|in the direction of the {v} {h} corner",
                   "tucked into the {v} {h} corner|over in the {v}-{h} part of the image|toward the {v} {h}")
EDGE_ROW = phrasings("at the {v}|at the {v} middle|at the {v} center|at the {v} centre|in the middle of the {v}|"
                     "against the {v} edge|at the {v}, horizontally centred|at the {v}, centred|"
                     "in the {v} row, centred|at the centre of the {v} edge|at the {v}, neither left nor right|"
                     "in the centre of the {v} row|midway along the {v}|in the middle along the {v} edge",
                     "centred at the {v}|at the {v}, in the middle|along the {v} edge, centred")
EDGE_COLUMN = phrasings("on the {h}|at the middle {h}|on the {h} side|at the {h} centre|in the middle of the {h} side|"
                        "midway up on the {h}|against the {h} edge|at the {h}, vertically centred|"
                        "partway up on the {h}|along the {h} side, midway|in the {h} middle|at the centre of the {h} edge|"
                        "on the {h}, neither high nor low|halfway along the {h} side|at half height on the {h}|"
                        "in the {h} column, at middle height",
                        "halfway up on the {h}|on the {h}-hand side|at the {h} edge, halfway down")
CENTER = phrasings("in the middle|at the center|in the centre|in the center of the picture|centered|"
                   "exactly in the middle|in the middle of the image|at the exact centre|squarely in the centre|"
                   "bang in the middle|at the heart of the picture|in the centre of the frame|at the precise centre|"
                   "at the true center|in the central cell|centre stage|at the centre point|front and centre|"
                   "in the central spot|in the middle of everything|at the centre of the canvas|perfectly centred|"
                   "centred in the frame|in the middle of the frame",
                   "right in the middle|dead centre|in the very middle|smack in the middle")
RELATION = {
    "below": phrasings("below it|under it|beneath it|right under it|immediately below it|one cell below it",
                       "just underneath it|directly below that one"),
    "above": phrasings("above it|over it|up above it|immediately above it|one cell above it",
                       "right above it|directly above that one"),
    "right": phrasings("to its right|to the right of it|immediately to its right|one cell to its right|"
                       "beside it on the right", "just right of it|on its right-hand side"),
    "left": phrasings("to its left|to the left of it|immediately to its left|one cell to its left|"
                      "beside it on the left", "just left of it|on its left-hand side"),
}
COUNT = {2: phrasings("two|2", "a pair of"), 3: phrasings("three|3")}
JOIN = phrasings(" and | and also |, and | with ", ", along with |, together with ")
FRAME = phrasings(
    "Draw {x}.|Paint {x}.|Can you draw {x}?|I want {x}.|Show me {x}.|Make a picture of {x}.|Please create {x}.|"
    "Generate an image of {x}.|{x}, please.|Could you paint {x} for me?|I'd like a picture of {x}.|Picture {x}.|"
    "draw {x}|Create {x}.",
    "How about {x}?|Would you mind drawing {x}?|Let's see {x}.|I need an image with {x}.|Sketch {x} for me.|"
    "Can I get {x}?|Imagine {x}.|Give me {x}, would you?")
NEXT_FRAME = phrasings("Now draw {x}.|Next, paint {x}.|New picture: {x}.|Now {x}, please.",
                       "Okay, now {x}.|Let's do {x} next.|And another picture: {x}.")
ANYTHING = phrasings("Draw something.|Surprise me.|Paint anything you like.|Draw a random picture.|"
                     "Paint me a picture of your choice.|Create something for me.|Give me any picture.|"
                     "Draw me something pretty.|Pick a scene and paint it.|Make something up.",
                     "Make me whatever you want.|Show me something nice.")

EDIT = {
    "recolour": phrasings("make {obj} {colour}|turn {obj} {colour}|change {obj} to {colour}|{obj} should be {colour}|"
                          "could you make {obj} {colour}?|colour {obj} {colour}|{obj} in {colour}, please|paint {obj} in {colour}|"
                          "could {obj} be {colour}?",
                          "what if {obj} were {colour}?|I'd prefer {obj} in {colour}|can {obj} be {colour} instead?"),
    "replace": phrasings("replace {obj} with a {shape}|turn {obj} into a {shape}|make {obj} a {shape}|"
                         "change {obj} into a {shape}|use a {shape} instead of {obj}|put a {shape} where {obj} is|"
                         "what would it look like with a {shape} instead of {obj}?",
                         "swap {obj} for a {shape}|could {obj} be a {shape} instead?"),
    "add": phrasings("add {new} {place}|also put {new} {place}|put {new} {place} too|and {new} {place}, please|"
                     "could there also be {new} {place}?",
                     "could you add {new} {place}?|throw in {new} {place}"),
    "remove": phrasings("remove {obj}|take away {obj}|get rid of {obj}|delete {obj}|without {obj}, please|"
                        "drop {obj}|scrap {obj}|no more {obj}, please|leave out {obj}|take out {obj}|"
                        "what would it look like without {obj}?",
                        "lose {obj}|can you erase {obj}?|I don't want {obj} anymore"),
    "time": phrasings("make it {word}|now {phrase}|change it to {word}|the same, but {phrase}|switch to {word}|"
                      "what would it look like {phrase}?|could it be {word}?",
                      "how would it look {phrase}?|let it be {word}|show me that {phrase}"),
    "terrain": phrasings("put it {phrase}|now {phrase}|change the ground to {word}|turn the {old} into {word}|"
                         "could it be {phrase}?|what would it look like {phrase}?",
                         "what about {phrase}?|move everything {phrase}"),
}
#: resize edits, by the size the object is made
RESIZE = {
    "large": phrasings("make {obj} bigger|make {obj} larger|make {obj} big|make {obj} large|enlarge {obj}|"
                       "scale {obj} up|{obj} should be bigger|could you make {obj} bigger?|increase the size of {obj}|"
                       "I'd like {obj} larger|draw {obj} bigger|{obj} is too small|blow {obj} up|expand {obj}|"
                       "make {obj} much bigger|{obj} needs to be larger|magnify {obj}|bump up the size of {obj}|"
                       "I want {obj} bigger",
                       "can you make {obj} bigger?|now make {obj} big|make {obj} huge|{obj} could be a lot bigger|"
                       "could {obj} be larger?|grow {obj}"),
    "small": phrasings("make {obj} smaller|make {obj} small|make {obj} tiny|make {obj} little|shrink {obj}|"
                       "scale {obj} down|{obj} should be smaller|could you make {obj} smaller?|reduce the size of {obj}|"
                       "I'd like {obj} smaller|draw {obj} smaller|{obj} is too large|make {obj} much smaller|"
                       "{obj} needs to be smaller|cut {obj} down to size|tone down the size of {obj}|"
                       "I want {obj} smaller|compress {obj}",
                       "can you make {obj} smaller?|now make {obj} small|{obj} is too big|make {obj} a bit smaller|"
                       "could {obj} be smaller?|downsize {obj}"),
}
#: the answer to a resize to the size the object already has (trained only): nothing is painted
SAME_SIZE = {
    "large": phrasings("{Obj} is already large: I draw things small or large, so I can't make {obj} any bigger. "
                       "Shall I make {obj} smaller instead?|"
                       "{Obj} is already as big as I draw. I could make {obj} small, or move {obj}, if you like."),
    "small": phrasings("{Obj} is already small: I draw things small or large, so I can't make {obj} any smaller. "
                       "Shall I make {obj} larger instead?|"
                       "{Obj} is already as small as I draw. I could make {obj} large, or move {obj}, if you like."),
}
#: move edits: ``{cell}`` names the cell ("top left"), ``{place}`` says where ("in the top-left corner")
MOVE = phrasings("move {obj} to the {cell}|put {obj} {place}|place {obj} {place}|{obj} should be {place}|"
                 "could you move {obj} to the {cell}?|shift {obj} to the {cell}|I'd rather have {obj} {place}|"
                 "drag {obj} to the {cell}|take {obj} over to the {cell}|move {obj} over to the {cell}",
                 "can you put {obj} {place}?|could {obj} go to the {cell}?|what if {obj} were {place}?|"
                 "slide {obj} over to the {cell}|relocate {obj} to the {cell}")
#: a cell as a noun, after "to the": corners, the middle of an edge, the centre
CELL_CORNER = phrasings("{v} {h}|{v}-{h} corner|{v} {h} corner", "{v}-{h} spot")
CELL_ROW = phrasings("{v}|{v} middle|{v} centre|middle of the {v}", "{v}-centre spot")
CELL_COLUMN = phrasings("{h}|middle {h}|{h} side|{h} edge", "{h}-hand side")
CELL_CENTER = phrasings("middle|centre|center|centre of the picture", "very middle")
#: how often a resize or move of the only object calls it "it" ("make it bigger")
IT_SHARE = 0.5
SIMILAR = phrasings("another one like that|one more like it, please|draw a similar one|make a variation of it",
                    "could I get something similar?|something like that again")
ACCEPT = phrasings("yes please|sure|ok, do that|yes", "sounds good, go ahead|alright, draw it")

GREETING = phrasings("hello|hi|hey there|good morning|hi! how are you?|hello there|good afternoon|hiya|"
                     "hello, who are you?|nice to meet you|hey!",
                     "howdy!|good evening|hey, what's up?")
THANKS = phrasings("thanks|thank you!|great, thanks|thanks a lot|thank you very much|awesome, thanks!|"
                   "perfect, thank you|that's lovely, thanks", "cheers!|much appreciated|nice, thank you so much")
CAPABILITY = phrasings("what can you draw?|what colours do you know?|what shapes can you make?|help|what can you do?|"
                       "what do you draw?|which colours can you use?|what backgrounds can you do?|how does this work?|"
                       "what kind of pictures can you make?",
                       "which shapes do you support?|tell me what you can paint|what are you able to draw?")
WORLD = ("shapes (circle, square, triangle, star, diamond and cross) in seven colours (red, orange, yellow, green, "
         "blue, purple and pink), small or large, anywhere on a three-by-three grid, on grass, sand, snow or water, "
         "by day, at sunset or at night")
ANSWER = {
    "greeting": phrasings("Hello! I draw simple pictures: " + WORLD + ". What shall I draw?|"
                          "Hi! Ask me for a picture of shapes, for example a red star on snow at night."),
    "thanks": phrasings("You're welcome!|Glad you like it!|You're welcome. Anything else to draw?"),
    "capability": phrasings("I can draw " + WORLD + ".|I draw " + WORLD + ". Tell me what you would like."),
}
SUM = phrasings("What is {a} plus {b}?|How much is {a} + {b}?|Add {a} and {b}.",
                "What's {a} and {b} together?|Could you tell me {a} plus {b}?")
#: plain questions that name the world's words but ask for no picture (trained only)
FACTS = (("How many sides does a triangle have?", "A triangle has three sides."),
         ("How many corners does a square have?", "A square has four corners."),
         ("How many points does a star usually have?", "A star usually has five points."),
         ("What colour do blue and yellow make?", "Blue and yellow make green."),
         ("What colour is grass?", "Grass is green."),
         ("Is a square a kind of rectangle?", "Yes: a square is a rectangle with four equal sides."),
         ("What is the opposite of day?", "Night."),
         ("Why is the sky blue at day?", "Air scatters blue sunlight most, so the daytime sky looks blue."),
         ("What is a diamond shape?", "A diamond is a square turned to stand on one corner."),
         ("Which day comes after Monday?", "Tuesday."),
         ("Does snow melt in the sun?", "Yes, sunshine warms snow and it melts."))
#: a question about the picture just painted, and the answer that describes it (its scene's detailed caption)
LOOK = phrasings("What's in the picture?|What did you draw?|Describe the picture.|What colour is it?|"
                 "What shape is it?|What is in the image?|Can you describe it?|Where is the shape?|"
                 "Is it day or night there?|What is the ground in it?|What did you paint?|What does it show?",
                 "What's in this picture?|Tell me what you see.|What colour is the shape in it?|So what's on it?|"
                 "Which colour did you use?")
LOOK_ANSWER = phrasings("It shows {scene}.|The picture shows {scene}.|I drew {scene}.")
CAPITAL = phrasings("What is the capital of {c}?|Which city is the capital of {c}?|Tell me the capital of {c}.",
                    "Do you know the capital of {c}?|{c}'s capital is which city?")
#: out-of-world things' names, by key (:data:`llmga.data.world_wording.OUTSIDE_THINGS`)
THING = thing_names(0)
OUTSIDE_ANSWER = phrasings(
    "I can't draw {thing}: I only draw simple shapes (circle, square, triangle, star, diamond and cross). "
    "Shall I draw {offer} instead?|"
    "Sorry, {thing} is beyond me; my pictures are made of shapes only. I could draw {offer} instead, if you like.")
#: synonyms no training item uses (the probe of new words)
NEW_WORDS = {"size": {"small": "teeny", "large": "enormous"},
             "colour": {"red": "scarlet", "yellow": "golden", "green": "emerald", "purple": "lilac"},
             "time": {"night": "in the middle of the night", "sunset": "at twilight"},
             "terrain": {"water": "on a pond", "sand": "on a dune"}}


def _by_cell(position: str, rng: random.Random, split: str, corner: Phrasings, row: Phrasings,
             column: Phrasings, centre: Phrasings) -> str:
    """A wording of ``position`` from the bank for its kind of cell: a corner, the middle of an edge, the centre."""
    row_index, column_index = divmod(POSITIONS.index(position), GRID)
    if row_index != 1 and column_index != 1:
        return corner.pick(rng, split, v=VERTICAL[row_index].pick(rng, split), h=HORIZONTAL[column_index])
    if row_index != 1:
        return row.pick(rng, split, v=("top", "", "bottom")[row_index])
    if column_index != 1:
        return column.pick(rng, split, h=HORIZONTAL[column_index])
    return centre.pick(rng, split)


def place(position: str, rng: random.Random, split: str) -> str:
    """Words for a cell: "in the top-left corner", "halfway up on the right", "right in the middle"."""
    return _by_cell(position, rng, split, CORNER, EDGE_ROW, EDGE_COLUMN, CENTER)


def cell(position: str, rng: random.Random, split: str) -> str:
    """A cell as a noun, after "to the": "top-left corner", "bottom middle", "left side", "centre"."""
    return _by_cell(position, rng, split, CELL_CORNER, CELL_ROW, CELL_COLUMN, CELL_CENTER)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def noun_phrase(mention: Mention, rng: random.Random, split: str, words: dict | None = None) -> str:
    """"a tiny red star", "two green circles"; ``words`` replaces attribute words (the new-words probe)."""
    words = words or {}
    parts = []
    if mention.size:
        parts.append(words.get("size") or SIZE[mention.size].pick(rng, split))
    if mention.colour:
        parts.append(words.get("colour") or COLOUR[mention.colour].pick(rng, split))
    singular, plural = SHAPE[mention.shape]
    parts.append(singular if mention.count == 1 else plural)
    head = _article(parts[0]) if mention.count == 1 else COUNT[mention.count].pick(rng, split)
    return " ".join([head, *parts])


def body(ask: Ask, rng: random.Random, split: str, words: dict | None = None) -> str:
    """The words for what is asked: objects with their places, then the ground and the time in either order."""
    words = words or {}
    pieces = []
    for index, mention in enumerate(ask.mentions):
        phrase = noun_phrase(mention, rng, split, words)
        if mention.position:
            phrase += " " + place(mention.position, rng, split)
        elif mention.relation:
            phrase += " " + RELATION[mention.relation].pick(rng, split)
        pieces.append(phrase if index == 0 else JOIN.pick(rng, split) + phrase)
    text = "".join(pieces)
    scenery = []
    if ask.terrain:
        scenery.append(words.get("terrain") or TERRAIN[ask.terrain].pick(rng, split))
    if ask.time:
        scenery.append(words.get("time") or TIME[ask.time].pick(rng, split))
    rng.shuffle(scenery)
    return " ".join([text, *scenery])


def request(ask: Ask, rng: random.Random, split: str, after_picture: bool = False, words: dict | None = None) -> str:
    """A whole drawing request; ``after_picture``: a new picture asked for after one was painted."""
    return (NEXT_FRAME if after_picture else FRAME).pick(rng, split, x=body(ask, rng, split, words))


def anything(rng: random.Random, split: str) -> str:
    """A request that leaves everything to the assistant."""
    return ANYTHING.pick(rng, split)


def edit(pair: EditPair, rng: random.Random, split: str) -> str:
    """An instruction for ``pair`` in words of ``split``: "could you make the star blue?"."""
    source, target = pair.source, pair.target
    if pair.kind == "time":
        time = target.background.time
        text = EDIT["time"].pick(rng, split, word=TIME_WORD[time].pick(rng, split), phrase=TIME[time].pick(rng, split))
    elif pair.kind == "terrain":
        terrain = target.background.terrain
        text = EDIT["terrain"].pick(rng, split, word=terrain, phrase=TERRAIN[terrain].pick(rng, split),
                                    old=source.background.terrain)
    elif pair.kind == "add":
        new = next(o for o in target.objects if o not in source.objects)
        text = EDIT["add"].pick(rng, split, new=noun_phrase(_mention(new), rng, split),
                                place=place(new.position, rng, split))
    else:
        old = next(o for o in source.objects if o not in target.objects)
        new = next((o for o in target.objects if o not in source.objects), None)
        if pair.kind in ("resize", "move"):
            obj = _named(source, old, rng)
            return _sentence(RESIZE[new.size].pick(rng, split, obj=obj) if pair.kind == "resize" else
                             MOVE.pick(rng, split, obj=obj, cell=cell(new.position, rng, split),
                                       place=place(new.position, rng, split)))
        text = EDIT[pair.kind].pick(rng, split, obj=refer(source, old),
                                    colour=new.colour if new else "", shape=new.shape if new else "")
    return _sentence(text)


def _named(scene: Scene, obj: Obj, rng: random.Random) -> str:
    """How a resize or move names ``obj``: "it" (half the time, where it is alone) or the phrase singling it out."""
    return "it" if len(scene.objects) == 1 and rng.random() < IT_SHARE else refer(scene, obj)


def same_size(scene: Scene, obj: Obj, rng: random.Random, split: str) -> tuple[str, str]:
    """A resize of ``obj`` to the size it already has ("make it bigger" of a large star), and the answer that
    says so and offers the other size: nothing is painted."""
    name = _named(scene, obj, rng)
    asked = _sentence(RESIZE[obj.size].pick(rng, split, obj=name))
    return asked, SAME_SIZE[obj.size].pick(rng, split, obj=name, Obj=name[0].upper() + name[1:])


def _mention(obj: Obj) -> Mention:
    return Mention(obj.shape, obj.colour, obj.size)


def similar(rng: random.Random, split: str) -> str:
    return _sentence(SIMILAR.pick(rng, split))


def accept(rng: random.Random, split: str) -> str:
    return _sentence(ACCEPT.pick(rng, split))


def chat(kind: str, rng: random.Random, split: str) -> tuple[str, str]:
    """A greeting, thanks or question about what the assistant draws, and its answer."""
    asked = {"greeting": GREETING, "thanks": THANKS, "capability": CAPABILITY}[kind].pick(rng, split)
    return asked, ANSWER[kind].pick(rng, split)


def question(rng: random.Random, split: str) -> tuple[str, str]:
    """A plain question (a sum or a capital) and its plain answer."""
    if rng.random() < 0.5:
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        return SUM.pick(rng, split, a=str(a), b=str(b)), f"{a} plus {b} is {a + b}."
    country = rng.choice(sorted(QA_CAPITALS))
    return CAPITAL.pick(rng, split, c=country), f"The capital of {country} is {QA_CAPITALS[country]}."


def look(scene: Scene, rng: random.Random, split: str) -> tuple[str, str]:
    """A question about the picture of ``scene`` just painted, and the answer describing it."""
    return LOOK.pick(rng, split), LOOK_ANSWER.pick(rng, split, scene=detailed_caption(scene))


def read_description(text: str) -> Scene | None:
    """The scene a description of a picture names ("It shows a small red star at the top left, on snow under a
    night sky."), or None where it names no whole scene in the world's caption words."""
    found = re.search(r"\b(?:shows|drew)\s+(.*)", text, re.IGNORECASE | re.DOTALL)
    return parse_detailed_or_none(found.group(1)) if found else None


def outside(thing: str, offer: Mention, rng: random.Random, split: str) -> tuple[str, str]:
    """A request for something the world has not, and the honest answer offering ``offer``."""
    asked = FRAME.pick(rng, split, x=THING[thing])
    # the assistant offers in the world's own colour words (a "navy" offer would be painted blue); the colour
    # synonym it once drew is still drawn, so that the held-out items measured since stay as they were
    COLOUR[offer.colour].pick(rng, "train")
    offer_words = noun_phrase(offer, rng, "train", {"colour": offer.colour})
    answer = OUTSIDE_ANSWER.pick(rng, split, thing=THING[thing], offer=offer_words)
    return asked, answer


def reply(task: str, rng: random.Random) -> str:
    """The short sentence before a tagged prompt."""
    return REPLIES[task].pick(rng)


def _sentence(text: str) -> str:
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".?!" else text + "."
