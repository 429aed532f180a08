"""A new user's openings: out-of-world requests after small talk or a picture, answered greedily.

After the trained "hello!" and "what can you draw?", `gemma3-world` (run 6)
breaks off an out-of-world answer after "I can'". This asks twelve such
requests (six openings, two requests each) and, as the assistant does
(:mod:`llmga.retry`), asks a reply with letters of a script the conversation
never used again, kept to the conversation's scripts. Prints each first reply,
what asking again kept, and the count last:

    python benchmarks/probe_openings.py --brain gemma3-world
"""

import argparse

from llmga.brain import BrainRequest, complete, load_brain
from llmga.brain.base import keeps_scripts
from llmga.conversation import Conversation
from llmga.data.world_english import WORLD
from llmga.protocol import parse_reply
from llmga.retry import ask_again_in_scripts, foreign_scripts
from llmga.settings import SamplingSettings

HELLO = ("hello!", "Hi! Ask me for a picture of shapes, for example a red star on snow at night.")
WHAT = ("what can you draw?", f"I can draw {WORLD}.")
PICTURE = ("a red star on snow", 'Sure, here it is. <gen_img task="generate">a small red star at the top left, '
           "on snow under a day sky</gen_img>")
OPENINGS = ((HELLO,), (WHAT,), (HELLO, WHAT), (PICTURE,), (PICTURE, HELLO), (HELLO, PICTURE))
ASKS = ("could you draw a cat on a sofa?", "draw me a dog")
GREEDY = SamplingSettings(temperature=0, max_new_tokens=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brain", default="gemma3-world")
    brain = load_brain(parser.parse_args().brain)
    broken = 0
    for opening in OPENINGS:
        for ask in ASKS:
            conversation = Conversation(system_prompt=brain.system_prompt)
            for user, answer in opening:
                conversation.add_user(user)
                conversation.add_assistant(answer)
            conversation.add_user(ask)
            messages, _ = conversation.to_messages(False)
            said = " ".join(m["content"] for m in messages if m["role"] != "assistant")
            raw = complete(brain, BrainRequest(messages, settings=GREEDY))
            line = f"{' + '.join(user for user, _ in opening)} + {ask!r} → {raw[:70]!r}"
            if foreign_scripts(parse_reply(raw, brain.end_markers), said):
                broken += 1
                found = ask_again_in_scripts(
                    lambda sampling, scripts: complete(brain, BrainRequest(messages, settings=sampling, scripts=scripts)),
                    said, GREEDY, brain.end_markers, keeps_scripts(brain))
                line += f"\n    asked again, {f'try {found[0]}: {found[1][:70]!r}' if found else 'none kept'}"
            print(line)
    print(f"replies with another script's letters: {broken} of {len(OPENINGS) * len(ASKS)}")


if __name__ == "__main__":
    main()
