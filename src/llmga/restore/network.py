"""The DiffRIR network (DiffIR's structure with a reference input), in its two training forms.

DiffIR restores with a Transformer (:class:`Restormer`, called ``G`` in the
released checkpoints) conditioned on a *compact prior*: one vector per picture
that scales and shifts the features before every attention and feed-forward
layer. Training has two stages:

- **stage 1** (:class:`StageOne`): a prior extractor (:class:`PriorExtractor`,
  the paper's CPEN, ``E``) sees the low-quality input *and the ground truth* and
  writes the prior; the restorer learns to use it;
- **stage 2** (:class:`StageTwo`): a small diffusion model (:class:`PriorDiffusion`:
  a residual MLP denoiser, ``denoise``, and a CPEN on the input alone,
  ``condition``) estimates that prior from the input in a few steps (4 in the
  released models), so no ground truth is needed to restore.

DiffRIR's input is the painted picture concatenated with the masked reference,
``concat(I_LQ, (1 - M) * I_GT)``: 6 channels at ×1; at ×2 and ×4 the reference
(at the output's resolution) is pixel-unshuffled down to the input's, giving
3 + 12 and 3 + 48 channels (:func:`network_input`). ``reference=False`` is
DiffIR itself (3 channels). The restorer pixel-unshuffles its input by 4/scale,
works at three further halvings, and upsamples ×4 at its tail, so inputs are
padded to a multiple of 32/scale (:attr:`NetworkConfig.multiple`).

Module and parameter names follow the released code, so a checkpoint it saved
(``params_ema``) loads with ``strict=True``; :func:`infer_config` reads the
configuration back from such a state dict.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidInputError

SCALES = (1, 2, 4)
NORMS = ("BiasFree", "WithBias")


@dataclass(frozen=True)
class NetworkConfig:
    """One DiffRIR network: its scale, whether it takes the reference, and its sizes.

    The defaults are the released configuration (``n_encoder_res=9, dim=64,
    num_blocks=[13,1,1,1], num_refinement_blocks=13, heads=[1,2,4,8],
    ffn_expansion_factor=2.2, LayerNorm_type="BiasFree"``, a 4-step estimator).
    """

    scale: int = 1
    reference: bool = True
    dim: int = 64
    num_blocks: tuple[int, int, int, int] = (13, 1, 1, 1)
    num_refinement_blocks: int = 13
    heads: tuple[int, int, int, int] = (1, 2, 4, 8)
    ffn_expansion_factor: float = 2.2
    bias: bool = False
    layer_norm: str = "BiasFree"
    n_encoder_res: int = 9
    n_feats: int = 64
    n_denoise_res: int = 1
    timesteps: int = 4
    linear_start: float = 0.1
    linear_end: float = 0.99

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise InvalidInputError(f"DiffRIR restores at ×1, ×2 or ×4, not ×{self.scale}")
        if self.layer_norm not in NORMS:
            raise InvalidInputError(f"layer_norm must be one of {NORMS}, got {self.layer_norm!r}")
        for level, heads in enumerate(self.heads):
            if (self.dim * 2**level) % heads:
                raise InvalidInputError(f"level {level + 1} has {self.dim * 2**level} channels, "
                                        f"which {heads} heads do not divide")

    @property
    def image_channels(self) -> int:
        """Channels of the input at the low-quality resolution: 3, plus the unshuffled reference."""
        return 3 + 3 * self.scale**2 if self.reference else 3

    @property
    def unshuffle(self) -> int:
        """How much the restorer pixel-unshuffles its input (4, 2, 1 for ×1, ×2, ×4)."""
        return 4 // self.scale

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (32, 16, 8 for ×1, ×2, ×4)."""
        return 32 // self.scale

    @property
    def prior(self) -> int:
        """Width of the compact prior."""
        return 4 * self.n_feats

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> NetworkConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known})


RELEASED = NetworkConfig()


def network_input(painted: torch.Tensor, masked_reference: torch.Tensor | None, scale: int) -> torch.Tensor:
    """What the network takes: the painted picture, and the masked reference (at ``scale`` times its size)
    pixel-unshuffled to the painted picture's resolution (none for DiffIR)."""
    if masked_reference is None:
        return painted
    return torch.cat([painted, F.pixel_unshuffle(masked_reference, scale)], dim=1)


# -- the restorer ------------------------------------------------------------------------


class _NormWeights(nn.Module):
    def __init__(self, dim: int, with_bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if with_bias else None


class ChannelNorm(nn.Module):
    """Layer norm over the channels of each pixel; "BiasFree" scales by the standard deviation without
    centring (Restormer's), "WithBias" is the usual layer norm."""

    def __init__(self, dim: int, kind: str) -> None:
        super().__init__()
        self.centred = kind == "WithBias"
        self.body = _NormWeights(dim, self.centred)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spread = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-5)
        y = (x - x.mean(dim=1, keepdim=True) if self.centred else x) / spread
        y = y * self.body.weight[:, None, None]
        return y + self.body.bias[:, None, None] if self.body.bias is not None else y


def _prior_projection(prior: int, dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(prior, 2 * dim, bias=False))


def _modulate(x: torch.Tensor, projection: nn.Module, prior: torch.Tensor) -> torch.Tensor:
    """``x * a + b``, with (a, b) per channel projected from the compact prior."""
    gain, shift = projection(prior)[:, :, None, None].chunk(2, dim=1)
    return x * gain + shift


class TransposedAttention(nn.Module):
    """Multi-head transposed attention: attention across channels (a c×c map per head), linear in pixels."""

    def __init__(self, dim: int, heads: int, bias: bool, prior: int) -> None:
        super().__init__()
        self.num_heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.kernel = _prior_projection(prior, dim)
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(3 * dim, 3 * dim, 3, padding=1, groups=3 * dim, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        qkv = self.qkv_dwconv(self.qkv(_modulate(x, self.kernel, prior)))
        q, k, v = qkv.reshape(n, 3, self.num_heads, c // self.num_heads, h * w).unbind(dim=1)
        weights = (F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)) * self.temperature
        return self.project_out((weights.softmax(dim=-1) @ v).reshape(n, c, h, w))


class GatedFeedForward(nn.Module):
    """The dynamic gated feed-forward: a depthwise-convolved GELU gate over a value branch."""

    def __init__(self, dim: int, expansion: float, bias: bool, prior: int) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, 2 * hidden, 1, bias=bias)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)
        self.kernel = _prior_projection(prior, dim)

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        gate, value = self.dwconv(self.project_in(_modulate(x, self.kernel, prior))).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, config: NetworkConfig) -> None:
        super().__init__()
        self.norm1 = ChannelNorm(dim, config.layer_norm)
        self.attn = TransposedAttention(dim, heads, config.bias, config.prior)
        self.norm2 = ChannelNorm(dim, config.layer_norm)
        self.ffn = GatedFeedForward(dim, config.ffn_expansion_factor, config.bias, config.prior)

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), prior)
        return x + self.ffn(self.norm2(x), prior)


class Stage(nn.Sequential):
    """Transformer blocks in a row, each given the prior."""

    def __init__(self, count: int, dim: int, heads: int, config: NetworkConfig) -> None:
        super().__init__(*(TransformerBlock(dim, heads, config) for _ in range(count)))

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for block in self:
            x = block(x, prior)
        return x


class _Projection(nn.Module):
    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class _Resample(nn.Module):
    """A 3x3 convolution, then a pixel (un)shuffle: halves or doubles the resolution."""

    def __init__(self, channels: int, out_channels: int, shuffle: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, out_channels, 3, padding=1, bias=False), shuffle)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class Restormer(nn.Module):
    """The restorer: a four-level Transformer U-Net (levels 1..4 at dim, 2, 4, 8 × dim channels), a refinement
    stage and a ×4 pixel-shuffle tail; it adds its output to the input picture upsampled to the output size."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        dim, blocks, heads = config.dim, config.num_blocks, config.heads
        self.patch_embed = _Projection(config.image_channels * config.unshuffle**2, dim)
        self.encoder_level1 = Stage(blocks[0], dim, heads[0], config)
        self.down1_2 = _Resample(dim, dim // 2, nn.PixelUnshuffle(2))
        self.encoder_level2 = Stage(blocks[1], 2 * dim, heads[1], config)
        self.down2_3 = _Resample(2 * dim, dim, nn.PixelUnshuffle(2))
        self.encoder_level3 = Stage(blocks[2], 4 * dim, heads[2], config)
        self.down3_4 = _Resample(4 * dim, 2 * dim, nn.PixelUnshuffle(2))
        self.latent = Stage(blocks[3], 8 * dim, heads[3], config)
        self.up4_3 = _Resample(8 * dim, 16 * dim, nn.PixelShuffle(2))
        self.reduce_chan_level3 = nn.Conv2d(8 * dim, 4 * dim, 1, bias=config.bias)
        self.decoder_level3 = Stage(blocks[2], 4 * dim, heads[2], config)
        self.up3_2 = _Resample(4 * dim, 8 * dim, nn.PixelShuffle(2))
        self.reduce_chan_level2 = nn.Conv2d(4 * dim, 2 * dim, 1, bias=config.bias)
        self.decoder_level2 = Stage(blocks[1], 2 * dim, heads[1], config)
        self.up2_1 = _Resample(2 * dim, 4 * dim, nn.PixelShuffle(2))
        self.decoder_level1 = Stage(blocks[0], 2 * dim, heads[0], config)
        self.refinement = Stage(config.num_refinement_blocks, 2 * dim, heads[0], config)
        upsample = nn.Sequential(_conv(2 * dim, 8 * dim), nn.PixelShuffle(2), _conv(2 * dim, 8 * dim), nn.PixelShuffle(2))
        self.tail = nn.Sequential(upsample, _conv(2 * dim, 3))

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        level1 = self.encoder_level1(self.patch_embed(F.pixel_unshuffle(x, self.config.unshuffle)), prior)
        level2 = self.encoder_level2(self.down1_2(level1), prior)
        level3 = self.encoder_level3(self.down2_3(level2), prior)
        y = self.latent(self.down3_4(level3), prior)
        y = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(y), level3], 1)), prior)
        y = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(y), level2], 1)), prior)
        y = self.refinement(self.decoder_level1(torch.cat([self.up2_1(y), level1], 1), prior), prior)
        return self.tail(y) + F.interpolate(x[:, :3], scale_factor=self.config.scale, mode="nearest")


# -- the compact prior -------------------------------------------------------------------


class _ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels), nn.LeakyReLU(0.1, True), _conv(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PriorExtractor(nn.Module):
    """CPEN: convolutions and residual blocks pooled to one vector, then an MLP: the compact prior.

    ``with_truth`` (stage 1) also takes the ground truth, unshuffled by 4 to the features' resolution.
    """

    def __init__(self, config: NetworkConfig, with_truth: bool) -> None:
        super().__init__()
        self.config, self.with_truth = config, with_truth
        n = config.n_feats
        channels = config.image_channels * config.unshuffle**2 + (48 if with_truth else 0)
        act = [nn.LeakyReLU(0.1, True)]
        layers = [_conv(channels, n), *act, *(_ResBlock(n) for _ in range(config.n_encoder_res)),
                  _conv(n, 2 * n), *act, _conv(2 * n, 2 * n), *act, _conv(2 * n, 4 * n), *act, nn.AdaptiveAvgPool2d(1)]
        self.E = nn.Sequential(*layers)
        self.mlp = nn.Sequential(nn.Linear(4 * n, 4 * n), *act, nn.Linear(4 * n, 4 * n), *act)

    def forward(self, x: torch.Tensor, truth: torch.Tensor | None = None) -> torch.Tensor:
        features = F.pixel_unshuffle(x, self.config.unshuffle)
        if self.with_truth:
            features = torch.cat([features, F.pixel_unshuffle(truth, 4)], dim=1)
        return self.mlp(self.E(features).flatten(1))


class _MlpLayer(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.resmlp = nn.Sequential(nn.Linear(width, width), nn.LeakyReLU(0.1, True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resmlp(x)


class PriorDenoiser(nn.Module):
    """Predicts the clean prior from a noisy one, the step and the input's CPEN vector."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        width = config.prior
        self.period = config.timesteps * 10
        self.resmlp = nn.Sequential(nn.Linear(2 * width + 1, width), nn.LeakyReLU(0.1, True),
                                    *(_MlpLayer(width) for _ in range(config.n_denoise_res)))

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        step = (t.float() / self.period).view(-1, 1)
        return self.resmlp(torch.cat([condition, step, x], dim=1))


SCHEDULE = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
            "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
            "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
            "posterior_mean_coef1", "posterior_mean_coef2")


def _schedule(config: NetworkConfig) -> dict[str, torch.Tensor]:
    """The DDPM schedule (betas linear in their square root, as latent diffusion's "linear") and its derived terms."""
    betas = torch.linspace(config.linear_start**0.5, config.linear_end**0.5, config.timesteps, dtype=torch.float64) ** 2
    alphas = 1 - betas
    bar = torch.cumprod(alphas, 0)
    prev = torch.cat([bar.new_ones(1), bar[:-1]])
    variance = betas * (1 - prev) / (1 - bar)
    values = {"betas": betas, "alphas_cumprod": bar, "alphas_cumprod_prev": prev, "sqrt_alphas_cumprod": bar.sqrt(),
              "sqrt_one_minus_alphas_cumprod": (1 - bar).sqrt(), "log_one_minus_alphas_cumprod": (1 - bar).log(),
              "sqrt_recip_alphas_cumprod": (1 / bar).sqrt(), "sqrt_recipm1_alphas_cumprod": (1 / bar - 1).sqrt(),
              "posterior_variance": variance, "posterior_log_variance_clipped": variance.clamp(min=1e-20).log(),
              "posterior_mean_coef1": betas * prev.sqrt() / (1 - bar),
              "posterior_mean_coef2": (1 - prev) * alphas.sqrt() / (1 - bar)}
    return {name: values[name].float() for name in SCHEDULE}


class PriorDiffusion(nn.Module):
    """Estimates the compact prior from the input alone: the denoiser predicts the clean prior at each of the
    ``timesteps`` steps and the posterior mean (no added noise) takes the next, from pure noise at inference, from
    the stage-1 prior noised to the last step in training."""

    def __init__(self, denoiser: PriorDenoiser, condition: PriorExtractor, config: NetworkConfig) -> None:
        super().__init__()
        self.model, self.condition = denoiser, condition
        self.timesteps = config.timesteps
        for name, value in _schedule(config).items():
            self.register_buffer(name, value)

    def forward(self, x: torch.Tensor, start: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """The estimated prior for input ``x``; ``start`` is the stage-1 prior to train against (noised)."""
        n, last = x.shape[0], self.timesteps - 1
        width = self.condition.config.prior
        noise = torch.randn((n, width), generator=generator, dtype=x.dtype).to(x.device)
        if start is None:
            prior = noise
        else:
            prior = self.sqrt_alphas_cumprod[last] * start + self.sqrt_one_minus_alphas_cumprod[last] * noise
        condition = self.condition(x)
        for t in range(last, -1, -1):
            clean = self.model(prior, torch.full((n,), t, device=x.device), condition)
            prior = self.posterior_mean_coef1[t] * clean + self.posterior_mean_coef2[t] * prior
        return prior


class StageOne(nn.Module):
    """Stage 1: the restorer ``G`` with a prior extracted from the input and the ground truth by ``E``."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.G = Restormer(config)
        self.E = PriorExtractor(config, with_truth=True)

    def forward(self, x: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        prior = self.E(x, truth)
        return self.G(x, prior), prior


class StageTwo(nn.Module):
    """Stage 2 (what restores): the restorer ``G`` with the prior estimated by ``diffusion`` from the input alone.

    ``condition`` and ``denoise`` are the diffusion's parts, registered twice as the released code does (so its
    checkpoints hold them under both names).
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.G = Restormer(config)
        self.condition = PriorExtractor(config, with_truth=False)
        self.denoise = PriorDenoiser(config)
        self.diffusion = PriorDiffusion(self.denoise, self.condition, config)

    def forward(self, x: torch.Tensor, start: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        prior = self.diffusion(x, start, generator)
        return self.G(x, prior), prior


#: prefixes of the second names stage 2's shared parts have in a state dict
ALIASES = {"diffusion.model.": "denoise.", "diffusion.condition.": "condition."}


def unique_state(model: StageTwo) -> dict[str, torch.Tensor]:
    """``model``'s state without the second names of its shared parts (what llmga saves)."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith(tuple(ALIASES))}


def with_aliases(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A saved stage-2 state completed with the second names of its shared parts (as ``state_dict`` gives)."""
    out = dict(state)
    for alias, name in ALIASES.items():
        out.update({alias + k[len(name):]: v for k, v in state.items() if k.startswith(name)})
    return out


# -- reading a configuration back from weights ----------------------------------------------

#: the restorer's input channels (after unshuffling) -> (scale, reference)
_INPUTS = {NetworkConfig(scale=s, reference=r).image_channels * (4 // s) ** 2: (s, r)
           for s in SCALES for r in (True, False)}


def _count(state: dict, prefix: str, child: str | None = None) -> int:
    """How many numbered children ``prefix`` N has in the state (only those with the key ``prefix`` N.``child``)."""
    found = set()
    for key in state:
        number, _, rest = key[len(prefix):].partition(".")
        if key.startswith(prefix) and number.isdigit() and child in (None, rest):
            found.add(number)
    return len(found)


def _expansion(state: dict, dim: int) -> float:
    """The feed-forward expansion factor every level's hidden width agrees with (a round one where possible)."""
    low, high = 0.0, math.inf
    for level, prefix in enumerate(("encoder_level1", "encoder_level2", "encoder_level3", "latent")):
        key = f"G.{prefix}.0.ffn.project_in.weight"
        if key in state:
            width, hidden = dim * 2**level, state[key].shape[0] // 2
            low, high = max(low, hidden / width), min(high, (hidden + 1) / width)
    for digits in (1, 2, 3):
        value = math.ceil(low * 10**digits) / 10**digits
        if value < high:
            return value
    return (low + high) / 2


def infer_config(state: dict[str, torch.Tensor]) -> NetworkConfig:
    """The configuration of a stage-2 state dict saved by llmga or by the released code."""
    if "G.patch_embed.proj.weight" not in state:
        raise InvalidInputError("these weights are not a DiffRIR/DiffIR restorer (no G.patch_embed)")
    if "E.mlp.0.weight" in state and "condition.mlp.0.weight" not in state:
        raise InvalidInputError("these are stage-1 weights (their prior needs the ground truth); "
                                "restore with a stage-2 or GAN-stage checkpoint")
    embed = state["G.patch_embed.proj.weight"]
    if embed.shape[1] not in _INPUTS:
        raise InvalidInputError(f"a restorer taking {embed.shape[1]} input channels is neither DiffRIR nor DiffIR "
                                "at ×1, ×2 or ×4")
    scale, reference = _INPUTS[embed.shape[1]]
    dim = embed.shape[0]
    levels = ("encoder_level1", "encoder_level2", "encoder_level3", "latent")
    betas = state.get("diffusion.betas")
    return NetworkConfig(
        scale=scale, reference=reference, dim=dim,
        num_blocks=tuple(_count(state, f"G.{p}.") for p in levels),
        num_refinement_blocks=_count(state, "G.refinement."),
        heads=tuple(state[f"G.{p}.0.attn.temperature"].shape[0] for p in levels),
        ffn_expansion_factor=_expansion(state, dim),
        bias="G.encoder_level1.0.attn.qkv.bias" in state,
        layer_norm="WithBias" if "G.encoder_level1.0.norm1.body.bias" in state else "BiasFree",
        n_encoder_res=_count(state, "condition.E.", "body.0.weight"),
        n_feats=state["condition.mlp.0.weight"].shape[0] // 4,
        n_denoise_res=_count(state, "denoise.resmlp.", "resmlp.0.weight"),
        timesteps=len(betas) if betas is not None else 4,
        linear_start=round(float(betas[0]), 6) if betas is not None else 0.1,
        linear_end=round(float(betas[-1]), 6) if betas is not None else 0.99,
    )
