from llmga.assistant import Assistant
from llmga.data import AnswerCache
from llmga.data.cache import CachedBrain
from llmga.testing.doubles import ScriptedBrain


def test_a_cached_brain_is_asked_under_its_own_system_prompt():
    """The evaluation's cache must not change how a world assistant is asked (its system prompt, no forced tag)."""
    brain = ScriptedBrain("Sorry, a cat is beyond me.", 'Here. <gen_img task="generate">a small red star</gen_img>')
    brain.system_prompt = "You draw simple shapes."
    assistant = Assistant(CachedBrain(brain, AnswerCache()), None)
    assert assistant.generate("a cat").reply.prompts == []
    assert assistant.generate("a red star").reply.prompts == ["a small red star"]
    first = brain.requests[0]
    assert first.messages[0] == {"role": "system", "content": [{"type": "text", "text": "You draw simple shapes."}]}
    assert first.prefill == ""


def test_repeated_requests_are_answered_from_the_cache(tmp_path):
    brain = ScriptedBrain("<gen_img>a blue square</gen_img>")
    for _ in range(2):
        cached = CachedBrain(brain, AnswerCache(tmp_path / "answers.sqlite"))
        assert Assistant(cached, None).generate("a blue square").reply.prompts == ["a blue square"]
    assert len(brain.requests) == 1 and cached.reused == 1
