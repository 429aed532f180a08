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
import json
import random
from dataclasses import dataclass
from pathlib import Path

from ..protocol import tag_prompt
from .records import make_record, write_records
from .templates import GENERATE_FROM_CAPTION, REPLIES

def _vocabulary() -> dict:
    return json.loads((Path(__file__).with_name("refine_demo_vocabulary.json")).read_text())


_VOCABULARY = _vocabulary()
#: kind -> subjects with their attributes, each ``(noun, attributes)``
SUBJECTS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    kind: [(noun, tuple(attributes)) for noun, attributes in subjects]
    for kind, subjects in _VOCABULARY["subjects"].items()
}
#: kind -> (action or place, setting detail it implies); the same in training and held-out requests
PLACES: dict[str, list[tuple[str, str]]] = {kind: [tuple(p) for p in places]
                                            for kind, places in _VOCABULARY["places"].items()}
TIMES = [tuple(t) for t in _VOCABULARY["times"]]
STYLES: dict[str, list[str]] = _VOCABULARY["styles"]

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
