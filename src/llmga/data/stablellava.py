"""StableLLaVA-style synthetic image–dialogue data (Li et al., 2023).

For each ability (colour, animals, scenes, styles, counting, ...) an LLM first
writes a Stable Diffusion prompt of comma-separated keywords, the ability's key
words in double brackets ``((...))``; a painter renders it; then the LLM writes,
from the same prompt, a detailed description of the image and question–answer
pairs about the ability. The output is a LLaVA-format set: image + "describe
this image" → description, then the questions and answers.

Both LLM steps answer in a fixed labelled format (``Prompt:``; ``Description:``,
``Question:``, ``Answer:``). An answer that does not follow it is dropped and
counted ("malformed prompt" / "malformed dialogue"). LLM answers go through an
answer cache and painted images are reused when their file already holds the
same prompt and seed, so an interrupted run resumes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..brain import Brain, BrainRequest, complete
from ..errors import InvalidInputError, LLMGAError
from ..images import read_metadata
from ..protocol import parse_reply
from ..settings import PaintSettings, SamplingSettings
from .cache import AnswerCache, CachedBrain
from .records import DATA_FILE, IMAGES_DIR, Record, make_record, save_image
from .report import BrokenSampleError, Problems, Report, progress
from .templates import DESCRIBE_IMAGE

#: a painter: a :class:`~llmga.painter.TextToImagePainter` (seeded per image) or any callable prompt → image
Painter = Any


@dataclass(frozen=True)
class Ability:
    """What one part of the data teaches: the words that matter, example keywords and prompts."""

    name: str
    focus: str
    keywords: tuple[str, ...]
    examples: tuple[str, ...]
    cautions: str = ""


def _ability(name: str, focus: str, keywords: str, examples: tuple[str, ...], cautions: str = "") -> Ability:
    return Ability(name, focus, tuple(k.strip() for k in keywords.split(",")), examples, cautions)


# fmt: off
ABILITIES: dict[str, Ability] = {a.name: a for a in (
    _ability("color", "the colours of objects",
             "crimson, teal, mustard yellow, lavender, emerald green, coral, navy blue, burnt orange, ivory",
             ("((a crimson vintage car)), parked on a cobblestone street, soft evening light, detailed",
              "((a teal ceramic teapot)) and ((a mustard yellow cup)), wooden table, morning light, 4k")),
    _ability("animals", "the kinds of animals",
             "red fox, snow leopard, hummingbird, sea turtle, border collie, barn owl, axolotl, red panda",
             ("((a red fox)), sitting in a snowy forest, soft light, detailed fur, 8k",
              "((a sea turtle)) swimming over a coral reef, sunbeams, underwater, vibrant")),
    _ability("plants", "the kinds of plants and flowers",
             "sunflower, cactus, cherry blossom, fern, lotus, oak tree, orchid, bamboo, lavender field",
             ("((a blooming cherry blossom tree)), by a quiet pond, spring, pastel colours, detailed",)),
    _ability("vehicles", "the kinds of vehicles",
             "steam locomotive, sailboat, fire truck, hot air balloon, motorcycle, tram, helicopter, tractor",
             ("((a red fire truck)), city street, rainy evening, reflections, realistic",)),
    _ability("food", "the kinds of food and dishes",
             "ramen, croissant, sushi platter, pepperoni pizza, fruit tart, tacos, pancakes, paella",
             ("((a bowl of ramen)) with a soft-boiled egg, wooden table, steam, warm light",)),
    _ability("clothes", "the clothes people wear",
             "trench coat, kimono, denim jacket, ball gown, hoodie, tuxedo, raincoat, knitted sweater",
             ("a woman in ((a yellow raincoat)), rainy street, umbrella, cinematic lighting",)),
    _ability("furniture", "the kinds of furniture",
             "armchair, bookshelf, four-poster bed, rocking chair, dining table, chest of drawers, sofa",
             ("((a green velvet armchair)) next to ((a tall bookshelf)), cozy living room, lamp light",)),
    _ability("hair", "hair types and hairstyles",
             "curly hair, braids, buzz cut, ponytail, afro, long wavy hair, bun, dreadlocks",
             ("portrait of a man with ((curly red hair)) in ((a bun)), studio light, detailed",)),
    _ability("professions", "people's professions",
             "firefighter, chef, astronaut, surgeon, carpenter, pilot, painter, farmer",
             ("((a chef)) in a white uniform tasting soup, busy restaurant kitchen, warm light",)),
    _ability("scenes", "the scene or place",
             "beach at sunset, space station, medieval castle, rainforest, subway platform, desert oasis",
             ("((a medieval castle)) on a hill, misty morning, dramatic lighting, highly detailed",)),
    _ability("actions", "what people or animals are doing",
             "jumping, reading, cooking, surfing, climbing, dancing, painting, running",
             ("a boy ((jumping)) into a lake from a wooden pier, summer, splash, sunny",)),
    _ability("styles", "the artistic style of the image",
             "watercolor, anime, oil painting, pixel art, impressionist, pencil sketch, low poly, ukiyo-e",
             ("a lighthouse on a cliff, ((watercolor painting)), soft colours, paper texture",)),
    _ability("counting", "how many objects there are",
             "two, three, four, five, six",
             ("((three red apples)) on a white plate, kitchen table, soft light, realistic",),
             "Count small numbers only (two to six) and name the count in words."),
    _ability("abnormal", "what is unusual or impossible in the image",
             "giraffe in a corridor, fish on a bicycle, melting clock, upside-down house, cat flying a plane",
             ("((a giraffe walking through a narrow home corridor)), realistic photo, detailed",),
             "The images must show something unusual that would not happen in reality."),
)}
# fmt: on

PROMPT_SYSTEM = (
    "As an AI visual assistant specializing in prompt design, your task is to create a prompt for a "
    "text-to-image generator about {focus}. The prompt consists of keywords separated by commas: subjects, "
    "scenes, styles and visual features (soft light, dramatic lighting, vibrant, detailed shading); words "
    "like "
    "'highly detailed, 4k' can enhance details. Put the most important keywords, those about {focus}, first "
    "and in double brackets, like ((a red fox)). The image must be logical and sensible, and every keyword "
    "visual. {cautions}\nYou may choose keywords such as: {keywords}.\nExamples:\n{examples}\n"
    "Answer with one line: Prompt: <the prompt>"
)

DIALOGUE_SYSTEM = (
    "As an AI visual assistant, you describe images made by a text-to-image model from a prompt of "
    "keywords. Given the prompt, write a detailed description of the image, focusing on {focus} "
    "(the keywords in double brackets), then {n} question-answer pairs about {focus}. Vary the questions "
    "(yes/no, wh-, either-or); answer with confidence and precision; do not talk nonsense or mention the "
    "prompt. Answer in exactly this format:\nDescription: <the description>\n"
    "Question: <a question>\nAnswer: <its answer>\n"
)

_LABELLED = re.compile(r"^\s*(prompt|description|question|answer|response)\s*:\s*(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Dialogue:
    """What the LLM wrote about an image: its description and question–answer pairs."""

    description: str
    qa: tuple[tuple[str, str], ...] = ()


def labelled_fields(answer: str) -> list[tuple[str, str]]:
    """(label, text) for each labelled line; unlabelled lines continue the previous field."""
    fields: list[tuple[str, str]] = []
    for line in answer.splitlines():
        match = _LABELLED.match(line)
        if match:
            label = match.group(1).lower()
            fields.append(("answer" if label == "response" else label, match.group(2).strip()))
        elif fields and line.strip():
            label, text = fields[-1]
            fields[-1] = (label, f"{text} {line.strip()}".strip())
    return fields


def parse_prompt(answer: str) -> str | None:
    """The SD prompt in an answer (its first non-empty ``Prompt:`` field), or None."""
    return next((text for label, text in labelled_fields(answer) if label == "prompt" and text), None)


def parse_dialogue(answer: str) -> Dialogue | None:
    """The description and Q/A pairs in an answer, or None if the format is broken.

    It needs one non-empty description; each question must be followed by its
    answer (a question without answer, or an answer without question, breaks it).
    """
    fields = [(label, text) for label, text in labelled_fields(answer) if label != "prompt"]
    if not fields or fields[0][0] != "description" or not fields[0][1]:
        return None
    rest = fields[1:]
    if len(rest) % 2:
        return None
    qa = []
    for (q_label, question), (a_label, reply) in zip(rest[::2], rest[1::2], strict=True):
        if (q_label, a_label) != ("question", "answer") or not question or not reply:
            return None
        qa.append((question, reply))
    return Dialogue(fields[0][1], tuple(qa))


def plain_prompt(prompt: str) -> str:
    """The prompt without its emphasis brackets, for the painter."""
    return " ".join(re.sub(r"[()\[\]]", "", prompt).split())


def item_seed(seed: int, ability: str, index: int) -> int:
    """A seed for one item, from the run's seed, the ability and the item's index."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{ability}/{index}".encode()).digest()[:4], "big") >> 1


class StableLLaVA:
    """Generates image–dialogue data with an LLM (any :class:`~llmga.brain.Brain`) and a painter."""

    def __init__(
        self,
        brain: Brain,
        painter: Painter,
        cache: AnswerCache | None = None,
        settings: SamplingSettings = SamplingSettings(temperature=0.8, max_new_tokens=300),
        paint: PaintSettings = PaintSettings(),
        questions: int = 2,
    ) -> None:
        self.brain = CachedBrain(brain, cache)
        self.painter = painter
        self.settings = settings
        self.paint_settings = paint
        self.questions = questions

    def write_prompt(self, ability: Ability, rng: random.Random, seed: int) -> str | None:
        """An SD prompt for ``ability`` (None if the LLM's answer is malformed)."""
        system = PROMPT_SYSTEM.format(
            focus=ability.focus,
            cautions=ability.cautions,
            keywords=", ".join(rng.sample(ability.keywords, min(5, len(ability.keywords)))),
            examples="\n".join(f"Prompt: {example}" for example in ability.examples),
        )
        return parse_prompt(self._ask(system, f"Write a new prompt about {ability.focus}.", seed))

    def write_dialogue(self, ability: Ability, prompt: str, seed: int) -> Dialogue | None:
        """The description and Q/A pairs of the image of ``prompt`` (None if malformed)."""
        system = DIALOGUE_SYSTEM.format(focus=ability.focus, n=self.questions)
        return parse_dialogue(self._ask(system, f"Prompt: {prompt}", seed))

    def paint(self, prompt: str, seed: int) -> Image.Image:
        """Render ``prompt``: a painter with ``paint`` gets the seed; a plain callable gets the prompt."""
        if hasattr(self.painter, "paint"):
            settings = dataclasses.replace(self.paint_settings, seed=seed, num_images=1)
            return self.painter.paint(prompt, settings).images[0]
        return self.painter(prompt)

    def build(
        self,
        out: str | Path,
        abilities: list[str] | None = None,
        per_ability: int = 10,
        seed: int = 0,
        problems: Problems | None = None,
        show_progress: bool = True,
    ) -> Report:
        """Write ``per_ability`` items for each ability (default: all) to ``out``."""
        chosen = abilities_named(abilities)
        out = Path(out)
        report = Report("stablellava", problems=problems or Problems())
        asked, reused = self.brain.asked, self.brain.reused
        items = [(ability, index) for ability in chosen for index in range(per_ability)]
        bar = progress(items, desc="stablellava", enabled=show_progress)
        records = [
            r for r in report.problems.each(bar, lambda item: self._item(*item, seed, out, report)) if r
        ]
        report.save(records, out / DATA_FILE)
        report.counts["llm asked"] += self.brain.asked - asked
        report.counts["llm from cache"] += self.brain.reused - reused
        return report

    def _item(self, ability: Ability, index: int, seed: int, out: Path, report: Report) -> Record | None:
        record_id = f"{ability.name}-{index:05d}"
        item = item_seed(seed, ability.name, index)
        rng = random.Random(item)
        prompt = self.write_prompt(ability, rng, item)
        if prompt is None:
            report.counts["malformed prompt"] += 1
            return None
        dialogue = self.write_dialogue(ability, prompt, item)
        if dialogue is None:
            report.counts["malformed dialogue"] += 1
            return None
        image = self._image(record_id, plain_prompt(prompt), item, out, report)
        report.counts[ability.name] += 1
        turns = [(DESCRIBE_IMAGE.pick(rng), dialogue.description), *dialogue.qa]
        return make_record(record_id, turns, image=image, prompt=prompt)

    def _image(self, record_id: str, prompt: str, seed: int, out: Path, report: Report) -> str:
        """The image file of an item: reused if it already holds this prompt and seed, else painted."""
        meta = {**dataclasses.asdict(self.paint_settings), "prompt": prompt, "seed": seed}
        existing = out / IMAGES_DIR / f"{record_id}.png"
        if _metadata(existing) == json.loads(json.dumps(meta)):
            report.counts["images reused"] += 1
            return f"{IMAGES_DIR}/{record_id}.png"
        try:
            image = self.paint(prompt, seed)
        except LLMGAError as exc:
            raise BrokenSampleError(record_id, f"painting failed: {exc}") from exc
        report.counts["images painted"] += 1
        return save_image(image, out, record_id, meta)

    def _ask(self, system: str, user: str, seed: int) -> str:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        settings = dataclasses.replace(self.settings, seed=seed)
        return parse_reply(complete(self.brain, BrainRequest(messages, (), settings)), self.brain.end_markers).text


def abilities_named(names: list[str] | None) -> list[Ability]:
    """The abilities called ``names`` (all when empty); an unknown name is an error listing the known ones."""
    unknown = [name for name in names or [] if name not in ABILITIES]
    if unknown:
        raise InvalidInputError(f"unknown abilities {unknown}; choose from {', '.join(ABILITIES)}")
    return [ABILITIES[name] for name in names] if names else list(ABILITIES.values())


def _metadata(path: Path) -> dict | None:
    """The llmga metadata of a PNG written by :func:`~llmga.data.records.save_image`, if any."""
    if not path.is_file():
        return None
    try:
        return read_metadata(path)
    except (OSError, ValueError, InvalidInputError):
        return None
