"""Diffusion painters driven by the assistant's generation prompts, one module per task."""

from .long_prompt import LongPromptEncoder, PromptEmbeddings
from .text_to_image import Painting, TextToImagePainter

__all__ = ["LongPromptEncoder", "PromptEmbeddings", "Painting", "TextToImagePainter"]
