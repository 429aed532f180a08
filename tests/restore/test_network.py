"""The DiffRIR network: released checkpoints load strictly, every scale runs, the configuration reads back."""

import math

import pytest
import torch

from llmga.errors import InvalidInputError
from llmga.restore import RELEASED, NetworkConfig, Restorer, StageOne, StageTwo
from llmga.restore.network import infer_config, network_input

TINY = dict(dim=8, num_blocks=(1, 2, 1, 1), num_refinement_blocks=2, heads=(1, 2, 2, 4), n_encoder_res=2, n_feats=4)


# -- a reference builder: the released code's parameter names and shapes, written from its naming ---------------

def _released_block(prefix, dim, heads, ffn, prior):
    hidden = int(dim * ffn)
    return {f"{prefix}.norm1.body.weight": (dim,), f"{prefix}.attn.temperature": (heads, 1, 1),
            f"{prefix}.attn.kernel.0.weight": (2 * dim, prior), f"{prefix}.attn.qkv.weight": (3 * dim, dim, 1, 1),
            f"{prefix}.attn.qkv_dwconv.weight": (3 * dim, 1, 3, 3), f"{prefix}.attn.project_out.weight": (dim, dim, 1, 1),
            f"{prefix}.norm2.body.weight": (dim,), f"{prefix}.ffn.project_in.weight": (2 * hidden, dim, 1, 1),
            f"{prefix}.ffn.dwconv.weight": (2 * hidden, 1, 3, 3), f"{prefix}.ffn.project_out.weight": (dim, hidden, 1, 1),
            f"{prefix}.ffn.kernel.0.weight": (2 * dim, prior)}


def _released_cpen(prefix, in_ch, n_feats, n_res):
    shapes = {f"{prefix}.E.0.weight": (n_feats, in_ch, 3, 3), f"{prefix}.E.0.bias": (n_feats,)}
    for i in range(n_res):  # E1 is a conv and a LeakyReLU; each ResBlock's body: conv, act, conv
        for j in (0, 2):
            shapes[f"{prefix}.E.{2 + i}.body.{j}.weight"] = (n_feats, n_feats, 3, 3)
            shapes[f"{prefix}.E.{2 + i}.body.{j}.bias"] = (n_feats,)
    for j, (cin, cout) in zip((0, 2, 4), ((1, 2), (2, 2), (2, 4))):
        shapes[f"{prefix}.E.{2 + n_res + j}.weight"] = (n_feats * cout, n_feats * cin, 3, 3)
        shapes[f"{prefix}.E.{2 + n_res + j}.bias"] = (n_feats * cout,)
    for j in (0, 2):
        shapes[f"{prefix}.mlp.{j}.weight"] = (4 * n_feats, 4 * n_feats)
        shapes[f"{prefix}.mlp.{j}.bias"] = (4 * n_feats,)
    return shapes


def released_shapes(stage, scale, n_encoder_res, dim, num_blocks, num_refinement_blocks, heads, ffn_expansion_factor,
                    n_feats=64, n_denoise_res=1, timesteps=4):
    """Names and shapes of DiffRIRS1/DiffRIRS2 as the released S1_arch.py/S2_arch.py build them (bias=False,
    BiasFree); ``n_feats`` is 64 there (hard-coded), a parameter here for small tests."""
    prior = 4 * n_feats
    g_in = {1: 96, 2: 60, 4: 51}[scale]  # DIRformer's inp_channels by scale
    shapes = {"G.patch_embed.proj.weight": (dim, g_in, 3, 3)}
    levels = [("encoder_level1", dim, 0), ("encoder_level2", 2 * dim, 1), ("encoder_level3", 4 * dim, 2),
              ("latent", 8 * dim, 3), ("decoder_level3", 4 * dim, 2), ("decoder_level2", 2 * dim, 1),
              ("decoder_level1", 2 * dim, 0)]
    for name, width, level in levels:
        for i in range(num_blocks[level]):
            shapes.update(_released_block(f"G.{name}.{i}", width, heads[level], ffn_expansion_factor, prior))
    for i in range(num_refinement_blocks):
        shapes.update(_released_block(f"G.refinement.{i}", 2 * dim, heads[0], ffn_expansion_factor, prior))
    for name, cin, cout in (("down1_2", dim, dim // 2), ("down2_3", 2 * dim, dim), ("down3_4", 4 * dim, 2 * dim),
                            ("up4_3", 8 * dim, 16 * dim), ("up3_2", 4 * dim, 8 * dim), ("up2_1", 2 * dim, 4 * dim)):
        shapes[f"G.{name}.body.0.weight"] = (cout, cin, 3, 3)
    shapes["G.reduce_chan_level3.weight"] = (4 * dim, 8 * dim, 1, 1)
    shapes["G.reduce_chan_level2.weight"] = (2 * dim, 4 * dim, 1, 1)
    for j in (0, 2):  # common.Upsampler(default_conv, 4, 2*dim): conv, PixelShuffle, conv, PixelShuffle
        shapes[f"G.tail.0.{j}.weight"], shapes[f"G.tail.0.{j}.bias"] = (8 * dim, 2 * dim, 3, 3), (8 * dim,)
    shapes["G.tail.1.weight"], shapes["G.tail.1.bias"] = (3, 2 * dim, 3, 3), (3,)
    if stage == 1:
        shapes.update(_released_cpen("E", {1: 144, 2: 108, 4: 99}[scale], n_feats, n_encoder_res))
        return shapes
    cpen = _released_cpen("condition", g_in, n_feats, n_encoder_res)
    denoise = {"denoise.resmlp.0.weight": (prior, 2 * prior + 1), "denoise.resmlp.0.bias": (prior,)}
    for i in range(n_denoise_res):
        denoise[f"denoise.resmlp.{2 + i}.resmlp.0.weight"] = (prior, prior)
        denoise[f"denoise.resmlp.{2 + i}.resmlp.0.bias"] = (prior,)
    shapes.update(cpen)
    shapes.update(denoise)
    shapes.update({"diffusion.model." + k[len("denoise."):]: v for k, v in denoise.items()})
    shapes.update({"diffusion.condition." + k[len("condition."):]: v for k, v in cpen.items()})
    for name in ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
                 "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
                 "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2"):
        shapes[f"diffusion.{name}"] = (timesteps,)
    return shapes


def released_checkpoint(path, shapes, linear=(0.1, 0.99)):
    """A checkpoint as the released code saves it (``params_ema`` and ``params``), random weights."""
    generator = torch.Generator().manual_seed(0)
    state = {k: torch.randn(shape, generator=generator) * 0.02 for k, shape in shapes.items()}
    if "diffusion.betas" in state:
        n = state["diffusion.betas"].shape[0]
        betas = torch.linspace(math.sqrt(linear[0]), math.sqrt(linear[1]), n, dtype=torch.float64) ** 2
        state["diffusion.betas"] = betas.float()
        state["diffusion.posterior_mean_coef1"] = torch.rand(n) * 0.5
        state["diffusion.posterior_mean_coef2"] = torch.rand(n) * 0.5
    torch.save({"params_ema": state, "params": state}, path)
    return path


# -- the tests ----------------------------------------------------------------------------------------------------


def test_a_released_size_checkpoint_loads_strictly_and_restores(tmp_path):
    shapes = released_shapes(2, 1, n_encoder_res=9, dim=64, num_blocks=[13, 1, 1, 1], num_refinement_blocks=13,
                             heads=[1, 2, 4, 8], ffn_expansion_factor=2.2)
    path = released_checkpoint(tmp_path / "net_g_latest.pth", shapes)
    ours = StageTwo(RELEASED).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == shapes
    restorer = Restorer.load(path)
    assert restorer.config == RELEASED
    from PIL import Image

    picture = Image.new("RGB", (40, 24), (90, 120, 200))
    mask = Image.new("L", (40, 24), 0)
    mask.paste(255, (30, 0, 40, 24))
    assert restorer.restore(picture, picture, mask).size == (40, 24)


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_every_scale_loads_released_names_and_scales_the_picture(tmp_path, scale):
    sizes = dict(n_encoder_res=2, dim=8, num_blocks=[1, 2, 1, 1], num_refinement_blocks=2, heads=[1, 2, 2, 4],
                 ffn_expansion_factor=2.66, n_feats=4)
    config = NetworkConfig(scale=scale, ffn_expansion_factor=2.66, **TINY)
    assert {k: tuple(v.shape) for k, v in StageOne(config).state_dict().items()} == released_shapes(1, scale, **sizes)
    restorer = Restorer.load(released_checkpoint(tmp_path / "x.pth", released_shapes(2, scale, **sizes)))
    assert restorer.config == config
    lq = torch.rand(1, 3, 24 // scale * 2, 40 // scale * 2)
    truth = torch.rand(1, 3, lq.shape[2] * scale, lq.shape[3] * scale)
    x = network_input(lq, truth, scale)
    assert x.shape[1] == {1: 6, 2: 15, 4: 51}[scale]
    mask = torch.ones(1, 1, *truth.shape[-2:])
    assert restorer.restore_tensor(lq, truth, mask).shape == truth.shape


def test_diffir_without_reference_takes_three_channels_and_reads_back():
    config = NetworkConfig(reference=False, **TINY)
    net = StageTwo(config)
    assert net.state_dict()["G.patch_embed.proj.weight"].shape[1] == 48
    assert infer_config(net.state_dict()) == config
    out, prior = net(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 3, 32, 32) and prior.shape == (2, 16)


def test_stage_one_weights_are_refused_for_restoring(tmp_path):
    sizes = dict(n_encoder_res=2, dim=8, num_blocks=[1, 2, 1, 1], num_refinement_blocks=2, heads=[1, 2, 2, 4],
                 ffn_expansion_factor=2.66, n_feats=4)
    path = released_checkpoint(tmp_path / "s1.pth", released_shapes(1, 1, **sizes))
    with pytest.raises(InvalidInputError, match="stage-1"):
        Restorer.load(path)


def test_the_prior_estimate_starts_from_the_stage_one_prior_in_training():
    net = StageTwo(NetworkConfig(**TINY))
    x = torch.rand(2, 6, 32, 32)
    fixed = torch.Generator().manual_seed(1)
    a = net.diffusion(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, net.diffusion(x, generator=fixed))
    start = torch.randn(2, 16)
    assert not torch.allclose(net.diffusion(x, start, torch.Generator().manual_seed(1)), a)


def test_bad_configurations_are_refused():
    with pytest.raises(InvalidInputError, match="×3"):
        NetworkConfig(scale=3)
    with pytest.raises(InvalidInputError, match="heads"):
        NetworkConfig(dim=6, heads=(4, 1, 1, 1))
