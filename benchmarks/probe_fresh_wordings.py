"""The world assistant asked in wordings that neither its training data nor the held-out set uses.

A check on held-out lines after trained wordings were added in answer to their
misses: the same held-out items, with these wordings in place of the held-out
ones. The Chinese place and relation wordings were written before
`gemma3-world`'s run 6 was trained (the corners before run 10), the English
centre and the removal and replacement wordings of both languages before run 9, the
size words of both (held out until then) before run 11, the Chinese add and
time edits and the English recolouring before run 15, the English corner, edge and
relation wordings and the Chinese middle-row places before run 21. Arguments are
`llmga eval assistant`'s:

    python benchmarks/probe_fresh_wordings.py --brain gemma3-world --threads 2
"""

import sys

from llmga.data import world_chinese, world_english
from llmga.data.world_wording import phrasings

#: by module and table: the fresh wordings of each key (None: the table is one set of wordings)
FRESH = {
    world_chinese: {
        "PLACE": {"top middle": "在正上面|在顶上正中央|在画面上沿中间", "bottom middle": "在正下面|在底下正中央|在画面下沿中间",
                  "top left": "在左上那一角|在画面左上处", "top right": "在右上那一角|在画面右上处",
                  "bottom left": "在左下那一角|在画面左下处", "bottom right": "在右下那一角|在画面右下处",
                  "middle left": "在左侧的中央|在画面左缘中间", "center": "在正当中|在画面最中间",
                  "middle right": "在右侧的中央|在画面右缘中间"},
        "RELATION": {"below": "在它正下面", "above": "在它正上面", "right": "在它的右手侧|挨着它右边",
                     "left": "在它的左手侧|挨着它左边"},
        "EDIT": {"remove": "{obj}不用了|我不想要{obj}", "replace": "拿{shape}换掉{obj}|{obj}换个{shape}",
                 "add": "{place}补上{new}", "time": "弄成{time}的"},
        "SIZE": {"small": "袖珍的|小巧的", "large": "庞大的|特大的"},
    },
    world_english: {
        "CENTER": {None: "plumb in the middle|at the midpoint of the picture"},
        "CORNER": {None: "in the {v}-{h} region|somewhere in the {v} {h}"},
        "EDGE_ROW": {None: "at the {v}, between the two corners|at the {v}, midway across"},
        "EDGE_COLUMN": {None: "at mid-height on the {h}|on the {h}, level with the centre"},
        "RELATION": {"below": "beneath that one|one step down from it", "above": "above that one|one step up from it",
                     "right": "to the right of that one|one step to its right",
                     "left": "to the left of that one|one step to its left"},
        "SIZE": {"small": "pretty small|fairly small", "large": "pretty big|fairly large"},
        "EDIT": {"remove": "ditch {obj}|I'd rather not have {obj}", "replace": "trade {obj} for a {shape}|{obj} becomes a {shape}",
                 "recolour": "give {obj} a {colour} colour"},
    },
}


def use_fresh_wordings() -> None:
    """Put the fresh wordings in place of the held-out ones (:func:`phrasings` refuses one that is also trained)."""
    for module, tables in FRESH.items():
        for table, fresh in tables.items():
            wordings = getattr(module, table)
            for key, words in fresh.items():
                if key is None:
                    setattr(module, table, phrasings(wordings.train, words))
                else:
                    wordings[key] = phrasings(wordings[key].train, words)


if __name__ == "__main__":
    use_fresh_wordings()
    from llmga.cli import main

    main(["eval", "assistant", *sys.argv[1:]])
