"""Size and place edits: "make it bigger", "move the star to the top left", "把它变大".

After a held-out request for one object, or for two different objects, and its
taught reply, this asks a held-out resize (the object made the other size) or
move (the object moved to a free cell) of one object, greedily and with the
assistant's retry of an unchanged edit. Each reply is sorted as right (the
oracle painter and judge, as `llmga eval assistant` does), the picture
unchanged, not painted as an edit of the last picture (another task, or
nothing painted), or otherwise wrong. It also asks a held-out resize of an
object to the size it already has ("can you make it bigger?" of a large
star), which the world cannot paint: right is an answer with nothing painted
(sorted further by whether it says "already", 已经). Prints one line per
language, kind and object count, then the share of resizes and moves right,
and the share of those not painted (``--draw 1`` asks the same held-out
wordings and pairs in new combinations):

    python benchmarks/probe_size_and_place_edits.py --brain gemma3-world --n 6
"""

import argparse
import random
import re

from llmga.brain import load_brain
from llmga.data.world_chat import (LANGUAGES, ChatItem, draw_key, held_out_pairs, one_object, painted_reply,
                                   reply_caption, two_objects)
from llmga.data.world_wording import HELD
from llmga.eval.metrics import share_interval
from llmga.eval.world_assistant import greedy_verdicts
from llmga.world.captions import parse_detailed_or_none
from llmga.world.edits import move, resize
from llmga.world.requests import EVERYTHING, Request

EDITS = {"resize": resize, "move": move}
ASKERS = {1: one_object, 2: two_objects}
#: the kind of item that asks a resize to the size the object already has
SAME = "same size"


def items(n: int, seed: int = 0, draw: int = 0) -> list[tuple[ChatItem, str, int]]:
    """``n`` items per language, edit kind and object count (1 or 2), each with its kind and count."""
    held, key = held_out_pairs(seed), draw_key(seed, draw)
    out = []
    for code, language in LANGUAGES.items():
        for kind in (*EDITS, SAME):
            for count, asker in ASKERS.items():
                for index in range(n):
                    rng = random.Random(f"{key}/size-and-place-edits/{code}/{kind}/{count}/{index}")
                    ask, wanted = asker(rng, held, True)
                    scene = wanted.scene
                    first = (language.request(ask, rng, HELD),
                             painted_reply(language, rng, scene, caption=reply_caption(ask, scene)))
                    if kind == SAME:
                        asked, _ = language.same_size(scene, rng.choice(scene.objects), rng, HELD)
                        item = ChatItem("followup", code, (first,), asked, "", scenes=(scene,))
                    else:
                        pair = EDITS[kind](scene, rng)
                        item = ChatItem("followup", code, (first,), language.edit(pair, rng, HELD), "", "edit",
                                        Request(pair.target, EVERYTHING), (scene, pair.target))
                    out.append((item, kind, count))
    return out


def outcome(verdict) -> str:
    """How one reply did: right, unchanged, not an edit, or otherwise wrong; a resize to the size the object
    has: painted, or answered (saying "already" or not)."""
    if verdict.item.task is None:
        if verdict.reply.prompts:
            return "painted"
        return "answered: already" if re.search(r"already|已经", verdict.reply.text) else "answered otherwise"
    if verdict.whole:
        return "right"
    if verdict.task != "edit":
        return "not an edit"
    read = parse_detailed_or_none(verdict.reply.prompts[0]) if len(verdict.reply.prompts) == 1 else None
    return "unchanged" if read is not None and read == verdict.item.scenes[0] else "otherwise wrong"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brain", default="gemma3-world")
    parser.add_argument("--n", type=int, default=6, help="items per language, edit kind and object count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--draw", type=int, default=0, help="another draw of the same held-out wordings and pairs")
    args = parser.parse_args()

    brain = load_brain(args.brain)
    asked = items(args.n, args.seed, args.draw)
    chat = [item for item, _, _ in asked]
    verdicts = greedy_verdicts(brain, chat)  # asked as `llmga eval assistant` asks
    groups: dict[tuple, dict[str, int]] = {}
    for (item, kind, count), verdict in zip(asked, verdicts, strict=True):
        counts = groups.setdefault((item.language, kind, count), {})
        counts[outcome(verdict)] = counts.get(outcome(verdict), 0) + 1
    for (code, kind, count), counts in groups.items():
        print(f"{code} {kind:6} {count} object(s): " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    edits = [v for v in verdicts if v.item.task == "edit"]
    for code in LANGUAGES:
        right = share_interval([bool(v.whole) for v in edits if v.item.language == code])
        print(f"{code} right: {right.value:.1%} [{right.low:.0%}, {right.high:.0%}] of {right.n}")
    right = share_interval([bool(v.whole) for v in edits])
    print(f"resizes and moves right: {right.value:.1%} [{right.low:.0%}, {right.high:.0%}] of {right.n}")
    kept = share_interval([not v.reply.prompts for v in verdicts if v.item.task is None])
    print(f"resizes to the size it has, not painted: {kept.value:.1%} [{kept.low:.0%}, {kept.high:.0%}] of {kept.n}")


if __name__ == "__main__":
    main()
