"""Every painting task through the assistant loop: routing, what the brain sees, what gets painted."""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from llmga.assistant import Assistant
from llmga.retry import RETRIES, RETRY_TEMPERATURE
from llmga.cli import app
from llmga.errors import BrainFailedError, ModelNotFoundError
from llmga.painter.controlnet import ControlNetPainter
from llmga.painter.inpaint import InpaintPainter
from llmga.painter.suite import PainterSuite
from llmga.painter.text_to_image import TextToImagePainter
from llmga.routing import Task
from llmga.settings import PaintSettings
from llmga.tasks import Outpaint, TurnRequest
from llmga.testing import build_tiny_sd
from llmga.testing.doubles import ScriptedBrain

FAST = PaintSettings(steps=2, width=64, height=64, seed=3)


def TextOnly(*replies):  # noqa: N802 (a brain class's stand-in)
    return ScriptedBrain(*replies, multimodal=False)


@pytest.fixture(scope="module")
def dirs(tiny):
    return {"sd": tiny.sd(), "inpaint": tiny.sd("sd15-inpaint"), "control": tiny.controlnet()}


@pytest.fixture(scope="module")
def suite(dirs):
    t2i = TextToImagePainter.load(dirs["sd"], device="cpu")
    return PainterSuite(text_to_image=t2i, inpaint_model=InpaintPainter.load(dirs["inpaint"], device="cpu"),
                        controlnet_model=ControlNetPainter.load(dirs["sd"], dirs["control"], device="cpu"))


def photo(size=(64, 64)):
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def square_mask(size=(64, 64)):
    mask = Image.new("L", size, 0)
    mask.paste(255, (20, 20, 44, 44))
    return mask


def test_inpainting_shows_the_brain_the_masked_image_and_keeps_the_rest(suite):
    brain = ScriptedBrain("<gen_img>a garden with a stone fountain in the middle</gen_img>")
    picture = photo()
    result = Assistant(brain, suite, paint=FAST).chat("put a fountain here", [picture],
                                                      request=TurnRequest(mask=square_mask()))
    assert result.route.task is Task.INPAINT
    seen = brain.requests[0].images[0]
    assert seen.getpixel((32, 32)) == (128, 128, 128) and seen.getpixel((2, 2)) == picture.getpixel((2, 2))
    out = np.asarray(result.paintings[0].images[0])
    assert out.shape == (64, 64, 3)
    far = np.ones((64, 64), bool)
    far[4:60, 4:60] = False  # pixels beyond the blend band stay as they were
    assert (out[far] == np.asarray(picture)[far]).all()


def test_a_mask_alone_inpaints_the_last_image(suite):
    brain = ScriptedBrain("<gen_img>a red fox</gen_img>", "<gen_img>a red fox wearing a hat</gen_img>")
    assistant = Assistant(brain, suite, paint=FAST)
    first = assistant.chat("draw a fox")
    second = assistant.chat("give it a hat", request=TurnRequest(mask=square_mask()))
    assert second.route.task is Task.INPAINT and second.route.uses_last_image
    before, after = np.asarray(first.paintings[0].images[0]), np.asarray(second.paintings[0].images[0])
    assert (before[:2] == after[:2]).all() and not (before[28:36, 28:36] == after[28:36, 28:36]).all()


def test_outpainting_makes_the_larger_image(suite):
    brain = ScriptedBrain("<gen_img>a wide beach at sunset</gen_img>")
    picture = photo()
    result = Assistant(brain, suite, paint=FAST).chat("extend it", [picture],
                                                      request=TurnRequest(outpaint=Outpaint(right=32, top=16)))
    out = result.paintings[0].images[0]
    assert result.route.task is Task.OUTPAINT and out.size == (96, 80)
    # the original sits at (0, 16); beyond the blend band along its new edges it is unchanged
    assert np.array_equal(np.asarray(out)[40:80, 0:40], np.asarray(picture)[24:64, :40])


def test_controlnet_follows_the_control_map(suite):
    brain = ScriptedBrain("<gen_img>a castle at dusk</gen_img>", "<gen_img>a castle at dusk</gen_img>")
    assistant = Assistant(brain, suite, paint=FAST)
    edges = Image.new("RGB", (64, 64))
    edges.paste((255, 255, 255), (10, 10, 54, 12))
    a = assistant.chat("a castle", request=TurnRequest(control=edges))
    b = assistant.chat("a castle", request=TurnRequest(control=Image.new("RGB", (64, 64))))
    assert a.route.task is Task.CONTROLNET
    assert a.paintings[0].images[0].tobytes() != b.paintings[0].images[0].tobytes()


def test_similar_image_paints_the_description(suite):
    brain = ScriptedBrain("Here is one like it. <gen_img>a bowl of oranges on a blue table</gen_img>")
    result = Assistant(brain, suite, paint=FAST).chat("draw something like this", [photo()])
    assert result.route.task is Task.SIMILAR and result.paintings[0].prompt == "a bowl of oranges on a blue table"


def test_growing_asks_the_brain_for_each_local_caption(suite):
    brain = ScriptedBrain("<gen_img>a long mountain range under stars</gen_img>",
                          *[f"snowy peaks, part {i}</gen_img>" for i in range(1, 9)])
    steps = []
    result = Assistant(brain, suite, paint=FAST).chat(
        "a panorama of mountains", request=TurnRequest(task="expand", expand_to=(160, 64)),
        progress=lambda i, n: steps.append((i, n)))
    assert result.route.task is Task.EXPAND and result.paintings[0].images[0].size == (160, 64)
    local = brain.requests[1:]
    assert local and all(request.prefill == "<gen_img>" for request in local)
    assert "a long mountain range under stars" in local[0].messages[-1]["content"][-1]["text"]
    assert steps and steps[-1][0] == steps[-1][1]


def test_text_only_brain_paints_from_words_and_says_so(suite):
    brain = TextOnly("<gen_img>a garden with a fountain</gen_img>")
    result = Assistant(brain, suite, paint=FAST).chat("put a fountain here", [photo()],
                                                      request=TurnRequest(mask=square_mask()))
    assert list(brain.requests[0].images) == [] and result.paintings
    assert any("text-only" in n for n in result.notices)


def test_editing_an_upload_with_a_text_only_brain_needs_its_description(suite):
    brain = TextOnly("<gen_img>a dog on a sofa</gen_img>")
    result = Assistant(brain, suite, paint=FAST).chat("replace the cat with a dog", [photo()])
    assert result.route.task is Task.EDIT and not result.paintings
    assert "needs its description" in result.errors[0]


def test_fallback_inpainting_says_so(dirs):
    suite = PainterSuite(text_to_image=TextToImagePainter.load(dirs["sd"], device="cpu"))
    result = Assistant(ScriptedBrain("<gen_img>a fountain</gen_img>"), suite, paint=FAST).chat(
        "put a fountain here", [photo()], request=TurnRequest(mask=square_mask()))
    assert result.paintings and any("no inpainting model" in n for n in result.notices)


def test_missing_controlnet_is_a_clear_error_in_the_turn(dirs):
    suite = PainterSuite(text_to_image=TextToImagePainter.load(dirs["sd"], device="cpu"))
    result = Assistant(ScriptedBrain("<gen_img>x</gen_img>"), suite, paint=FAST).chat(
        "x", request=TurnRequest(control=Image.new("RGB", (64, 64))))
    assert "--controlnet" in result.errors[0]


def test_one_shot_commands(dirs, tmp_path):
    picture, mask = tmp_path / "p.png", tmp_path / "m.png"
    photo().save(picture)
    square_mask().save(mask)
    common = ["--painter", str(dirs["sd"]), "--out", str(tmp_path / "out"), "--steps", "2", "--no-refine"]
    runner = CliRunner()
    runs = {
        "inpaint": ["inpaint", str(picture), str(mask), "a fountain", "--inpaint-painter", str(dirs["inpaint"])],
        "outpaint": ["outpaint", str(picture), "a beach", "--left", "16"],
        "expand": ["expand", "mountains", "--size", "128x64", "--width", "64", "--height", "64"],
        "controlnet": ["controlnet", str(picture), "a castle", "--from-photo", "--controlnet", str(dirs["control"]),
                       "--width", "64", "--height", "64"],
    }
    sizes = {"inpaint": (64, 64), "outpaint": (80, 64), "expand": (128, 64), "controlnet": (64, 64)}
    for name, args in runs.items():
        result = runner.invoke(app, [*args, *common])
        assert result.exit_code == 0, (name, result.output, result.exception)
        assert f"task: {name}" in result.output
        saved = [line.split(": ", 1)[1] for line in result.output.splitlines() if line.startswith("image saved: ")]
        assert saved, (name, result.output)
        assert Image.open(saved[0]).size == sizes[name], name


def spy_edits(suite, monkeypatch) -> list:
    """Record each edit's (image, source prompt, target prompt) while it still runs."""
    calls = []
    original = type(suite.edit).edit

    def spy(self, image, source, target, *rest):
        calls.append((image, source, target))
        return original(self, image, source, target, *rest)

    monkeypatch.setattr(type(suite.edit), "edit", spy)
    return calls


def test_follow_up_edits_the_last_image_from_its_own_prompt(suite, monkeypatch):
    brain = ScriptedBrain("<gen_img>a red fox in the snow</gen_img>", "<gen_img>a red fox in the snow at night</gen_img>")
    assistant = Assistant(brain, suite, paint=FAST)
    first = assistant.chat("draw a fox")
    calls = spy_edits(suite, monkeypatch)
    second = assistant.chat("make it night")
    assert second.route.task is Task.EDIT and second.route.uses_last_image
    assert calls == [(first.paintings[0].images[0], "a red fox in the snow", "a red fox in the snow at night")]
    assert second.paintings[0].images[0].size == (64, 64)
    assert assistant.conversation.last_image is second.paintings[0].images[0]


def test_an_unchanged_edit_is_asked_again_hotter_and_the_first_change_is_kept(suite):
    same = '<gen_img task="edit">a red circle on snow</gen_img>'
    brain = ScriptedBrain("<gen_img>a red circle on snow</gen_img>", same, same,
                          '<gen_img task="generate">a blue star on snow</gen_img>', 'Done. <gen_img task="edit">an empty '
                          'scene on snow</gen_img>', '<gen_img task="edit">a red circle on sand</gen_img>')
    assistant = Assistant(brain, suite, paint=FAST)
    assistant.chat("draw a red circle on snow")
    prompts = []
    removed = assistant.chat("不要圆了", on_prompt=prompts.append)
    assert removed.route.task is Task.EDIT and removed.reply.prompts == prompts == ["an empty scene on snow"]
    assert any("try 3 wrote: Done." in notice for notice in removed.notices)  # try 2 named another task
    retries = brain.requests[2:]
    assert len(retries) == 3 and {r.settings.temperature for r in retries} == {RETRY_TEMPERATURE}
    assert len({r.settings.seed for r in retries}) == 3
    assert assistant.conversation.turns[-1].text.startswith("Done.") and len(assistant.conversation.turns) == 4


def test_an_edit_asked_again_never_brings_back_an_earlier_picture(suite):
    square, empty = "a large orange square on water", "an empty scene on water"
    brain = ScriptedBrain(f"<gen_img>{square}</gen_img>", f'<gen_img task="edit">{empty}</gen_img>',
                          f'<gen_img task="edit">{empty}</gen_img>', f'<gen_img task="edit">{square}</gen_img>')
    assistant = Assistant(brain, suite, paint=FAST)
    assistant.chat("draw an orange square on water")
    assistant.chat("lose the square")
    again = assistant.chat("不要方块了")  # nothing left to remove: the square must not come back
    assert again.reply.prompts == [empty] and any("comes back unchanged" in notice for notice in again.notices)


def test_an_edit_still_unchanged_after_every_retry_says_nothing_changes(suite):
    brain = ScriptedBrain("<gen_img>a red circle on snow</gen_img>", '<gen_img task="edit">a red circle on snow</gen_img>')
    assistant = Assistant(brain, suite, paint=FAST)
    assistant.chat("draw a red circle on snow")
    same = assistant.chat("不要方块了")
    assert same.route.task is Task.EDIT and any("comes back unchanged" in notice for notice in same.notices)
    assert len(brain.requests) == 2 + RETRIES


def test_an_edit_asked_again_keeps_the_first_reply_when_the_brain_fails(suite):
    brain = ScriptedBrain("<gen_img>a red circle on snow</gen_img>", '<gen_img task="edit">a red circle on snow</gen_img>',
                          fail=BrainFailedError("the server went away"), fail_after=2)
    assistant = Assistant(brain, suite, paint=FAST)
    assistant.chat("draw a red circle on snow")
    same = assistant.chat("lose the circle")
    assert any("the server went away" in notice for notice in same.notices) and same.paintings
    assert [turn.role for turn in assistant.conversation.turns] == ["user", "assistant"] * 2


def test_editing_an_upload_asks_a_multimodal_brain_to_describe_it_first(suite):
    brain = ScriptedBrain("<gen_img>a dog on a sofa</gen_img>", "A cat sitting on a sofa.")
    picture = photo()
    result = Assistant(brain, suite, paint=FAST).chat("replace the cat with a dog", [picture])
    assert result.route.task is Task.EDIT and result.paintings
    describe_messages, describe_images = brain.requests[1].messages, list(brain.requests[1].images)
    assert describe_images == [picture] and "Describe this image" in describe_messages[-1]["content"][-1]["text"]
    assert result.paintings[0].metadata()["source_prompt"] == "A cat sitting on a sofa."


def test_a_text_only_brain_editing_an_upload_is_told_its_description_as_a_picture_it_painted(suite):
    brain = ScriptedBrain('<gen_img task="edit">a green star and a blue circle</gen_img>', multimodal=False)
    request = TurnRequest(image=photo(), task="edit", source_prompt="a red star and a blue circle")
    result = Assistant(brain, suite, paint=FAST).chat("make the star green", request=request)
    messages = brain.requests[0].messages
    assert [m["role"] for m in messages[-3:]] == ["user", "assistant", "user"]
    assert messages[-2]["content"] == '<gen_img task="generate">a red star and a blue circle</gen_img>'
    assert messages[-1]["content"] == "make the star green"
    assert result.route.task is Task.EDIT
    assert result.paintings[0].metadata()["source_prompt"] == "a red star and a blue circle"


def test_edit_command_with_a_given_source_description(dirs, tmp_path):
    picture = tmp_path / "p.png"
    photo((70, 45)).save(picture)
    result = CliRunner().invoke(app, ["edit", str(picture), "a dog on a sofa", "--source-prompt", "a cat on a sofa",
                                      "--painter", str(dirs["sd"]), "--out", str(tmp_path), "--steps", "2",
                                      "--no-refine"])
    assert result.exit_code == 0, result.output
    saved = [line.split(": ", 1)[1] for line in result.output.splitlines() if line.startswith("image saved: ")]
    assert Image.open(saved[0]).size == (70, 45)


def test_an_edit_painter_runs_the_edits_on_its_own_checkpoint(dirs, tmp_path):
    edit_dir = build_tiny_sd(tmp_path / "sd-edit")
    with pytest.raises(ModelNotFoundError, match="no-such-edit-model"):
        PainterSuite.load(dirs["sd"], edit=tmp_path / "no-such-edit-model")
    suite = PainterSuite.load(dirs["sd"], edit=edit_dir)
    assert f"{edit_dir} (editing, loads on first edit)" in suite.describe()
    brain = ScriptedBrain("<gen_img>a dog on a sofa</gen_img>", "A cat sitting on a sofa.")
    result = Assistant(brain, suite, paint=FAST).chat("replace the cat with a dog", [photo()])
    assert result.route.task is Task.EDIT and result.paintings
    assert suite.edit.name == str(edit_dir) and suite.edit.pipeline is not suite.text_to_image.pipeline


def test_an_inpainting_model_is_checked_at_once_and_loaded_on_first_inpainting(dirs, tmp_path):
    with pytest.raises(ModelNotFoundError, match="no-such-inpaint-model"):
        PainterSuite.load(dirs["sd"], inpaint=tmp_path / "no-such-inpaint-model")
    suite = PainterSuite.load(dirs["sd"], inpaint=dirs["inpaint"])
    assert suite.inpaint_model is None and "(inpainting, loads on first inpainting)" in suite.describe()
    brain = ScriptedBrain("<gen_img>a dog on a sofa</gen_img>")
    result = Assistant(brain, suite, paint=FAST).chat("fill the hole", [photo()], request=TurnRequest(mask=square_mask()))
    assert result.route.task is Task.INPAINT and result.paintings
    assert suite.inpaint.name == str(dirs["inpaint"]) and not suite.notices


def test_the_assistant_can_name_the_task_the_rules_miss(suite, monkeypatch):
    brain = ScriptedBrain("<gen_img>a small blue square</gen_img>", '<gen_img task="edit">a small red square</gen_img>')
    assistant = Assistant(brain, suite, paint=FAST)
    first = assistant.chat("draw a small blue square")
    calls = spy_edits(suite, monkeypatch)
    second = assistant.chat("could the square be red instead?")
    assert second.route.task is Task.EDIT and second.route.reason == "the assistant chose it"
    assert calls == [(first.paintings[0].images[0], "a small blue square", "a small red square")]


def test_a_stated_task_the_turn_cannot_do_falls_back_with_a_notice(suite):
    brain = ScriptedBrain('<gen_img task="edit">a small red square</gen_img>')
    result = Assistant(brain, suite, paint=FAST).chat("a small red square please")
    assert result.route.task is Task.GENERATE and result.paintings
    assert any("chose the task 'edit'" in notice for notice in result.notices)


def test_the_users_task_wins_over_the_stated_one(suite):
    brain = ScriptedBrain("<gen_img>a blue square</gen_img>", '<gen_img task="edit">a red square</gen_img>')
    assistant = Assistant(brain, suite, paint=FAST)
    assistant.chat("draw a blue square")
    second = assistant.chat("a red square", request=TurnRequest(task="generate"))
    assert second.route.task is Task.GENERATE and second.route.reason == "chosen by the user"


def test_a_brain_that_keeps_to_scripts_is_kept_to_the_messages_from_its_first_reply(suite):
    brain = ScriptedBrain(lambda request: "Sorry, a cat is beyond me." if request.scripts else "I can'אים a cat.")
    brain.keeps_scripts = True
    answered = Assistant(brain, suite, paint=FAST).chat("could you draw a cat on a sofa?")
    assert answered.reply.text == "Sorry, a cat is beyond me." and not answered.notices
    assert [r.scripts for r in brain.requests] == [frozenset({"LATIN"})]


def test_a_letter_that_slips_past_the_mask_is_asked_again_hotter_and_the_clean_reply_kept(suite):
    brain = ScriptedBrain("I can'אים a cat on grass at night.", "I can'想！",
                          "Sorry, a cat is beyond me; I could draw a blue circle instead.")
    brain.keeps_scripts = True
    assistant = Assistant(brain, suite, paint=FAST)
    answered = assistant.chat("could you draw a cat on a sofa?")
    assert answered.reply.text.startswith("Sorry, a cat is beyond me") and not answered.reply.prompts
    assert any("a script your message does not use; asked again, try 2 wrote: Sorry" in notice for notice in answered.notices)
    assert {r.scripts for r in brain.requests} == {frozenset({"LATIN"})}
    assert [r.settings.temperature for r in brain.requests[1:]] == [RETRY_TEMPERATURE] * 2
    assert assistant.conversation.turns[-1].text.startswith("Sorry")


def test_a_brain_that_cannot_keep_to_scripts_is_asked_again_hotter_only(suite):
    brain = ScriptedBrain("I can'אים a cat on grass at night.", "Sorry, a cat is beyond me.")
    Assistant(brain, suite, paint=FAST).chat("could you draw a cat on a sofa?")
    assert [r.scripts for r in brain.requests] == [None, None]
    assert brain.requests[1].settings.temperature == RETRY_TEMPERATURE


def test_after_chinese_turns_an_english_message_streams_no_chinese_letters(suite):
    def reply(request):
        if request.scripts is not None and "CJK" not in request.scripts:
            return 'Done. <gen_img task="edit">a small red circle at the top left, on snow</gen_img>'
        return "好的，这是你要的图片。 <gen_img>a small red circle at the top left</gen_img>"

    brain = ScriptedBrain(reply)
    brain.keeps_scripts = True
    assistant = Assistant(brain, suite, paint=FAST)
    assistant.chat("画一个很小的红色圆形，在左上角")
    shown = []
    answered = assistant.chat("could it be on snow?", on_text=shown.append)
    assert "".join(shown).strip() == "Done." and not answered.notices
    assert answered.reply.prompts == ["a small red circle at the top left, on snow"]
    assert [r.scripts for r in brain.requests] == [frozenset({"LATIN", "CJK"}), frozenset({"LATIN"})]


def test_a_brain_that_cannot_mask_is_asked_again_after_a_reply_in_the_language_of_earlier_turns(suite):
    brain = ScriptedBrain("好的，这是你要的图片。 <gen_img>a small red circle at the top left</gen_img>",
                          '好的，已经改好了。 <gen_img task="edit">a small red circle at the top left, on snow</gen_img>',
                          'Done. <gen_img task="edit">a small red circle at the top left, on snow</gen_img>')
    assistant = Assistant(brain, suite, paint=FAST)
    assistant.chat("画一个很小的红色圆形，在左上角")
    answered = assistant.chat("could it be on snow?")
    assert answered.reply.text == "Done." and answered.reply.prompts == ["a small red circle at the top left, on snow"]
    assert [r.scripts for r in brain.requests] == [None, None, None]
    assert any("a script your message does not use; asked again" in notice for notice in answered.notices)


def test_a_reply_in_the_script_the_user_wrote_is_not_asked_again(suite):
    brain = ScriptedBrain("好的，这是你要的图片。 <gen_img>a small red circle at the top left</gen_img>")
    assistant = Assistant(brain, suite, paint=FAST)
    answered = assistant.chat("画一个很小的红色圆形，在左上角")
    assert len(brain.requests) == 1 and answered.reply.prompts and not answered.notices


def test_a_world_assistants_prompts_are_kept_to_the_caption_form_and_no_other_brains(suite):
    from llmga.world.assistants import SYSTEM_PROMPT
    from llmga.world.captions import CAPTION_FORM

    world = ScriptedBrain("Sure. <gen_img>a small red star at the top left, on sand under a night sky</gen_img>")
    world.system_prompt = SYSTEM_PROMPT
    Assistant(world, suite, paint=FAST).chat("draw a small red star at the top left")
    other = ScriptedBrain("Sure. <gen_img>a red star</gen_img>")
    Assistant(other, suite, paint=FAST).chat("draw a red star")
    assert [r.prompt_form for r in world.requests] == [CAPTION_FORM] and other.requests[0].prompt_form is None
