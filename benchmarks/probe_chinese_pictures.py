"""A LLaVA-format world assistant asked about an attached picture in Chinese, beside the same items in English.

`llmga data world-llava` and `llmga eval llava` ask every pictured request in English. Here each item is a
rendered picture and a request for one like it ("类似的再来一张") or an edit of it ("把星星变成蓝色"), worded in
each language by the held-out phrasings of `world-chat`'s follow-ups (`world_chinese` / `world_english`), which
no pictured training item uses. The reply's prompt is painted by the oracle and read by the judge, as in
`llmga eval llava`; faithful is the whole target scene right. Prints the Chinese share over the English one last:

    python benchmarks/probe_chinese_pictures.py --brain world-llava --n 20
"""

import argparse
import random

from llmga.brain import load_brain
from llmga.data import world_chinese, world_english
from llmga.data.world_sets import Item
from llmga.data.world_wording import HELD
from llmga.eval.replies import answers
from llmga.eval.world_prompts import judge_replies, kind_scores
from llmga.world import Judge, render, sample_scene
from llmga.world.edits import sample_edit
from llmga.world.requests import ASPECTS, EVERYTHING, Request

LANGUAGES = {"en": world_english, "zh": world_chinese}


def items(kind: str, code: str, n: int, seed: int) -> list[Item]:
    """``n`` pictured items of ``kind`` (similar or edit), the same scenes in every language."""
    language, out = LANGUAGES[code], []
    for i in range(n):
        rng = random.Random(f"{seed}/probe-pictures/{kind}/{i}")
        scene = sample_scene(rng, 2)
        if kind == "similar":
            source, target = scene, scene
            request = language.similar(random.Random(f"{seed}/{code}/{i}"), HELD)
        else:
            pair = sample_edit(scene, rng, max_objects=3)
            source, target = pair.source, pair.target
            request = language.edit(pair, random.Random(f"{seed}/{code}/{i}"), HELD)
        out.append(Item(kind, request, "", (source, target), render(source), wanted=Request(target, EVERYTHING)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brain", default="world-llava")
    parser.add_argument("--n", type=int, default=20, help="items per kind and language")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    brain, judge = load_brain(args.brain), Judge.load()
    faithful = {}
    for code in LANGUAGES:
        for kind in ("similar", "edit"):
            asked = items(kind, code, args.n, args.seed)
            replies = answers(brain, [item.request for item in asked], [item.image for item in asked])
            scores = kind_scores(judge_replies(replies, asked, brain.end_markers, judge))
            faithful[code] = faithful.get(code, 0) + round(scores.faithful * args.n)
            aspects = "  ".join(f"{a} {round(scores.aspects[a] * args.n)}/{args.n}" for a in ASPECTS)
            print(f"{code} {kind:8s} faithful {round(scores.faithful * args.n)}/{args.n}  {aspects}  "
                  f"e.g. {asked[0].request!r} -> {replies[0][:100]!r}")
    print(f"faithful: en {faithful['en']}/{2 * args.n}, zh {faithful['zh']}/{2 * args.n}")
    print(f"ratio: {faithful['zh'] / max(faithful['en'], 1):.2f}")


if __name__ == "__main__":
    main()
