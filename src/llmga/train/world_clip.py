"""The world's CLIP: a text and vision encoder pair trained contrastively on rendered scenes.

Both towers are transformers ``CLIPModel`` parts; the tokenizer is a real
``CLIPTokenizer`` (77-token context) in which every world word is one token.
The text tower becomes the world painter's text encoder (frozen, as SD's is),
the vision tower the world assistant's image encoder::

    llmga train clip --out runs/world/clip --steps 1200

Captions are a mix of detailed and short ones, so both kinds of prompt map
to separable conditioning before any UNet sees them.

A vision tower for the assistant can also be *grounded*: with 3x3 patches
(one per grid cell, e.g. ``--image-size 48 --patch 16``) and ``--cell-loss``,
linear heads on its patch tokens (at the layer LLaVA reads) must tell each
cell's object and the background, besides the contrastive loss. With
``--place-loss`` one more head, shared by every token, must also tell from a
token alone which cell it is: the cell's place is then written into the token
itself, not only implied by its index, for the language model to read. The
heads are dropped afterwards; what stays is a standard ``CLIPVisionModel``
whose every image token says what its cell holds (and where it is).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..clip_tokenizer import write_clip_tokenizer
from ..errors import InvalidInputError
from ..world.captions import EMPTY, detailed_caption, short_caption
from ..world.render import render_batch
from ..world.scene import COLOURS, GRID, POSITIONS, SHAPES, SIZES, TERRAINS, TIMES, VOCAB, Scene, sample_scene

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
    cell_loss: float = 0.0
    place_loss: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.place_loss and not self.cell_loss:
            raise InvalidInputError("--place-loss trains a head beside the cell heads: give --cell-loss too")
        if self.cell_loss and self.image_size != GRID * self.patch:
            raise InvalidInputError(f"--cell-loss needs one patch per grid cell: an image size of {GRID} patches "
                                    f"({GRID * self.patch} px for {self.patch} px patches), got {self.image_size}")


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


#: The size the world's pictures are rendered at (and painted at).
PICTURE_SIZE = 32
#: The vision tower's layer whose patch tokens the world assistant reads (LLaVA's default).
FEATURE_LAYER = -2


@lru_cache(maxsize=8)
def image_processor(image_size: int) -> Any:
    """How the world's vision tower reads a picture: resized to ``image_size`` and scaled to [-1, 1]."""
    from transformers.models.clip import CLIPImageProcessorPil

    return CLIPImageProcessorPil(size={"shortest_edge": image_size}, crop_size={"height": image_size,
                                 "width": image_size}, image_mean=[0.5] * 3, image_std=[0.5] * 3)


def vision_input(scenes: list[Scene], image_size: int) -> torch.Tensor:
    """The scenes' pictures (rendered at the world's size) as pixel values for a tower of ``image_size``."""
    pictures = render_batch(scenes, PICTURE_SIZE)
    if image_size == PICTURE_SIZE:
        return pixels(pictures)
    return image_processor(image_size)(images=list(pictures), return_tensors="pt").pixel_values


class CellHeads(torch.nn.Module):
    """Linear heads reading each patch token as its grid cell, and their mean as the background.

    Outputs the judge's logits (:func:`llmga.train.world_judge.judge_loss` scores them), and with
    ``place`` the logits of which cell each token is (``"place"``, scored by :func:`place_loss`).
    """

    def __init__(self, hidden: int, place: bool = False) -> None:
        super().__init__()
        self.splits = (1, len(COLOURS), len(SHAPES), len(SIZES))
        self.bg_splits = (len(TIMES), len(TERRAINS))
        self.cell = torch.nn.Linear(hidden, sum(self.splits))
        self.background = torch.nn.Linear(hidden, sum(self.bg_splits))
        self.place = torch.nn.Linear(hidden, GRID * GRID) if place else None

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        occupied, colour, shape, size = self.cell(tokens).split(self.splits, dim=-1)
        time_, terrain = self.background(tokens.mean(1)).split(self.bg_splits, dim=-1)
        out = {"occupied": occupied.squeeze(-1), "colour": colour, "shape": shape, "size": size,
               "time": time_, "terrain": terrain}
        if self.place is not None:
            out["place"] = self.place(tokens)
        return out


def place_loss(place: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``(n, cells, cells)`` place logits against each token's own cell."""
    cells = torch.arange(place.shape[1]).repeat(place.shape[0])
    return F.cross_entropy(place.flatten(0, 1), cells)


def train_clip(out: str | Path, config: ClipConfig | None = None, log=print) -> Path:
    """Train the world's CLIP contrastively on freshly rendered scenes; save it under ``out``.

    ``out/tokenizer``, ``out/text_encoder`` (``CLIPTextModel``) and
    ``out/vision_encoder`` (``CLIPVisionModel``) are standard transformers
    directories; ``out/model`` is the whole ``CLIPModel`` with its tokenizer and image processor (the
    world's CLIP for scoring: CLIP-I, CLIP-T); ``out/report.json`` holds retrieval accuracy on held-out scenes.
    """
    from transformers import CLIPTextModel, CLIPVisionModel, get_cosine_schedule_with_warmup

    config = config or ClipConfig()
    out = Path(out)
    tokenizer = write_world_tokenizer(out / "tokenizer")
    torch.manual_seed(config.seed)
    model = new_clip(tokenizer, config)
    heads = CellHeads(config.hidden, place=bool(config.place_loss)) if config.cell_loss else None
    params = [*model.parameters(), *(heads.parameters() if heads else ())]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.01)
    schedule = get_cosine_schedule_with_warmup(optimizer, max(1, config.steps // 20), config.steps)
    rng = random.Random(config.seed)
    started = time.time()
    model.train()
    for step in range(1, config.steps + 1):
        scenes = [sample_scene(rng, config.max_objects, min_objects=0) for _ in range(config.batch_size)]
        captions = [caption_for_training(s, rng, config.short_share) for s in scenes]
        loss = _loss(model, heads, tokenizer, scenes, captions, config)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 100 == 0 or step == config.steps:
            log(f"clip step {step}/{config.steps} loss {loss.item():.4f} ({time.time() - started:.0f} s)")
    model.eval()
    report = {"config": asdict(config), "seconds": round(time.time() - started, 1),
              **retrieval_accuracy(model, tokenizer, config)}
    if heads is not None:
        report["cells_read"] = cell_accuracy(model, heads, config)
    log(f"clip held-out retrieval: {report}")
    text = CLIPTextModel(model.config.text_config)
    text.load_state_dict(model.text_model.state_dict())
    text.save_pretrained(out / "text_encoder", safe_serialization=True)
    vision = CLIPVisionModel(model.config.vision_config)
    vision.load_state_dict(model.vision_model.state_dict())
    vision.save_pretrained(out / "vision_encoder", safe_serialization=True)
    model.save_pretrained(out / "model", safe_serialization=True)
    tokenizer.save_pretrained(out / "model")
    image_processor(config.image_size).save_pretrained(out / "model")
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return out


def _loss(model: Any, heads: CellHeads | None, tokenizer: Any, scenes: list[Scene], captions: list[str],
          config: ClipConfig) -> torch.Tensor:
    """The contrastive loss, plus ``cell_loss`` times the cell heads' loss and ``place_loss`` times the place
    head's when there are heads."""
    from ..world.judge import JudgeConfig, scene_targets
    from .world_judge import judge_loss

    tokens = tokenizer(captions, padding="longest", truncation=True, return_tensors="pt")
    output = model(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask,
                   pixel_values=vision_input(scenes, config.image_size), output_hidden_states=heads is not None)
    # Identical captions in one batch (two "a red star"s) are both right answers.
    same = torch.tensor([[a == b for b in captions] for a in captions], dtype=torch.float32)
    target = same / same.sum(1, keepdim=True)
    logits = output.logits_per_text
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target.T)) / 2
    if heads is None:
        return loss
    read = heads(output.vision_model_output.hidden_states[FEATURE_LAYER][:, 1:])
    loss = loss + config.cell_loss * judge_loss(read, scene_targets(scenes, JudgeConfig()))
    return loss + config.place_loss * place_loss(read["place"]) if "place" in read else loss


@torch.no_grad()
def cell_accuracy(model: Any, heads: CellHeads, config: ClipConfig, n: int = 256) -> dict[str, float]:
    """How well the cell heads read ``n`` held-out pictures, scored as the judge is (:func:`~llmga.eval.judge_accuracy.evaluate_judge`),
    and (``"place"``) how often the place head tells each token's own cell."""
    from ..eval.judge_accuracy import reading_accuracy
    from ..world.judge import JudgeConfig, scene_targets

    rng = random.Random(20_000 + config.seed)
    scenes = [sample_scene(rng, config.max_objects, min_objects=0) for _ in range(n)]
    hidden = model.vision_model(pixel_values=vision_input(scenes, config.image_size), output_hidden_states=True)
    out = heads(hidden.hidden_states[FEATURE_LAYER][:, 1:])
    judge_config = JudgeConfig()
    report = {**reading_accuracy(out, scene_targets(scenes, judge_config), judge_config.sizes), "n": n}
    if "place" in out:
        report["place"] = round((out["place"].argmax(-1) == torch.arange(GRID * GRID)).float().mean().item(), 4)
    return report


@torch.no_grad()
def retrieval_accuracy(model: Any, tokenizer: Any, config: ClipConfig, n: int = 256) -> dict[str, float]:
    """Share of held-out pictures whose own detailed caption scores highest among ``n`` captions (and back)."""
    rng = random.Random(10_000 + config.seed)
    scenes = [sample_scene(rng, config.max_objects, min_objects=0) for _ in range(n)]
    captions = [detailed_caption(s) for s in scenes]
    tokens = tokenizer(captions, padding="longest", return_tensors="pt")
    output = model(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask,
                   pixel_values=vision_input(scenes, config.image_size))
    same = torch.tensor([[a == b for b in captions] for a in captions])
    rows = torch.arange(n)
    image_to_text = same[rows, output.logits_per_image.argmax(1)].float().mean().item()
    text_to_image = same[rows, output.logits_per_text.argmax(1)].float().mean().item()
    return {"image_to_text": round(image_to_text, 4), "text_to_image": round(text_to_image, 4), "n": n}
