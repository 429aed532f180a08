"""Asking a brain under serving conditions, and the one scorer of well-formed replies.

Every measurement of a brain asks as users do (our system prompt, the model's
chat template, greedy decoding unless sampling is asked for) through :func:`answers`, and calls a reply
well-formed by :func:`well_formed`: an image request gets exactly one
non-empty generation prompt (that ``valid`` accepts, where the measure has a
grammar), a plain question gets none and some text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from PIL import Image

from ..brain import Brain, BrainRequest, complete
from ..conversation import Conversation
from ..protocol import Reply, parse_reply
from ..settings import SamplingSettings
from .. import registry


def answers(brain: Brain, requests: Sequence[str], images: Sequence[Image.Image | None] | None = None,
            max_new_tokens: int = 96, batch_size: int = 16,
            histories: Sequence[Sequence[tuple[str, str]]] | None = None,
            temperature: float = 0.0, paint: Callable[[str], Image.Image] | None = None,
            scripts: Sequence[frozenset[str] | None] | None = None) -> list[str]:
    """The brain's replies to ``requests`` (each about its picture in ``images``, None for none),
    each after its earlier (user, assistant) turns in ``histories`` (a multimodal brain is shown the
    picture ``paint`` makes of the last prompt there, as the assistant shows it what it painted).

    Greedy by default: local text-only transformers brains then answer in
    left-padded batches, others one by one. With a ``temperature`` each request
    is sampled one by one, with its seed mixed with its conversation as the
    assistant samples it (:meth:`~llmga.settings.SamplingSettings.for_conversation`). Each reply is kept to
    its ``scripts`` where given (:attr:`~llmga.brain.base.BrainRequest.scripts`), and a world assistant's
    prompts to their form, as the assistant keeps them (:func:`llmga.registry.prompt_form`; asked
    one by one).
    """
    images = list(images) if images is not None else [None] * len(requests)
    histories = list(histories) if histories is not None else [()] * len(requests)
    conversations = [messages_for(brain, request, image, history, paint)
                     for request, image, history in zip(requests, images, histories, strict=True)]
    form = registry.prompt_form(Conversation.for_brain(brain).system_prompt)
    if temperature == 0 and scripts is None and form is None and hasattr(brain, "model") and not brain.multimodal:
        return _batched(brain, [messages for messages, _ in conversations], max_new_tokens, batch_size)
    settings = SamplingSettings(temperature=temperature, max_new_tokens=max_new_tokens)
    kept = list(scripts) if scripts is not None else [None] * len(requests)
    return [complete(brain, BrainRequest(messages, pictures, settings.for_conversation(messages), scripts=allowed,
                                         prompt_form=form))
            for (messages, pictures), allowed in zip(conversations, kept, strict=True)]


def messages_for(brain: Brain, request: str, image: Image.Image | None = None,
                 history: Sequence[tuple[str, str]] = (),
                 paint: Callable[[str], Image.Image] | None = None) -> tuple[list, list]:
    """The messages (and pictures) the brain is sent for ``request`` after the (user, assistant) turns of
    ``history``, as the assistant sends them: with ``paint``, each reply's prompts are painted and attached
    to it, so that a multimodal brain sees the latest picture (:meth:`Conversation.to_messages`)."""
    conversation = Conversation.for_brain(brain)
    for asked, answered in history:
        conversation.add_user(asked)
        conversation.add_assistant(answered)
        prompts = parse_reply(answered).prompts if paint is not None and brain.multimodal else []
        if prompts:
            conversation.attach_generated([paint(prompt) for prompt in prompts], prompts)
    conversation.add_user(request, [image] if image is not None else None)
    return conversation.to_messages(brain.multimodal)


def _batched(brain: Brain, conversations: list, max_new_tokens: int, batch_size: int) -> list[str]:
    import torch

    tokenizer, model = brain.tokenizer, brain.model
    tokenizer.padding_side = "left"
    texts = [tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in conversations]
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True,
                          add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            generated = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                       pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        out.extend(tokenizer.batch_decode(generated[:, batch["input_ids"].shape[1] :], skip_special_tokens=False))
    return out


def well_formed(reply: Reply, wants_prompt: bool, valid: Callable[[str], bool] | None = None) -> bool:
    """Whether ``reply`` has the form asked for: one valid prompt for an image request, else none and some text."""
    if reply.empty_prompts:
        return False
    if not wants_prompt:
        return not reply.prompts and bool(reply.text.strip())
    return len(reply.prompts) == 1 and (valid is None or valid(reply.prompts[0]))


def share(flags: Iterable[bool]) -> float:
    """The share of true ``flags`` (0 for none)."""
    flags = list(flags)
    return sum(flags) / max(1, len(flags))
