"""D1 (kornia's real-world degradations), D2 (colour) and the masked reference."""

import torch

from llmga.restore import degradation


def test_colour_degradation_stays_within_the_papers_ranges():
    x = torch.full((64, 3, 4, 4), 0.5)
    out = degradation.colour(x, torch.Generator().manual_seed(0))
    means = out.mean(dim=(1, 2, 3))
    # c1 * 0.5 + c2 with c1 in [0.94, 1.06], c2 in [-0.05, 0.05]: 0.42 .. 0.58
    assert means.min() >= 0.42 - 1e-3 and means.max() <= 0.58 + 1e-3 and means.std() > 0.01


def test_real_world_degradation_is_seeded_scaled_and_quantised():
    gt = torch.rand(2, 3, 64, 64)
    a = degradation.real_world(gt, torch.Generator().manual_seed(3))
    assert torch.equal(a, degradation.real_world(gt, torch.Generator().manual_seed(3)))
    assert a.shape == gt.shape and torch.equal(a, (a * 255).round() / 255)
    assert (a - gt).abs().mean() > 0.01
    assert degradation.real_world(gt, torch.Generator().manual_seed(3), scale=4).shape == (2, 3, 16, 16)
    world = degradation.real_world(gt[..., :32, :32], torch.Generator().manual_seed(1), degradation.WORLD)
    assert world.shape == (2, 3, 32, 32)


def test_blur_kernels_sum_to_one_and_the_reference_hides_the_painted_part():
    kernels = degradation.blur_kernels(5, (0.5, 2.0), 0.5, (7, 21), torch.Generator().manual_seed(0))
    assert torch.allclose(kernels.sum(dim=(1, 2)), torch.ones(5), atol=1e-5)
    gt, mask = torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 8)
    mask[..., 4:] = 1
    reference = degradation.masked_reference(gt, mask)
    assert torch.equal(reference[..., :4], gt[..., :4]) and reference[..., 4:].abs().sum() == 0
