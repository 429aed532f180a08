"""A question about the picture just painted, in Chinese beside English, asked as the assistant asks it.

After "draw something" and a painted one-object scene, the brain is asked what the picture shows, in wordings
no training item uses: the held-out ones of `world-chat`'s "look" kind, which `llmga eval assistant` asks too
(`world-llava`'s own picture questions are English and name a cell: "What colour is the object at the
center?"). A multimodal brain is shown the oracle's picture of the prompt, as the assistant shows it what it
painted. Counted per language: questions painted (a question is never a drawing request), open questions answered
with the whole scene (read back by the language's reader: every word of it right, nothing else) and colour questions
answered with the scene's colour and no other. Then the same open questions after the picture was edited (a
held-out edit wording, the edited scene painted): answered with the edited scene, or with the first one. Prints the
Chinese share of questions answered without a picture over the English one last:

    python benchmarks/probe_picture_questions.py --brain world-llava --n 8
"""

import argparse
import random

from llmga.brain import load_brain
from llmga.data.world_chat import LANGUAGES
from llmga.data.world_wording import HELD
from llmga.eval.replies import answers
from llmga.eval.world_assistant import colours_named, described, painted
from llmga.protocol import parse_reply, tag_prompt
from llmga.world import sample_scene
from llmga.world.captions import detailed_caption
from llmga.world.edits import EDIT_KINDS, sample_edit

ASKS = {
    "en": ("Draw something.", ("What's in this picture?", "Tell me what you see.", "What colour is the shape in it?")),
    "zh": ("画点什么吧。", ("这张图里有什么？", "说说你看到了什么。", "图里的形状是什么颜色？")),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brain", default="world-llava")
    parser.add_argument("--n", type=int, default=8, help="painted scenes per language")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    brain = load_brain(args.brain)
    unpainted = {}
    for code, (opening, questions) in ASKS.items():
        painted_replies = right_colours = whole = edited_whole = first_told = 0
        for i in range(args.n):
            scene = sample_scene(random.Random(f"{args.seed}/probe-questions/{i}"), 1)
            history = [(opening, tag_prompt(detailed_caption(scene), "generate"))]
            replies = answers(brain, list(questions), histories=[history] * len(questions), paint=painted)
            parsed = [parse_reply(reply, brain.end_markers) for reply in replies]
            painted_replies += sum(bool(reply.prompts) for reply in parsed)
            whole += sum(described(code, reply) == scene for reply in parsed[:-1])
            right_colours += not parsed[-1].prompts and colours_named(parsed[-1].text) == {scene.objects[0].colour}
            rng = random.Random(f"{args.seed}/probe-questions-edited/{i}")
            edit = sample_edit(scene, rng, tuple(k for k in EDIT_KINDS if k != "remove"), max_objects=2)
            edited = [*history, (LANGUAGES[code].edit(edit, rng, HELD), tag_prompt(detailed_caption(edit.target), "edit"))]
            told = [described(code, parse_reply(reply, brain.end_markers))
                    for reply in answers(brain, list(questions[:-1]), histories=[edited] * (len(questions) - 1),
                                         paint=painted)]
            edited_whole += sum(seen == edit.target for seen in told)
            first_told += sum(seen == scene for seen in told)
            if i == 0:
                for question, reply in zip(questions, replies):
                    print(f"{code} {question!r} -> {reply[:100]!r}")
        asked = args.n * len(questions)
        unpainted[code] = 1 - painted_replies / asked
        print(f"{code}: questions painted {painted_replies} of {asked}; described whole {whole} of {asked - args.n}; "
              f"colour answered right {right_colours} of {args.n}; after an edit, the edited picture described whole "
              f"{edited_whole} of {asked - args.n}, the first one {first_told}")
    print(f"ratio: {unpainted['zh'] / max(unpainted['en'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
