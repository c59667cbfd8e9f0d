"""Image-quality metrics: PSNR and SSIM for numpy images and batched torch tensors.

Both metrics follow the conventions that published RAW-denoising and reverse-ISP scores use, so
numbers from this module can be compared with papers directly:

* **PSNR** is ``10 * log10(data_range**2 / MSE)`` with the MSE taken over every element of one
  image (all channels together), as :func:`skimage.metrics.peak_signal_noise_ratio` does and as
  the AIM 2022 reverse-ISP scoring and the CycleISP SIDD evaluation do. Identical images give
  ``inf``.
* **SSIM** is the Wang et al. (2004) index with an 11x11 Gaussian window (sigma 1.5, truncated at
  3.5 sigma), population covariances, ``K1 = 0.01``, ``K2 = 0.03``, symmetric ("half-sample")
  border extension, and the mean taken over the *valid* region only (a 5-pixel border is
  dropped). Multi-channel images get the mean of the per-channel SSIMs. This equals
  ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=data_range, channel_axis=...)`` and therefore the AIM
  2022 scoring (mean over the four packed RAW planes).

Inputs:

* numpy: one image, either ``(H, W)`` (grayscale) or 3-D with its channel axis given by
  ``channel_axis``: ``-1`` (default) for channels-last RGB ``(H, W, 3)``, ``0`` for packed RAW
  ``(4, H/2, W/2)``. Any real dtype; computed in float64; returns a Python ``float``.
* torch: a batch ``(B, C, H, W)`` of floating-point tensors; returns a per-image tensor ``(B,)``
  (``reduction="none"``, the default) or its mean (``reduction="mean"``). The torch path is
  differentiable, runs on any device and keeps the input dtype (float32 agrees with the float64
  reference to about 1e-6).

kornia: the torch SSIM filters its local moments with :func:`kornia.filters.filter2d`
(``padding="valid"``, a vertical then a horizontal Gaussian pass), bit-identical to the plain
``conv2d`` pair it replaced (:func:`kornia.filters.filter2d_separable` runs the horizontal pass
first, which moves float32 SSIM by up to 1.5 ulp). :func:`kornia.metrics.ssim` is not used:
with ``window_size=11, eps=0.0, padding="valid"`` it computes the same index (float64: within
3e-14), but it forms ``E[x^2] - E[x]^2`` from the raw images, and in float32 on flat bright
regions (values near 0.97) that was measured 7.9e-6 away from scikit-image against 3.8e-8 for
this module, with SSIM-loss gradients 1.4e-4 (relative) away from today's. This module shifts
both images by the target's mean first, which kornia's function has no place for.
:func:`kornia.metrics.psnr` is not used either: it returns one value for the whole batch (the
MSE pooled over all images), not one per image.

Example:
    >>> import numpy as np
    >>> x = np.linspace(0, 1, 32 * 32 * 3).reshape(32, 32, 3)
    >>> round(psnr(x + 0.01, x), 6)
    40.0
    >>> ssim(x, x)
    1.0
"""

from __future__ import annotations

import math
from typing import Literal, overload

import numpy as np
import torch
from kornia.filters import filter2d
from scipy import ndimage

from raw_synth.errors import RawSynthError

__all__ = [
    "SSIM_SIGMA",
    "SSIM_TRUNCATE",
    "SSIM_K1",
    "SSIM_K2",
    "ssim_window_size",
    "psnr",
    "ssim",
    "SSIMLoss",
]

#: Standard deviation of the Gaussian SSIM window, in pixels.
SSIM_SIGMA: float = 1.5
#: The Gaussian window is cut at this many standard deviations (scipy's ``truncate``).
SSIM_TRUNCATE: float = 3.5
#: SSIM stabilising constants: ``C1 = (K1 * data_range)**2``, ``C2 = (K2 * data_range)**2``.
SSIM_K1: float = 0.01
SSIM_K2: float = 0.03

Reduction = Literal["none", "mean"]


def ssim_window_size(sigma: float = SSIM_SIGMA, truncate: float = SSIM_TRUNCATE) -> int:
    """Side of the square Gaussian SSIM window: ``2 * int(truncate * sigma + 0.5) + 1``.

    Args:
        sigma: standard deviation of the Gaussian, in pixels.
        truncate: cut-off in standard deviations.

    Returns:
        The odd window side in pixels (11 for the defaults). Images must be at least this large
        in both spatial dimensions.
    """
    return 2 * int(truncate * sigma + 0.5) + 1


def _gaussian_taps(sigma: float = SSIM_SIGMA, truncate: float = SSIM_TRUNCATE) -> np.ndarray:
    """Normalised 1-D Gaussian taps, float64, the same kernel scipy's gaussian_filter uses."""
    radius = (ssim_window_size(sigma, truncate) - 1) // 2
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (x / sigma) ** 2)
    return taps / taps.sum()


# ----------------------------------------------------------------------------- input checks


def _check_data_range(data_range: float) -> float:
    try:
        value = float(data_range)
    except (TypeError, ValueError):
        raise RawSynthError(f"data_range: must be a positive number, got {data_range!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise RawSynthError(f"data_range: must be a positive finite number, got {data_range!r}")
    return value


def _check_pair(name: str, pred: object, target: object) -> str:
    """Check that pred and target are the same kind and shape; return 'numpy' or 'torch'."""
    if isinstance(pred, torch.Tensor) and isinstance(target, torch.Tensor):
        kind = "torch"
    elif isinstance(pred, np.ndarray) and isinstance(target, np.ndarray):
        kind = "numpy"
    else:
        raise RawSynthError(
            f"{name}: pred and target must both be numpy arrays or both torch tensors, "
            f"got {type(pred).__name__} and {type(target).__name__}"
        )
    if tuple(pred.shape) != tuple(target.shape):
        raise RawSynthError(
            f"{name}: pred shape {tuple(pred.shape)} does not match target shape "
            f"{tuple(target.shape)}"
        )
    if kind == "numpy":
        for label, arr in (("pred", pred), ("target", target)):
            if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
                raise RawSynthError(f"{name}: {label} has unsupported dtype {arr.dtype}")
    else:
        for label, arr in (("pred", pred), ("target", target)):
            if not arr.is_floating_point():
                raise RawSynthError(
                    f"{name}: {label} must be a floating-point tensor, got {arr.dtype}"
                )
        if pred.ndim != 4:
            raise RawSynthError(
                f"{name}: torch inputs must be (B, C, H, W), got shape {tuple(pred.shape)}"
            )
        if pred.device != target.device:
            raise RawSynthError(
                f"{name}: pred is on {pred.device} but target is on {target.device}"
            )
    return kind


def _check_reduction(name: str, reduction: str) -> None:
    if reduction not in ("none", "mean"):
        raise RawSynthError(f"{name}: reduction must be 'none' or 'mean', got {reduction!r}")


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    return values.mean() if reduction == "mean" else values


# ----------------------------------------------------------------------------- PSNR


@overload
def psnr(
    pred: np.ndarray, target: np.ndarray, data_range: float = ..., reduction: Reduction = ...
) -> float: ...
@overload
def psnr(
    pred: torch.Tensor, target: torch.Tensor, data_range: float = ..., reduction: Reduction = ...
) -> torch.Tensor: ...


def psnr(
    pred: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    data_range: float = 1.0,
    reduction: Reduction = "none",
) -> float | torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10 * log10(data_range**2 / MSE)``.

    The MSE covers every element of one image (all channels), as in
    :func:`skimage.metrics.peak_signal_noise_ratio` and the AIM 2022 / SIDD conventions.

    Args:
        pred: the estimate. numpy: one image of any shape, any real dtype. torch: a floating-point
            batch ``(B, C, H, W)``.
        target: the reference, same kind and shape as ``pred``.
        data_range: peak-to-peak range of the signal (1.0 for normalised images, 255 for 8-bit).
        reduction: torch only: ``"none"`` gives one value per image ``(B,)``, ``"mean"`` their
            mean (a 0-d tensor). Ignored for numpy.

    Returns:
        numpy: a Python float (``inf`` for identical images). torch: a tensor ``(B,)`` or 0-d, in
        the input dtype, differentiable; identical images give ``inf``.

    Raises:
        RawSynthError: mixed numpy/torch inputs, shape mismatch, bad dtype, a torch input that is
            not 4-D, or a non-positive ``data_range``.
    """
    kind = _check_pair("psnr", pred, target)
    peak = _check_data_range(data_range)
    _check_reduction("psnr", reduction)
    if kind == "numpy":
        diff = np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)
        mse = float(np.mean(diff * diff))
        if mse == 0.0:
            return math.inf
        return float(10.0 * np.log10(peak * peak / mse))
    mse = (pred - target).pow(2).flatten(1).mean(dim=1)
    values = 10.0 * torch.log10(peak * peak / mse)
    return _reduce(values, reduction)


# ----------------------------------------------------------------------------- SSIM


def _ssim_map_numpy(x: np.ndarray, y: np.ndarray, peak: float) -> np.ndarray:
    """SSIM map of two 2-D float64 images (full size, before the border crop)."""

    def blur(img: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(img, SSIM_SIGMA, truncate=SSIM_TRUNCATE, mode="reflect")

    c1 = (SSIM_K1 * peak) ** 2
    c2 = (SSIM_K2 * peak) ** 2
    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    num = (2.0 * mx * my + c1) * (2.0 * cxy + c2)
    den = (mx * mx + my * my + c1) * (vx + vy + c2)
    return num / den


def _ssim_numpy(
    pred: np.ndarray, target: np.ndarray, peak: float, channel_axis: int | None
) -> float:
    if pred.ndim == 2:
        planes_p, planes_t = pred[None], target[None]
    elif pred.ndim == 3:
        if channel_axis is None:
            raise RawSynthError(
                f"ssim: a 3-D image {tuple(pred.shape)} needs channel_axis (-1 for (H, W, C), "
                "0 for packed RAW (4, h, w))"
            )
        if not -3 <= channel_axis <= 2:
            raise RawSynthError(
                f"ssim: channel_axis {channel_axis} is out of range for shape {tuple(pred.shape)}"
            )
        planes_p = np.moveaxis(pred, channel_axis, 0)
        planes_t = np.moveaxis(target, channel_axis, 0)
    else:
        raise RawSynthError(
            f"ssim: numpy images must be (H, W) or 3-D with a channel axis, got shape "
            f"{tuple(pred.shape)}"
        )
    win = ssim_window_size()
    h, w = planes_p.shape[1:]
    if h < win or w < win:
        raise RawSynthError(
            f"ssim: image is {h}x{w} pixels, needs at least {win}x{win} (the Gaussian window)"
        )
    pad = (win - 1) // 2
    scores = []
    for p, t in zip(planes_p, planes_t):
        smap = _ssim_map_numpy(p.astype(np.float64), t.astype(np.float64), peak)
        scores.append(smap[pad : h - pad, pad : w - pad].mean())
    return float(np.mean(scores))


def _ssim_torch(pred: torch.Tensor, target: torch.Tensor, peak: float) -> torch.Tensor:
    b, c, h, w = pred.shape
    win = ssim_window_size()
    if h < win or w < win:
        raise RawSynthError(
            f"ssim: images are {h}x{w} pixels, need at least {win}x{win} (the Gaussian window)"
        )
    taps = torch.as_tensor(_gaussian_taps(), dtype=pred.dtype, device=pred.device)

    # The five local moments, filtered together as (5 * B * C, 1, H, W). skimage filters the
    # whole image with symmetric ("reflect") borders and then drops a `pad`-pixel border; every
    # sample it keeps depends on pixels inside the image only, so a 'valid' separable
    # filter without any padding gives exactly the kept region (vertical pass first, as before).
    # Both images are shifted by the target's per-channel mean first: (co)variances do not
    # change, but E[x^2] - E[x]^2 loses far fewer digits in float32 on flat bright regions.
    shift = target.detach().mean(dim=(-2, -1), keepdim=True)
    xs, ys = pred - shift, target - shift
    stack = torch.stack([xs, ys, xs * xs, ys * ys, xs * ys], dim=0)
    stack = stack.reshape(5 * b * c, 1, h, w)
    blurred = filter2d(stack, taps.view(1, win, 1), padding="valid")
    blurred = filter2d(blurred, taps.view(1, 1, win), padding="valid")
    mxs, mys, sxx, syy, sxy = blurred.reshape(5, b, c, *blurred.shape[-2:]).unbind(0)

    c1 = (SSIM_K1 * peak) ** 2
    c2 = (SSIM_K2 * peak) ** 2
    vx = sxx - mxs * mxs
    vy = syy - mys * mys
    cxy = sxy - mxs * mys
    mx, my = mxs + shift, mys + shift
    num = (2.0 * mx * my + c1) * (2.0 * cxy + c2)
    den = (mx * mx + my * my + c1) * (vx + vy + c2)
    return (num / den).flatten(1).mean(dim=1)


@overload
def ssim(
    pred: np.ndarray,
    target: np.ndarray,
    data_range: float = ...,
    channel_axis: int | None = ...,
    reduction: Reduction = ...,
) -> float: ...
@overload
def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = ...,
    channel_axis: int | None = ...,
    reduction: Reduction = ...,
) -> torch.Tensor: ...


def ssim(
    pred: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    data_range: float = 1.0,
    channel_axis: int | None = -1,
    reduction: Reduction = "none",
) -> float | torch.Tensor:
    """Structural similarity (Gaussian window), mean of the per-channel SSIMs.

    Equals ``skimage.metrics.structural_similarity(pred, target, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=data_range, channel_axis=channel_axis)``
    (the AIM 2022 scoring convention): 11x11 Gaussian window, sigma 1.5, symmetric border
    extension, mean over the valid region (5-pixel border dropped), then over channels.

    Args:
        pred: the estimate. numpy: ``(H, W)`` or a 3-D image whose channel axis is
            ``channel_axis``; any real dtype. torch: a floating-point batch ``(B, C, H, W)``.
            H and W must be at least 11.
        target: the reference, same kind and shape as ``pred``.
        data_range: peak-to-peak range of the signal (1.0 for normalised images).
        channel_axis: numpy 3-D inputs only: the channel axis, ``-1`` for channels-last RGB
            ``(H, W, 3)`` (default), ``0`` for packed RAW ``(4, h, w)``. Ignored for 2-D numpy
            images and for torch tensors (always ``(B, C, H, W)``).
        reduction: torch only: ``"none"`` gives ``(B,)``, ``"mean"`` a 0-d tensor.

    Returns:
        numpy: a Python float in [-1, 1]. torch: a tensor ``(B,)`` or 0-d in the input dtype,
        differentiable with respect to both inputs.

    Raises:
        RawSynthError: mixed numpy/torch inputs, shape mismatch, bad dtype or rank, an image
            smaller than 11x11, a bad ``channel_axis`` or a non-positive ``data_range``.
    """
    kind = _check_pair("ssim", pred, target)
    peak = _check_data_range(data_range)
    _check_reduction("ssim", reduction)
    if kind == "numpy":
        return _ssim_numpy(pred, target, peak, channel_axis)
    return _reduce(_ssim_torch(pred, target, peak), reduction)


class SSIMLoss(torch.nn.Module):
    """``1 - SSIM`` as a training loss, averaged over the batch.

    Args:
        data_range: peak-to-peak range of the signal (1.0 for normalised images).

    Shape:
        - pred, target: ``(B, C, H, W)`` floating point, H and W at least 11.
        - output: a 0-d tensor.
    """

    def __init__(self, data_range: float = 1.0) -> None:
        super().__init__()
        self.data_range = _check_data_range(data_range)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return ``1 - mean(ssim(pred, target))``."""
        return 1.0 - ssim(pred, target, self.data_range, reduction="mean")
