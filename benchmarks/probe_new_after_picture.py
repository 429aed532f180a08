"""A new picture asked right after one was painted: does the assistant copy the last picture's unnamed attributes?

A user who has a picture and asks "Now draw a small red star." wants a new picture; what the request leaves
open (the place, the size, the time, the ground) is the assistant's to fill, not the last picture's to keep
(that is an edit). Each item is a held-out one-object request (held-out wordings and colour–shape pairs, as
`llmga eval assistant` asks them) in the "new picture" frame, asked after a painted one-object scene in the
same language (``--after-edit``: after that scene and a held-out edit of it, the edited scene the last picture;
``--other-language``: the earlier turns in the other language, as a user who changes language asks); the
same request is asked again in a fresh conversation as the control: how often the fill agrees with the last scene by
chance, given the brain's own taste in fills. Greedy, as the held-out measurement.
Prints, per language, how many replies paint a new picture and how many edit the last one, then per
attribute left open how often the fill equals the last picture's with it and without it, and last the ratio
of those two shares pooled (each with one added to the hits and two to the count, so neither is 0):

    python benchmarks/probe_new_after_picture.py --brain gemma3-world --n 24
"""

import argparse
import random

from llmga.brain import load_brain
from llmga.data.world_chat import LANGUAGES, drawing_item, edit_item, held_out_pairs, new_request_item, other_language
from llmga.data.world_wording import HELD
from llmga.eval.replies import answers
from llmga.eval.world_assistant import painted
from llmga.protocol import parse_reply
from llmga.world.captions import parse_detailed_or_none

#: the attributes a one-object request may leave open, read from a scene
OPEN = {"size": lambda s: s.objects[0].size, "position": lambda s: s.objects[0].position,
        "time": lambda s: s.background.time, "terrain": lambda s: s.background.terrain}


def read(reply: str, brain) -> tuple:
    """The scene a reply's last prompt asks for (None: none, or not a caption), and the task its tag names."""
    parsed = parse_reply(reply, brain.end_markers)
    if not parsed.prompts:
        return None, None
    return parse_detailed_or_none(parsed.prompts[-1]), parsed.tasks[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brain", default="gemma3-world")
    parser.add_argument("--n", type=int, default=24, help="requests per language")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--after-edit", action="store_true", help="ask after a picture and an edit of it")
    parser.add_argument("--other-language", action="store_true", help="the earlier turns in the other language")
    args = parser.parse_args()
    brain = load_brain(args.brain)
    held = held_out_pairs(args.seed)
    pooled = {"with": [0, 0], "without": [0, 0]}
    for code, language in LANGUAGES.items():
        items = []
        for i in range(args.n):
            rng = random.Random(f"{args.seed}/probe-new-after-picture/{code}/{i}")
            earlier = other_language(code) if args.other_language else code
            shown = drawing_item("request", LANGUAGES[earlier], rng, HELD, held, True, earlier)
            if args.after_edit:
                shown = edit_item("followup", shown, LANGUAGES[earlier],
                                  random.Random(f"{args.seed}/probe-new-edit/{code}/{i}"), HELD, held, True, earlier,
                                  ("recolour", "replace", "time", "terrain"))
            items.append(new_request_item("new-after-picture", shown, language, rng, HELD, held, True, code))
        requests = [item.request for item in items]
        after = answers(brain, requests, histories=[item.history for item in items], paint=painted)
        alone = answers(brain, requests)
        counts = {attribute: {"with": [0, 0], "without": [0, 0]} for attribute in OPEN}
        new_pictures, edits = 0, []
        for item, with_picture, without in zip(items, after, alone):
            (new, task), (control, _) = read(with_picture, brain), read(without, brain)
            last, want, request = item.scenes[0], item.wanted, item.request
            new_pictures += task == "generate"
            if task == "edit":
                edits.append(request)
            for attribute, read_off in OPEN.items():
                if attribute in want.attributes:
                    continue
                for key, scene in (("with", new), ("without", control)):
                    if scene is not None and len(scene.objects) == 1:
                        for tally in (counts[attribute][key], pooled[key]):
                            tally[0] += read_off(scene) == read_off(last)
                            tally[1] += 1
        print(f"{code}: a new picture {new_pictures} of {args.n}, an edit of the last {len(edits)} {edits}; "
              f"e.g. {requests[0]!r} -> {after[0][:90]!r}")
        for attribute, by in counts.items():
            print(f"  {attribute} left open: the last picture's {by['with'][0]} of {by['with'][1]} after it, "
                  f"{by['without'][0]} of {by['without'][1]} in a fresh conversation")
    print(f"pooled: the last picture's {pooled['with'][0]} of {pooled['with'][1]} after it, "
          f"{pooled['without'][0]} of {pooled['without'][1]} in a fresh conversation")
    share = {key: (hits + 1) / (total + 2) for key, (hits, total) in pooled.items()}  # add-one: never 0
    print(f"ratio: {share['with'] / share['without']:.2f}")


if __name__ == "__main__":
    main()
