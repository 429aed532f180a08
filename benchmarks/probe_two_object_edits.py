"""Edits of a two-object picture: is the object named the one changed?

The held-out follow-ups start from a two-object picture only 1 time in 3, and
their misses are mostly there: a removal that takes the other object away, a
recolouring that paints both. This asks, after a held-out two-object request
and its taught reply (both objects placed in cells, or the second placed by its
relation: "and a blue star below it"), a held-out recolour, replace or remove
of one of the two, greedily and with the assistant's retry of an unchanged
edit. Each reply's scene is sorted as right (the oracle painter and judge, as
`llmga eval assistant` does), the same change made to the other object, to
both, the picture unchanged, or otherwise wrong. Prints one line per language, kind and
placing, and the share right last (``--draw 1`` asks the same held-out wordings and pairs in new
combinations):

    python benchmarks/probe_two_object_edits.py --brain gemma3-world --n 6
"""

import argparse
import random
from collections import Counter
from dataclasses import replace

from llmga.brain import load_brain
from llmga.data.world_chat import (LANGUAGES, ChatItem, draw_key, held_out_pairs, painted_reply, reply_caption,
                                   two_objects)
from llmga.data.world_wording import HELD
from llmga.eval.metrics import share_interval
from llmga.eval.world_assistant import greedy_verdicts
from llmga.world.captions import parse_detailed_or_none
from llmga.world.edits import recolour, remove_object, replace_shape
from llmga.world.requests import EVERYTHING, Request

EDITS = {"recolour": recolour, "replace": replace_shape, "remove": remove_object}
PLACINGS = ("absolute", "relative")


def changed_looks(pair):
    """The looks a reply would have with the same change made to the other object instead, and to both."""
    old = next(o for o in pair.source.objects if o not in pair.target.objects)
    other = next(o for o in pair.source.objects if o != old)
    new = next((o for o in pair.target.objects if o not in pair.source.objects), None)
    changed = None if new is None else replace(other, colour=new.colour if new.colour != old.colour else other.colour,
                                               shape=new.shape if new.shape != old.shape else other.shape)
    return (looks([o for o in pair.source.objects if o != other] + ([changed] if changed else [])),
            looks([new, changed]) if new else [])


def looks(objects):
    """Objects by colour and shape alone, in a fixed order."""
    return sorted((o.colour, o.shape) for o in objects)


def items(n: int, seed: int = 0, draw: int = 0):
    """``n`` items per language, edit kind and placing, and each one's edit pair (another ``draw`` combines the
    same held-out wordings and pairs anew)."""
    held, key = held_out_pairs(seed), draw_key(seed, draw)
    out = []
    for code, language in LANGUAGES.items():
        for kind, edit in EDITS.items():
            for placing in PLACINGS:
                for index in range(n):
                    rng = random.Random(f"{key}/two-object-edits/{code}/{kind}/{placing}/{index}")
                    ask, wanted = two_objects(rng, held, True, placing=placing)
                    scene = wanted.scene
                    first = (language.request(ask, rng, HELD),
                             painted_reply(language, rng, scene, caption=reply_caption(ask, scene)))
                    pair = edit(scene, rng)
                    out.append((ChatItem("followup", code, (first,), language.edit(pair, rng, HELD), "", "edit",
                                         Request(pair.target, EVERYTHING), (scene, pair.target)), pair, placing))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brain", default="gemma3-world")
    parser.add_argument("--n", type=int, default=6, help="items per language, edit kind and placing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--draw", type=int, default=0, help="another draw of the same held-out wordings and pairs")
    args = parser.parse_args()
    brain = load_brain(args.brain)
    asked = items(args.n, args.seed, args.draw)
    chat = [item for item, _, _ in asked]
    verdicts = greedy_verdicts(brain, chat)  # asked as `llmga eval assistant` asks
    groups: dict[tuple, Counter] = {}
    for (item, pair, placing), verdict in zip(asked, verdicts):
        read = parse_detailed_or_none(verdict.reply.prompts[0]) if len(verdict.reply.prompts) == 1 else None
        other, both = changed_looks(pair)
        if verdict.whole:
            outcome = "right"
        elif read is not None and looks(read.objects) == other:
            outcome = "the other object"
        elif read is not None and looks(read.objects) == both:
            outcome = "both"
        elif read is not None and looks(read.objects) == looks(pair.source.objects):
            outcome = "unchanged"
        else:
            outcome = "otherwise wrong"
        groups.setdefault((item.language, pair.kind, placing), Counter())[outcome] += 1
    for (code, kind, placing), counts in groups.items():
        print(f"{code} {kind:8} {placing:8} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    right = share_interval([bool(v.whole) for v in verdicts])
    print(f"right: {right.value:.1%} [{right.low:.0%}, {right.high:.0%}] of {len(verdicts)}")


if __name__ == "__main__":
    main()
