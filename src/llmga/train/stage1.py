"""Stage 1: fine-tune the assistant (MLLM or text-only LM) on the curated sets.

Run it directly (one process) or under ``accelerate launch`` (many GPUs;
DeepSpeed ZeRO and FSDP configs in ``configs/accelerate/``)::

    llmga train stage1 --model smollm2 --data refine.json --out runs/s1 --lora --max-steps 200
    accelerate launch --config_file configs/accelerate/deepspeed_zero2.yaml -m llmga train stage1 ...

LLaVA-format models train the projector and the language model with the vision
tower frozen (the paper's recipe), or the projector alone (``projector_only``, LLaVA's
feature alignment: the language model answers text exactly as before); text-only
models train the language model.
The loss covers only the assistant's tokens. Full fine-tuning or LoRA (the
adapters are merged into the saved model, so the result loads like any other).
Checkpoints are written every ``save_every`` steps and a run resumes from the
latest one. Losses go to TensorBoard under ``OUT/logs``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..errors import InvalidInputError, LLMGAError
from .chat_data import IGNORE, ChatEncoder, LengthGroupedBatches, Sample, collate, load_records
from .loop import start, train

log = logging.getLogger(__name__)


@dataclass
class Stage1Config:
    """Everything a stage-1 run needs; the CLI fills it from options."""

    model: str
    data: list[str]
    out: str
    lora: bool = True
    lora_rank: int = 16
    lora_alpha: int = 32
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 2e-4
    warmup_steps: int = 10
    max_length: int = 2048
    mixed_precision: str = "no"
    save_every: int = 100
    seed: int = 0
    on_error: str = "skip"
    threads: int | None = None
    system_prompt: str | None = None
    #: batch samples of about the same length (less padding, same samples per step)
    group_by_length: bool = True
    #: train the projector alone (LLaVA's feature alignment); the language model stays as it is
    projector_only: bool = False

    def __post_init__(self) -> None:
        if self.on_error not in ("skip", "stop"):
            raise InvalidInputError(f"on_error must be 'skip' or 'stop', got {self.on_error!r}")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise InvalidInputError("batch_size and grad_accum must be >= 1")


def encode_all(encoder: ChatEncoder, records: list, on_error: str) -> tuple[list[Sample], list[str]]:
    """Tokenize every record; broken ones are skipped and named, or stop the run."""
    samples, problems = [], []
    for record, root in records:
        try:
            samples.append(encoder.encode(record, root))
        except LLMGAError as exc:
            if on_error == "stop":
                raise
            problems.append(str(exc))
    return samples, problems


def answer_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The mean cross-entropy of the assistant's tokens, as ``model(**batch).loss``, with logits computed only
    where some row of the batch predicts an assistant token (a large vocabulary makes the rest the bulk of a step)."""
    inputs = dict(batch)
    labels = inputs.pop("labels")
    keep = (labels[:, 1:] != IGNORE).any(0).nonzero().squeeze(1)  # positions whose next token is trained
    logits = model(**inputs, logits_to_keep=keep).logits
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels[:, keep + 1].flatten(),
                                             ignore_index=IGNORE)


def train_stage1(config: Stage1Config) -> Path:
    """Run stage-1 training; return the directory of the final (merged) model."""
    from transformers import get_cosine_schedule_with_warmup

    from ..conversation import SYSTEM_PROMPT
    from .trainable import load_trainable

    out = Path(config.out)
    accelerator = start(out, config.grad_accum, config.mixed_precision, config.seed, config.threads)
    bundle = load_trainable(config.model, lora=config.lora, rank=config.lora_rank, alpha=config.lora_alpha,
                            projector_only=config.projector_only)
    system_prompt = SYSTEM_PROMPT if config.system_prompt is None else config.system_prompt
    encoder = ChatEncoder(bundle.tokenizer, bundle.processor, config.max_length, system_prompt)
    samples, problems = encode_all(encoder, load_records(config.data), config.on_error)
    for problem in problems:
        log.warning("skipped: %s", problem)
    accelerator.print(f"{len(samples)} samples, {len(problems)} skipped")
    if config.projector_only:  # a conversation without a picture never reaches the projector
        pictured = [s for s in samples if s.pixel_values is not None]
        accelerator.print(f"projector only: {len(pictured)} samples with a picture, {len(samples) - len(pictured)} left out")
        samples = pictured
    if not samples:
        raise InvalidInputError("no usable training samples" + (" with a picture (--projector-only trains on those alone)"
                                                                 if config.projector_only else ""))

    def collate_batch(batch: list[Sample]) -> dict[str, torch.Tensor]:
        return collate(batch, bundle.pad_id)

    if config.group_by_length:
        batches = LengthGroupedBatches([len(s.input_ids) for s in samples], config.batch_size, config.seed)
        loader = torch.utils.data.DataLoader(samples, batch_sampler=batches, collate_fn=collate_batch)
    else:
        loader = torch.utils.data.DataLoader(samples, batch_size=config.batch_size, shuffle=True, collate_fn=collate_batch,
                                             generator=torch.Generator().manual_seed(config.seed))
    steps_per_epoch = math.ceil(len(loader) / config.grad_accum)
    total = config.max_steps or steps_per_epoch * config.epochs
    params = [p for p in bundle.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    scheduler = get_cosine_schedule_with_warmup(optimizer, min(config.warmup_steps, total), total)
    model, optimizer, loader, scheduler = accelerator.prepare(bundle.model, optimizer, loader, scheduler)
    accelerator.init_trackers("stage1", config={k: v for k, v in asdict(config).items() if not isinstance(v, (list, dict))})

    train(accelerator, model, optimizer, scheduler, loader, answer_loss,
          total=total, out=out, save_every=config.save_every, desc="stage 1")
    final = out / "final"
    if accelerator.is_main_process:
        bundle.save(accelerator.unwrap_model(model), final, config.system_prompt)
    accelerator.wait_for_everyone()
    return final
