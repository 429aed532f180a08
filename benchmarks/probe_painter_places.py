"""The world painter on one large object in every cell, by day and by night: where does it miss?

Run 13 of `gemma3-world` filled unnamed attributes with large objects at the
top corners by day, and the main job's stage-2 painter drew only 75% of those
scenes right. This paints, for every colour, three shapes and every cell, a
large object on one ground by day and by night (the world bench's settings:
20 steps, guidance 4, seed 0 unless ``--seed`` says), reads each picture with the world's judge and
prints the share right per cell and time, then how the misses went wrong
(a second object painted, or which attribute was read otherwise):

    python benchmarks/probe_painter_places.py --painter world-stage2 --ground sand
"""

import argparse
from collections import Counter, defaultdict

from llmga.eval.metrics import share_interval
from llmga.painter.text_to_image import TextToImagePainter
from llmga.settings import PaintSettings
from llmga.world.captions import detailed_caption
from llmga.world.judge import Judge
from llmga.world.requests import attribute_agreement
from llmga.world.scene import COLOURS, POSITIONS, TERRAINS, Background, Obj, Scene

SHAPES = ("square", "star", "cross")
TIMES = ("day", "night")


def how_wrong(read: Scene, wanted: Scene) -> list[str]:
    """What the reading of a one-object picture got otherwise than the scene asked for."""
    if len(read.objects) != 1:
        return [f"{len(read.objects)} objects"]
    return [attribute for attribute, agrees in attribute_agreement(read, wanted).items() if not agrees]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--painter", default="world-stage2")
    parser.add_argument("--ground", default="sand", choices=TERRAINS)
    parser.add_argument("--seed", type=int, default=0, help="the noise every picture starts from")
    args = parser.parse_args()
    painter, judge = TextToImagePainter.load(args.painter), Judge.load()
    settings = PaintSettings(steps=20, guidance=4.0, seed=args.seed)
    right, misses = defaultdict(list), Counter()
    for time in TIMES:
        for position in POSITIONS:
            for colour in COLOURS:
                for shape in SHAPES:
                    wanted = Scene((Obj(shape, colour, "large", position),), Background(time, args.ground))
                    read = judge.read([painter.paint(detailed_caption(wanted), settings).images[0]])[0]
                    wrong = how_wrong(read, wanted)
                    right[(position, time)].append(not wrong)
                    misses.update(f"{position}, {time}: {w}" for w in wrong)
    for position in POSITIONS:
        print(f"{position:>13}: " + "   ".join(
            f"{time} {sum(right[(position, time)])}/{len(right[(position, time)])}" for time in TIMES))
    for miss, count in misses.most_common():
        print(f"  {miss} ({count})")
    every = [ok for flags in right.values() for ok in flags]
    interval = share_interval(every)
    print(f"right: {interval.value:.3f} [{interval.low:.2f}, {interval.high:.2f}] of {len(every)}")


if __name__ == "__main__":
    main()
