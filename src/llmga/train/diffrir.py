"""``llmga train restore``: DiffRIR's three trainings, each on the project's loop (:mod:`.loop`).

1. **stage 1** (``OUT/stage1``): :class:`~llmga.restore.StageOne`, the prior
   extracted from the input *and the ground truth*; L1 loss.
2. **stage 2** (``OUT/stage2``): :class:`~llmga.restore.StageTwo` with stage 1's
   restorer; the diffusion estimator learns stage 1's prior from the input
   alone (L1 between the priors, the released "KD" term), first alone
   (``encoder_steps``), then with the restorer (L1 on the painted region).
3. **GAN fine-tune** (``OUT/gan``): L1 + perceptual + adversarial (+ the prior
   term), against a spectral-norm patch discriminator trained in the same step
   (one optimizer with two parameter groups; the generator's adversarial term
   sees the discriminator's weights detached, so each network follows its own
   loss).

Every stage resumes from its checkpoints (model, optimizer, EMA, RNG), logs to
TensorBoard under its folder's ``logs/`` and ends with ``final.safetensors``
(the EMA weights); a finished stage is skipped on a rerun. ``OUT/final`` is the
restorer (:func:`llmga.restore.save_restorer`, float16). The perceptual network
loads from a local file: ``judge`` (the world judge's conv stages), a folder
holding LPIPS's AlexNet and heads (:mod:`llmga.eval.perceptual`), or ``none``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidInputError
from ..restore import NetworkConfig, StageOne, StageTwo, save_restorer
from ..restore.network import network_input
from .loop import start, train
from .run_state import latest_step
from .seam_data import SeamConfig, batches

STAGES = ("stage1", "stage2", "gan")


@dataclass
class RestoreTrainConfig:
    """A DiffRIR training run (``network``: the :class:`NetworkConfig` fields; ``data``: the pairs)."""

    out: str
    data: SeamConfig
    network: NetworkConfig = field(default_factory=NetworkConfig)
    stage1_steps: int = 1000
    stage2_steps: int = 1000
    encoder_steps: int = 300
    gan_steps: int = 500
    lr: float = 2e-4
    gan_lr: float = 1e-4
    ema_decay: float = 0.999
    perceptual: str = "judge"
    perceptual_weight: float = 1.0
    gan_weight: float = 0.1
    save_every: int = 250
    seed: int = 0
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.data.size % 32:  # the input (size / scale) must be a multiple of 32 / scale
            raise InvalidInputError(f"the crop size must be a multiple of 32, got {self.data.size}")
        if self.data.scale != self.network.scale:
            raise InvalidInputError(f"the data is made for ×{self.data.scale} but the network restores at "
                                    f"×{self.network.scale}")


def train_restorer(config: RestoreTrainConfig, log=print) -> Path:
    """Run the three stages (each resumable); return the restorer folder ``OUT/final``."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2, default=str) + "\n")
    if config.threads:
        torch.set_num_threads(config.threads)
    first = _stage_one(config, out / "stage1", log)
    second = _stage_two(config, out / "stage2", first, log)
    final = _gan(config, out / "gan", first, second, log) if config.gan_steps else second
    return save_restorer(final, out / "final", card={"trained": _card(config)})


def _card(config: RestoreTrainConfig) -> dict:
    data = config.data
    return {"images": data.images, "painter": data.painter, "painted": data.painted, "colour": data.colour,
            "degradation": data.degradation, "steps": [config.stage1_steps, config.stage2_steps, config.gan_steps]}


def _ema(model: nn.Module, decay: float) -> Any:
    from diffusers.training_utils import EMAModel

    return EMAModel(model.parameters(), decay=decay)


def _run(config: RestoreTrainConfig, folder: Path, model: nn.Module, loss_fn, steps: int, desc: str,
         params=None, lr: float | None = None, ema_of: nn.Module | None = None) -> nn.Module:
    """Train ``model`` for ``steps`` on the project's loop (EMA of ``ema_of``, default the model) and return it with
    the EMA weights in; a stage that has finished before is loaded instead."""
    final = folder / "final.safetensors"
    target = ema_of or model
    if final.is_file():
        from safetensors.torch import load_model

        load_model(target, str(final), strict=True)
        return model
    accelerator = start(folder, 1, "no", config.seed, config.threads)
    accelerator.init_trackers(folder.name)
    optimizer = torch.optim.Adam(params if params is not None else model.parameters(), lr=lr or config.lr,
                                 betas=(0.9, 0.99))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    ema = _ema(target, config.ema_decay)
    accelerator.register_for_checkpointing(ema)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    loader = batches(config.data, folder.parent, stream=folder.name, start_step=latest_step(folder))
    train(accelerator, model, optimizer, scheduler, loader, loss_fn, total=steps, out=folder,
          save_every=config.save_every, desc=desc, after_step=lambda: ema.step(target.parameters()), keep_last=2)
    model = accelerator.unwrap_model(model)
    ema.copy_to(target.parameters())
    from safetensors.torch import save_model

    save_model(target, str(final))
    return model.eval()


def _inputs(config: RestoreTrainConfig, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    gt, mask = batch["gt"], batch["mask"]
    reference = (1 - mask) * gt if config.network.reference else None
    return network_input(batch["lq"], reference, config.network.scale)


def _stage_one(config: RestoreTrainConfig, folder: Path, log) -> StageOne:
    torch.manual_seed(config.seed)
    net = StageOne(config.network)

    def loss_fn(model: nn.Module, batch: dict) -> torch.Tensor:
        out, _ = model(_inputs(config, batch), batch["gt"])
        return F.l1_loss(out, batch["gt"])

    log(f"stage 1: {config.stage1_steps} steps")
    return _run(config, folder, net, loss_fn, config.stage1_steps, "diffrir stage 1")


def _teacher(first: StageOne) -> StageOne:
    first = first.eval()
    first.requires_grad_(False)
    return first


def _stage_two(config: RestoreTrainConfig, folder: Path, first: StageOne, log) -> StageTwo:
    torch.manual_seed(config.seed + 1)
    net = StageTwo(config.network)
    net.G.load_state_dict(first.G.state_dict())
    teacher = _teacher(first)
    step = {"n": latest_step(folder)}

    def loss_fn(model: nn.Module, batch: dict) -> torch.Tensor:
        x = _inputs(config, batch)
        with torch.no_grad():
            target = teacher.E(x, batch["gt"])
        unwrapped = getattr(model, "module", model)
        step["n"] += 1
        if step["n"] <= config.encoder_steps:  # the estimator alone first
            return F.l1_loss(unwrapped.diffusion(x, target), target)
        out, prior = model(x, target)
        mask, gt = batch["mask"], batch["gt"]
        composited = out * mask + (1 - mask) * gt if config.network.scale == 1 else out
        return F.l1_loss(composited, gt) + F.l1_loss(prior, target)

    log(f"stage 2: {config.stage2_steps} steps ({config.encoder_steps} for the estimator alone)")
    return _run(config, folder, net, loss_fn, config.stage2_steps, "diffrir stage 2")


class PatchDiscriminator(nn.Module):
    """A spectral-norm convolutional discriminator scoring each patch real or restored."""

    def __init__(self, width: int = 32, depth: int = 3) -> None:
        super().__init__()
        norm = nn.utils.spectral_norm
        layers: list[nn.Module] = [norm(nn.Conv2d(3, width, 3, padding=1)), nn.LeakyReLU(0.2, True)]
        for i in range(depth):
            cin, cout = width * 2**i, width * 2 ** (i + 1)
            layers += [norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(width * 2**depth, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x * 2 - 1)


class _Pair(nn.Module):
    """The generator and discriminator, trained in one step by one optimizer."""

    def __init__(self, generator: StageTwo, discriminator: PatchDiscriminator) -> None:
        super().__init__()
        self.generator, self.discriminator = generator, discriminator


class Perceptual(nn.Module):
    """LPIPS-style distance (unit-normalised features at several taps, weighted per channel) on ``[0, 1]`` tensors."""

    def __init__(self, spec: str) -> None:
        super().__init__()
        from ..eval.perceptual import ALEXNET_FILE, HEADS_FILE, SCALE, SHIFT, AlexLpips, JudgeLpips

        if spec == "judge":
            from ..world.judge import Judge

            judge = Judge.load()
            self.lpips, self.size = JudgeLpips(judge), judge.config.input_size
            self.shift, self.scale = torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
            self.taps = self.lpips._taps
            net = judge.net
        else:
            folder = Path(spec).expanduser()
            self.lpips = AlexLpips(folder / ALEXNET_FILE, folder / HEADS_FILE)
            self.size = None
            self.shift = (torch.tensor(SHIFT).view(1, 3, 1, 1) + 1) / 2
            self.scale = torch.tensor(SCALE).view(1, 3, 1, 1) / 2
            self.taps, net = self.lpips.net.taps, self.lpips.net
        net.eval().requires_grad_(False)
        self.net = net

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        from ..eval.perceptual import lpips_from_taps

        if self.size:
            a, b = (F.interpolate(x, (self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
                    for x in (a, b))
        a, b = (a - self.shift) / self.scale, (b - self.shift) / self.scale
        return lpips_from_taps(self.taps(a), self.taps(b), self.lpips.weights).mean()


def _gan(config: RestoreTrainConfig, folder: Path, first: StageOne, second: StageTwo, log) -> StageTwo:
    torch.manual_seed(config.seed + 2)
    generator = StageTwo(config.network)
    generator.load_state_dict(second.state_dict())
    pair = _Pair(generator, PatchDiscriminator())
    teacher = _teacher(first)
    perceptual = Perceptual(config.perceptual) if config.perceptual != "none" else None

    def loss_fn(model: nn.Module, batch: dict) -> torch.Tensor:
        pair_ = getattr(model, "module", model)
        x, gt = _inputs(config, batch), batch["gt"]
        with torch.no_grad():
            target = teacher.E(x, gt)
        out, prior = pair_.generator(x, target)
        loss = F.l1_loss(out, gt) + F.l1_loss(prior, target)
        if perceptual is not None:
            loss = loss + config.perceptual_weight * perceptual(out, gt)
        frozen = {k: v.detach() for k, v in pair_.discriminator.named_parameters()}
        fake_for_g = torch.func.functional_call(pair_.discriminator, frozen, (out,))
        loss = loss + config.gan_weight * F.binary_cross_entropy_with_logits(fake_for_g, torch.ones_like(fake_for_g))
        real, fake = pair_.discriminator(gt), pair_.discriminator(out.detach())
        d_loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                  + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        return loss + d_loss

    groups = [{"params": list(generator.parameters())}, {"params": list(pair.discriminator.parameters())}]
    log(f"GAN fine-tune: {config.gan_steps} steps (perceptual: {config.perceptual})")
    _run(config, folder, pair, loss_fn, config.gan_steps, "diffrir gan", params=groups, lr=config.gan_lr,
         ema_of=generator)
    return generator.eval()


def with_network(config: RestoreTrainConfig, **changes: Any) -> RestoreTrainConfig:
    """``config`` with some network fields changed."""
    return replace(config, network=replace(config.network, **changes))
