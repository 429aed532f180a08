"""What keeping a world assistant's prompts to the caption grammar costs, two ways.

The shipped ``gemma3-world`` on llama.cpp answers the same held-out drawing
requests greedily three ways, alternating: free; with its prompts kept to
``CAPTION_FORM`` as llmga keeps them (:mod:`llmga.brain.forms`: the 32 likeliest
tokens looked at each step inside a tag); and with llama.cpp's own GBNF grammar
of the same form, less its rule that a relation stays on the grid (it checks
every token of the vocabulary each step). It
prints the median seconds per reply and, last, llmga's way against free.
Run: python benchmarks/bench_prompt_form.py
"""

from __future__ import annotations

import argparse
import statistics
import time

from llmga.brain import BrainRequest, complete, load_brain
from llmga.conversation import Conversation
from llmga.data.world_chat import held_out_chat
from llmga.settings import SamplingSettings
from llmga.world.captions import CAPTION_FORM, RELATION_PHRASES
from llmga.world.scene import COLOURS, POSITIONS, SHAPES, SIZES, TERRAINS, TIMES


def gbnf() -> str:
    """The caption form (:data:`~llmga.world.captions.CAPTION_FORM`, less the grid rule) as a GBNF grammar for a
    whole reply."""
    def any_of(words):
        return " | ".join(f'"{w}"' for w in words)

    return "\n".join([
        r'root ::= [^<]* ("<gen_img task=\"" [a-z]+ "\">" caption "</gen_img>")?',
        'caption ::= ("an empty scene" | looks " at the " place (" and " looks (" at the " place | " " relation))*)'
        ' ", on " terrain " under a " time " sky"',
        'looks ::= "a " size " " colour " " shape',
        f"size ::= {any_of(SIZES)}", f"colour ::= {any_of(COLOURS)}", f"shape ::= {any_of(SHAPES)}",
        f"place ::= {any_of(POSITIONS)}", f"relation ::= {any_of(RELATION_PHRASES.values())}",
        f"terrain ::= {any_of(TERRAINS)}", f"time ::= {any_of(TIMES)}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=6, help="held-out drawing requests per language")
    args = parser.parse_args()
    from llama_cpp import LlamaGrammar

    brain = load_brain("gemma3-world")
    grammar = LlamaGrammar.from_string(gbnf(), verbose=False)
    items = [i for i in held_out_chat(args.requests, kinds=("request", "several")) if not i.history]
    settings = SamplingSettings(temperature=0, max_new_tokens=96)
    free, form, gbnf_way = "free", "llmga's form", "llama.cpp's GBNF"
    times: dict[str, list[float]] = {free: [], form: [], gbnf_way: []}
    for item in items:
        conversation = Conversation.for_brain(brain)
        conversation.add_user(item.request)
        messages, _ = conversation.to_messages(False)
        for way, spent in times.items():
            brain.llm.reset()  # each way reads the whole prompt afresh
            start = time.perf_counter()
            if way == gbnf_way:
                tokens = brain.llm.tokenize(brain.prompt(messages).encode(), add_bos=False, special=True)
                brain.llm.create_completion(tokens, max_tokens=96, temperature=0, stop=list(brain.end_markers),
                                            grammar=grammar)
            else:
                complete(brain, BrainRequest(messages, settings=settings,
                                             prompt_form=CAPTION_FORM if way == form else None))
            spent.append(time.perf_counter() - start)
    medians = {way: statistics.median(spent) for way, spent in times.items()}
    for way, median in medians.items():
        print(f"{way}: {median:.2f} s a reply (median of {len(items)})")
    print(f"{gbnf_way} / {free}: {medians[gbnf_way] / medians[free]:.2f}")
    print(f"ratio: {medians[form] / medians[free]:.2f}")


if __name__ == "__main__":
    main()
