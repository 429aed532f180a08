"""Diffusion painters driven by the assistant's generation prompts."""

from .long_prompt import LongPromptEncoder, PromptEmbeddings
from .text_to_image import Painting, PaintSettings, TextToImagePainter

__all__ = ["LongPromptEncoder", "PromptEmbeddings", "Painting", "PaintSettings", "TextToImagePainter"]
