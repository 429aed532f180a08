"""Embedding control's training (``llmga train gill``): ``[IMG]`` tokens, a mapper, and optionally LoRA.

GILL's recipe on llmga's stage-1 records. Each generation prompt in a reply is
replaced by the r ``[IMG]`` tokens (:func:`llmga.embedding.tokens.control_record`):
``tagged`` keeps the reply around them (LLMGA-Embedding, trained like the
language assistant, LoRA included), ``bare`` answers with the tokens alone
(GILL-style, ``--frozen``: only the new token embeddings and the heads train).
The loss adds three terms:

- next-token cross-entropy on the assistant's turns, as stage 1 (the labels of
  ``[IMG2]`` … ``[IMGr]`` are masked: at inference they are forced after ``[IMG1]``);
- MSE between the mapper's output for the ``[IMG]`` hidden states and the
  painter text encoder's output for the replaced prompt (its first 77 positions,
  what the painter reads for a prompt of up to 75 tokens; SDXL: both encoders'
  features and the pooled embedding);
- with ``retrieval_clip``, InfoNCE between the retrieval head's query and the
  CLIP embedding of what the prompt shows: the picture the world renders for it
  (``retrieval_target="world"``) or the prompt's CLIP text embedding (``"text"``,
  the same joint space, for data without pictures).

It runs under the same loop as stage 1 (checkpoints that resume, TensorBoard
logs under ``OUT/logs``) and writes ``OUT/final`` (:mod:`llmga.embedding.heads`).
:func:`train_mappers` trains GILL's mapper variants on the cached ``[IMG]``
states of a trained model, for the ablation.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..embedding.heads import ADAPTER_DIR, ControlConfig, ControlHeads
from ..embedding.tokens import add_image_tokens, control_record, group_starts
from ..errors import InvalidInputError, LLMGAError
from .chat_data import IGNORE, ChatEncoder, Sample, collate, load_records
from .loop import start, train

log = logging.getLogger(__name__)

RETRIEVAL_TARGETS = ("world", "text")


@dataclass
class GillConfig:
    """Everything a ``llmga train gill`` run needs."""

    model: str
    painter: str
    data: list[str]
    out: str
    style: str = "tagged"
    lora: bool = True
    lora_rank: int = 16
    lora_alpha: int = 32
    tokens: int = 8
    mapper: str = "gillmapper"
    mapper_inner: int = 512
    mapper_layers: int = 4
    mapper_heads: int = 4
    retrieval_clip: str | None = None
    retrieval_target: str = "text"
    gen_weight: float = 1.0
    retrieval_weight: float = 1.0
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-3
    warmup_steps: int = 10
    max_length: int = 2048
    save_every: int = 100
    seed: int = 0
    threads: int | None = None
    on_error: str = "skip"

    def __post_init__(self) -> None:
        if self.retrieval_target not in RETRIEVAL_TARGETS:
            raise InvalidInputError(f"unknown retrieval target {self.retrieval_target!r}; choose world or text")


class PainterTargets:
    """The painter text encoder's output for a prompt: what the mapper learns to produce (cached per prompt)."""

    def __init__(self, painter: str) -> None:
        from ..painter.text_to_image import TextToImagePainter

        self.painter = TextToImagePainter.load(painter, device="cpu")
        pipeline = self.painter.pipeline
        self.width = pipeline.unet.config.cross_attention_dim
        second = getattr(pipeline, "text_encoder_2", None)
        self.pooled = second.config.projection_dim if second is not None else None
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self.truncated = 0

    def __call__(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        for prompt in prompts:
            if prompt not in self._cache:
                encoded = self.painter.encoder.encode(prompt)
                self.truncated += encoded.windows > 1
                pooled = encoded.pooled_prompt_embeds
                self._cache[prompt] = (encoded.prompt_embeds[0, :77].float(), None if pooled is None else pooled[0])
        sequence = torch.stack([self._cache[p][0] for p in prompts])
        pooled = [self._cache[p][1] for p in prompts]
        return sequence, torch.stack(pooled) if pooled[0] is not None else None


class RetrievalTargets:
    """Unit CLIP vectors for prompts: the world's picture of each prompt, or the prompt's text embedding."""

    def __init__(self, clip: str, target: str) -> None:
        from ..library import ClipSpace

        self.space, self.target = ClipSpace(clip), target
        self._cache: dict[str, torch.Tensor] = {}

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        missing = [p for p in dict.fromkeys(prompts) if p not in self._cache]
        if missing:
            if self.target == "world":
                from ..world.captions import oracle_paint

                vectors = self.space.images([oracle_paint(p, strict=False) for p in missing])
            else:
                vectors = self.space.texts(missing)
            self._cache.update(zip(missing, vectors))
        return torch.stack([self._cache[p] for p in prompts])


@dataclass
class ControlSample:
    """A tokenized conversation, the prompts its ``[IMG]`` groups stand for, and where the groups begin."""

    sample: Sample
    prompts: list[str]
    starts: list[int]


def control_samples(records: list, encoder: ChatEncoder, config: ControlConfig, ids: list[int],
                    on_error: str = "skip") -> tuple[list[ControlSample], list[str]]:
    """Every record with its prompts replaced by ``[IMG]`` groups, tokenized; broken ones skipped and named."""
    out, problems = [], []
    for record, root in records:
        try:
            changed, prompts = control_record(record, config)
            sample = encoder.encode(changed, root)
            starts = group_starts(sample.input_ids, ids)
            if len(starts) != len(prompts):
                raise InvalidInputError(f"sample {record.get('id', '?')}: {len(prompts)} prompts but "
                                        f"{len(starts)} [IMG] groups after tokenizing")
        except LLMGAError as exc:
            if on_error == "stop":
                raise
            problems.append(str(exc))
            continue
        for s in starts:  # forced after [IMG1] at inference: nothing to learn
            sample.labels[s + 1 : s + len(ids)] = IGNORE
        out.append(ControlSample(sample, prompts, starts))
    return out, problems


def collate_control(items: list[ControlSample], pad_id: int) -> dict[str, Any]:
    batch = collate([item.sample for item in items], pad_id)
    places = [(row, s) for row, item in enumerate(items) for s in item.starts]
    batch["group_rows"] = torch.tensor([r for r, _ in places], dtype=torch.long)
    batch["group_starts"] = torch.tensor([s for _, s in places], dtype=torch.long)
    batch["prompts"] = [p for item in items for p in item.prompts]
    return batch


class ControlTrainee(nn.Module):
    """The brain and the heads trained together; ``forward(batch)`` returns the loss (its parts in ``parts``)."""

    def __init__(self, lm: nn.Module, heads: ControlHeads, targets: PainterTargets,
                 retrieval: RetrievalTargets | None, gen_weight: float = 1.0, retrieval_weight: float = 1.0) -> None:
        super().__init__()
        self.lm, self.heads = lm, heads
        self.targets, self.retrieval = targets, retrieval
        self.gen_weight, self.retrieval_weight = gen_weight, retrieval_weight
        self.parts: dict[str, float] = {}

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "labels", "pixel_values") if k in batch}
        out = self.lm(**inputs, output_hidden_states=True)
        loss, self.parts = out.loss, {"ce": out.loss.item()}
        if len(batch["group_rows"]):
            states, embedded = gather_groups(self.lm, out.hidden_states[-1], batch["input_ids"],
                                             batch["group_rows"], batch["group_starts"], self.heads.config.tokens)
            gen = embedding_loss(self.heads, states, embedded, self.targets(batch["prompts"]))
            loss = loss + self.gen_weight * gen
            self.parts["mse"] = gen.item()
            if self.retrieval is not None and len(batch["prompts"]) > 1:
                contrast = contrastive_loss(self.heads, states, self.retrieval(batch["prompts"]))
                loss = loss + self.retrieval_weight * contrast
                self.parts["contrastive"] = contrast.item()
        return loss


def gather_groups(lm: nn.Module, hidden: torch.Tensor, input_ids: torch.Tensor, rows: torch.Tensor,
                  starts: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The last-layer states and the input embeddings of each ``[IMG]`` group: two ``(groups, r, hidden)``."""
    positions = starts[:, None] + torch.arange(r, device=starts.device)
    return hidden[rows[:, None], positions], lm.get_input_embeddings()(input_ids[rows[:, None], positions])


def embedding_loss(heads: ControlHeads, states: torch.Tensor, embedded: torch.Tensor,
                   targets: tuple[torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
    """MSE of the mapped prompt embeddings (and SDXL's pooled embedding) against the painter's."""
    sequence, pooled = heads.embeddings(states, embedded)
    loss = F.mse_loss(sequence, targets[0].to(sequence))
    if pooled is not None:
        loss = loss + F.mse_loss(pooled, targets[1].to(pooled))
    return loss


def contrastive_loss(heads: ControlHeads, states: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE between the retrieval queries and their CLIP vectors (the rest of the batch as negatives)."""
    logits = heads.logit_scale.exp().clamp(max=100) * heads.query(states) @ vectors.to(states).T
    labels = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def control_config(config: GillConfig, hidden: int, targets: PainterTargets,
                   retrieval: RetrievalTargets | None) -> ControlConfig:
    return ControlConfig(base=config.model, hidden=hidden, width=targets.width, painter=config.painter,
                         pooled=targets.pooled, tokens=config.tokens, style=config.style, lora=config.lora,
                         mapper=config.mapper, mapper_inner=config.mapper_inner, mapper_layers=config.mapper_layers,
                         mapper_heads=config.mapper_heads,
                         retrieval_dim=retrieval.space.dim if retrieval else None,
                         retrieval_clip=config.retrieval_clip)


def train_gill(config: GillConfig) -> Path:
    """Train embedding control; return the folder of the final model (``OUT/final``)."""
    from transformers import get_cosine_schedule_with_warmup

    from ..conversation import SYSTEM_PROMPT
    from .trainable import load_trainable, save_adapter, with_adapter

    out = Path(config.out)
    accelerator = start(out, config.grad_accum, "no", config.seed, config.threads)
    bundle = load_trainable(config.model, lora=False)
    targets = PainterTargets(config.painter)
    retrieval = RetrievalTargets(config.retrieval_clip, config.retrieval_target) if config.retrieval_clip else None
    hidden = bundle.model.get_input_embeddings().embedding_dim
    control = control_config(config, hidden, targets, retrieval)
    ids = add_image_tokens(bundle.tokenizer, bundle.model, control)
    lm = with_adapter(bundle.model, config.lora_rank, config.lora_alpha, lora=config.lora, token_indices=ids)
    encoder = ChatEncoder(bundle.tokenizer, bundle.processor, config.max_length, SYSTEM_PROMPT)
    samples, problems = control_samples(load_records(config.data), encoder, control, ids, config.on_error)
    for problem in problems:
        log.warning("skipped: %s", problem)
    accelerator.print(f"{len(samples)} samples ({sum(len(s.prompts) for s in samples)} images), "
                      f"{len(problems)} skipped")
    if not samples:
        raise InvalidInputError("no usable training samples")

    torch.manual_seed(config.seed)
    trainee = ControlTrainee(lm, ControlHeads(control), targets, retrieval, config.gen_weight,
                             config.retrieval_weight)
    loader = torch.utils.data.DataLoader(samples, batch_size=config.batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(config.seed),
                                         collate_fn=lambda items: collate_control(items, bundle.pad_id))
    total = config.max_steps or math.ceil(len(loader) / config.grad_accum) * config.epochs
    params = [p for p in trainee.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    scheduler = get_cosine_schedule_with_warmup(optimizer, min(config.warmup_steps, total), total)
    model, optimizer, loader, scheduler = accelerator.prepare(trainee, optimizer, loader, scheduler)
    accelerator.init_trackers("gill", config={k: v for k, v in asdict(config).items() if not isinstance(v, list)})
    unwrapped = accelerator.unwrap_model(model)
    train(accelerator, model, optimizer, scheduler, loader, lambda m, batch: m(batch), total=total, out=out,
          save_every=config.save_every, desc="gill", keep_last=2,  # the loss's parts, at the scheduler's step
          after_step=lambda: accelerator.log(dict(unwrapped.parts), step=scheduler.scheduler.last_epoch))
    final = out / "final"
    if accelerator.is_main_process:
        save_adapter(unwrapped.lm, final / ADAPTER_DIR, config.model)
        unwrapped.heads.save(final)
        (final / "training.json").write_text(json.dumps({**asdict(config), "samples": len(samples),
                                                         "truncated_prompts": targets.truncated}, indent=2) + "\n")
    accelerator.wait_for_everyone()
    return final


def ship_control(model: str | Path, out: str | Path) -> Path:
    """Copy an embedding-control model for shipping: its adapter and decision as they are, its heads in float16."""
    from ..embedding.decision import DECISION_FILE
    from ..embedding.embedding_brain import control_folder

    source, out = control_folder(model), Path(out)
    shutil.copytree(source / ADAPTER_DIR, out / ADAPTER_DIR, dirs_exist_ok=True)
    ControlHeads.load(source).save(out, half=True)
    if (source / DECISION_FILE).is_file():
        shutil.copy(source / DECISION_FILE, out / DECISION_FILE)
    return out


# -- the mapper ablation ---------------------------------------------------------------


@dataclass
class MapperConfig:
    """``llmga train gill-mappers``: mapper variants trained on a model's cached ``[IMG]`` states."""

    model: str
    data: list[str]
    out: str
    mappers: tuple[str, ...] = ("linear", "mlp", "encoder", "gillmapper")
    steps: int = 600
    batch_size: int = 32
    lr: float = 1e-3
    max_records: int | None = None
    held_out: float = 0.1
    continue_mapper: bool = False
    seed: int = 0
    threads: int | None = None


def cached_states(brain, data: list[str], path: Path, max_records: int | None = None,
                  batch_size: int = 8) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The ``[IMG]`` states, input embeddings and prompts of the records' images, teacher-forced through the
    trained brain (written to ``path`` once; a rerun reads them back)."""
    from safetensors.torch import load_file, save_file

    from ..conversation import SYSTEM_PROMPT

    if path.is_file():
        tensors = load_file(path)
        return tensors["states"], tensors["embedded"], json.loads(path.with_suffix(".json").read_text())
    encoder = ChatEncoder(brain.tokenizer, getattr(brain.inner, "processor", None), 2048, SYSTEM_PROMPT)
    records = [r for r in load_records(data) if control_record(r[0], brain.config)[1]][:max_records]
    samples, _ = control_samples(records, encoder, brain.config, brain.ids)
    states, embedded, prompts = [], [], []
    pad = brain.tokenizer.pad_token_id if brain.tokenizer.pad_token_id is not None else brain.tokenizer.eos_token_id
    with torch.inference_mode():
        for start in range(0, len(samples), batch_size):
            items = samples[start : start + batch_size]
            batch = collate_control(items, pad)
            inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values") if k in batch}
            hidden = brain.model(**inputs, output_hidden_states=True).hidden_states[-1]
            s, e = gather_groups(brain.model, hidden, batch["input_ids"], batch["group_rows"],
                                 batch["group_starts"], brain.config.tokens)
            states.append(s.float())
            embedded.append(e.float())
            prompts += batch["prompts"]
            log.info("cached the [IMG] states of %d/%d samples", start + len(items), len(samples))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"states": torch.cat(states), "embedded": torch.cat(embedded)}, path)
    path.with_suffix(".json").write_text(json.dumps(prompts))
    return torch.cat(states), torch.cat(embedded), prompts


def train_mappers(config: MapperConfig, log_line=print) -> dict[str, dict]:
    """Train each mapper variant on the cached states of ``config.model`` (its LM and ``[IMG]`` embeddings
    frozen); write each as a whole embedding-control model under ``OUT/<mapper>``, and ``OUT/mappers.json``."""
    from transformers import get_cosine_schedule_with_warmup

    from ..embedding.embedding_brain import control_folder, load_control_brain

    if config.threads:
        torch.set_num_threads(config.threads)
    out, source = Path(config.out), control_folder(config.model)
    brain = load_control_brain(config.model)
    states, embedded, prompts = cached_states(brain, config.data, out / "states.safetensors", config.max_records)
    targets = PainterTargets(brain.config.painter)
    sequence, pooled = targets(prompts)
    generator = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(prompts), generator=generator)
    held = order[: max(1, int(len(order) * config.held_out))]
    fit = order[len(held) :]
    results = json.loads((out / "mappers.json").read_text()) if (out / "mappers.json").is_file() else {}
    for kind in config.mappers:
        if kind in results and (out / kind / "heads.safetensors").is_file():
            continue
        torch.manual_seed(config.seed)
        heads = ControlHeads(replace(brain.config, mapper=kind))
        keep = {k: v for k, v in brain.heads.state_dict().items()
                if not k.startswith(("mapper.", "pooled.")) or (config.continue_mapper and kind == brain.config.mapper)}
        heads.load_state_dict(keep, strict=False)
        trainable = [p for name, p in heads.named_parameters() if name.startswith(("mapper.", "pooled."))]
        optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
        scheduler = get_cosine_schedule_with_warmup(optimizer, min(20, config.steps // 10), config.steps)

        def mse(rows: torch.Tensor) -> torch.Tensor:
            picked = (sequence[rows], pooled[rows] if pooled is not None else None)
            return embedding_loss(heads, states[rows], embedded[rows], picked)

        heads.train()
        for step in range(1, config.steps + 1):
            rows = fit[torch.randint(len(fit), (config.batch_size,), generator=generator)]
            loss = mse(rows)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            if step % 100 == 0 or step == config.steps:
                log_line(f"{kind}: step {step}/{config.steps}, train MSE {loss.item():.4f}")
        heads.eval()
        with torch.no_grad():
            results[kind] = {"held_out_mse": mse(held).item(), "train_mse": mse(fit[: len(held) * 4]).item(),
                             "parameters": sum(p.numel() for p in trainable), "steps": config.steps,
                             "images": len(fit), "held_out": len(held)}
        log_line(f"{kind}: held-out MSE {results[kind]['held_out_mse']:.4f}")
        folder = out / kind
        shutil.copytree(source / ADAPTER_DIR, folder / ADAPTER_DIR, dirs_exist_ok=True)
        heads.save(folder)
        (out / "mappers.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


# -- when to answer with an image --------------------------------------------------------


def calibrate_image_bias(model: str | Path, data: list[str], n: int = 200) -> dict[str, float]:
    """GILL's frequency multiplier, calibrated for a bare (GILL-style) model: the log-odds added to ``[IMG1]``
    that best tells, at the first token of the reply, the records that ask for an image from the rest. A frozen
    LM learns the ``[IMG1]`` embedding slowly; this sets when it answers with an image. Written into the
    model's ``control.json``; returns the bias and its accuracy on the records."""
    from ..embedding.embedding_brain import control_folder, load_control_brain
    from ..embedding.heads import CONFIG_FILE
    from .chat_data import to_messages

    folder = control_folder(model)
    brain = load_control_brain(model)
    gaps, wanted = [], []
    with torch.inference_mode():
        for record, _ in load_records(data)[:n]:
            messages = to_messages(record, False)
            while messages[-1]["role"] == "assistant":
                messages.pop()
            logits = brain.model(**brain.inner._inputs(messages, [], "")).logits[0, -1].log_softmax(-1)
            image = logits[brain.ids[0]].item()
            logits[brain.ids] = -math.inf
            gaps.append(image - logits.max().item())
            wanted.append(bool(control_record(record, brain.config)[1]))
    ordered = sorted(gaps)
    cuts = [ordered[0] - 1] + [(a + b) / 2 for a, b in zip(ordered, ordered[1:])] + [ordered[-1] + 1]

    def accuracy(cut: float) -> float:
        return sum((g > cut) == w for g, w in zip(gaps, wanted)) / len(gaps)

    best = max(accuracy(c) for c in cuts)
    chosen = [c for c in cuts if accuracy(c) == best]
    bias = -(chosen[0] + chosen[-1]) / 2  # the middle of the best cuts
    config = json.loads((folder / CONFIG_FILE).read_text())
    config["image_bias"] = bias
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return {"image_bias": bias, "accuracy": best, "records": len(gaps)}
