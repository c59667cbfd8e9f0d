"""PSNR and SSIM: agreement with scikit-image, the AIM 2022 convention, torch batching, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from raw_synth.errors import RawSynthError
from raw_synth.metrics import SSIMLoss, psnr, ssim, ssim_window_size

skimage_metrics = pytest.importorskip("skimage.metrics")
skimage_data = pytest.importorskip("skimage.data")


def sk_ssim(a: np.ndarray, b: np.ndarray, channel_axis: int | None = -1, data_range: float = 1.0):
    """The reference: skimage SSIM with the settings raw-synth promises to match."""
    return skimage_metrics.structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
        channel_axis=channel_axis,
    )


def sk_psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    return skimage_metrics.peak_signal_noise_ratio(b, a, data_range=data_range)


def degraded(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """A noisy, slightly blurred copy, so that SSIM lands well inside (0, 1)."""
    from scipy import ndimage

    blurred = ndimage.uniform_filter(img, size=(3, 3) + (1,) * (img.ndim - 2))
    return np.clip(blurred + rng.normal(0.0, sigma, img.shape), 0.0, 1.0)


def natural_rgb() -> list[np.ndarray]:
    return [
        skimage_data.astronaut()[100:196, 150:278] / 255.0,  # 96 x 128
        skimage_data.coffee()[50:131, 200:303] / 255.0,  # 81 x 103 (odd sizes)
        skimage_data.chelsea()[:64, :64] / 255.0,
    ]


def to_torch(img: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """(H, W, C) numpy -> (C, H, W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(img, -1, 0))).to(dtype)


def test_window_size() -> None:
    assert ssim_window_size() == 11  # 2 * int(3.5 * 1.5 + 0.5) + 1


# ----------------------------------------------------------------------------- numpy SSIM


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sigma", [0.01, 0.1])
def test_ssim_numpy_rgb_matches_skimage(dtype: type, sigma: float) -> None:
    rng = np.random.default_rng(1)
    for clean in natural_rgb():
        a = clean.astype(dtype)
        b = degraded(clean, rng, sigma).astype(dtype)
        ours = ssim(b, a)
        assert isinstance(ours, float)
        assert ours == pytest.approx(sk_ssim(b.astype(np.float64), a.astype(np.float64)), abs=1e-5)
        # skimage itself computes float32 inputs in float32; still within 1e-5 on photos.
        assert ours == pytest.approx(sk_ssim(b, a), abs=1e-5)
        assert 0.0 < ours < 1.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ssim_numpy_random_and_grayscale_match_skimage(dtype: type) -> None:
    rng = np.random.default_rng(2)
    a = rng.random((40, 53)).astype(dtype)
    b = (0.7 * a + 0.3 * rng.random((40, 53))).astype(dtype)
    assert ssim(b, a) == pytest.approx(sk_ssim(b.astype(float), a.astype(float), None), abs=1e-5)
    cam = skimage_data.camera()[200:300, 100:250] / 255.0
    noisy = degraded(cam, rng, 0.05)
    expected = sk_ssim(noisy, cam, None)
    assert ssim(noisy.astype(dtype), cam.astype(dtype)) == pytest.approx(expected, abs=1e-5)
    # A 2-D image ignores channel_axis.
    assert ssim(noisy, cam, channel_axis=0) == pytest.approx(expected, abs=1e-12)


def test_ssim_smallest_image_and_data_range() -> None:
    rng = np.random.default_rng(3)
    a = rng.random((11, 11, 2)) * 255.0
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    assert ssim(b, a, data_range=255.0) == pytest.approx(sk_ssim(b, a, -1, 255.0), abs=1e-5)


def test_ssim_identical_is_one() -> None:
    img = natural_rgb()[0]
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    t = to_torch(img, torch.float32)[None]
    assert ssim(t, t).item() == pytest.approx(1.0, abs=1e-6)


def test_ssim_uint8_inputs_with_data_range_255() -> None:
    a = skimage_data.astronaut()[:64, :80]
    b = skimage_data.astronaut()[1:65, :80]
    expected = sk_ssim(b.astype(float), a.astype(float), -1, 255.0)
    assert ssim(b, a, data_range=255) == pytest.approx(expected, abs=1e-5)


# ----------------------------------------------------------------------------- AIM 2022 convention


def test_ssim_aim22_packed_raw_mean_of_four_planes() -> None:
    """AIM22 scoring: (h, w, 4) RAW, SSIM = mean over the 4 planes of the per-plane SSIM."""
    rng = np.random.default_rng(4)
    rgb = skimage_data.astronaut()[:128, :128] / 255.0
    # A packed-RAW-like (h, w, 4) from the RGB mosaic sites, quantised to 10 bits as in AIM22.
    ref = np.stack(
        [rgb[0::2, 0::2, 0], rgb[0::2, 1::2, 1], rgb[1::2, 0::2, 1], rgb[1::2, 1::2, 2]], axis=-1
    )
    ref = np.round(ref * 1024).clip(0, 1023) / 1024
    res = np.round(np.clip(ref + rng.normal(0, 0.02, ref.shape), 0, 1) * 1024).clip(0, 1023) / 1024
    per_plane = [sk_ssim(res[..., c], ref[..., c], None) for c in range(4)]
    aim = float(np.mean(per_plane))
    assert ssim(res, ref, channel_axis=-1) == pytest.approx(aim, abs=1e-5)
    # The library's packed layout (4, h, w) with channel_axis=0 gives the same number.
    packed_res, packed_ref = np.moveaxis(res, -1, 0), np.moveaxis(ref, -1, 0)
    assert ssim(packed_res, packed_ref, channel_axis=0) == pytest.approx(aim, abs=1e-5)
    t = torch.from_numpy(packed_res.astype(np.float32))[None]
    r = torch.from_numpy(packed_ref.astype(np.float32))[None]
    assert ssim(t, r).item() == pytest.approx(aim, abs=1e-5)
    # AIM22 PSNR: 10 log10(1 / MSE) over all channels.
    aim_psnr = 10 * math.log10(1.0 / np.mean((res - ref) ** 2))
    assert psnr(packed_res, packed_ref) == pytest.approx(aim_psnr, abs=1e-9)
    assert psnr(t, r).item() == pytest.approx(aim_psnr, abs=1e-4)


# ----------------------------------------------------------------------------- torch SSIM


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ssim_torch_batch_matches_skimage_per_image(dtype: torch.dtype) -> None:
    rng = np.random.default_rng(5)
    clean = [skimage_data.astronaut()[:72, :90] / 255.0, skimage_data.coffee()[:72, :90] / 255.0]
    clean.append(rng.random((72, 90, 3)))
    noisy = [degraded(c, rng, s) for c, s in zip(clean, (0.01, 0.05, 0.2))]
    pred = torch.stack([to_torch(n, dtype) for n in noisy])
    target = torch.stack([to_torch(c, dtype) for c in clean])
    # The reference sees exactly the values the tensors hold.
    expected = [
        sk_ssim(p.permute(1, 2, 0).double().numpy(), t.permute(1, 2, 0).double().numpy())
        for p, t in zip(pred, target)
    ]
    out = ssim(pred, target)
    assert out.shape == (3,) and out.dtype == dtype
    np.testing.assert_allclose(out.double().numpy(), expected, atol=1e-5, rtol=0)
    mean = ssim(pred, target, reduction="mean")
    assert mean.shape == () and mean.item() == pytest.approx(float(np.mean(expected)), abs=1e-5)


def test_ssim_torch_grayscale_and_flat_bright_regions_float32() -> None:
    """Flat, nearly saturated regions are where float32 SSIM loses digits; stay within 1e-5."""
    rng = np.random.default_rng(6)
    base = np.full((2, 1, 48, 40), 0.97) + rng.normal(0, 1e-4, (2, 1, 48, 40))
    other = base + rng.normal(0, 1e-4, base.shape)
    pred = torch.from_numpy(other).float()
    target = torch.from_numpy(base).float()
    expected = [
        sk_ssim(p[0].double().numpy(), t[0].double().numpy(), None) for p, t in zip(pred, target)
    ]
    np.testing.assert_allclose(ssim(pred, target).double().numpy(), expected, atol=1e-5, rtol=0)


def test_ssim_torch_is_differentiable() -> None:
    rng = np.random.default_rng(7)
    target = torch.from_numpy(rng.random((2, 2, 12, 13)))
    pred = (target + 0.1 * torch.from_numpy(rng.standard_normal((2, 2, 12, 13)))).requires_grad_()
    assert torch.autograd.gradcheck(lambda p: ssim(p, target), (pred,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda p: psnr(p, target), (pred,), fast_mode=True)
    # Gradients flow into the target as well (SSIM is symmetric in its arguments).
    tgt = target.clone().requires_grad_()
    ssim(pred.detach(), tgt).sum().backward()
    assert tgt.grad is not None and tgt.grad.abs().sum() > 0


def test_ssim_loss_module() -> None:
    rng = np.random.default_rng(8)
    target = torch.from_numpy(rng.random((2, 3, 16, 16)).astype(np.float32))
    pred = (target + 0.05).requires_grad_()
    loss = SSIMLoss()(pred, target)
    assert loss.item() == pytest.approx(1.0 - ssim(pred, target).mean().item(), abs=1e-7)
    loss.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


# ----------------------------------------------------------------------------- PSNR


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_psnr_numpy_matches_skimage(dtype: type) -> None:
    rng = np.random.default_rng(9)
    for clean in natural_rgb() + [rng.random((30, 31))]:
        a = clean.astype(dtype)
        b = degraded(clean, rng, 0.03).astype(dtype)
        assert psnr(b, a) == pytest.approx(sk_psnr(b, a), abs=1e-4)


def test_psnr_known_values() -> None:
    x = np.linspace(0, 0.9, 300).reshape(10, 10, 3)
    assert psnr(x + 0.01, x) == pytest.approx(40.0, abs=1e-9)
    assert psnr(x + 2.55, x, data_range=255) == pytest.approx(40.0, abs=1e-9)
    assert psnr(x, x) == math.inf
    a = skimage_data.astronaut()[:50, :50]
    b = skimage_data.astronaut()[1:51, :50]
    assert psnr(b, a, data_range=255) == pytest.approx(sk_psnr(b, a, 255), abs=1e-4)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_psnr_torch_per_image(dtype: torch.dtype) -> None:
    rng = np.random.default_rng(10)
    target = rng.random((3, 4, 20, 24))
    pred = np.clip(target + rng.normal(0, [[[[0.01]]], [[[0.05]]], [[[0.2]]]], target.shape), 0, 1)
    t, p = torch.from_numpy(target).to(dtype), torch.from_numpy(pred).to(dtype)
    expected = [sk_psnr(pi, ti) for pi, ti in zip(p.double().numpy(), t.double().numpy())]
    out = psnr(p, t)
    assert out.shape == (3,) and out.dtype == dtype
    np.testing.assert_allclose(out.double().numpy(), expected, atol=1e-4, rtol=0)
    assert psnr(p, t, reduction="mean").item() == pytest.approx(float(np.mean(expected)), abs=1e-4)
    same = psnr(t, t)
    assert torch.isinf(same).all()


def test_inputs_are_not_mutated() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.random((16, 16, 3)), rng.random((16, 16, 3))
    a0, b0 = a.copy(), b.copy()
    ssim(a, b)
    psnr(a, b)
    ta, tb = torch.from_numpy(a).permute(2, 0, 1)[None], torch.from_numpy(b).permute(2, 0, 1)[None]
    ssim(ta, tb)
    psnr(ta, tb)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


# ----------------------------------------------------------------------------- errors


def test_shape_mismatch_names_both_shapes() -> None:
    a, b = np.zeros((16, 16, 3)), np.zeros((16, 15, 3))
    shapes = r"pred shape \(16, 16, 3\) does not match target shape \(16, 15, 3\)$"
    with pytest.raises(RawSynthError, match=rf"^ssim: {shapes}"):
        ssim(a, b)
    with pytest.raises(RawSynthError, match=rf"^psnr: {shapes}"):
        psnr(a, b)
    with pytest.raises(
        RawSynthError,
        match=r"pred shape \(1, 3, 16, 16\) does not match target shape \(2, 3, 16, 16\)",
    ):
        ssim(torch.zeros(1, 3, 16, 16), torch.zeros(2, 3, 16, 16))


def _np(*shape: int) -> np.ndarray:
    return np.zeros(shape)


def _t(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.zeros(shape, dtype=dtype)


BAD_INPUTS = [
    (
        lambda: ssim(_np(16, 16), _t(16, 16)),
        r"must both be numpy arrays or both torch tensors, got ndarray and Tensor",
    ),
    (
        lambda: ssim(_t(3, 16, 16), _t(3, 16, 16)),
        r"torch inputs must be \(B, C, H, W\), got shape \(3, 16, 16\)",
    ),
    (
        lambda: psnr(_t(1, 1, 4, 4, dtype=torch.int32), _t(1, 1, 4, 4, dtype=torch.int32)),
        r"pred must be a floating-point tensor, got torch.int32",
    ),
    (
        lambda: ssim(_np(10, 16, 3), _np(10, 16, 3)),
        r"image is 10x16 pixels, needs at least 11x11",
    ),
    (
        lambda: ssim(_t(1, 1, 16, 8), _t(1, 1, 16, 8)),
        r"images are 16x8 pixels, need at least 11x11",
    ),
    (
        lambda: ssim(_np(16, 16, 3), _np(16, 16, 3), channel_axis=None),
        r"needs channel_axis",
    ),
    (
        lambda: ssim(_np(16, 16, 3), _np(16, 16, 3), channel_axis=3),
        r"channel_axis 3 is out of range for shape \(16, 16, 3\)",
    ),
    (
        lambda: ssim(_np(2, 16, 16, 3), _np(2, 16, 16, 3)),
        r"numpy images must be \(H, W\) or 3-D",
    ),
    (
        lambda: psnr(_np(4), _np(4), data_range=0),
        r"^data_range: must be a positive finite number, got 0$",
    ),
    (
        lambda: ssim(_t(1, 1, 16, 16), _t(1, 1, 16, 16), reduction="sum"),
        r"^ssim: reduction must be 'none' or 'mean', got 'sum'$",
    ),
    (
        lambda: psnr(np.array(["a"]), np.array(["b"])),
        r"^psnr: pred has unsupported dtype <U1$",
    ),
]


@pytest.mark.parametrize(("call", "message"), BAD_INPUTS)
def test_bad_input_errors(call, message: str) -> None:
    with pytest.raises(RawSynthError, match=message):
        call()
