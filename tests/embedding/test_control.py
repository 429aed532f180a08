"""Embedding control end to end on the tiny stacks: the brain's [IMG] groups become the painter's prompt
embeddings; the model saves and loads; a painter of another width is refused; SDXL gets a pooled embedding."""

import pytest
import torch

from llmga.assistant import Assistant
from llmga.brain.base import BrainRequest, complete
from llmga.conversation import Conversation
from llmga.embedding.control import load_embedding_control
from llmga.embedding.embedding_brain import ImageTokenRules, load_control_brain
from llmga.embedding.embedding_painter import EmbeddingPainter
from llmga.embedding.heads import ControlHeads, read_config
from llmga.errors import InvalidInputError, ModelNotFoundError
from llmga.painter.suite import PainterSuite
from llmga.painter.text_to_image import TextToImagePainter
from llmga.protocol import OPEN_TAG, tag_prompt
from llmga.settings import PaintSettings, SamplingSettings

GREEDY = SamplingSettings(temperature=0, max_new_tokens=24)
FAST = PaintSettings(steps=2, width=64, height=64, seed=3)


def ask(brain, text, prefill=OPEN_TAG):
    conversation = Conversation()
    conversation.add_user(text)
    messages, _ = conversation.to_messages(False)
    return complete(brain, BrainRequest(messages, [], GREEDY, prefill=prefill))


def test_the_model_folder_holds_its_config_heads_and_adapter_and_loads_the_same_twice(control_model, tiny):
    config = read_config(control_model)
    assert (config.width, config.pooled, config.tokens, config.style, config.lora) == (32, None, 8, "tagged", True)
    assert config.retrieval_dim == 128 and config.painter == str(tiny.sd("sd15"))
    first, second = load_control_brain(control_model), load_control_brain(control_model)
    rows = first.model.get_input_embeddings().weight[first.ids]
    assert torch.equal(rows, second.model.get_input_embeddings().weight[second.ids])  # trained rows, not random ones
    for (name, a), b in zip(ControlHeads.load(control_model).state_dict().items(), first.heads.state_dict().values()):
        assert torch.equal(a, b), name


def test_the_painter_paints_from_the_mapped_embeddings(control_model, tiny):
    brain, painters = load_embedding_control(control_model, PainterSuite.load(tiny.sd("sd15")))
    raw = ask(brain, "Generate an image: a red star")
    assert raw.startswith(tag_prompt(brain.config.group))
    wanted = brain.images[0]
    painting = painters.text_to_image.paint(brain.config.group, FAST)
    pipeline = painters.text_to_image.pipeline
    negative = painters.text_to_image.encoder.encode("").negative_prompt_embeds
    direct = pipeline(prompt_embeds=wanted.prompt_embeds, negative_prompt_embeds=negative, num_inference_steps=2,
                      width=64, height=64, guidance_scale=FAST.guidance,
                      generator=torch.Generator().manual_seed(3)).images[0]
    assert painting.images[0].tobytes() == direct.tobytes()
    assert not brain.images  # taken by the painter
    assert painters.notices == ["painted from the [IMG] embeddings"]


def test_the_assistant_loop_runs_unchanged_and_other_tasks_are_refused(control_model, tiny):
    brain, painters = load_embedding_control(control_model, PainterSuite.load(tiny.sd("sd15")))
    assistant = Assistant(brain, painters, sampling=GREEDY, paint=FAST)
    result = assistant.generate("a red star")
    assert result.reply.prompts == [brain.config.group] and len(result.paintings) == 1
    assert "painted from the [IMG] embeddings" in result.notices
    edit = assistant.chat("make it night")
    assert not edit.paintings
    if edit.reply.prompts:
        assert any("instruction editing needs a language prompt" in e for e in edit.errors)
    with pytest.raises(InvalidInputError, match="needs a language prompt"):
        painters.inpaint


def test_a_mapper_built_for_another_painters_width_is_refused_by_name(control_model, tiny):
    brain = load_control_brain(control_model)
    sdxl = TextToImagePainter.load(tiny.sd("sdxl"), device="cpu")
    with pytest.raises(InvalidInputError) as refused:
        EmbeddingPainter(sdxl, brain)
    message = str(refused.value)
    assert str(control_model) in message and str(tiny.sd("sdxl")) in message
    assert "32-wide prompt embeddings" in message and "80-wide prompt embeddings and a 32-wide pooled" in message


def test_sdxl_gets_both_encoders_width_and_a_pooled_embedding_and_bare_replies_are_tagged_for_the_protocol(
        bare_model, tiny):
    config = read_config(bare_model)
    assert (config.width, config.pooled, config.style, config.lora) == (80, 32, "bare", False)
    brain, painters = load_embedding_control(bare_model, PainterSuite.load(tiny.sd("sdxl")))
    assistant = Assistant(brain, painters, sampling=GREEDY, paint=FAST)
    result = assistant.generate("a blue circle")
    assert result.reply.prompts == [brain.config.group] and result.paintings[0].images[0].size == (64, 64)
    history, _ = assistant.conversation.to_messages(False)
    assert tag_prompt(brain.config.group) in history[-1]["content"]  # what the protocol saw
    trained_view = brain._as_trained(history)
    assert trained_view[-1]["content"].startswith(brain.config.group)  # what the bare model is shown next turn


def test_img_tokens_follow_gills_rules():
    ids = [10, 11, 12]
    rules = ImageTokenRules(ids + [20], prompt_length=2, start_with_image=False, frequency=0.0, tokens=3)
    scores = torch.zeros(1, 30)
    free = rules(torch.tensor([[1, 2, 5]]), scores)
    assert free[0, 10] == -torch.inf and free[0, 11] == -torch.inf and free[0, 5] == 0  # frequency 0: no image
    assert rules(torch.tensor([[1, 2, 10]]), scores)[0].argmax() == 11  # after [IMG1] the group is forced
    assert rules(torch.tensor([[1, 2, 10, 11, 12]]), scores)[0].argmax() == 20  # then the closing tag
    assert rules(torch.tensor([[1, 2, 10, 11, 12, 20]]), scores)[0, 10] == -torch.inf  # then free again
    opening = ImageTokenRules(ids, prompt_length=2, start_with_image=True, frequency=1.0, tokens=3)
    assert opening(torch.tensor([[1, 2]]), scores)[0].argmax() == 10
    often = ImageTokenRules(ids, prompt_length=2, start_with_image=False, frequency=4.0, tokens=3)
    assert torch.isclose(often(torch.tensor([[1, 2, 5]]), scores)[0, 10], torch.log(torch.tensor(4.0)))


def test_a_folder_that_is_no_control_model_is_named(tmp_path):
    with pytest.raises(ModelNotFoundError, match="is not an embedding-control model.*llmga train gill"):
        load_control_brain(tmp_path)


def test_an_opened_tag_in_a_tagged_reply_is_followed_by_the_group():
    ids = [10, 11]
    rules = ImageTokenRules(ids + [20], prompt_length=1, start_with_image=False, frequency=1.0, tokens=2,
                            opened=lambda new: new[-1] == 5)  # token 5 stands for an opened tag
    scores = torch.zeros(1, 30)
    assert rules(torch.tensor([[1, 5]]), scores)[0].argmax() == 10
    assert rules(torch.tensor([[1, 5, 10]]), scores)[0].argmax() == 11
    assert rules(torch.tensor([[1, 4]]), scores)[0, 4] == 0  # elsewhere the model writes freely


def test_group_states_read_on_generations_cache_match_a_pass_over_the_whole_reply(control_model):
    brain = load_control_brain(control_model)
    conversation = Conversation()
    conversation.add_user("Generate an image: a red star")
    inputs = brain.inner._inputs(conversation.to_messages(False)[0], [], "Here you are. ")
    words = brain.tokenizer(" and another", add_special_tokens=False, return_tensors="pt").input_ids
    group = torch.tensor([brain.ids])
    full = torch.cat([inputs["input_ids"], group, words, group, words], dim=1)
    starts = [inputs["input_ids"].shape[1], inputs["input_ids"].shape[1] + len(brain.ids) + words.shape[1]]
    with torch.inference_mode():
        cache = brain.model(input_ids=full[:, :-1], use_cache=True).past_key_values  # what generation leaves
        cached, cached_embedded = brain.states(inputs, full, starts, cache)
        whole, whole_embedded = brain.states(inputs, full, starts)
    assert cache.get_seq_length() == full.shape[1]  # cut back to the first group, then the rest run on it
    assert cached.shape == (2, len(brain.ids), whole.shape[-1])
    torch.testing.assert_close(cached, whole, atol=1e-4, rtol=1e-4)
    assert torch.equal(cached_embedded, whole_embedded)
