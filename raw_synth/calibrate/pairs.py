"""Noise level from aligned noisy/clean pairs: binned mean-variance fit per plane.

For each packed plane the residual ``noisy - clean`` is binned by the *clean* level; each bin
gives a point ``(mean clean level, variance of the residual)``, and the line
``variance = shot * x + read`` is fitted by weighted least squares (see
:func:`raw_synth.calibrate.nlf.fit_nlf_line`). Since the model is linear in ``x``, a bin's mean
variance is exactly the model at the bin's mean level, however wide the bin.

Clipping biases the variance (a clipped tail has less spread), so it is kept out:

* pixels whose noisy value sits at a clip level (the 0 DN floor after black subtraction,
  the white level) are dropped;
* pixels whose clean value is within ``margin`` standard deviations of a clip level
  (``clean + margin * sigma >= high`` or ``clean - margin * sigma <= low``) are dropped, with
  ``sigma`` from the current fit; the first pass instead drops every bin that holds a
  clipped pixel, and the fit is repeated until the kept set no longer changes.

Excluding pixels near the 0 DN floor costs exactly the dark pixels that carry the read term,
so for data clipped at black (black level 0, as SIDD's phones) the binned fit is refined by a
**censored-Gaussian maximum likelihood** over all pixels: unclipped pixels contribute the
Gaussian density of ``noisy - clean - offset`` with variance ``shot * clean + read``, clipped
ones the probability of falling beyond the clip (Tobit model). For integer data the clip
thresholds move half a quantisation step inwards (a value rounds to the floor when it is below
floor + step/2). ``method="auto"`` uses it when at least 0.1% of a plane sits on the floor.
Heavy-tailed or strongly skewed noise near the floor departs from the Gaussian model; the
binned fit makes no distributional assumption.
"""

from __future__ import annotations

import logging
import math
from typing import Sequence, Union

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_ndtr

from raw_synth.calibrate.nlf import BinStats, ClipSpec, NoiseFit, clip_bounds, fit_nlf_line
from raw_synth.errors import RawSynthError
from raw_synth.per_plane import per_plane

__all__ = ["fit_pairs", "as_packed_list", "bin_edges", "detect_quant_step"]

logger = logging.getLogger(__name__)

PackedInput = Union[np.ndarray, Sequence[np.ndarray]]
"""One packed image ``(4, h, w)``, a stack ``(n, 4, h, w)``, or a sequence of packed images."""

_CLIP_TOL = 1e-6  # a noisy value within this of a clip level counts as clipped
_CENSOR_SHARE = 1e-3  # share of a plane on the low clip from which "auto" uses the censored fit


def as_packed_list(images: PackedInput, name: str) -> list[np.ndarray]:
    """Normalise the accepted image inputs to a list of float64 ``(4, h, w)`` arrays (copies).

    Args:
        images: ``(4, h, w)``, ``(n, 4, h, w)`` or a sequence of ``(4, h, w)`` real arrays.
        name: argument name for error messages.

    Returns:
        A non-empty list of float64 arrays.

    Raises:
        RawSynthError: on an empty input or a wrong shape/dtype.
    """
    if isinstance(images, np.ndarray):
        if images.ndim == 3:
            items = [images]
        elif images.ndim == 4:
            items = list(images)
        else:
            raise RawSynthError(f"{name}: expected packed RAW (4, h, w) or a stack (n, 4, h, w), "
                                f"got shape {images.shape}")
    elif isinstance(images, (list, tuple)):
        items = list(images)
    else:
        raise RawSynthError(f"{name}: expected a numpy array or a list of arrays, got {type(images).__name__}")
    if not items:
        raise RawSynthError(f"{name}: no images given")
    out = []
    for i, item in enumerate(items):
        arr = np.asarray(item)
        if arr.ndim != 3 or arr.shape[0] != 4 or arr.shape[1] < 3 or arr.shape[2] < 3:
            raise RawSynthError(f"{name}[{i}]: expected packed RAW of shape (4, h, w) with h, w >= 3, got {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise RawSynthError(f"{name}[{i}]: expected real numbers, got dtype {arr.dtype}")
        out.append(arr.astype(np.float64))
    return out


def bin_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin edges over ``values``: half equal-width, half equal-count (quantiles), merged.

    Equal-width bins cover sparse bright levels; quantile bins resolve the dense dark levels,
    where the read term is measured.

    Args:
        values: 1-D float array, at least two distinct values.
        n_bins: target number of bins (``>= 2``).

    Returns:
        Sorted unique edges, float64, first = min and last = max of ``values``.
    """
    lo, hi = float(values.min()), float(values.max())
    half = max(1, n_bins // 2)
    linear = np.linspace(lo, hi, half + 1)
    quantiles = np.quantile(values, np.linspace(0.0, 1.0, n_bins - half + 1))
    return np.unique(np.concatenate([linear, quantiles, [lo, hi]]))


def fit_pairs(
    noisy: PackedInput,
    clean: PackedInput,
    *,
    clip_low: ClipSpec = "auto",
    clip_high: ClipSpec = "auto",
    n_bins: int = 128,
    min_count: int = 64,
    margin: float = 3.0,
    iterations: int = 5,
    method: str = "auto",
    quant_step: Union[str, float, Sequence[float], None] = "auto",
) -> NoiseFit:
    """Fit ``variance = shot * x + read`` per plane from noisy/clean pairs.

    Args:
        noisy: noisy packed RAW, normalised, ``(4, h, w)`` float (or a stack / list of them,
            pooled). Not modified.
        clean: the matching clean images, same shapes.
        clip_low: where the noisy data were clipped below, normalised: ``"auto"`` (detect a
            pile-up at the plane minimum), ``None``, a number or 4 numbers. For data clipped at
            0 DN this is ``-black / (white - black)`` (0 when black is 0).
        clip_high: clip above: ``"auto"`` (a pile-up at the plane maximum, else none), ``None``,
            a number or 4 numbers (1.0 is the white level).
        n_bins: number of bins over the kept clean range (see :func:`bin_edges`).
        min_count: bins with fewer pixels are not used.
        margin: clean levels closer than ``margin`` noise standard deviations to a clip level
            are excluded.
        iterations: maximum fit/exclusion passes.
        method: ``"binned"`` (mean-variance bins, clipping excluded), ``"censored"`` (binned,
            then the censored-Gaussian likelihood over all pixels) or ``"auto"`` (censored for
            planes with at least 0.1% of the pixels on the low clip, else binned).
        quant_step: quantisation step of the noisy data in normalised units
            (``1 / (white - black)`` for integer DN), 4 values, ``None`` (continuous) or
            ``"auto"`` (detected from the values); used by the censored fit.

    Returns:
        :class:`NoiseFit` with ``method`` ``"pairs"`` (all planes binned) or
        ``"pairs-censored"`` (some plane refined), per-plane bins, the binned line's R^2 and
        the pixel counts used (all finite pixels for a censored plane).

    Raises:
        RawSynthError: on mismatched inputs or when a plane has too few usable pixels.
    """
    noisy_list = as_packed_list(noisy, "noisy")
    clean_list = as_packed_list(clean, "clean")
    if len(noisy_list) != len(clean_list):
        raise RawSynthError(f"noisy/clean: {len(noisy_list)} noisy image(s) but {len(clean_list)} clean image(s)")
    for i, (n, c) in enumerate(zip(noisy_list, clean_list)):
        if n.shape != c.shape:
            raise RawSynthError(f"noisy/clean: pair {i} has shapes {n.shape} and {c.shape}")
    if method not in ("auto", "binned", "censored"):
        raise RawSynthError(f"method: expected 'auto', 'binned' or 'censored', got {method!r}")
    if n_bins < 2 or min_count < 2 or margin < 0 or iterations < 1:
        raise RawSynthError(
            f"fit_pairs: need n_bins >= 2, min_count >= 2, margin >= 0, iterations >= 1, "
            f"got {n_bins}, {min_count}, {margin}, {iterations}"
        )
    ys = np.concatenate([n.reshape(4, -1) for n in noisy_list], axis=1)
    xs = np.concatenate([c.reshape(4, -1) for c in clean_list], axis=1)
    low, high = clip_bounds(ys[:, :, None], clip_low, clip_high)

    steps = _quant_steps(ys, low, quant_step)

    shots, reads, r2s, counts, bins = [], [], [], [], []
    censored_any = False
    for plane in range(4):
        x, y = xs[plane], ys[plane]
        s, r, r2, n, stats = _fit_plane(x, y, low[plane], high[plane], n_bins, min_count, margin, iterations, plane)
        floor_share = float(np.mean(y <= low[plane] + _CLIP_TOL)) if np.isfinite(low[plane]) else 0.0
        if method == "censored" or (method == "auto" and floor_share >= _CENSOR_SHARE):
            s, r, n = _censored_fit(x, y, low[plane], high[plane], steps[plane], s, r)
            censored_any = True
        shots.append(s)
        reads.append(r)
        r2s.append(r2)
        counts.append(n)
        bins.append(stats)
    return NoiseFit(shot=np.array(shots), read=np.array(reads), method="pairs-censored" if censored_any else "pairs",
                    r2=np.array(r2s), n_pixels=np.array(counts), bins=tuple(bins))


def _quant_steps(ys: np.ndarray, low: np.ndarray, spec: Union[str, float, Sequence[float], None]) -> np.ndarray:
    """Per-plane quantisation step (0 for continuous data)."""
    if spec is None:
        return np.zeros(4)
    if isinstance(spec, str):
        if spec != "auto":
            raise RawSynthError(f"quant_step: expected 'auto', None, a number or 4 numbers, got {spec!r}")
        return np.array([detect_quant_step(ys[c]) for c in range(4)])
    try:
        arr = per_plane(spec)
    except (TypeError, ValueError):
        raise RawSynthError(f"quant_step: expected 'auto', None, a number or 4 numbers, got {spec!r}") from None
    if arr is None or np.any(~np.isfinite(arr)) or np.any(arr < 0):
        raise RawSynthError(f"quant_step: expected 'auto', None, a number or 4 numbers >= 0, got {spec!r}")
    return arr


def detect_quant_step(values: np.ndarray, sample: int = 20000) -> float:
    """Quantisation step of data that sit on a regular lattice (integer DN, normalised), else 0.

    The candidate is the smallest gap between distinct values of a fixed subsample; it is
    accepted when 99% of the values lie within 2% of a step from the lattice.

    Args:
        values: 1-D float data.
        sample: values examined.

    Returns:
        The step, or 0.0 for continuous data.
    """
    v = values[np.isfinite(values)]
    if v.size < 3:
        return 0.0
    if v.size > sample:
        v = v[:: v.size // sample]
    distinct = np.unique(v)
    if distinct.size < 3:
        return 0.0
    gaps = np.diff(distinct)
    step = float(gaps.min())
    if step <= 0.0 or step < 1e-9 * max(1.0, float(np.abs(distinct).max())):
        return 0.0
    phase = (v - distinct[0]) / step
    on_lattice = np.abs(phase - np.rint(phase)) < 0.02
    return step if on_lattice.mean() >= 0.99 else 0.0


def _censored_fit(
    x: np.ndarray, y: np.ndarray, low: float, high: float, step: float, shot0: float, read0: float
) -> tuple[float, float, int]:
    """Censored-Gaussian ML of (shot, read, offset) over all finite pixels, from a binned start."""
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    at_low = y <= low + _CLIP_TOL if np.isfinite(low) else np.zeros(y.shape, bool)
    at_high = y >= high - _CLIP_TOL if np.isfinite(high) else np.zeros(y.shape, bool)
    mid = ~(at_low | at_high)
    lo_edge, hi_edge = low + 0.5 * step, high - 0.5 * step
    xm, dm, xl, xh = x[mid], y[mid] - x[mid], x[at_low], x[at_high]
    spread = float(np.var(dm)) if dm.size else 1e-6
    scale = np.array([max(shot0, 1e-6 * spread), max(read0, 1e-6 * spread)])
    offset_scale = math.sqrt(max(spread, 1e-30))

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        s, r = np.exp(theta[:2]) * scale
        mu = theta[2] * offset_scale
        grad_v_s = grad_v_r = grad_mu = 0.0
        v = np.maximum(s * xm + r, 1e-300)
        d = dm - mu
        nll = 0.5 * float(np.sum(np.log(v) + d * d / v))
        g = 0.5 * (1.0 / v - d * d / v**2)  # d nll / d v
        grad_v_s += float(np.sum(g * xm))
        grad_v_r += float(np.sum(g))
        grad_mu += float(-np.sum(d / v))
        for xc, sign, edge in ((xl, 1.0, lo_edge), (xh, -1.0, hi_edge)):
            if xc.size == 0:
                continue
            vc = np.maximum(s * xc + r, 1e-300)
            sd = np.sqrt(vc)
            a = sign * (edge - xc - mu) / sd  # P(clip) = Phi(a)
            log_p = log_ndtr(a)
            nll -= float(np.sum(log_p))
            mills = np.exp(-0.5 * a * a - 0.5 * math.log(2.0 * math.pi) - log_p)  # phi(a) / Phi(a)
            gv = mills * a / (2.0 * vc)  # d(-log Phi(a)) / dv
            grad_v_s += float(np.sum(gv * xc))
            grad_v_r += float(np.sum(gv))
            grad_mu += float(np.sum(mills * sign / sd))
        grad = np.array([grad_v_s * s, grad_v_r * r, grad_mu * offset_scale])
        return nll, grad

    start = np.zeros(3)
    result = minimize(objective, start, jac=True, method="L-BFGS-B",
                      bounds=[(-30.0, 30.0), (-30.0, 30.0), (-50.0, 50.0)])
    if not result.success:
        logger.warning("censored noise fit did not converge (%s); keeping the binned fit", result.message)
        return shot0, read0, int(mid.sum())
    s, r = np.exp(result.x[:2]) * scale
    return float(s), float(r), int(x.size)


def _fit_plane(
    x: np.ndarray,
    y: np.ndarray,
    low: float,
    high: float,
    n_bins: int,
    min_count: int,
    margin: float,
    iterations: int,
    plane: int,
) -> tuple[float, float, float, int, BinStats]:
    finite = np.isfinite(x) & np.isfinite(y)
    inside = finite.copy()
    if np.isfinite(low):
        inside &= y > low + _CLIP_TOL
    if np.isfinite(high):
        inside &= y < high - _CLIP_TOL
    clipped = finite & ~inside
    residual = y - x
    model: tuple[float, float] | None = None
    previous: np.ndarray | None = None
    result = None
    for _ in range(iterations):
        if model is None:
            keep = inside
        else:
            sigma = np.sqrt(np.maximum(model[0] * x + model[1], 0.0))
            keep = inside & (x + margin * sigma < high) & (x - margin * sigma > low)
        if previous is not None and np.array_equal(keep, previous):
            break
        if keep.sum() < 2 * min_count:
            raise RawSynthError(f"noisy/clean: plane {plane} has only {int(keep.sum())} unclipped pixels to fit")
        x_lo, x_hi = float(x[keep].min()), float(x[keep].max())
        if x_hi <= x_lo:
            raise RawSynthError(f"noisy/clean: plane {plane}: the clean image is constant; need a range of levels")
        edges = bin_edges(x[keep], n_bins)
        n_edges = edges.size - 1
        index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n_edges - 1)
        k = index[keep]
        count = np.bincount(k, minlength=n_edges)
        sum_x = np.bincount(k, weights=x[keep], minlength=n_edges)
        sum_r = np.bincount(k, weights=residual[keep], minlength=n_edges)
        sum_r2 = np.bincount(k, weights=residual[keep] ** 2, minlength=n_edges)
        ok = count >= min_count
        if model is None:
            in_range = clipped & (x >= x_lo) & (x <= x_hi)
            ok &= np.bincount(index[in_range], minlength=n_edges) == 0
        safe = np.maximum(count, 2)
        mean = sum_x / np.maximum(count, 1)
        var = (sum_r2 - sum_r**2 / safe) / (safe - 1)
        if ok.sum() < 2:
            raise RawSynthError(f"noisy/clean: plane {plane}: fewer than 2 bins with {min_count} unclipped pixels")
        s, r, r2, used = fit_nlf_line(mean[ok], var[ok], count[ok] - 1.0)
        used_all = np.zeros(n_edges, bool)
        used_all[np.flatnonzero(ok)[used]] = True
        present = count > 0
        result = (s, r, r2, int(keep.sum()),
                  BinStats(mean[present], var[present], count[present].astype(np.int64), used_all[present]))
        model = (s, r)
        previous = keep
    assert result is not None
    logger.debug("pairs plane %d: shot %.4g read %.4g from %d pixels", plane, result[0], result[1], result[3])
    return result
