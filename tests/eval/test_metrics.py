"""The paper's metrics on tiny backbones in the published formats, and on the world's backbones."""

import numpy as np
import pytest
import torch
from PIL import Image

from llmga.errors import ModelNotFoundError
from llmga.eval import metrics
from llmga.eval.backbones import Backbones, JudgeBackbone, real_backbones
from llmga.eval.perceptual import JudgeLpips
from llmga.testing.tiny_backbones import build_tiny_clip, build_tiny_dino, build_tiny_inception, build_tiny_lpips
from llmga.world import render, sample_scene


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    root = tmp_path_factory.mktemp("backbones")
    return real_backbones(inception=build_tiny_inception(root / "inception-2015-12-05.pt"),
                          clip=build_tiny_clip(root / "clip"), dino=build_tiny_dino(root / "dino"),
                          lpips=build_tiny_lpips(root / "lpips"))


@pytest.fixture(scope="module")
def judge_backbones():
    backbone = JudgeBackbone()
    return Backbones("world", features=backbone, classifier=backbone, dino=backbone, lpips=JudgeLpips(backbone.judge))


def noisy(image: Image.Image, amount: float, seed: int) -> Image.Image:
    x = np.asarray(image, dtype=np.float64) + np.random.default_rng(seed).normal(0, amount, (*image.size[::-1], 3))
    return Image.fromarray(np.clip(x, 0, 255).astype(np.uint8))


def scenes(n, seed=0, **change):
    return [render(sample_scene(seed * 1000 + i, 2).with_background(**change) if change else sample_scene(seed * 1000 + i, 2), 32)
            for i in range(n)]


def test_fid_is_zero_for_the_same_set_and_grows_with_a_known_shift(judge_backbones):
    day = [render(sample_scene(i, 2).with_background(time="day")) for i in range(40)]
    night = [render(sample_scene(i, 2).with_background(time="night")) for i in range(40)]
    same = metrics.fid(day, day, judge_backbones)
    assert same == pytest.approx(0, abs=1e-3)
    shifted = metrics.fid(day, night, judge_backbones)
    half = metrics.fid(day, day[:20] + night[20:], judge_backbones)
    assert 0 < half < shifted
    assert metrics.kid(day, night, judge_backbones) > metrics.kid(day, day[::-1], judge_backbones)


def test_inception_score_rewards_varied_confident_pictures(judge_backbones):
    varied = [render(sample_scene(i, 1)) for i in range(60)]
    one = [render(sample_scene(0, 1))] * 60
    assert metrics.inception_score(varied, judge_backbones) > 3 * metrics.inception_score(one, judge_backbones)
    assert metrics.inception_score(one, judge_backbones) == pytest.approx(1.0, abs=1e-3)


def test_the_published_inception_format_loads_and_measures(real):
    pictures = [render(sample_scene(i, 2), 64) for i in range(6)]
    assert metrics.features(pictures, real).shape == (6, 2048)
    assert metrics.logits(pictures, real).shape == (6, 1008)
    assert metrics.fid(pictures, pictures, real) == pytest.approx(0, abs=1e-3)
    assert metrics.fid(pictures, [noisy(p, 80, i) for i, p in enumerate(pictures)], real) > 0


def test_l1_and_l2_are_the_pixel_differences():
    black, grey = Image.new("RGB", (4, 4), (0, 0, 0)), Image.new("RGB", (4, 4), (51, 102, 153))
    assert metrics.l1([black], [grey]) == pytest.approx([(51 + 102 + 153) / 3 / 255])
    assert metrics.l2([black], [grey]) == pytest.approx([((51 / 255) ** 2 + (102 / 255) ** 2 + (153 / 255) ** 2) / 3])
    big = Image.new("RGB", (8, 8), (51, 102, 153))  # a painted picture of another size is resized to the target's
    assert metrics.l1([big], [grey]) == pytest.approx([0.0])


@pytest.mark.parametrize("kind", ["real", "world"])
def test_lpips_is_zero_for_the_same_picture_and_grows_with_noise(kind, real, judge_backbones):
    backbones = real if kind == "real" else judge_backbones
    pictures = [render(sample_scene(i, 2), 64) for i in range(4)]
    assert metrics.lpips(pictures, pictures, backbones) == pytest.approx([0.0] * 4, abs=1e-6)
    light = metrics.lpips(pictures, [noisy(p, 10, i) for i, p in enumerate(pictures)], backbones)
    heavy = metrics.lpips(pictures, [noisy(p, 60, i) for i, p in enumerate(pictures)], backbones)
    assert all(0 < a < b for a, b in zip(light, heavy))


def test_dino_and_clip_i_are_one_for_the_same_picture(real):
    pictures = [render(sample_scene(i, 2), 64) for i in range(3)]
    others = [render(sample_scene(i + 50, 2), 64) for i in range(3)]
    for measure in (metrics.dino, metrics.clip_i):
        assert measure(pictures, pictures, real) == pytest.approx([1.0] * 3, abs=1e-5)
        assert all(v < 1 - 1e-4 for v in measure(pictures, others, real))


def test_clip_t_prefers_the_matching_caption_with_the_world_clip():
    from llmga.eval.backbones import world_backbones
    from llmga.world import detailed_caption

    backbones = world_backbones()
    chosen = [sample_scene(100 + i, 2) for i in range(24)]
    pictures = [render(s) for s in chosen]
    captions = [detailed_caption(s) for s in chosen]
    matching = metrics.clip_t(pictures, captions, backbones)
    shuffled = metrics.clip_t(pictures, captions[1:] + captions[:1], backbones)
    assert np.mean(matching) > np.mean(shuffled) + 0.1
    assert sum(m > s for m, s in zip(matching, shuffled)) >= 22


def test_a_missing_backbone_fails_at_once_naming_the_file_and_its_source(tmp_path, monkeypatch):
    for name in ("LLMGA_INCEPTION", "LLMGA_CLIP", "LLMGA_DINO", "LLMGA_LPIPS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ModelNotFoundError, match="inception-2015-12-05.pt.*nvlabs"):
        real_backbones(inception=tmp_path / "none.pt")
    with pytest.raises(ModelNotFoundError, match="alexnet-owt-7be5be79.pth.*download.pytorch.org"):
        real_backbones(lpips=tmp_path)
    with pytest.raises(ModelNotFoundError, match="not a clip model directory"):
        real_backbones(clip=tmp_path)
    with pytest.raises(ModelNotFoundError, match="LLMGA_DINO"):
        real_backbones().need("dino")


def test_intervals():
    estimate = metrics.mean_interval([1.0, 2.0, 3.0, 4.0])
    assert estimate.value == 2.5 and estimate.low < 2.5 < estimate.high
    share = metrics.share_interval([True] * 9 + [False])
    assert share.value == 0.9 and 0.55 < share.low < 0.9 < share.high <= 1.0
    data = torch.arange(50, dtype=torch.float64)[:, None]
    boot = metrics.bootstrap(lambda x: float(x.mean()), data, rounds=100)
    assert boot.low < 24.5 < boot.high and boot.n == 50


def test_the_fast_frechet_distance_equals_torchmetrics_fid():
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(40, 300, generator=generator, dtype=torch.float64)
    fake = torch.randn(30, 300, generator=generator, dtype=torch.float64) * 1.3 + 0.2
    assert metrics.frechet(real, fake) == pytest.approx(metrics.fid_from_features(real, fake), rel=1e-4)
    estimate = metrics.fid_interval(real, fake, rounds=50)
    assert estimate.low <= estimate.value <= estimate.high


@pytest.mark.parametrize(("df", "quantile"), [(1, 12.7062047), (3, 3.1824463), (10, 2.2281389), (1000, 1.9623391)])
def test_t_quantiles_match_the_tables(df, quantile):
    assert metrics.t_quantile(0.975, df) == pytest.approx(quantile, abs=1e-6)
