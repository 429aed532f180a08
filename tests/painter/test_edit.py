"""Instruction-based editing (inversion + regeneration, prompt-to-prompt) on tiny SD 1.5, 2.x and XL stacks."""

import math
import time

import pytest
import torch
from diffusers.models.attention_processor import Attention
from PIL import Image

from llmga.errors import InvalidInputError, ModelNotFoundError, PromptTooLongError
from llmga.images import read_metadata, save_png
from llmga.painter.attention import (
    SPAN,
    EditAttnProcessor,
    EditControl,
    align_tokens,
    attention_control,
    position,
    split_words,
    token_weights,
)
from llmga.painter.edit import EditPainter, EditSettings
from llmga.painter.long_prompt import WINDOW
from llmga.settings import PaintSettings
from llmga.testing import build_tiny_sd

SOURCE = "a red cat sitting on the grass"
TARGET = "a blue dog sitting on the grass"
FAST = {"steps": 4}


def picture(size=(64, 64), mode="RGB") -> Image.Image:
    """A deterministic picture with structure (a fractal), in any size and mode."""
    return Image.effect_mandelbrot(size, (-2.0, -1.5, 1.0, 1.5), 40).convert(mode)


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def words_of(painter, text):
    tok = painter.encoder.tokenizers[0]
    return split_words(painter.encoder.token_ids(text, tok), tok)


@pytest.fixture(scope="module", params=["sd15", "sd2", "sdxl"])
def any_painter(request, tiny):
    return EditPainter.load(tiny.sd(request.param), device="cpu")


@pytest.fixture(scope="module")
def painter(tiny):
    return EditPainter.load(tiny.sd(), device="cpu")


# --------------------------------------------------------------------------
# reconstruction and edits


def test_ddpm_inversion_regenerates_the_input_near_exactly(any_painter):
    settings = EditSettings(method="ddpm", target_guidance=3.5, **FAST)  # the source guidance's default
    inversion = any_painter.invert(picture(), SOURCE, settings)
    assert inversion.residuals is not None and len(inversion.trajectory) == settings.steps + 1
    assert relative(any_painter.regenerate(inversion, SOURCE), inversion.latent) < 1e-3


def test_ddim_direct_inversion_keeps_the_source_branch_on_the_trajectory(painter):
    settings = EditSettings(method="ddim", **FAST)
    inversion = painter.invert(picture(), SOURCE, settings)
    assert inversion.residuals is None  # Direct Inversion proper: only the source branch is corrected
    seen = []
    hook = painter.pipeline.unet.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    try:
        painter.regenerate(inversion, TARGET)
    finally:
        hook.remove()
    with_source = [batch for batch in seen if len(batch) == 3]  # target uncond, source, target
    assert len(with_source) == round(0.8 * settings.steps)  # the steps with cross-attention replacement
    for j, batch in enumerate(with_source):
        torch.testing.assert_close(batch[1:2], inversion.trajectory[j : j + 1].to(batch))


def test_ddim_with_corrected_target_regenerates_the_input_closely(any_painter):
    settings = EditSettings(method="ddim", correct_target=True, target_guidance=1.0, **FAST)
    inversion = any_painter.invert(picture(), SOURCE, settings)
    assert relative(any_painter.regenerate(inversion, SOURCE), inversion.latent) < 1e-2


@pytest.mark.parametrize("method", ["ddpm", "ddim"])
def test_a_different_target_changes_the_output(painter, method):
    settings = EditSettings(method=method, correct_target=True, target_guidance=3.5 if method == "ddpm" else 1.0,
                            **FAST)
    inversion = painter.invert(picture(), SOURCE, settings)
    same = painter.regenerate(inversion, SOURCE)
    edited = painter.regenerate(inversion, TARGET)
    assert relative(edited, inversion.latent) > 100 * relative(same, inversion.latent)
    a = painter.to_image(same, inversion).tobytes()
    assert a != painter.to_image(edited, inversion).tobytes()


def test_edit_is_deterministic_by_seed(painter):
    image = picture()
    first = painter.edit(image, SOURCE, TARGET, EditSettings(seed=3, **FAST)).images[0].tobytes()
    again = painter.edit(image, SOURCE, TARGET, EditSettings(seed=3, **FAST)).images[0].tobytes()
    other = painter.edit(image, SOURCE, TARGET, EditSettings(seed=4, **FAST)).images[0].tobytes()
    assert first == again and first != other


def test_blend_keeps_everything_when_no_word_changes(painter):
    inversion = painter.invert(picture(), SOURCE, EditSettings(blend=0.3, **FAST))
    # the guidances differ, so without the mask the output would drift; no changed word means an empty mask
    torch.testing.assert_close(painter.regenerate(inversion, SOURCE), inversion.latent)
    assert relative(painter.regenerate(inversion, TARGET), inversion.latent) > 1e-2


def test_prompt_to_prompt_and_reweight_change_the_target_branch(painter):
    inversion = painter.invert(picture(), SOURCE, EditSettings(method="ddim", **FAST))
    base = dict(method="ddim", **FAST)
    plain = painter.regenerate(inversion, TARGET, EditSettings(**base, cross_replace=0, self_replace=0))
    p2p = painter.regenerate(inversion, TARGET, EditSettings(**base))
    heavy = painter.regenerate(inversion, TARGET, EditSettings(**base, reweight={"blue dog": 3.0}))
    assert not torch.allclose(plain, p2p) and not torch.allclose(p2p, heavy)


def test_progress_covers_inversion_and_regeneration(painter):
    for settings, total in ((EditSettings(**FAST), 8), (EditSettings(method="ddim", **FAST), 8),
                            (EditSettings(method="ddim", correct_target=True, **FAST), 12)):
        seen: list[tuple[int, int]] = []
        painter.edit(picture(), SOURCE, TARGET, settings, progress=lambda i, n, seen=seen: seen.append((i, n)))
        assert {n for _, n in seen} == {total} and seen[-1] == (total, total)
        assert [i for i, _ in seen] == sorted(i for i, _ in seen)


def test_skip_starts_from_a_less_noisy_level(painter):
    settings = EditSettings(steps=10, skip=0.4)
    inversion = painter.invert(picture(), SOURCE, settings)
    assert settings.run_steps == 6 and len(inversion.trajectory) == 7 and len(inversion.residuals) == 6


def test_any_size_and_mode_comes_back_as_given(painter):
    rgba = picture((50, 37), "RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((50, 37)))
    out = painter.edit(rgba, SOURCE, TARGET, EditSettings(**FAST)).images[0]
    assert out.size == (50, 37) and out.mode == "RGBA"
    assert out.getchannel("A").tobytes() == rgba.getchannel("A").tobytes()

    gray = painter.edit(picture((30, 70), "L"), SOURCE, TARGET, EditSettings(**FAST, resolution=48)).images[0]
    assert gray.size == (30, 70) and gray.mode == "RGB"
    inversion = painter.invert(picture((30, 70), "L"), SOURCE, EditSettings(**FAST, resolution=48))
    h, w = (d * painter.pipeline.vae_scale_factor for d in inversion.latent.shape[-2:])
    assert h % 8 == 0 and w % 8 == 0 and abs(h * w - 48 * 48) < 0.25 * 48 * 48 and h > w


def test_painting_metadata_names_the_edit(painter, tmp_path):
    painting = painter.edit(picture(), SOURCE, TARGET, EditSettings(reweight={"dog": 2}, **FAST))
    meta = read_metadata(save_png(painting.images[0], tmp_path, painting.metadata(0)))
    assert meta["task"] == "edit" and meta["prompt"] == TARGET and meta["source_prompt"] == SOURCE
    assert meta["method"] == "ddpm" and meta["source_guidance"] == 3.5 and meta["reweight"] == {"dog": 2.0}


# --------------------------------------------------------------------------
# attention processors


def test_processors_are_installed_only_during_the_edit(painter):
    unet = painter.pipeline.unet
    before = unet.attn_processors
    during = []

    def look(step, total):
        during.append({type(p).__name__ for p in unet.attn_processors.values()})

    painter.edit(picture(), SOURCE, TARGET, EditSettings(method="ddim", **FAST), progress=look)
    assert {"EditAttnProcessor"} in during  # while regenerating
    assert unet.attn_processors == before

    def fail(step, total):
        if step > 5:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        painter.edit(picture(), SOURCE, TARGET, EditSettings(method="ddim", **FAST), progress=fail)
    assert unet.attn_processors == before


def test_controlled_unet_with_identical_branches_matches_diffusers(painter):
    """With the same latent and prompt in the source and target rows, every edit is a no-op."""
    unet = painter.pipeline.unet
    embeds = painter.encoder.encode(SOURCE).prompt_embeds.repeat(2, 1, 1)
    latents = torch.randn(1, 4, 32, 32).repeat(2, 1, 1, 1)
    t = torch.tensor(500)
    with torch.no_grad():
        expected = unet(latents, t, encoder_hidden_states=embeds).sample
        words = words_of(painter, SOURCE)
        control = EditControl(align_tokens(words, words, 1), torch.ones(SPAN), cross_steps=1, self_steps=1,
                              record=True, latent_size=(32, 32))
        control.begin_step(0, source_row=0, target_row=1)
        with attention_control(unet, control):
            got = unet(latents, t, encoder_hidden_states=embeds).sample
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert control.maps == {}  # nothing changed, nothing recorded


def test_folded_attention_equals_explicit_prompt_to_prompt_maps():
    """The processor's value-folding equals building P2P's attention maps and mixing them."""
    torch.manual_seed(0)
    attn = Attention(query_dim=16, cross_attention_dim=12, heads=2, dim_head=8).eval()
    windows = 2
    source = [(i,) for i in range(90)]
    target = source[:10] + [(500,), (501, 502)] + source[10:40] + [(600, 601)] + source[41:]  # insert, swap
    alignment = align_tokens(source, target, windows)
    weights = torch.ones(windows * SPAN)
    weights[[position(10), position(11)]] = 2.5
    hidden = torch.randn(3, 20, 16)  # rows: uncond, source, target
    context = torch.randn(3, windows * SPAN, 12)
    control = EditControl(alignment, weights, cross_steps=1, latent_size=(4, 5))
    control.begin_step(0, source_row=1, target_row=2)
    with torch.no_grad():
        got = EditAttnProcessor(control, attn.processor, coarse=True)(attn, hidden, context)
        expected = attn.processor(attn, hidden, context)  # the other rows are untouched

        def probs(row):
            q = attn.to_q(hidden[row]).view(20, 2, 8).transpose(0, 1)
            k = attn.to_k(context[row]).view(-1, 2, 8).transpose(0, 1)
            return (q @ k.transpose(-1, -2) * attn.scale).softmax(-1)

        keep = alignment.keep
        mixed = (keep * (probs(1) @ alignment.mapper) + (1 - keep) * probs(2)) * weights
        v = attn.to_v(context[2]).view(-1, 2, 8).transpose(0, 1)
        target_out = attn.to_out[0]((mixed @ v).transpose(0, 1).reshape(20, 16))
    torch.testing.assert_close(got[:2], expected[:2])
    torch.testing.assert_close(got[2], target_out, atol=1e-5, rtol=1e-4)


# --------------------------------------------------------------------------
# token alignment


def test_word_swap_maps_word_to_word_even_of_other_token_lengths(painter):
    source, target = words_of(painter, "a cat on grassy hills"), words_of(painter, "a grassy on cat hills")
    assert len(source[1]) == 1 and len(source[3]) > 1  # "cat" one token, "grassy" several
    alignment = align_tokens(source, target, windows=1, mode="replace")
    n = len(source[3])
    # target "grassy" (positions 2..2+n-1) each take the source "cat"'s attention
    for t in range(2, 2 + n):
        assert alignment.mapper[:, t].tolist() == [1.0 if s == 2 else 0.0 for s in range(SPAN)]
    # target "cat" takes the mean of the source "grassy"'s tokens
    cat = position(2 + n)
    assert alignment.mapper[[position(k) for k in range(3, 3 + n)], cat].tolist() == [1 / n] * n
    assert alignment.keep.eq(1).all()  # a word swap replaces all attention
    assert alignment.mapper[0, 0] == 1 and alignment.mapper.sum(0).allclose(torch.ones(SPAN))
    with pytest.raises(InvalidInputError, match="same number of words"):
        align_tokens(source, words_of(painter, "a cat on hills"), windows=1, mode="replace")


def test_refinement_aligns_words_across_windows(painter):
    long_source = " ".join(["a red fox runs through deep snow under a pale winter sky"] * 4)
    source = words_of(painter, long_source)
    inserted = words_of(painter, "with a small black cat")
    target = source[:3] + inserted + source[3:]
    n_source, n_target = sum(map(len, source)), sum(map(len, target))
    windows = math.ceil(n_target / WINDOW)
    assert n_source > WINDOW and windows == 2
    alignment = align_tokens(source, target, windows, mode="refine")
    shift = sum(map(len, inserted))
    first_after = sum(map(len, source[:3]))
    # every source token after the insertion lands `shift` tokens later, across the window boundary too
    for k in range(first_after, n_source):
        assert alignment.mapper[position(k), position(k + shift)] == 1
    crossing = WINDOW - 1  # last text token of window 0 in the source, in window 1 in the target
    assert position(crossing) < SPAN <= position(crossing + shift)
    new = [position(k) for k in range(first_after, first_after + shift)]
    assert alignment.keep[new].eq(0).all() and alignment.changed_target == new and not alignment.changed_source
    assert alignment.mapper[SPAN, SPAN] == 1  # window 1's begin token from window 1's
    assert (alignment.mapper.sum(0)[alignment.keep == 1] - 1).abs().max() < 1e-6


def test_auto_alignment_swaps_equal_runs_and_adds_the_rest(painter):
    source, target = words_of(painter, SOURCE), words_of(painter, "a blue dog sitting on the green grass")
    alignment = align_tokens(source, target, windows=1)
    assert alignment.mapper[position(1), position(1)] == 1 and alignment.mapper[position(2), position(2)] == 1
    green = position(len(sum(target[:6], ())))
    assert alignment.keep[green] == 0 and green in alignment.changed_target


def test_reweight_finds_phrases_wherever_they_occur(painter):
    tok = painter.encoder.tokenizers[0]

    def tokenize(text):
        return painter.encoder.token_ids(text, tok)

    ids = tokenize("a red cat and a red dog")
    weights = token_weights(ids, {"red": 2.0, "dog": 0.5}, tokenize, windows=1)
    assert weights[[position(1), position(5)]].tolist() == [2.0, 2.0] and weights[position(6)] == 0.5
    assert (weights == 1).sum() == SPAN - 3
    with pytest.raises(InvalidInputError, match="'horse'.*not in the target prompt"):
        token_weights(ids, {"horse": 2.0}, tokenize, windows=1)


def test_long_prompts_edit_end_to_end(painter):
    long_source = " ".join(["a red fox runs through deep snow under a pale winter sky"] * 8)
    long_target = long_source.replace("red fox", "black cat", 1) + " at night"
    assert painter.encoder.count_tokens(long_target) > 75
    settings = EditSettings(method="ddim", blend=0.3, reweight={"night": 2.0}, **FAST)
    out = painter.edit(picture(), long_source, long_target, settings)
    assert out.images[0].size == (64, 64) and out.prompt_tokens > 75


# --------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "p2p"}, "method must be"),
    ({"steps": 0}, "steps must be"),
    ({"source_guidance": 0.5}, "source_guidance must be >= 1"),
    ({"cross_replace": 1.5}, "cross_replace must be a fraction"),
    ({"blend": 1.0}, "blend must be a threshold"),
    ({"skip": 1.0}, "skip must be"),
    ({"resolution": 50}, "resolution must be"),
    ({"alignment": "swap"}, "alignment must be"),
    ({"reweight": {"": 2.0}}, "reweight needs"),
])
def test_invalid_settings_are_refused(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        EditSettings(**kwargs)


def test_mismatched_settings_are_refused(painter):
    with pytest.raises(InvalidInputError, match="correct_target=False does not apply"):
        painter.edit(picture(), SOURCE, TARGET, EditSettings(correct_target=False, **FAST))
    with pytest.raises(InvalidInputError, match="alignment='replace' has no effect"):
        EditSettings(alignment="replace").resolved()
    with pytest.raises(InvalidInputError, match="same number of words"):
        painter.edit(picture(), SOURCE, "a dog", EditSettings(method="ddim", alignment="replace", **FAST))
    inversion = painter.invert(picture(), SOURCE, EditSettings(**FAST))
    with pytest.raises(InvalidInputError, match=r"made with steps=4 \(not 5\)"):
        painter.regenerate(inversion, TARGET, EditSettings(steps=5))
    with pytest.raises(InvalidInputError, match="takes EditSettings"):
        painter.edit(picture(), SOURCE, TARGET, PaintSettings(steps=4))


def test_bad_prompts_and_images_are_refused(painter):
    with pytest.raises(InvalidInputError, match="source prompt is empty"):
        painter.edit(picture(), "  ", TARGET, EditSettings(**FAST))
    start = time.perf_counter()
    with pytest.raises(InvalidInputError, match="target prompt is empty"):
        painter.edit(picture(), SOURCE, "", EditSettings(**FAST))
    assert time.perf_counter() - start < 0.5  # refused before any inversion work
    with pytest.raises(PromptTooLongError, match="target prompt is"):
        painter.edit(picture(), SOURCE, "a red fox " * 400, EditSettings(**FAST))
    with pytest.raises(InvalidInputError, match="must be a PIL image"):
        painter.edit("cat.png", SOURCE, TARGET, EditSettings(**FAST))
    with pytest.raises(InvalidInputError, match="is empty"):
        painter.edit(Image.new("RGB", (0, 5)), SOURCE, TARGET, EditSettings(**FAST))
    with pytest.raises(InvalidInputError, match="'horse'"):
        painter.edit(picture(), SOURCE, TARGET, EditSettings(reweight={"horse": 2}, **FAST))


def test_load_fails_fast_and_inpainting_models_are_refused(tiny, tmp_path):
    path = build_tiny_sd(tmp_path / "sd", variant="sd15")
    for weights in (path / "unet").glob("*.safetensors"):
        weights.unlink()
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match="'unet/' has no weights"):
        EditPainter.load(path)
    assert time.perf_counter() - start < 1.0
    with pytest.raises(InvalidInputError, match="9-channel input"):
        EditPainter.load(tiny.sd("sd15-inpaint"), device="cpu")
