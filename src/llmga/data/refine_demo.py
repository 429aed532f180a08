"""A procedural prompt-refinement set, for training and measuring a small brain offline.

Where no captioner can be run (no GPT-4V, no large MLLM), this writes the
detailed descriptions itself, so the stage-1 recipe can be shown to work on a
real small LM. Its data is built for the two things a format-only recipe does
not teach:

- faithfulness: the request is kept word for word at the start of the
  description, so every subject and attribute the user asked for survives;
- variety: the added details come from the request's own parts (what the
  subject does, where it is, the time of day) and its kind of subject, so
  different requests get different settings, light and style instead of one
  stock phrase.

Requests are "attribute + subject + action/place" phrases. Subjects are split
into a training and a held-out part (no held-out noun appears in training), so
the measurement (:mod:`llmga.eval.refine`) is on subjects the model never saw.
Plain questions (arithmetic, capitals) are mixed in with plain answers, so the
model learns when not to paint.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from ..protocol import tag_prompt
from .records import make_record, write_records
from .templates import GENERATE_FROM_CAPTION, REPLIES

# kind -> (subjects with their attributes). Each subject is (noun, attributes).
SUBJECTS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "animal": [
        ("cat", ("siamese", "tabby", "black", "ginger", "fluffy white")),
        ("dog", ("husky", "corgi", "beagle", "spotted", "golden")),
        ("fox", ("red", "arctic", "young", "sleepy")),
        ("owl", ("snowy", "barn", "tiny", "wise old")),
        ("horse", ("black", "white", "brown", "wild")),
        ("rabbit", ("grey", "white", "brown", "fluffy")),
        ("tiger", ("bengal", "white", "young")),
        ("parrot", ("green", "blue", "colorful", "red")),
        ("turtle", ("sea", "old", "small", "green")),
        ("deer", ("young", "spotted", "brown")),
        ("wolf", ("grey", "black", "lone")),
        ("panda", ("giant", "red", "baby")),
        ("penguin", ("emperor", "little", "curious")),
        ("elephant", ("baby", "african", "old")),
        ("squirrel", ("red", "grey", "tiny")),
        ("hedgehog", ("small", "sleepy", "round")),
    ],
    "vehicle": [
        ("car", ("red vintage", "yellow", "electric", "rusty old")),
        ("bicycle", ("blue", "old", "racing", "wooden")),
        ("train", ("steam", "red", "old", "night")),
        ("sailboat", ("white", "small", "wooden", "red")),
        ("motorcycle", ("black", "vintage", "silver")),
        ("bus", ("double-decker", "yellow", "old")),
        ("airship", ("silver", "giant", "steampunk")),
        ("tractor", ("green", "red", "old")),
        ("van", ("blue camper", "white", "rusty")),
        ("submarine", ("yellow", "brass", "small")),
    ],
    "building": [
        ("lighthouse", ("white", "striped", "old stone")),
        ("castle", ("medieval", "ruined", "fairy-tale")),
        ("cabin", ("log", "small wooden", "snowy")),
        ("windmill", ("dutch", "old", "white")),
        ("temple", ("ancient", "golden", "stone")),
        ("bridge", ("stone", "red", "wooden")),
        ("tower", ("clock", "tall glass", "crooked")),
        ("cottage", ("thatched", "blue", "tiny")),
        ("greenhouse", ("glass", "victorian", "small")),
        ("pagoda", ("red", "five-story", "wooden")),
    ],
    "person": [
        ("fisherman", ("old", "young", "bearded")),
        ("dancer", ("young", "ballet", "graceful")),
        ("astronaut", ("lonely", "curious", "young")),
        ("knight", ("armored", "tired", "young")),
        ("chef", ("smiling", "busy", "old")),
        ("painter", ("old", "young", "focused")),
        ("violinist", ("young", "elderly", "street")),
        ("farmer", ("old", "cheerful", "young")),
        ("explorer", ("brave", "young", "weary")),
        ("wizard", ("old", "bearded", "young")),
    ],
    "object": [
        ("teapot", ("blue porcelain", "copper", "tiny")),
        ("lantern", ("paper", "brass", "glowing")),
        ("clock", ("antique", "golden", "broken")),
        ("guitar", ("acoustic", "red electric", "old")),
        ("umbrella", ("red", "striped", "black")),
        ("book", ("old leather", "open", "giant")),
        ("vase", ("glass", "ceramic", "blue")),
        ("kite", ("red", "dragon", "paper")),
        ("chair", ("wooden", "velvet", "rocking")),
        ("compass", ("brass", "old", "golden")),
    ],
    "food": [
        ("cake", ("chocolate", "strawberry", "birthday")),
        ("bowl of ramen", ("steaming", "spicy", "small")),
        ("pizza", ("pepperoni", "wood-fired", "small")),
        ("basket of apples", ("red", "green", "fresh")),
        ("cup of coffee", ("hot", "iced", "small")),
        ("loaf of bread", ("fresh", "sourdough", "golden")),
        ("plate of sushi", ("colorful", "fresh", "small")),
        ("pie", ("apple", "cherry", "warm")),
    ],
}

# (action or place, setting detail it implies). The same in training and held-out requests.
PLACES: dict[str, list[tuple[str, str]]] = {
    "animal": [
        ("sleeping on a windowsill", "sunlight streaming through the window, a cozy room behind"),
        ("running through a meadow", "tall grass and wildflowers, motion blur on the legs"),
        ("sitting in the snow", "snowflakes falling, a quiet white forest behind"),
        ("drinking from a river", "clear water with ripples, smooth stones on the bank"),
        ("resting under a tree", "dappled shade, fallen leaves on the ground"),
        ("standing on a rock", "a rugged landscape below, clouds in the distance"),
        ("playing in autumn leaves", "orange and red leaves flying, a park path"),
        ("looking at the moon", "a starry sky, silver light on the fur"),
    ],
    "vehicle": [
        ("parked on a beach", "waves rolling in, wet sand reflecting the sky"),
        ("on a mountain road", "winding asphalt, pine trees and cliffs"),
        ("crossing a bridge", "a river far below, steel cables framing the view"),
        ("in a busy city street", "crowds and shop signs, reflections in windows"),
        ("in a desert", "golden dunes, heat haze on the horizon"),
        ("in the rain", "puddles and raindrops, glowing reflections"),
        ("near a lake", "calm water mirroring the hills, reeds at the shore"),
    ],
    "building": [
        ("on a cliff above the sea", "crashing waves, seagulls in the wind"),
        ("in a snowy valley", "snow-covered pines, smoke rising from a chimney"),
        ("at the edge of a forest", "tall dark trees, a mossy path leading in"),
        ("on a green hill", "rolling fields, a winding stone wall"),
        ("by a quiet river", "a reflection on the water, willows along the bank"),
        ("in a foggy town", "narrow cobblestone streets, dim lamps in the mist"),
    ],
    "person": [
        ("reading by a fireplace", "warm firelight, bookshelves in the background"),
        ("walking in the rain", "a wet street, reflections of neon lights"),
        ("standing on a mountain top", "a sea of clouds below, wind in the hair"),
        ("working in a small workshop", "tools on the walls, dust in the light"),
        ("sitting in a cafe", "steaming cups, soft chatter and large windows"),
        ("on a crowded market", "colorful stalls, baskets of fruit and spices"),
    ],
    "object": [
        ("on a wooden table", "a worn tabletop, soft shadows"),
        ("on a dusty shelf", "old jars and books around it, cobwebs in the corner"),
        ("in a sunlit garden", "green leaves and flowers, a stone path"),
        ("floating in space", "distant stars and a blue planet below"),
        ("on a windowsill", "a view of rooftops, light falling through the glass"),
    ],
    "food": [
        ("on a rustic table", "a linen cloth, herbs scattered around"),
        ("in a busy kitchen", "pots on the stove, steam in the air"),
        ("at a picnic", "a checkered blanket on the grass, a sunny park"),
        ("in a cozy cafe", "a marble counter, warm pendant lamps"),
    ],
}

TIMES = [
    ("at sunset", "golden hour light, long warm shadows"),
    ("at night", "moonlight and deep blue tones"),
    ("in the morning", "soft morning light, a light mist"),
    ("at noon", "bright midday sun, crisp shadows"),
    ("", ""),
    ("", ""),
]

STYLES = {
    "animal": ["wildlife photograph, sharp focus on the eyes", "detailed watercolor illustration",
               "soft pastel storybook painting", "close-up photo with a shallow depth of field"],
    "vehicle": ["cinematic wide shot, 35mm film", "retro travel poster style", "hyperrealistic digital render",
                "oil painting with bold brushstrokes"],
    "building": ["matte painting, wide angle", "ink and watercolor sketch", "dramatic landscape photograph",
                 "fantasy concept art"],
    "person": ["portrait photograph, 85mm lens", "impressionist oil painting", "graphic novel illustration",
               "candid street photography"],
    "object": ["still life photograph, studio lighting", "vintage botanical-plate illustration",
               "macro photo with soft bokeh", "minimalist 3D render"],
    "food": ["food photography, overhead shot", "warm cozy illustration", "glossy magazine photo",
             "hand-drawn menu illustration"],
}

QA_CAPITALS = {
    "France": "Paris", "Japan": "Tokyo", "Italy": "Rome", "Spain": "Madrid", "Germany": "Berlin",
    "Canada": "Ottawa", "Egypt": "Cairo", "Kenya": "Nairobi", "Peru": "Lima", "Norway": "Oslo",
    "Greece": "Athens", "Portugal": "Lisbon", "Poland": "Warsaw", "Chile": "Santiago", "Cuba": "Havana",
    "Ireland": "Dublin", "Austria": "Vienna", "Sweden": "Stockholm", "Thailand": "Bangkok", "Mexico": "Mexico City",
}

SHORT_REQUESTS = [
    "Draw {x}.", "Paint {x}.", "Generate an image of {x}.", "Generate an image: {x}", "Show me {x}.",
    "Can you draw {x}?", "Make a picture of {x}.", "I want an image of {x}.", "Please create {x}.",
    "Could you paint {x} for me?", "Create an illustration of {x}.", "Picture {x}, please.",
]


@dataclass(frozen=True)
class Request:
    """An image request and what it is made of."""

    kind: str
    phrase: str  # e.g. "a siamese cat sleeping on a windowsill at sunset"
    details: str  # the detail the description adds


def split_subjects(seed: int = 0, held_out: float = 0.25) -> tuple[dict, dict]:
    """Subjects per kind for training and for the held-out measurement (disjoint nouns)."""
    rng = random.Random(seed)
    train, test = {}, {}
    for kind, subjects in SUBJECTS.items():
        shuffled = subjects[:]
        rng.shuffle(shuffled)
        n = max(1, round(len(shuffled) * held_out))
        test[kind], train[kind] = shuffled[:n], shuffled[n:]
    return train, test


def make_request(rng: random.Random, subjects: dict) -> Request:
    """A random request over ``subjects`` and the details its description adds."""
    kind = rng.choice(sorted(subjects))
    noun, attributes = rng.choice(subjects[kind])
    attribute = rng.choice(attributes)
    place, setting = rng.choice(PLACES[kind])
    time, light = rng.choice(TIMES)
    subject = f"{attribute} {noun}"
    article = "an" if subject[0] in "aeiou" else "a"
    phrase = " ".join(p for p in (f"{article} {subject}", place, time) if p)
    style = STYLES[kind][int(hashlib.sha256(phrase.encode()).hexdigest(), 16) % len(STYLES[kind])]
    details = ", ".join(p for p in (setting, light, style) if p)
    return Request(kind, phrase, details)


def description(request: Request) -> str:
    """The detailed description: the request word for word, then the details it implies."""
    return f"{request.phrase}, {request.details}"


def ask(rng: random.Random, request: Request) -> str:
    """The user's words asking for ``request``."""
    if rng.random() < 0.5:
        return rng.choice(SHORT_REQUESTS).format(x=request.phrase)
    return GENERATE_FROM_CAPTION.pick(rng, caption=request.phrase[0].upper() + request.phrase[1:] + ".")


def make_question(rng: random.Random, countries: list[str]) -> tuple[str, str]:
    """A plain question and its plain answer (no image)."""
    if rng.random() < 0.5:
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        return rng.choice(["What is {a} plus {b}?", "How much is {a} + {b}?", "Add {a} and {b}."]).format(a=a, b=b), \
            f"{a} plus {b} is {a + b}."
    country = rng.choice(countries)
    question = rng.choice(["What is the capital of {c}?", "Which city is the capital of {c}?",
                           "Tell me the capital of {c}."]).format(c=country)
    return question, f"The capital of {country} is {QA_CAPITALS[country]}."


def build(out: str | Path, n: int = 2000, seed: int = 0, qa_share: float = 0.3) -> Path:
    """Write ``n`` LLaVA-format training conversations (requests over training subjects, plus questions)."""
    train_subjects, _ = split_subjects(seed)
    countries = sorted(QA_CAPITALS)[: len(QA_CAPITALS) * 3 // 4]
    rng = random.Random(seed)
    records = []
    for i in range(n):
        if rng.random() < qa_share:
            question, answer = make_question(rng, countries)
        else:
            request = make_request(rng, train_subjects)
            question = ask(rng, request)
            answer = f"{REPLIES['generate'].pick(rng)} {tag_prompt(description(request))}"
        records.append(make_record(f"refine-demo-{i}", [(question, answer)]))
    return write_records(records, out)


def held_out(n: int = 100, seed: int = 0, qa_share: float = 0.2) -> list[tuple[str, Request | None]]:
    """Measurement items: (user's words, the request or None for a plain question), on held-out subjects."""
    _, test_subjects = split_subjects(seed)
    countries = sorted(QA_CAPITALS)[len(QA_CAPITALS) * 3 // 4 :]
    rng = random.Random(seed + 1_000_003)
    items: list[tuple[str, Request | None]] = []
    for _ in range(n):
        if rng.random() < qa_share:
            items.append((make_question(rng, countries)[0], None))
        else:
            request = make_request(rng, test_subjects)
            items.append((ask(rng, request), request))
    return items
