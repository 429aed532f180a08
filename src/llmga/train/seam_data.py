"""Training pairs for DiffRIR: an image folder, inpainting/outpainting masks, real seams and the degradations.

Each batch holds ground-truth crops ``gt``, masks ``mask`` (1: painted) and the
low-quality inputs ``lq``, made as the paper makes them, ``D2(D1(I_GT))``
(:mod:`llmga.restore.degradation`), and, where a painter is given, from *real*
seams: a share of the pictures is inpainted or outpainted once by the painter
under its mask (cached as PNGs under ``painted/``, so a rerun paints only what is
missing) and those paintings, lightly degraded half the time and colour-shifted
by D2, are the input. Masks are drawn as for inpainting and outpainting
(:func:`llmga.masks.random_mask`: brush strokes, boxes and borders). A share of
the inputs has its kept region replaced by the ground truth (as a composited
painting shows it), so the restorer learns to correct from the seam alone too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import masks
from ..data.eval_sets import read_image_folder
from ..images import load_image
from ..restore import degradation
from ..restore.restorer import to_tensor


@dataclass
class SeamConfig:
    """Where pictures come from and how their inputs are made."""

    images: str
    size: int = 64
    scale: int = 1
    batch_size: int = 8
    degradation: str = "released"  # or "world"
    colour: bool = True
    painter: str | None = None
    painted: int = 0
    painted_share: float = 0.5
    #: where the paintings are cached (default: the run folder's ``painted/``; runs may share one)
    painted_dir: str | None = None
    composite_share: float = 0.5
    seed: int = 0


def _crop(image: Image.Image, size: int, rng: random.Random) -> Image.Image:
    """A random ``size`` square of ``image`` (scaled up first when it is smaller), flipped half the time."""
    if min(image.size) < size:
        ratio = size / min(image.size)
        image = image.resize((max(size, round(image.width * ratio)), max(size, round(image.height * ratio))),
                             Image.Resampling.BICUBIC)
    left, top = rng.randint(0, image.width - size), rng.randint(0, image.height - size)
    crop = image.crop((left, top, left + size, top + size))
    return crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop


def _mask(size: int, rng: random.Random) -> Image.Image:
    """An inpainting or outpainting mask (never empty)."""
    while True:
        drawn = masks.random_mask((size, size), rng).image
        if drawn.getbbox() is not None:
            return drawn


def _paths(folder: Path, index: int) -> tuple[Path, Path]:
    return folder / f"{index:06d}-painted.png", folder / f"{index:06d}-mask.png"


def paint_seams(config: SeamConfig, out: Path, log=print) -> list[int]:
    """Inpaint/outpaint the first ``config.painted`` pictures once each with ``config.painter`` (an empty
    prompt, a mask drawn from the picture's index); return the indices painted. Resumes."""
    if not config.painter or not config.painted:
        return []
    paths = read_image_folder(config.images)[: config.painted]
    folder = Path(config.painted_dir) if config.painted_dir else out / "painted"
    folder.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(len(paths)) if not _paths(folder, i)[0].is_file()]
    if missing:
        from ..painter.inpaint import InpaintPainter
        from ..settings import PaintSettings

        painter = InpaintPainter.load(config.painter)
        for done, i in enumerate(missing, 1):
            picture = load_image(paths[i])
            mask = _mask(min(picture.size), random.Random(f"{config.seed}/seam/{i}")).resize(picture.size)
            painting = painter.paint(picture, mask, "", PaintSettings(steps=20, guidance=4.0, seed=config.seed + i))
            painted_path, mask_path = _paths(folder, i)
            mask.save(mask_path)
            painting.raw[0].save(painted_path)
            if done % 100 == 0 or done == len(missing):
                log(f"painted seams {done}/{len(missing)}")
    return list(range(len(paths)))


def batches(config: SeamConfig, out: Path, stream: str = "", start_step: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """Endless training batches ``{"lq", "gt", "mask"}``: each ``stream`` (a stage) draws its own, and a run
    resumed at ``start_step`` draws new ones."""
    paths = read_image_folder(config.images)
    painted = set(paint_seams(config, out))
    folder = Path(config.painted_dir) if config.painted_dir else out / "painted"
    rng = random.Random(f"{config.seed}/{stream}/{start_step}")
    generator = torch.Generator().manual_seed(rng.getrandbits(62))
    d1 = degradation.WORLD if config.degradation == "world" else degradation.RELEASED
    size = config.size
    while True:
        gts, sources, mask_list, real = [], [], [], []
        for _ in range(config.batch_size):
            use_painted = bool(painted) and config.scale == 1 and rng.random() < config.painted_share
            index = rng.choice(sorted(painted)) if use_painted else rng.randrange(len(paths))
            picture = load_image(paths[index])
            if use_painted:  # the same crop and flip of the picture, its painting and its mask
                painted_path, mask_path = _paths(folder, index)
                state = rng.getrandbits(64)
                gt, source, mask = (_crop(im, size, random.Random(state)) for im in (
                    picture, load_image(painted_path), Image.open(mask_path).convert("L")))
            else:
                crop_rng = random.Random(rng.getrandbits(64))
                gt = _crop(picture, size, crop_rng)
                source, mask = gt, _mask(size, crop_rng)
            gts.append(to_tensor(gt))
            sources.append(to_tensor(source))
            mask_list.append(torch.from_numpy(np.asarray(mask.convert("L")) >= 128).float()[None, None])
            real.append(use_painted)
        gt, source, mask = torch.cat(gts), torch.cat(sources), torch.cat(mask_list)
        yield make_inputs(gt, source, mask, torch.tensor(real), config, d1, generator)


def make_inputs(gt: torch.Tensor, source: torch.Tensor, mask: torch.Tensor, real: torch.Tensor, config: SeamConfig,
                d1: degradation.Degradation, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The batch's inputs: D1 of every ground truth (of the real paintings half the time, kept as painted
    otherwise), D2 when ``config.colour``, and for a share the kept region put back as composited."""
    degraded = degradation.real_world(source, generator, d1, config.scale)
    if config.scale == 1:
        keep = real & (torch.rand(len(real), generator=generator) < 0.5)
        degraded = torch.where(keep[:, None, None, None], source, degraded)
    lq = degradation.colour(degraded, generator) if config.colour else degraded
    if config.scale == 1:
        composited = torch.rand(len(lq), generator=generator) < config.composite_share
        lq = torch.where(composited[:, None, None, None], lq * mask + (1 - mask) * gt, lq)
    return {"lq": lq, "gt": gt, "mask": mask}
