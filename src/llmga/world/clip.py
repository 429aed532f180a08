"""The world's CLIP: a text and vision encoder pair trained contrastively on rendered scenes.

Both towers are transformers ``CLIPModel`` parts; the tokenizer is a real
``CLIPTokenizer`` (77-token context) in which every world word is one token.
The text tower becomes the world painter's text encoder (frozen, as SD's is),
the vision tower the world assistant's image encoder::

    llmga world train-clip --out runs/world-clip --steps 1200

Captions are a mix of detailed and short ones, so both kinds of prompt map
to separable conditioning before any UNet sees them.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..clip_tokenizer import write_clip_tokenizer
from .captions import EMPTY, detailed_caption, short_caption
from .render import render_batch
from .scene import POSITIONS, VOCAB, Scene, sample_scene

#: Words of the caption grammar besides the attribute values.
GRAMMAR_WORDS = ("a", "an", "and", "at", "the", "on", "under", "sky", "empty", "scene", "one")


def world_words() -> list[str]:
    """Every word a world caption uses, each of which the world tokenizer keeps whole."""
    words = dict.fromkeys(GRAMMAR_WORDS)
    for values in VOCAB.values():
        for value in values:
            words.update(dict.fromkeys(value.split()))
    words.update(dict.fromkeys(EMPTY.split()))
    for position in POSITIONS:
        words.update(dict.fromkeys(position.split()))
    return list(words)


def write_world_tokenizer(out: str | Path) -> Any:
    """Write the world's ``CLIPTokenizer`` into ``out``."""
    return write_clip_tokenizer(out, world_words())


@dataclass
class ClipConfig:
    """Sizes of the world's CLIP and of its contrastive training."""

    hidden: int = 128
    layers: int = 3
    heads: int = 4
    patch: int = 8
    image_size: int = 32
    steps: int = 1200
    batch_size: int = 128
    lr: float = 1e-3
    max_objects: int = 3
    short_share: float = 0.3
    seed: int = 0


def caption_for_training(scene: Scene, rng: random.Random, short_share: float) -> str:
    """A short caption with probability ``short_share`` (when the scene has objects), else the detailed one."""
    if scene.objects and rng.random() < short_share:
        return short_caption(scene)
    return detailed_caption(scene)


def new_clip(tokenizer: Any, config: ClipConfig) -> Any:
    """An untrained ``CLIPModel`` sized by ``config`` for the world tokenizer."""
    from transformers import CLIPConfig, CLIPModel

    common = {"hidden_size": config.hidden, "intermediate_size": 4 * config.hidden,
              "num_hidden_layers": config.layers, "num_attention_heads": config.heads, "hidden_act": "quick_gelu"}
    text = {**common, "vocab_size": len(tokenizer), "max_position_embeddings": tokenizer.model_max_length,
            "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id}
    vision = {**common, "image_size": config.image_size, "patch_size": config.patch, "num_channels": 3}
    return CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=config.hidden))


def pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC pictures as CLIP pixel values (NCHW in [-1, 1]; the world's CLIP uses no other normalisation)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def train_clip(out: str | Path, config: ClipConfig | None = None, log=print) -> Path:
    """Train the world's CLIP contrastively on freshly rendered scenes; save it under ``out``.

    ``out/tokenizer``, ``out/text_encoder`` (``CLIPTextModel``) and
    ``out/vision_encoder`` (``CLIPVisionModel``) are standard transformers
    directories; ``out/report.json`` holds retrieval accuracy on held-out scenes.
    """
    from transformers import CLIPTextModel, CLIPVisionModel, get_cosine_schedule_with_warmup

    config = config or ClipConfig()
    out = Path(out)
    tokenizer = write_world_tokenizer(out / "tokenizer")
    torch.manual_seed(config.seed)
    model = new_clip(tokenizer, config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    schedule = get_cosine_schedule_with_warmup(optimizer, max(1, config.steps // 20), config.steps)
    rng = random.Random(config.seed)
    started = time.time()
    model.train()
    for step in range(1, config.steps + 1):
        scenes = [sample_scene(rng, config.max_objects, min_objects=0) for _ in range(config.batch_size)]
        captions = [caption_for_training(s, rng, config.short_share) for s in scenes]
        loss = _contrastive_loss(model, tokenizer, scenes, captions, config.image_size)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 100 == 0 or step == config.steps:
            log(f"clip step {step}/{config.steps} loss {loss.item():.4f} ({time.time() - started:.0f} s)")
    model.eval()
    report = {"config": asdict(config), "seconds": round(time.time() - started, 1),
              **retrieval_accuracy(model, tokenizer, config)}
    log(f"clip held-out retrieval: {report}")
    text = CLIPTextModel(model.config.text_config)
    text.load_state_dict(model.text_model.state_dict())
    text.save_pretrained(out / "text_encoder", safe_serialization=True)
    vision = CLIPVisionModel(model.config.vision_config)
    vision.load_state_dict(model.vision_model.state_dict())
    vision.save_pretrained(out / "vision_encoder", safe_serialization=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return out


def _contrastive_loss(model: Any, tokenizer: Any, scenes: list[Scene], captions: list[str], size: int) -> torch.Tensor:
    tokens = tokenizer(captions, padding="longest", truncation=True, return_tensors="pt")
    output = model(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask,
                   pixel_values=pixels(render_batch(scenes, size)))
    # Identical captions in one batch (two "a red star"s) are both right answers.
    same = torch.tensor([[a == b for b in captions] for a in captions], dtype=torch.float32)
    target = same / same.sum(1, keepdim=True)
    logits = output.logits_per_text
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target.T)) / 2


@torch.no_grad()
def retrieval_accuracy(model: Any, tokenizer: Any, config: ClipConfig, n: int = 256) -> dict[str, float]:
    """Share of held-out pictures whose own detailed caption scores highest among ``n`` captions (and back)."""
    rng = random.Random(10_000 + config.seed)
    scenes = [sample_scene(rng, config.max_objects, min_objects=0) for _ in range(n)]
    captions = [detailed_caption(s) for s in scenes]
    tokens = tokenizer(captions, padding="longest", return_tensors="pt")
    output = model(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask,
                   pixel_values=pixels(render_batch(scenes, config.image_size)))
    same = torch.tensor([[a == b for b in captions] for a in captions])
    rows = torch.arange(n)
    image_to_text = same[rows, output.logits_per_image.argmax(1)].float().mean().item()
    text_to_image = same[rows, output.logits_per_text.argmax(1)].float().mean().item()
    return {"image_to_text": round(image_to_text, 4), "text_to_image": round(text_to_image, 4), "n": n}
