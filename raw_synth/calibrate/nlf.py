"""The noise-level-function result type and the weighted line fit every estimator shares.

A noise level function (NLF) is, per packed plane (R, Gr, Gb, B), ``variance(x) = shot * x +
read`` in normalised units (the DNG NoiseProfile / SIDD convention). The estimators of
:mod:`raw_synth.calibrate` measure points ``(mean level, variance)`` - per intensity bin, per
image block or per flat-field level - and fit that line by weighted least squares with
non-negative coefficients (:func:`fit_nlf_line`). The weights are the inverse variances of the
variance estimates, ``dof / (2 * model^2)`` for Gaussian noise, refined iteratively from the
fitted model (IRLS) so that noisy sample variances do not bias their own weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

import numpy as np
from scipy.optimize import nnls

from raw_synth.errors import RawSynthError
from raw_synth.noise_level import NoiseLevel
from raw_synth.per_plane import per_plane

__all__ = ["BinStats", "NoiseFit", "fit_nlf_line", "clip_bounds", "PLANES"]

PLANES = ("R", "Gr", "Gb", "B")
"""Names of the packed planes, in order."""

ClipSpec = Union[str, float, Sequence[float], np.ndarray, None]
"""A clip level: ``"auto"``, ``None`` (no clipping), a number, or 4 numbers (R, Gr, Gb, B)."""


@dataclass(frozen=True, eq=False)
class BinStats:
    """Binned mean-variance points of one plane (diagnostics of a fit).

    Attributes:
        mean: mean level of each bin, normalised units, float64 ``(n,)``.
        var: measured noise variance of each bin, float64 ``(n,)``.
        count: pixels (or blocks) in each bin, int64 ``(n,)``.
        used: whether the bin took part in the final fit, bool ``(n,)``.
    """

    mean: np.ndarray
    var: np.ndarray
    count: np.ndarray
    used: np.ndarray

    def to_dict(self) -> dict[str, list]:
        """Plain lists (JSON-able)."""
        return {
            "mean": [float(v) for v in self.mean],
            "var": [float(v) for v in self.var],
            "count": [int(v) for v in self.count],
            "used": [bool(v) for v in self.used],
        }


@dataclass(frozen=True, eq=False)
class NoiseFit(NoiseLevel):
    """A fitted per-plane noise level ``variance(x) = shot * x + read`` (a :class:`~raw_synth.noise_level.NoiseLevel`).

    Attributes:
        shot: shot coefficient per plane (R, Gr, Gb, B), float64 ``(4,)``, ``>= 0``.
        read: read coefficient per plane, float64 ``(4,)``, ``>= 0``.
        method: how it was obtained (``"pairs"``, ``"blind"``, ``"flat-dark"``,
            ``"dng-noise-profile"``, ...).
        r2: weighted coefficient of determination of the line per plane, float64 ``(4,)``
            (``nan`` when there was no fit).
        n_pixels: pixels (pairs, flats) or blocks (blind) used per plane, int64 ``(4,)``.
        bins: per-plane binned points, or ``None``.
        source: the files it came from (empty for arrays).
    """

    method: str
    r2: np.ndarray = field(default_factory=lambda: np.full(4, np.nan))
    n_pixels: np.ndarray = field(default_factory=lambda: np.zeros(4, np.int64))
    bins: Optional[tuple[BinStats, ...]] = None
    source: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()  # shot and read: 1 or 4 values, finite and >= 0, read-only (4,)
        set_ = object.__setattr__
        r2 = per_plane(self.r2)
        if r2 is None:
            raise RawSynthError(f"NoiseFit.r2: expected 1 or 4 values, got {np.asarray(self.r2).size}")
        r2.setflags(write=False)
        set_(self, "r2", r2)
        counts = np.array(self.n_pixels, dtype=np.int64).reshape(-1)
        if counts.size == 1:
            counts = np.full(4, int(counts[0]), np.int64)
        counts.setflags(write=False)
        set_(self, "n_pixels", counts)
        set_(self, "source", tuple(str(s) for s in self.source))

    def to_dict(self, bins: bool = False) -> dict[str, Any]:
        """JSON-able summary.

        Args:
            bins: include the binned points.

        Returns:
            ``{"method", "shot": [4], "read": [4], "r2": [4] (None for nan), "n_pixels": [4],
            "source": [...]}`` plus ``"bins"`` when asked.
        """
        out: dict[str, Any] = {
            "method": self.method,
            "shot": [float(v) for v in self.shot],
            "read": [float(v) for v in self.read],
            "r2": [None if not math.isfinite(v) else float(v) for v in self.r2],
            "n_pixels": [int(v) for v in self.n_pixels],
            "source": list(self.source),
        }
        if bins and self.bins is not None:
            out["bins"] = {name: b.to_dict() for name, b in zip(PLANES, self.bins)}
        return out


def fit_nlf_line(
    level: np.ndarray,
    var: np.ndarray,
    dof: np.ndarray,
    *,
    iterations: int = 4,
    reject: Optional[float] = None,
) -> tuple[float, float, float, np.ndarray]:
    """Fit ``var = shot * level + read`` with ``shot, read >= 0`` by iteratively reweighted NNLS.

    The variance of a sample variance with ``dof`` degrees of freedom is ``2 v^2 / dof`` for
    Gaussian noise, so point ``i`` gets the weight ``dof_i / model_i^2``; the first pass uses the
    measured variances, later passes the fitted model.

    Args:
        level: mean level of each point, float ``(n,)``.
        var: measured variance of each point, float ``(n,)``.
        dof: degrees of freedom (or any weight proportional to them), float ``(n,)``, ``> 0``.
        iterations: reweighting passes.
        reject: when set, points more than ``reject`` standard errors above or below the
            model are dropped between passes (for contaminated points, e.g. texture).

    Returns:
        ``(shot, read, r2, used)``: the coefficients, the weighted R^2 of the final fit
        (``nan`` with fewer than 3 points) and the bool mask of the points used.

    Raises:
        RawSynthError: with fewer than 2 points, or all at one level.
    """
    x = np.asarray(level, dtype=np.float64)
    v = np.asarray(var, dtype=np.float64)
    d = np.asarray(dof, dtype=np.float64)
    used = np.isfinite(x) & np.isfinite(v) & np.isfinite(d) & (d > 0)
    if used.sum() < 2 or np.ptp(x[used]) <= 0.0:
        raise RawSynthError(
            f"noise fit: need at least 2 points at different levels, got {int(used.sum())} usable point(s)"
        )
    floor = max(float(np.max(np.abs(v[used]))) * 1e-12, 1e-300)
    model = np.maximum(v, floor)
    shot = read = 0.0
    for it in range(max(1, iterations)):
        w = np.sqrt(d[used]) / np.maximum(model[used], floor)
        a = np.stack([x[used], np.ones(int(used.sum()))], axis=1) * w[:, None]
        b = v[used] * w
        norms = np.linalg.norm(a, axis=0)
        norms[norms == 0.0] = 1.0
        coef, _ = nnls(a / norms, b)
        shot, read = float(coef[0] / norms[0]), float(coef[1] / norms[1])
        model = np.maximum(shot * x + read, floor)
        if reject is not None and it < iterations - 1:
            z = (v - model) / (model * np.sqrt(2.0 / np.maximum(d, 1e-300)))
            keep = used & (np.abs(z) <= reject)
            if keep.sum() >= 2 and np.ptp(x[keep]) > 0.0:
                used = keep
    r2 = _weighted_r2(x[used], v[used], d[used], model[used], shot, read)
    return shot, read, r2, used


def _weighted_r2(x: np.ndarray, v: np.ndarray, d: np.ndarray, model: np.ndarray, shot: float, read: float) -> float:
    if x.size < 3:
        return float("nan")
    w = d / model**2
    fit = shot * x + read
    mean = np.sum(w * v) / np.sum(w)
    total = np.sum(w * (v - mean) ** 2)
    if total <= 0.0:
        return float("nan")
    return float(1.0 - np.sum(w * (v - fit) ** 2) / total)


def _pile_up(values: np.ndarray, low: bool) -> Optional[float]:
    """The extreme value of ``values`` if it is a clipping pile-up, else None.

    A clip shows as many samples at exactly the extreme value: at least 8, and at least half as
    many as at the next distinct value (a natural tail thins out towards its end instead).
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    extreme = float(finite.min() if low else finite.max())
    at = finite == extreme
    n_at = int(at.sum())
    if n_at < 8:
        return None
    rest = finite[~at]
    if rest.size == 0:
        return extreme
    nxt = float(rest.min() if low else rest.max())
    n_next = int((rest == nxt).sum())
    return extreme if n_at * 2 >= n_next else None


def clip_bounds(noisy: np.ndarray, clip_low: ClipSpec, clip_high: ClipSpec) -> tuple[np.ndarray, np.ndarray]:
    """Resolve the clip levels of a packed noisy image (or a stack of them) to per-plane bounds.

    Args:
        noisy: ``(4, h, w)`` or ``(n, 4, h, w)`` normalised noisy data.
        clip_low: ``"auto"`` (a pile-up at the plane minimum, else no floor), ``None`` (no
            floor), a number or 4 numbers (e.g. ``-black / (white - black)``, the 0 DN floor).
        clip_high: ``"auto"`` (a pile-up at the plane maximum, else no ceiling), ``None`` (no
            ceiling), a number or 4 numbers (1.0 is the white level).

    Returns:
        ``(low, high)`` float64 ``(4,)`` each (``-inf`` / ``inf`` for none).

    Raises:
        RawSynthError: on a malformed clip argument.
    """
    planes = noisy if noisy.ndim == 4 else noisy[None]
    out = []
    for spec, low, name in ((clip_low, True, "clip_low"), (clip_high, False, "clip_high")):
        none = -np.inf if low else np.inf
        if spec is None:
            out.append(np.full(4, none))
        elif isinstance(spec, str):
            if spec != "auto":
                raise RawSynthError(f"{name}: expected 'auto', None, a number or 4 numbers, got {spec!r}")
            bounds = []
            for c in range(4):
                pile = _pile_up(planes[:, c].reshape(-1), low)
                bounds.append(pile if pile is not None else none)
            out.append(np.array(bounds, dtype=np.float64))
        else:
            try:
                arr = per_plane(spec)
            except (TypeError, ValueError):
                arr = None
            if arr is None or np.any(np.isnan(arr)):
                raise RawSynthError(f"{name}: expected 'auto', None, a number or 4 numbers, got {spec!r}")
            out.append(arr)
    return out[0], out[1]
