"""Instruction template pools for the stage-1 data sets.

Each :class:`Pool` holds many phrasings of one request; builders pick one per
sample with a seeded random generator. Every template of a pool uses exactly
the pool's fields (checked when this module is imported):

- ``{caption}``: a short caption as a sentence ("A cat is lying on the ground.");
- ``{sides}``: the sides an image is extended on ("the left and the top");
- ``{instruction}``: an editing instruction as a sentence ("Replace the cat with a dog.").

``REPLIES`` are the short sentences the assistant says before a tagged prompt,
as the project's system prompt asks ("answer with one short sentence and then a
detailed generation prompt").
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass


@dataclass(frozen=True)
class Pool:
    """Phrasings of one request; each uses exactly ``fields``."""

    name: str
    fields: frozenset[str]
    templates: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(set(self.templates)) != len(self.templates):
            raise ValueError(f"template pool {self.name} repeats a template")
        for template in self.templates:
            used = {name for _, name, _, _ in string.Formatter().parse(template) if name}
            if used != self.fields:
                raise ValueError(
                    f"template {template!r} of pool {self.name} uses {used}, expected {set(self.fields)}"
                )

    def pick(self, rng: random.Random, **fields: str) -> str:
        """A random template of the pool, filled with ``fields``."""
        return rng.choice(self.templates).format(**fields)


def pool(name: str, fields: str, *templates: str) -> Pool:
    return Pool(name, frozenset(fields.split()), templates)


# -- prompt refinement: a short caption in, a detailed description out --------

GENERATE_FROM_CAPTION = pool(
    "generate_from_caption",
    "caption",
    "{caption} Generate this image.",
    "{caption} Please draw this.",
    "Generate an image of this: {caption}",
    "Draw a picture of the following. {caption}",
    "Create an image based on this description: {caption}",
    "{caption} Can you make a picture of it?",
    "Paint this scene for me: {caption}",
    "I'd like an image of this. {caption}",
    "Please generate a picture that shows the following: {caption}",
    "{caption} Turn this into an image.",
    "Make an image from this caption: {caption}",
    "Visualize this for me: {caption}",
    "{caption} Render it as a picture, please.",
    "Could you create an image showing this? {caption}",
    "Illustrate the following sentence. {caption}",
    "{caption} Generate a picture of that.",
    "Produce an image that matches this caption: {caption}",
    "Design a picture of this scene: {caption}",
    "{caption} Show me what this looks like.",
    "Here is a caption: {caption} Please generate the image.",
    "Sketch out this scene as a full image: {caption}",
    "{caption} I want a picture like this.",
    "Generate a detailed image from this short prompt: {caption}",
    "Can you paint this? {caption}",
)

DESCRIBE_CAPTION = pool(
    "describe_caption",
    "caption",
    "{caption} Describe this sentence in detail.",
    "Expand this caption into a detailed description: {caption}",
    "{caption} Please describe this scene in more detail.",
    "Write a detailed description of the scene in this caption: {caption}",
    "Elaborate on this sentence. {caption}",
    "{caption} Can you describe it in detail?",
    "Give a richer, more detailed version of this description: {caption}",
    "Describe in detail what this caption depicts: {caption}",
    "{caption} Add details to this description.",
    "Turn this short caption into a vivid, detailed description: {caption}",
    "Here is a short caption: {caption} Describe the scene fully.",
    "{caption} What would this scene look like in detail?",
    "Please flesh out this description with details: {caption}",
    "Describe the following in detail, including the setting and lighting. {caption}",
    "{caption} Write a detailed paragraph describing this.",
    "Make this description more detailed: {caption}",
    "Provide a detailed description based on this sentence: {caption}",
    "{caption} Describe every element of this scene.",
    "Expand on this: {caption}",
    "Describe this caption in a detailed way. {caption}",
    "{caption} Give me a thorough description of this scene.",
    "Rewrite this caption as a detailed description: {caption}",
)

# -- similar image: an image in, its detailed description out ------------------

GENERATE_SIMILAR = pool(
    "generate_similar",
    "",
    "Generate a similar image.",
    "Make an image like this one.",
    "Please draw something similar to this picture.",
    "Create a picture that looks like this.",
    "Can you generate an image similar to this one?",
    "Draw a similar image for me.",
    "Generate another image in the same spirit as this one.",
    "Recreate this picture.",
    "Make a new image with the same content and layout.",
    "Paint something like this.",
    "I like this picture. Generate one like it.",
    "Produce an image resembling this one.",
    "Generate a picture with the same scene as this image.",
    "Please create a variation of this image.",
    "Can you make me a picture similar to this?",
    "Regenerate this image.",
    "Draw a picture that closely matches this one.",
    "Generate an image with a similar composition and subject.",
    "Make something that looks just like this photo.",
    "Create an image inspired by this one.",
    "Reproduce this image as closely as you can.",
    "Generate a lookalike of this picture.",
)

DESCRIBE_IMAGE = pool(
    "describe_image",
    "",
    "Describe the following image.",
    "Describe this image in detail.",
    "What is in this picture? Please describe it thoroughly.",
    "Give a detailed description of this image.",
    "Can you describe this photo?",
    "Tell me what this image shows, in detail.",
    "Write a detailed caption for this image.",
    "Please describe everything you see in this picture.",
    "Explain what is happening in this image.",
    "Describe the scene in this photo.",
    "What does this image depict? Be detailed.",
    "Provide a thorough description of the picture.",
    "Describe the contents of this image, including the background.",
    "Look at this image and describe it.",
    "Write a paragraph describing this picture.",
    "Give me a detailed account of what this image shows.",
    "Describe the subjects, setting and lighting of this image.",
    "How would you describe this picture?",
    "Please write a detailed description of this photo.",
    "Caption this image in detail.",
    "Describe this picture as precisely as possible.",
    "Analyze this image and describe what you see.",
)

# -- inpainting and outpainting: a masked image in, the full description out ---

INPAINT = pool(
    "inpaint",
    "",
    "Inpaint this image.",
    "Fill in the missing parts of this picture.",
    "Please complete the masked region of this image.",
    "Restore the blanked-out areas of this image.",
    "Some parts of this picture are missing. Fill them in.",
    "Complete this image.",
    "Can you inpaint the masked area?",
    "Fill the holes in this image with something that fits.",
    "Paint in the missing region so the image looks whole.",
    "Repair this picture by filling in the masked parts.",
    "The masked areas are missing. Please fill them in.",
    "Complete the picture where it has been masked out.",
    "Inpaint the masked region naturally.",
    "Fill in the gaps in this photo.",
    "Reconstruct the hidden parts of this image.",
    "Finish this image by painting in the missing areas.",
    "Please fill in the blank regions of this picture.",
    "Make this image complete again.",
    "Fill in what is missing from this image.",
    "Inpaint this picture so that it looks natural.",
    "Can you complete the masked parts of this photo?",
    "Restore this image by inpainting the missing regions.",
)

OUTPAINT = pool(
    "outpaint",
    "",
    "Outpaint this image.",
    "Extend this image beyond its borders.",
    "Please expand this picture.",
    "Make this image larger by painting outside its edges.",
    "Continue the scene past the edges of this image.",
    "Can you outpaint this picture?",
    "Fill in the blank borders of this image.",
    "Widen this picture and fill in the new area.",
    "Extend the scene of this photo.",
    "Expand the canvas of this image and complete it.",
    "Please paint what lies beyond the edges of this picture.",
    "Outpaint the missing borders.",
    "Complete the image outside the visible area.",
    "Zoom out and fill in the rest of the scene.",
    "Show more of this scene by extending the image.",
    "Grow this picture outward.",
    "The borders are empty. Please fill them in.",
    "Extend this image so it shows a wider view.",
    "Paint the rest of the scene around this image.",
    "Can you make this picture bigger by extending it?",
    "Uncrop this image.",
    "Outpaint this photo naturally.",
)

OUTPAINT_TOWARD = pool(
    "outpaint_toward",
    "sides",
    "Extend this image on {sides}.",
    "Outpaint this picture toward {sides}.",
    "Please expand the image on {sides}.",
    "Continue the scene on {sides}.",
    "Fill in the empty border on {sides}.",
    "Can you extend this photo on {sides}?",
    "Make the picture larger on {sides}.",
    "Paint what lies beyond the edge on {sides}.",
    "Grow this image outward on {sides}.",
    "Outpaint the blank area on {sides}.",
    "Extend the canvas on {sides} and complete the scene.",
    "Show more of the scene on {sides}.",
    "Please outpaint this image on {sides}.",
    "Widen the view on {sides}.",
    "Complete the missing part on {sides}.",
    "The image is cut off on {sides}. Extend it.",
    "Uncrop this picture on {sides}.",
    "Add more scenery on {sides}.",
    "Fill in the masked border on {sides}.",
    "Expand this photo on {sides}, keeping the style.",
)

# -- instruction editing: an instruction (with an image or a caption) in, the target caption out

EDIT_IMAGE = pool(
    "edit_image",
    "instruction",
    "{instruction}",
    "Edit this image: {instruction}",
    "Please edit the picture as follows. {instruction}",
    "{instruction} Show me the edited image.",
    "Change this image. {instruction}",
    "Here is an edit I want: {instruction}",
    "Can you edit this photo? {instruction}",
    "Modify the picture: {instruction}",
    "{instruction} Keep everything else the same.",
    "Apply this edit to the image: {instruction}",
    "I want to change this picture. {instruction}",
    "Edit instruction: {instruction}",
    "{instruction} Please generate the edited picture.",
    "Make this change to the image: {instruction}",
    "Please modify this photo. {instruction}",
    "Update the image like this: {instruction}",
    "{instruction} Leave the rest of the image as it is.",
    "Could you edit the picture? {instruction}",
    "Transform this image: {instruction}",
    "Revise this picture as follows: {instruction}",
)

EDIT_CAPTION = pool(
    "edit_caption",
    "caption instruction",
    "{caption} {instruction}",
    "Image: {caption} Edit: {instruction}",
    "The picture shows this: {caption} {instruction} Generate the edited image.",
    "Here is an image description: {caption} Please edit it. {instruction}",
    "{caption} Edit this image as follows: {instruction}",
    "Start from this image: {caption} Then apply this edit: {instruction}",
    "Description of the picture: {caption} Requested change: {instruction}",
    "{caption} {instruction} Show me the result.",
    "I have an image. {caption} {instruction}",
    "Original image: {caption} Instruction: {instruction}",
    "Take this picture: {caption} {instruction} Keep everything else the same.",
    "{caption} Please modify the picture. {instruction}",
    "My photo looks like this: {caption} {instruction}",
    "Given an image described as follows: {caption} Edit it. {instruction}",
    "Picture: {caption} Change: {instruction}",
    "{caption} Can you edit it? {instruction}",
    "Here is what the image shows. {caption} The edit: {instruction}",
    "Image description: {caption} Edit request: {instruction}",
    "{caption} Make this edit: {instruction}",
    "Consider this image: {caption} {instruction} Generate the edited version.",
)

# -- what the assistant says before the tagged prompt ----------------------------

REPLIES = {
    "generate": pool(
        "reply_generate",
        "",
        "Sure! Here is the image.",
        "Here you go.",
        "Of course, here is your picture.",
        "Sure, here it is.",
        "Here is the image you asked for.",
        "Certainly! Here is the picture.",
        "Here is my take on it.",
        "Sure, I will generate it.",
        "Here is a picture of that.",
        "Absolutely, here is the image.",
        "Coming right up.",
        "Here is the generated image.",
    ),
    "similar": pool(
        "reply_similar",
        "",
        "Sure! Here is a similar image.",
        "Here is a picture like yours.",
        "Of course, here is a similar one.",
        "Here is an image in the same spirit.",
        "Sure, here is a variation.",
        "Here is a lookalike.",
        "Certainly, here is a similar picture.",
        "Here you go, a similar image.",
        "Here is my version of it.",
        "Sure, I will make one like it.",
    ),
    "inpaint": pool(
        "reply_inpaint",
        "",
        "Sure! Here is the completed image.",
        "Here is the image with the missing parts filled in.",
        "Of course, here is the inpainted picture.",
        "Here is the restored image.",
        "Sure, I filled in the masked region.",
        "Here is the completed picture.",
        "Certainly, here is the image made whole.",
        "Here you go, the gaps are filled.",
        "Here is the repaired image.",
        "Sure, here is the inpainted result.",
    ),
    "outpaint": pool(
        "reply_outpaint",
        "",
        "Sure! Here is the extended image.",
        "Here is the picture with a wider view.",
        "Of course, here is the outpainted image.",
        "Here is the scene, extended.",
        "Sure, I extended the picture.",
        "Here is the expanded image.",
        "Certainly, here is the larger picture.",
        "Here you go, the borders are filled.",
        "Here is the uncropped image.",
        "Sure, here is the outpainted result.",
    ),
    "edit": pool(
        "reply_edit",
        "",
        "Sure! Here is the edited image.",
        "Here is the picture with that change.",
        "Of course, here is the edited version.",
        "Done. Here is the result.",
        "Sure, I made that edit.",
        "Here is the modified image.",
        "Certainly, here is the updated picture.",
        "Here you go, edited.",
        "Here is the image after the edit.",
        "Sure, here is the new version.",
    ),
}

POOLS: tuple[Pool, ...] = (
    GENERATE_FROM_CAPTION,
    DESCRIBE_CAPTION,
    GENERATE_SIMILAR,
    DESCRIBE_IMAGE,
    INPAINT,
    OUTPAINT,
    OUTPAINT_TOWARD,
    EDIT_IMAGE,
    EDIT_CAPTION,
)


def as_sentence(text: str) -> str:
    """``text`` as a sentence: tidy spaces, a capital first letter, a full stop at the end."""
    text = " ".join(text.split())
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def join_sides(sides: list[str]) -> str:
    """``["left", "top"]`` → "the left and the top"."""
    named = [f"the {side}" for side in sides]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
