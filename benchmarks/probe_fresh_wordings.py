"""The world assistant asked in Chinese wordings that neither its training data nor the held-out set uses.

A check on the held-out Chinese place and relation lines after trained wordings
were added in answer to their misses (`gemma3-world`'s run 6): the same held-out
items, with these wordings (written before run 6 was trained) in place of the
held-out place and relation ones. Arguments are `llmga eval assistant`'s:

    python benchmarks/probe_fresh_wordings.py --brain gemma3-world --languages zh --threads 2
"""

import sys

from llmga.data import world_chinese
from llmga.data.world_wording import phrasings

FRESH = {"PLACE": {"top middle": "在正上面|在顶上正中央|在画面上沿中间", "bottom middle": "在正下面|在底下正中央|在画面下沿中间"},
         "RELATION": {"below": "在它正下面", "above": "在它正上面", "right": "在它的右手侧|挨着它右边",
                      "left": "在它的左手侧|挨着它左边"}}


def use_fresh_wordings() -> None:
    """Put the fresh wordings in place of the held-out ones (:func:`phrasings` refuses one that is also trained)."""
    for table, fresh in FRESH.items():
        wordings = getattr(world_chinese, table)
        for key, words in fresh.items():
            wordings[key] = phrasings(wordings[key].train, words)


if __name__ == "__main__":
    use_fresh_wordings()
    from llmga.cli import main

    main(["eval", "assistant", *sys.argv[1:]])
