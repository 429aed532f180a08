"""Conversation history, images in turns, and config profiles."""

import pytest
from PIL import Image

from llmga.conversation import SYSTEM_PROMPT, Conversation
from llmga.errors import BrainError, LLMGAError
from llmga.profiles import load_profile


def img(color):
    return Image.new("RGB", (8, 8), color)


def test_messages_start_with_our_system_prompt_and_follow_turns():
    conv = Conversation()
    conv.add_user("draw a cat")
    conv.add_assistant("Sure <gen_img>a cat</gen_img>", ["a cat"])
    conv.add_user("make it night")
    messages, images = conv.to_messages(multimodal=False)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == SYSTEM_PROMPT and "<gen_img>" in SYSTEM_PROMPT
    assert messages[2]["content"] == "Sure <gen_img>a cat</gen_img>"  # the model sees its own prompt
    assert images == []


def test_generated_image_joins_history_for_a_multimodal_brain():
    conv = Conversation()
    conv.add_user("draw a cat")
    conv.add_assistant("<gen_img>a cat</gen_img>", ["a cat"])
    cat = img("red")
    conv.attach_generated([cat])
    conv.add_user("make it night")
    messages, images = conv.to_messages(multimodal=True)
    assert images == [cat]
    assert messages[2]["content"][0] == {"type": "image"}
    assert conv.last_image is cat and conv.last_prompt == "a cat"


def test_only_the_most_recent_images_are_shown():
    conv = Conversation()
    first, second = img("red"), img("blue")
    conv.add_user("look", [first])
    conv.add_assistant("ok")
    conv.add_user("and this", [second])
    messages, images = conv.to_messages(multimodal=True, max_images=1)
    assert images == [second]
    assert all(part["type"] == "text" for part in messages[1]["content"])
    _, both = conv.to_messages(multimodal=True, max_images=2)
    assert both == [first, second]


def test_text_only_brain_refuses_user_images_but_not_generated_ones():
    conv = Conversation()
    conv.add_user("draw")
    conv.add_assistant("<gen_img>x</gen_img>", ["x"])
    conv.attach_generated([img("red")])
    conv.add_user("again")
    messages, images = conv.to_messages(multimodal=False)
    assert images == [] and isinstance(messages[2]["content"], str)
    conv.add_user("what is in this photo?", [img("green")])
    with pytest.raises(BrainError, match="text-only"):
        conv.to_messages(multimodal=False)


def test_undo_drops_the_last_exchange():
    conv = Conversation()
    conv.add_user("one")
    conv.add_assistant("1")
    conv.add_user("two")
    conv.add_assistant("2")
    conv.undo()
    assert [t.text for t in conv.turns] == ["one", "1"]


def test_attach_generated_needs_an_assistant_turn():
    conv = Conversation()
    conv.add_user("x")
    with pytest.raises(ValueError):
        conv.attach_generated([img("red")])


def test_profiles_from_config_file(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMGA_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty"))
    built_in = load_profile()  # no file: the miniature world, shipped with llmga
    assert (built_in.brain, built_in.painter, built_in.inpaint_painter, built_in.edit_painter) == (
        "gemma3-world", "world-stage2", "world-inpaint", None)  # edits run on the painter

    cfg = tmp_path / "llmga.toml"
    cfg.write_text(
        '[profiles.sd15]\nbrain = "/m/llava"\npainter = "/m/sd15"\nmax_prompt_tokens = 300\n'
        "[profiles.sd15.sampling]\ntemperature = 0.7\n[profiles.sd15.paint]\nsteps = 50\n"
    )
    prof = load_profile("sd15", cfg)
    assert (prof.brain, prof.painter, prof.max_prompt_tokens) == ("/m/llava", "/m/sd15", 300)
    assert prof.sampling.temperature == 0.7 and prof.paint.steps == 50
    monkeypatch.setenv("LLMGA_CONFIG", str(cfg))
    assert load_profile("sd15").painter == "/m/sd15"
    with pytest.raises(LLMGAError, match="no profile 'xl'.*sd15"):
        load_profile("xl")


@pytest.mark.parametrize(
    "body,message",
    [
        ('[profiles.p]\nbrian = "x"\n', "unknown key 'brian'"),
        ("[profiles.p.paint]\nsteps = 0\n", "bad \\[paint\\] table"),
        ("[profiles.p\n", "cannot read config file"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, body, message):
    cfg = tmp_path / "c.toml"
    cfg.write_text(body)
    with pytest.raises(LLMGAError, match=message):
        load_profile("p", cfg)
