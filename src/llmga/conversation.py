"""A multi-turn conversation with images attached to turns.

The conversation turns itself into chat messages in the Hugging Face format
(``{"role": ..., "content": ...}``); the brain's tokenizer or processor applies
its own ``chat_template`` to them. Images the assistant generated are attached
to the assistant's turn, so a follow-up ("make it night") can refer to the last
image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from .errors import BrainError, InvalidInputError

Message = dict[str, Any]

SYSTEM_PROMPT = (
    "You are LLMGA, an assistant for generating and editing images. "
    "When the user asks for an image to be generated, drawn, painted, edited, "
    "inpainted, outpainted or extended, answer with one short sentence and then "
    "a detailed generation prompt for Stable Diffusion between <gen_img> and "
    "</gen_img>. The prompt describes the whole picture: every subject the user "
    "asked for with its attributes kept exactly, plus setting, lighting, "
    "composition and style. Write one tagged prompt per image; for a story, "
    "write one per scene. When the user asks to change the last image, write the "
    "prompt for the changed image. The opening tag may name its task: "
    "<gen_img task=\"generate\"> for a new image, task=\"edit\" to change the last "
    "image, task=\"similar\" for another like it. When the user only asks a question "
    "or chats, answer in plain text without tags. Answer in the user's language."
)


@dataclass
class Turn:
    """One message of the conversation.

    ``images`` are the images attached to it: uploaded by the user, or painted
    for the assistant's generation prompts.
    """

    role: str
    text: str
    images: list[Image.Image] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)


@dataclass
class Conversation:
    """The turns so far, plus the system prompt that tells the assistant how to answer."""

    system_prompt: str = SYSTEM_PROMPT
    turns: list[Turn] = field(default_factory=list)
    #: the prompt each generated image was painted from, by image identity
    image_prompts: dict[int, str] = field(default_factory=dict)

    @classmethod
    def for_brain(cls, brain: object | None) -> Conversation:
        """A new conversation with the system prompt ``brain`` was trained with (its ``system_prompt``), else ours."""
        return cls(getattr(brain, "system_prompt", None) or SYSTEM_PROMPT)

    def add_user(self, text: str, images: list[Image.Image] | None = None) -> Turn:
        """Append the user's turn."""
        turn = Turn("user", text, list(images or []))
        self.turns.append(turn)
        return turn

    def add_assistant(self, text: str, prompts: list[str] | None = None) -> Turn:
        """Append the assistant's raw reply (tags kept, so the model sees its own prompts)."""
        turn = Turn("assistant", text, prompts=list(prompts or []))
        self.turns.append(turn)
        return turn

    def attach_generated(self, images: list[Image.Image], prompts: list[str] | None = None) -> None:
        """Attach images painted for the last assistant turn, with the prompt of each if known."""
        if not self.turns or self.turns[-1].role != "assistant":
            raise ValueError("generated images belong to an assistant turn; add one first")
        self.turns[-1].images.extend(images)
        for image, prompt in zip(images, prompts or []):
            self.image_prompts[id(image)] = prompt

    def prompt_of(self, image: Image.Image | None) -> str | None:
        """The prompt a generated image of this conversation was painted from (None for uploads)."""
        return self.image_prompts.get(id(image)) if image is not None else None

    @property
    def last_image(self) -> Image.Image | None:
        """The most recent image in the conversation, uploaded or generated."""
        for turn in reversed(self.turns):
            if turn.images:
                return turn.images[-1]
        return None

    @property
    def last_prompt(self) -> str | None:
        """The most recent generation prompt the assistant wrote."""
        for turn in reversed(self.turns):
            if turn.prompts:
                return turn.prompts[-1]
        return None

    def undo(self) -> None:
        """Drop the last exchange (the last user turn and everything after it)."""
        for i in range(len(self.turns) - 1, -1, -1):
            if self.turns[i].role == "user":
                for turn in self.turns[i:]:
                    for image in turn.images:
                        self.image_prompts.pop(id(image), None)
                del self.turns[i:]
                return

    def to_messages(
        self, multimodal: bool, max_images: int = 1
    ) -> tuple[list[Message], list[Image.Image]]:
        """Chat messages for a brain, and the images they refer to, in order.

        A multimodal brain sees the ``max_images`` most recent images as image
        placeholders in the turns they belong to. A text-only brain sees text
        only; an image the user attached to a turn is an error for it (it cannot
        read it), while generated images are already described by the
        assistant's prompt in the text.
        """
        if not multimodal:
            for turn in self.turns:
                if turn.role == "user" and turn.images:
                    raise BrainError(
                        "this brain is a text-only language model and cannot read images; "
                        "use a multimodal (LLaVA-format) brain to attach images"
                    )
        shown = self._shown_images(max_images if multimodal else 0)
        messages: list[Message] = []
        if self.system_prompt:
            messages.append(self._message("system", self.system_prompt, 0, multimodal))
        images: list[Image.Image] = []
        for turn in self.turns:
            turn_images = [im for im in turn.images if id(im) in shown]
            images.extend(turn_images)
            messages.append(self._message(turn.role, turn.text, len(turn_images), multimodal))
        return messages, images

    def _shown_images(self, limit: int) -> set[int]:
        ids = [id(im) for turn in self.turns for im in turn.images]
        return set(ids[len(ids) - limit :]) if limit > 0 else set()

    @staticmethod
    def _message(role: str, text: str, n_images: int, multimodal: bool) -> Message:
        if not multimodal:
            return {"role": role, "content": text}
        content: list[dict[str, str]] = [{"type": "image"} for _ in range(n_images)]
        content.append({"type": "text", "text": text})
        return {"role": role, "content": content}


def check_message(text: str) -> None:
    """Refuse an empty (or blank) user message, before any model is asked."""
    if not text.strip():
        raise InvalidInputError("the message is empty: say what to draw, or ask something")
