"""The torch paths that kornia now computes give today's results (issue 14).

kornia serves three torch paths; each is compared here with a verbatim copy of the code it
replaced (``_today_*`` below), on fixed random inputs:

* SSIM's moment filtering (:func:`kornia.filters.filter2d`, vertical then horizontal pass):
  values and gradients must be **bit-identical**, because torch SSIM feeds pinned numbers (the
  scikit-image agreement in ``tests/test_metrics.py``, the trainers' logged validation SSIM and
  their bit-identical-resume checks).
* :func:`raw_synth.isp.color.srgb_encode` on torch images (:func:`kornia.color.linear_rgb_to_rgb`):
  bit-identical values and gradients.
* Bilinear demosaicing (:func:`kornia.color.raw_to_rgb`, ``CFA.BG``): same formula, different
  order of the additions, so equal up to rounding: values within 2 eps of the dtype (the terms
  are at most ~1.1, so one rounding of the sum is at most 1 eps), gradients within 8 eps (a sum
  of up to four weighted terms, weights in [0, 1]).

A few SSIM values recorded with the pre-kornia code are pinned as well, so that a wrong copy of
the reference cannot hide a change.
"""

from __future__ import annotations

import importlib

import kornia
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from raw_synth.isp.color import srgb_decode, srgb_encode
from raw_synth.isp.demosaic import demosaic, demosaic_bilinear
from raw_synth.metrics import SSIMLoss, ssim

demosaic_module = importlib.import_module("raw_synth.isp.demosaic")

DTYPES = (torch.float32, torch.float64)


# ----------------------------------------------------------------------------- today's code


def _today_ssim(pred: torch.Tensor, target: torch.Tensor, peak: float) -> torch.Tensor:
    """``raw_synth.metrics._ssim_torch`` before kornia (a pair of plain ``conv2d``)."""
    b, c, h, w = pred.shape
    radius = int(3.5 * 1.5 + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps_np = np.exp(-0.5 * (x / 1.5) ** 2)
    taps = torch.as_tensor(taps_np / taps_np.sum(), dtype=pred.dtype, device=pred.device)
    win = taps.numel()
    shift = target.detach().mean(dim=(-2, -1), keepdim=True)
    xs, ys = pred - shift, target - shift
    stack = torch.stack([xs, ys, xs * xs, ys * ys, xs * ys], dim=0).reshape(5 * b * c, 1, h, w)
    blurred = F.conv2d(F.conv2d(stack, taps.view(1, 1, win, 1)), taps.view(1, 1, 1, win))
    mxs, mys, sxx, syy, sxy = blurred.reshape(5, b, c, *blurred.shape[-2:]).unbind(0)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    vx, vy, cxy = sxx - mxs * mxs, syy - mys * mys, sxy - mxs * mys
    mx, my = mxs + shift, mys + shift
    num = (2.0 * mx * my + c1) * (2.0 * cxy + c2)
    den = (mx * mx + my * my + c1) * (vx + vy + c2)
    return (num / den).flatten(1).mean(dim=1)


def _today_srgb_encode(x: torch.Tensor) -> torch.Tensor:
    """``srgb_encode``'s torch branch before kornia."""
    safe = torch.clamp(x, min=0.0031308)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * safe ** (1.0 / 2.4) - 0.055)


def _k(rows: list[list[float]], scale: float) -> list[list[float]]:
    return [[value / scale for value in row] for row in rows]


#: The bilinear 5x5 kernels of the pre-kornia ``demosaic_bilinear`` (run by today's machinery,
#: which Malvar still uses).
_TODAY_BILINEAR = {
    "G_AT_RB": _k([[0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]], 4),
    "ROW": _k([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]], 2),
    "COL": _k([[0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]], 2),
    "DIAG": _k([[0, 0, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0]], 4),
}


# ----------------------------------------------------------------------------- inputs


def _ssim_cases() -> dict[str, tuple[torch.Tensor, torch.Tensor, float]]:
    """Fixed SSIM inputs (the same draws the pinned values were recorded on)."""
    g = torch.Generator().manual_seed(1234)
    cases = {}
    for dt in DTYPES:
        name = str(dt).split(".")[-1]
        a = torch.rand(3, 3, 40, 37, generator=g, dtype=torch.float64)
        b = (a + 0.05 * torch.randn(a.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
        cases[f"rand_{name}"] = (b.to(dt), a.to(dt), 1.0)
        a = 0.2 * torch.rand(2, 4, 24, 32, generator=g, dtype=torch.float64)  # packed RAW
        b = a + 0.01 * torch.randn(a.shape, generator=g, dtype=torch.float64)
        cases[f"raw_{name}"] = (b.to(dt), a.to(dt), 1.0)
        a = 0.97 + 0.002 * torch.rand(2, 1, 32, 32, generator=g, dtype=torch.float64)  # flat, bright
        b = a + 0.001 * torch.randn(a.shape, generator=g, dtype=torch.float64)
        cases[f"flat_{name}"] = (b.to(dt), a.to(dt), 1.0)
        a = 255.0 * torch.rand(1, 3, 11, 11, generator=g, dtype=torch.float64)  # 8-bit range, smallest size
        b = (a + 8.0 * torch.randn(a.shape, generator=g, dtype=torch.float64)).clamp(0, 255)
        cases[f"u8_{name}"] = (b.to(dt), a.to(dt), 255.0)
    return cases


SSIM_CASES = _ssim_cases()


def _colour_input(dtype: torch.dtype, shape: tuple[int, ...] = (2, 3, 16, 16)) -> torch.Tensor:
    """Values in [-0.2, 1.2] with the branch points and their neighbours planted."""
    g = torch.Generator().manual_seed(99)
    x = torch.rand(shape, generator=g, dtype=torch.float64) * 1.4 - 0.2
    edges = torch.tensor([0.0, 0.0031308, 0.04045, -0.06, -0.055, 1.0, 0.0031307, 0.04046], dtype=torch.float64)
    flat = x.view(-1)
    flat[: edges.numel()] = edges
    return x.to(dtype)


# ----------------------------------------------------------------------------- SSIM


@pytest.mark.parametrize("case", sorted(SSIM_CASES))
def test_ssim_values_and_gradients_are_todays_bit_for_bit(case: str) -> None:
    pred, target, peak = SSIM_CASES[case]
    assert torch.equal(ssim(pred, target, data_range=peak), _today_ssim(pred, target, peak))

    new = pred.clone().requires_grad_(True)
    old = pred.clone().requires_grad_(True)
    SSIMLoss(peak)(new, target).backward()
    (1.0 - _today_ssim(old, target, peak).mean()).backward()
    assert new.grad is not None and old.grad is not None
    assert torch.equal(new.grad, old.grad)


def test_ssim_pinned_values_recorded_before_kornia() -> None:
    """Recorded with the conv2d code; tolerances only absorb other CPUs' summation order."""
    expected = {
        "rand_float64": [0.9847637638948532, 0.9854716859627173, 0.9856090758318896],
        "raw_float64": [0.9865267183641798, 0.9859441582014005],
        "flat_float32": [0.9990038871765137, 0.9989856481552124],
        "u8_float32": [0.9952489733695984],
    }
    for case, values in expected.items():
        pred, target, peak = SSIM_CASES[case]
        atol = 1e-12 if pred.dtype == torch.float64 else 2e-7
        np.testing.assert_allclose(ssim(pred, target, data_range=peak).double().numpy(), values, rtol=0, atol=atol)


def test_kornia_metrics_ssim_is_the_same_index_in_float64() -> None:
    """kornia's own SSIM (valid padding, eps 0) agrees in float64: the same definition.

    It is not used because in float32 it skips the mean shift that keeps flat bright regions
    accurate (see ``raw_synth.metrics``); this module stays within 1e-6 of float64 there.
    """
    for case in ("rand_float64", "raw_float64", "flat_float64", "u8_float64"):
        pred, target, peak = SSIM_CASES[case]
        theirs = kornia.metrics.ssim(pred, target, 11, max_val=float(peak), eps=0.0, padding="valid")
        np.testing.assert_allclose(
            ssim(pred, target, data_range=peak).numpy(), theirs.flatten(1).mean(1).numpy(), rtol=0, atol=1e-13
        )
    pred, target, peak = SSIM_CASES["flat_float32"]
    reference = ssim(pred.double(), target.double(), data_range=peak).numpy()
    np.testing.assert_allclose(ssim(pred, target, data_range=peak).double().numpy(), reference, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- sRGB


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (3, 5, 7), (1, 2, 3, 4, 6)])
def test_srgb_encode_on_torch_images_is_todays_bit_for_bit(dtype: torch.dtype, shape: tuple[int, ...]) -> None:
    x = _colour_input(dtype, shape)
    new = x.clone().requires_grad_(True)
    old = x.clone().requires_grad_(True)
    out_new, out_old = srgb_encode(new), _today_srgb_encode(old)
    assert out_new.dtype == dtype and torch.equal(out_new, out_old)
    out_new.sum().backward()
    out_old.sum().backward()
    assert new.grad is not None and old.grad is not None
    assert torch.equal(new.grad, old.grad) and torch.isfinite(new.grad).all()


def test_srgb_encode_routes_images_through_kornia_and_other_shapes_elementwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, ...]] = []
    linear_rgb_to_rgb = kornia.color.linear_rgb_to_rgb

    def spy(image: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(image.shape))
        return linear_rgb_to_rgb(image)

    # srgb_encode imports kornia's function where it calls it (kornia loads only for tensors)
    monkeypatch.setattr(kornia.color, "linear_rgb_to_rgb", spy)
    srgb_encode(torch.rand(2, 3, 4, 4))
    assert calls == [(2, 3, 4, 4)]
    for shape in [(97,), (4, 4, 3), (2, 4, 5, 5)]:  # no colour axis of 3 at -3
        x = _colour_input(torch.float64, shape)
        assert torch.equal(srgb_encode(x), _today_srgb_encode(x))
    assert calls == [(2, 3, 4, 4)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_srgb_decode_keeps_finite_gradients_below_minus_0_055(dtype: torch.dtype) -> None:
    """Why srgb_decode is not kornia's rgb_to_linear_rgb (NaN gradients there before 0.9)."""
    x = _colour_input(dtype).requires_grad_(True)
    assert (x < -0.055).any()
    srgb_decode(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    below = x.detach() <= 0.04045
    np.testing.assert_allclose(x.grad[below].double().numpy(), 1.0 / 12.92, rtol=1e-6)


# ----------------------------------------------------------------------------- bilinear demosaic


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [(2, 2), (2, 3), (3, 5), (7, 4), (33, 48)])
def test_bilinear_demosaic_is_todays_up_to_rounding(dtype: torch.dtype, size: tuple[int, int]) -> None:
    eps = torch.finfo(dtype).eps
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        packed = torch.rand(2, 4, *size, generator=g, dtype=dtype) * 1.2 - 0.1
        new = packed.clone().requires_grad_(True)
        old = packed.clone().requires_grad_(True)
        rgb_new = demosaic_bilinear(new)
        rgb_old = demosaic_module._demosaic_with(old, _TODAY_BILINEAR)
        assert rgb_new.shape == rgb_old.shape == (2, 3, 2 * size[0], 2 * size[1]) and rgb_new.dtype == dtype
        np.testing.assert_allclose(rgb_new.detach().numpy(), rgb_old.detach().numpy(), rtol=0, atol=2 * eps)
        weights = torch.rand(rgb_new.shape, generator=g, dtype=dtype)
        (rgb_new * weights).sum().backward()
        (rgb_old * weights).sum().backward()
        assert new.grad is not None and old.grad is not None
        np.testing.assert_allclose(new.grad.numpy(), old.grad.numpy(), rtol=0, atol=8 * eps)


def test_bilinear_demosaic_keeps_measured_samples_and_matches_the_method_name() -> None:
    g = torch.Generator().manual_seed(5)
    packed = torch.rand(2, 4, 12, 14, generator=g)
    rgb = demosaic(packed, "bilinear")
    assert torch.equal(rgb, demosaic_bilinear(packed))
    assert torch.equal(rgb[:, 0, 0::2, 0::2], packed[:, 0])  # R at R sites
    assert torch.equal(rgb[:, 1, 0::2, 1::2], packed[:, 1])  # Gr
    assert torch.equal(rgb[:, 1, 1::2, 0::2], packed[:, 2])  # Gb
    assert torch.equal(rgb[:, 2, 1::2, 1::2], packed[:, 3])  # B at B sites
    # Pinned before kornia (the kernel form); the sum absorbs the per-pixel rounding.
    assert float(rgb.double().sum()) == pytest.approx(1900.437876433134, abs=1e-4)
