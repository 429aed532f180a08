"""Training degradations: D1 (Real-ESRGAN's second-order real-world degradation), D2 (colour) and the reference.

The paper trains DiffRIR on ``I_LQ = D2(D1(I_GT))``:

- **D1** (:func:`real_world`), as Real-ESRGAN and the released code: twice in a
  row, a blur kernel (isotropic or rotated anisotropic Gaussian, sometimes a
  sinc), a random resize (up, down or kept, by area, bilinear or bicubic),
  Gaussian or Poisson noise (colour or grey) and JPEG compression; then the
  picture goes back to its size (divided by the scale) with a last sinc filter,
  before or after the last JPEG. Kernels come from ``kornia.filters`` and
  ``kornia.geometry``, filtering from ``kornia.filters.filter2d``, resizing
  from ``kornia.geometry.transform.resize`` and JPEG from
  ``kornia.enhance.jpeg_codec_differentiable``; only the sinc kernel (a Bessel
  function) and the noise draws are written here. Real-ESRGAN's generalised
  Gaussian and plateau kernels are left out.
- **D2** (:func:`colour`): ``c1 * x + c2``, contrast gain ``c1`` in [0.94, 1.06]
  and brightness bias ``c2`` in [-0.05, 0.05], per picture: what lets the
  restorer correct the brightness and contrast that a painter shifts.
- the **masked reference** (:func:`masked_reference`): ``(1 - M) * I_GT``.

Pictures are NCHW float tensors in [0, 1]; every draw comes from the given
``torch.Generator``, so a seed repeats a batch. :data:`RELEASED` holds the
released ranges; :data:`WORLD` milder ones for the world's 32-pixel pictures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from kornia.enhance import jpeg_codec_differentiable
from kornia.filters import filter2d, get_gaussian_kernel2d
from kornia.geometry.transform import resize, rotate

Range = tuple[float, float]


@dataclass(frozen=True)
class Degradation:
    """The ranges of D1, per order (first, second), as the released training options name them."""

    kernel_sizes: tuple[int, int] = (7, 21)
    blur_sigma: Range = (0.2, 3.0)
    blur_sigma2: Range = (0.2, 1.5)
    second_blur_prob: float = 0.8
    aniso_prob: float = 0.5
    sinc_prob: float = 0.1
    sinc_prob2: float = 0.1
    final_sinc_prob: float = 0.8
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: Range = (0.15, 1.5)
    resize_prob2: tuple[float, float, float] = (0.3, 0.4, 0.3)
    resize_range2: Range = (0.3, 1.2)
    gaussian_noise_prob: float = 0.5
    noise_range: Range = (1.0, 30.0)
    poisson_scale_range: Range = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    gaussian_noise_prob2: float = 0.5
    noise_range2: Range = (1.0, 25.0)
    poisson_scale_range2: Range = (0.05, 2.5)
    gray_noise_prob2: float = 0.4
    jpeg_range: Range = (30.0, 95.0)
    jpeg_range2: Range = (30.0, 95.0)


RELEASED = Degradation()
#: the world's pictures are 32 pixels: smaller kernels, gentler resizing, noise and compression
WORLD = Degradation(kernel_sizes=(3, 7), blur_sigma=(0.2, 1.2), blur_sigma2=(0.2, 0.8), resize_range=(0.5, 1.5),
                    resize_range2=(0.6, 1.2), noise_range=(1.0, 12.0), noise_range2=(1.0, 8.0),
                    poisson_scale_range=(0.05, 1.0), poisson_scale_range2=(0.05, 0.8), jpeg_range=(50.0, 95.0),
                    jpeg_range2=(60.0, 95.0))
#: D2's ranges: contrast gain and brightness bias
CONTRAST, BRIGHTNESS = (0.94, 1.06), (-0.05, 0.05)
MODES = ("area", "bilinear", "bicubic")


def _uniform(n: int, bounds: Range, generator: torch.Generator) -> torch.Tensor:
    return bounds[0] + (bounds[1] - bounds[0]) * torch.rand(n, generator=generator)


def _chance(p: float, generator: torch.Generator, n: int | None = None) -> torch.Tensor | bool:
    draw = torch.rand(n or 1, generator=generator) < p
    return draw if n else bool(draw)


def _pick(options, generator: torch.Generator, weights=None):
    weights = torch.tensor(weights if weights is not None else [1.0] * len(options), dtype=torch.float)
    return options[int(torch.multinomial(weights, 1, generator=generator))]


def _odd_size(sizes: tuple[int, int], generator: torch.Generator) -> int:
    return 2 * int(torch.randint(sizes[0] // 2, sizes[1] // 2 + 1, (1,), generator=generator)) + 1


def sinc_kernel(cutoff: torch.Tensor, size: int) -> torch.Tensor:
    """Circular low-pass (sinc) kernels, one per cutoff frequency (radians per pixel), ``(n, size, size)``."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    radius = torch.sqrt(r[None, :] ** 2 + r[:, None] ** 2)[None]
    omega = cutoff.double()[:, None, None]
    centre = omega / (2 * math.pi)  # the limit of the expression below at radius 0
    safe = radius.clamp(min=1e-8)
    kernel = torch.where(radius > 1e-8, omega * torch.special.bessel_j1(omega * safe) / (2 * math.pi * safe), centre)
    return (kernel / kernel.sum(dim=(1, 2), keepdim=True)).float()


def blur_kernels(n: int, sigma: Range, sinc_prob: float, sizes: tuple[int, int],
                 generator: torch.Generator, aniso_prob: float = 0.5) -> torch.Tensor:
    """One blur kernel per picture: a Gaussian (isotropic, or anisotropic turned by a random angle), or with
    ``sinc_prob`` a sinc. One odd size per batch, drawn from ``sizes``."""
    size = _odd_size(sizes, generator)
    sx = _uniform(n, sigma, generator)
    sy = torch.where(_chance(aniso_prob, generator, n), _uniform(n, sigma, generator), sx)
    gauss = get_gaussian_kernel2d((size, size), torch.stack([sx, sy], dim=1))
    angle = _uniform(n, (-180.0, 180.0), generator)
    gauss = rotate(gauss[:, None], angle, mode="bilinear")[:, 0]
    gauss = gauss / gauss.sum(dim=(1, 2), keepdim=True)
    low = math.pi / 3 if size < 13 else math.pi / 5
    sinc = sinc_kernel(_uniform(n, (low, math.pi), generator), size)
    return torch.where(_chance(sinc_prob, generator, n)[:, None, None], sinc, gauss)


def _noise(x: torch.Tensor, gaussian_prob: float, sigma: Range, poisson: Range, gray_prob: float,
           generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise (sigma in 8-bit levels) or Poisson noise (scaled), colour or grey per picture."""
    n = x.shape[0]
    gray = _chance(gray_prob, generator, n)[:, None, None, None]
    if _chance(gaussian_prob, generator):
        draw = torch.randn(x.shape, generator=generator)
        draw = torch.where(gray, draw[:, :1].expand_as(draw), draw)
        noise = draw * (_uniform(n, sigma, generator) / 255)[:, None, None, None]
    else:
        levels = 255.0
        colour = torch.poisson(x.clamp(0, 1) * levels, generator=generator) / levels - x
        luma = x.mean(dim=1, keepdim=True).clamp(0, 1)
        grey = (torch.poisson(luma * levels, generator=generator) / levels - luma).expand_as(x)
        noise = torch.where(gray, grey, colour) * _uniform(n, poisson, generator)[:, None, None, None]
    return (x + noise).clamp(0, 1)


def _resized(x: torch.Tensor, size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    mode = _pick(MODES, generator)
    size = (max(1, size[0]), max(1, size[1]))
    return resize(x, size, interpolation=mode, antialias=mode != "area" and size[0] < x.shape[-2])


def _jpeg(x: torch.Tensor, bounds: Range, generator: torch.Generator) -> torch.Tensor:
    return jpeg_codec_differentiable(x.clamp(0, 1), _uniform(x.shape[0], bounds, generator)).clamp(0, 1)


def real_world(gt: torch.Tensor, generator: torch.Generator, config: Degradation = RELEASED,
               scale: int = 1) -> torch.Tensor:
    """D1: the second-order real-world degradation of ``gt``, down to ``1/scale`` of its size, in 8-bit levels."""
    n, _, h, w = gt.shape
    c = config
    out = filter2d(gt, blur_kernels(n, c.blur_sigma, c.sinc_prob, c.kernel_sizes, generator, c.aniso_prob),
                   border_type="reflect")
    for order, (probs, bounds) in enumerate(((c.resize_prob, c.resize_range), (c.resize_prob2, c.resize_range2))):
        if order == 1:
            out = _jpeg(out, c.jpeg_range, generator)
            if _chance(c.second_blur_prob, generator):
                kernels = blur_kernels(n, c.blur_sigma2, c.sinc_prob2, c.kernel_sizes, generator, c.aniso_prob)
                out = filter2d(out, kernels, border_type="reflect")
        way = _pick(("up", "down", "keep"), generator, probs)
        factor = {"up": (1.0, bounds[1]), "down": (bounds[0], 1.0), "keep": (1.0, 1.0)}[way]
        s = float(_uniform(1, factor, generator))
        base = (h / scale, w / scale) if order == 1 else (out.shape[-2], out.shape[-1])
        out = _resized(out, (int(base[0] * s), int(base[1] * s)), generator)
        noise = ((c.gaussian_noise_prob, c.noise_range, c.poisson_scale_range, c.gray_noise_prob) if order == 0 else
                 (c.gaussian_noise_prob2, c.noise_range2, c.poisson_scale_range2, c.gray_noise_prob2))
        out = _noise(out, *noise, generator)
    target = (h // scale, w // scale)
    final = (sinc_kernel(_uniform(n, (math.pi / 3, math.pi), generator), _odd_size(c.kernel_sizes, generator))
             if _chance(c.final_sinc_prob, generator) else None)

    def back(x: torch.Tensor) -> torch.Tensor:
        x = _resized(x, target, generator)
        return filter2d(x, final, border_type="reflect") if final is not None else x

    out = _jpeg(back(out), c.jpeg_range2, generator) if _chance(0.5, generator) else back(_jpeg(out, c.jpeg_range2,
                                                                                            generator))
    return quantised(out)


def colour(x: torch.Tensor, generator: torch.Generator, contrast: Range = CONTRAST,
           brightness: Range = BRIGHTNESS) -> torch.Tensor:
    """D2: ``c1 * x + c2`` per picture (contrast gain ``c1``, brightness bias ``c2``), clamped to [0, 1]."""
    n = x.shape[0]
    gain = _uniform(n, contrast, generator)[:, None, None, None]
    bias = _uniform(n, brightness, generator)[:, None, None, None]
    return quantised(x * gain + bias)


def quantised(x: torch.Tensor) -> torch.Tensor:
    """Clamped to [0, 1] and rounded to 8-bit levels, as a saved picture is."""
    return (x.clamp(0, 1) * 255).round() / 255


def masked_reference(gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The reference DiffRIR sees: the ground truth where it is kept, black where it is painted (``mask`` 1)."""
    return (1 - mask) * gt
