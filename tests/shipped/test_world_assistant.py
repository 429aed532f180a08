"""The shipped text-only world assistant."""

import pytest

from llmga.brain import BrainRequest
from llmga.protocol import parse_reply

pytestmark = pytest.mark.shipped


def test_the_shipped_world_assistant_asks_for_what_was_requested():
    """`smollm2-world`: its prompt for a blue square renders (oracle) as a blue square, as the judge reads it."""
    from llmga.brain import complete, load_brain
    from llmga.conversation import Conversation
    from llmga.settings import SamplingSettings
    from llmga.world.captions import oracle_paint
    from llmga.world.judge import Judge

    brain = load_brain("smollm2-world")
    conv = Conversation()
    conv.add_user("Draw a blue square.")
    messages, _ = conv.to_messages(False)
    reply = parse_reply(complete(brain, BrainRequest(messages, settings=SamplingSettings(temperature=0, max_new_tokens=60))),
                        brain.end_markers)
    assert len(reply.prompts) == 1
    seen = Judge.load().read([oracle_paint(reply.prompts[0])])[0]
    assert [(o.colour, o.shape) for o in seen.objects] == [("blue", "square")]
