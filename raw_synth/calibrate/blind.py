"""Noise level from a single noisy RAW image (no clean reference): weak-texture blocks.

Per packed plane:

1. **Noise residual.** ``e = (M * y) / 6`` with Immerkaer's mask
   ``M = [[1, -2, 1], [-2, 4, -2], [1, -2, 1]]`` (the outer product of two second differences,
   ``sum M^2 = 36``). It annihilates every polynomial of degree 2 (and ``x^2 y``, ``x y^2``),
   so on smooth content ``E[e^2]`` is the noise variance at that place.
2. **Blocks.** ``block x block`` blocks every ``stride`` pixels (half a block by default, so
   they overlap); each gives its mean level ``m`` (unbiased for the clean level), its noise
   statistic ``v = mean(e^2)`` and a texture statistic ``t = Var(dx) + Var(dy)`` of the first
   differences of the image smoothed by a 3x3 binomial filter (plane trends removed). For pure
   noise ``v`` and ``t`` are proportional to ``sigma^2(m)``; texture raises them. The smoothing
   puts ``t`` in a lower frequency band than ``e``, so selecting blocks on ``t`` hardly selects
   on their noise (selecting on plain gradients biased the estimate low by several percent).
3. **Weak-texture selection** in the spirit of Liu, Tanaka & Okutomi (2013), "Single-image noise
   level estimation for blind denoising": a block is kept when ``v`` and ``t`` are below the
   ``quantile`` of their distribution under pure noise at the level the current fit predicts,
   ``sigma^2(m) = shot * m + read``. Those null distributions of ``v / sigma^2`` and
   ``t / sigma^2`` are computed once by Monte Carlo (fixed seed), which also gives the mean of
   ``v / sigma^2`` over the kept noise-only blocks, so the truncation does not bias the result.
   Blocks touching a clipped pixel, or within ``margin`` standard deviations of a clip level,
   are dropped.
4. **Fit.** ``shot`` and ``read`` by weighted least squares over the kept blocks (weights
   ``1 / sigma^4``), and the selection/fit are repeated until the kept set is stable. The
   first fit uses, per intensity bin, the median of ``v`` scaled by the null median, which
   texture affects little.

Content must hold smooth regions over a range of levels. ``read`` is only measurable where
flat areas reach down to about ``read / shot`` (below that level the read term dominates the
variance); an image without such dark flat areas determines ``shot`` but not ``read``. Strong
fine texture everywhere makes the estimate too high.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import binary_dilation

from raw_synth.calibrate.nlf import BinStats, ClipSpec, NoiseFit, clip_bounds, fit_nlf_line
from raw_synth.calibrate.pairs import PackedInput, as_packed_list, bin_edges
from raw_synth.errors import RawSynthError

__all__ = ["estimate_blind", "block_statistics", "null_statistics", "NullStats"]

logger = logging.getLogger(__name__)

_CLIP_TOL = 1e-6
_NULL_BLOCKS = 50000


@dataclass(frozen=True)
class NullStats:
    """Distribution of the block statistics under pure unit-variance Gaussian noise.

    Attributes:
        v_limit: the ``quantile`` of ``v / sigma^2``.
        t_limit: the ``quantile`` of ``t / sigma^2``.
        v_median: median of ``v / sigma^2``.
        kept_mean: mean of ``v / sigma^2`` over blocks passing both limits (``E[v] = sigma^2``).
        dof: effective degrees of freedom of ``v`` (``2 / Var(v / sigma^2)``).
    """

    v_limit: float
    t_limit: float
    v_median: float
    kept_mean: float
    dof: float


def _residual(y: np.ndarray) -> np.ndarray:
    """Immerkaer residual ``(M * y) / 6`` over the interior, shape ``(h - 2, w - 2)``."""
    rows = y[:-2] - 2.0 * y[1:-1] + y[2:]
    return (rows[:, :-2] - 2.0 * rows[:, 1:-1] + rows[:, 2:]) / 6.0


def _binomial(y: np.ndarray) -> np.ndarray:
    """3x3 binomial smoothing ``[1, 2, 1] / 4`` in both directions, interior ``(.., h - 2, w - 2)``."""
    rows = (y[..., :-2, :] + 2.0 * y[..., 1:-1, :] + y[..., 2:, :]) / 4.0
    return (rows[..., :, :-2] + 2.0 * rows[..., :, 1:-1] + rows[..., :, 2:]) / 4.0


def _texture(smooth_blocks: np.ndarray) -> np.ndarray:
    """Texture statistic: variance of the horizontal plus vertical first differences of the
    smoothed pixels of each block (``(..., block, block)`` to ``(...)``). Smoothing keeps it
    mostly out of the frequency band of the noise residual, so selecting on it hardly selects
    on the noise itself."""
    dx = np.diff(smooth_blocks, axis=-1)
    dy = np.diff(smooth_blocks, axis=-2)
    return dx.var(axis=(-2, -1)) + dy.var(axis=(-2, -1))


def _blocks(a: np.ndarray, block: int, stride: int) -> np.ndarray:
    """Blocks of ``a`` (2-D) every ``stride`` pixels: a view ``(ny, nx, block, block)``."""
    return sliding_window_view(a, (block, block))[::stride, ::stride]


def block_statistics(plane: np.ndarray, block: int,
                     stride: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean level, noise statistic and texture statistic of each block of one plane.

    Args:
        plane: ``(h, w)`` float image, ``h, w >= block + 2``.
        block: block side in pixels, ``>= 3``.
        stride: step between blocks (default ``block``: a tiling; smaller overlaps them).

    Returns:
        ``(m, v, t)``, float64 ``(ny, nx)`` each, ``ny = (h - 2 - block) // stride + 1``
        (blocks cover the interior ``plane[1:-1, 1:-1]``).
    """
    step = block if stride is None else int(stride)
    y = np.asarray(plane, dtype=np.float64)
    m = _blocks(y[1:-1, 1:-1], block, step).mean(axis=(2, 3))
    v = _blocks(_residual(y) ** 2, block, step).mean(axis=(2, 3))
    t = _texture(_blocks(_binomial(y), block, step))
    return m, v, t


@functools.lru_cache(maxsize=16)
def null_statistics(block: int, quantile: float, texture_quantile: float | None = None) -> NullStats:
    """Monte-Carlo null distribution of the block statistics (fixed seed, cached).

    Args:
        block: block side in pixels.
        quantile: selection quantile in ``(0, 1)`` of ``v`` (and of ``t`` by default).
        texture_quantile: a different quantile for ``t``.

    Returns:
        :class:`NullStats`.
    """
    gen = np.random.default_rng(20130)
    size = block + 2
    noise = gen.standard_normal((_NULL_BLOCKS, size, size))
    rows = noise[:, :-2] - 2.0 * noise[:, 1:-1] + noise[:, 2:]
    e = (rows[:, :, :-2] - 2.0 * rows[:, :, 1:-1] + rows[:, :, 2:]) / 6.0
    v = (e**2).mean(axis=(1, 2))
    t = _texture(_binomial(noise))
    # E[v] = 1 exactly for unit noise: dividing by the sample mean removes most Monte-Carlo error
    v = v / v.mean()
    v_limit = float(np.quantile(v, quantile))
    t_limit = float(np.quantile(t, quantile if texture_quantile is None else texture_quantile))
    kept = (v <= v_limit) & (t <= t_limit)
    return NullStats(
        v_limit=v_limit,
        t_limit=t_limit,
        v_median=float(np.median(v)),
        kept_mean=float(v[kept].mean()),
        dof=float(2.0 / v.var()),
    )


def estimate_blind(
    noisy: PackedInput,
    *,
    clip_low: ClipSpec = "auto",
    clip_high: ClipSpec = "auto",
    block: int = 8,
    stride: int | None = None,
    quantile: float = 0.99,
    margin: float = 3.0,
    iterations: int = 10,
    n_bins: int = 16,
) -> NoiseFit:
    """Estimate ``variance = shot * x + read`` per plane from noisy RAW alone.

    Args:
        noisy: packed RAW, normalised, ``(4, h, w)`` (or a stack / list, pooled). Not modified.
        clip_low: clip level below (``"auto"``, ``None``, a number or 4), as in
            :func:`raw_synth.calibrate.fit_pairs`.
        clip_high: clip level above (``"auto"``: a pile-up at the maximum, else none; 1.0 is
            the white level).
        block: block side in packed pixels (``>= 4``).
        stride: step between blocks; default ``block // 2`` (overlapping blocks find more of
            the flat area next to edges).
        quantile: null quantile of the texture tests (``0.5 < quantile < 1``).
        margin: blocks whose level is within ``margin`` noise standard deviations of a clip
            level are dropped.
        iterations: maximum selection/fit passes.
        n_bins: intensity bins of the initial robust fit and of the reported diagnostics.

    Returns:
        :class:`NoiseFit` with ``method="blind"``; ``n_pixels`` counts the kept *blocks*.

    Raises:
        RawSynthError: on bad input or too few usable blocks in a plane.
    """
    images = as_packed_list(noisy, "noisy")
    stride = max(1, block // 2) if stride is None else int(stride)
    if block < 4 or stride < 1 or not 0.5 < quantile < 1.0 or margin < 0 or iterations < 1 or n_bins < 2:
        raise RawSynthError(
            f"estimate_blind: need block >= 4, stride >= 1, 0.5 < quantile < 1, margin >= 0, iterations >= 1, "
            f"n_bins >= 2, got {block}, {quantile}, {margin}, {iterations}, {n_bins}"
        )
    for i, img in enumerate(images):
        if img.shape[1] < block + 2 or img.shape[2] < block + 2:
            raise RawSynthError(f"noisy[{i}]: image {img.shape} is smaller than one block ({block} + 2 pixels)")
    low, high = clip_bounds(np.concatenate([img.reshape(4, -1) for img in images], axis=1)[:, :, None],
                            clip_low, clip_high)
    null = null_statistics(block, quantile)

    shots, reads, r2s, counts, bins = [], [], [], [], []
    for c in range(4):
        ms, vs, ts, bad = [], [], [], []
        for img in images:
            y = img[c]
            m, v, t = block_statistics(y, block, stride)
            clipped = ~np.isfinite(y)
            if np.isfinite(low[c]):
                clipped |= y <= low[c] + _CLIP_TOL
            if np.isfinite(high[c]):
                clipped |= y >= high[c] - _CLIP_TOL
            touched = binary_dilation(clipped, structure=np.ones((3, 3), bool))[1:-1, 1:-1]
            bad_block = (_blocks(touched, block, stride).any(axis=(2, 3))
                         | ~np.isfinite(m) | ~np.isfinite(v) | ~np.isfinite(t))
            ms.append(m.reshape(-1))
            vs.append(v.reshape(-1))
            ts.append(t.reshape(-1))
            bad.append(bad_block.reshape(-1))
        s, r, r2, n, stats = _fit_plane(
            np.concatenate(ms), np.concatenate(vs), np.concatenate(ts), ~np.concatenate(bad),
            float(low[c]), float(high[c]), null, margin, iterations, n_bins, c,
        )
        shots.append(s)
        reads.append(r)
        r2s.append(r2)
        counts.append(n)
        bins.append(stats)
    return NoiseFit(shot=np.array(shots), read=np.array(reads), method="blind", r2=np.array(r2s),
                    n_pixels=np.array(counts), bins=tuple(bins))


def _initial_fit(m: np.ndarray, v: np.ndarray, null: NullStats, n_bins: int, plane: int) -> tuple[float, float]:
    edges = bin_edges(m, n_bins)
    index = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, edges.size - 2)
    levels, variances, weights = [], [], []
    for b in range(edges.size - 1):
        inside = index == b
        k = int(inside.sum())
        if k < 3:
            continue
        levels.append(float(m[inside].mean()))
        variances.append(float(np.median(v[inside])) / null.v_median)
        weights.append(float(k))
    if len(levels) < 2:
        raise RawSynthError(f"noisy: plane {plane}: too few usable blocks at distinct levels for a noise fit")
    s, r, _, _ = fit_nlf_line(np.array(levels), np.array(variances), np.array(weights) * null.dof)
    return s, r


def _fit_plane(
    m: np.ndarray,
    v: np.ndarray,
    t: np.ndarray,
    usable: np.ndarray,
    low: float,
    high: float,
    null: NullStats,
    margin: float,
    iterations: int,
    n_bins: int,
    plane: int,
) -> tuple[float, float, float, int, BinStats]:
    if usable.sum() < 3:
        raise RawSynthError(f"noisy: plane {plane}: fewer than 3 unclipped blocks")
    shot, read = _initial_fit(m[usable], v[usable], null, n_bins, plane)
    previous = None
    keep = usable
    for _ in range(iterations):
        s2 = np.maximum(shot * m + read, 1e-30)
        sd = np.sqrt(s2)
        keep = (usable & (v <= null.v_limit * s2) & (t <= null.t_limit * s2)
                & (m + margin * sd < high) & (m - margin * sd > low))
        if previous is not None and np.array_equal(keep, previous):
            break
        if keep.sum() < 3 or np.ptp(m[keep]) <= 0.0:
            raise RawSynthError(f"noisy: plane {plane}: fewer than 3 weak-texture blocks at distinct levels")
        shot, read, _, _ = fit_nlf_line(m[keep], v[keep] / null.kept_mean, np.full(int(keep.sum()), null.dof))
        previous = keep

    # diagnostics: binned kept blocks
    mk, vk = m[keep], v[keep] / null.kept_mean
    edges = bin_edges(mk, n_bins)
    index = np.clip(np.searchsorted(edges, mk, side="right") - 1, 0, edges.size - 2)
    count = np.bincount(index, minlength=edges.size - 1)
    present = count > 0
    mean = np.bincount(index, weights=mk, minlength=edges.size - 1)[present] / count[present]
    var = np.bincount(index, weights=vk, minlength=edges.size - 1)[present] / count[present]
    r2 = float("nan")
    if present.sum() >= 3:
        model = np.maximum(shot * mean + read, 1e-30)
        w = count[present] / model**2
        avg = np.sum(w * var) / np.sum(w)
        total = np.sum(w * (var - avg) ** 2)
        if total > 0:
            r2 = float(1.0 - np.sum(w * (var - model) ** 2) / total)
    logger.debug("blind plane %d: shot %.4g read %.4g from %d blocks", plane, shot, read, int(keep.sum()))
    stats = BinStats(mean, var, count[present].astype(np.int64), np.ones(int(present.sum()), bool))
    return shot, read, r2, int(keep.sum()), stats
