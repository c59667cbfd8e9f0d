"""Physics-model calibration from flat-field and dark (bias) frames (ELD-style).

Everything is measured in DN above the black level, per packed plane (R, Gr, Gb, B):

* **Darks** (no light, shortest exposure). With two or more frames the statistics are
  *temporal*: each frame minus the per-pixel mean over the frames, variances scaled by
  ``n / (n - 1)``, so a fixed pattern (dark-signal non-uniformity) does not count as noise.
  With one frame the spatial residual is used (a fixed pattern then counts as read noise).

  - ``bias``: mean dark level per plane (black-level error).
  - total temporal variance per plane ``V = s^2 + sigma_row^2 (+ 1/12 when quantised)``.
  - **row noise**: one value per mosaic row, shared by R/Gr (even mosaic rows of an RGGB
    tile) and by Gb/B. A row mean over ``N`` pixels has variance
    ``sigma_row^2 + s^2 / N`` and a pixel ``sigma_row^2 + s^2``, so
    ``sigma_row^2 = (Var(row means) - V / N) / (1 - 1 / N)``.
  - **read noise**: ``s^2 = V - sigma_row^2 - 1/12`` (the last term only for integer data).
  - **Tukey lambda**: the shape maximising the probability-plot correlation coefficient
    (PPCC, Filliben order-statistic medians) of the dark residuals after removing the plane
    mean, the row means, and the fixed pattern when it is significant (more than 2% of the
    temporal variance); a grid search refined by a bounded scalar search, the mean PPCC of the
    four planes. The reference distribution includes what the residuals went through: rounding
    to integer DN (a uniform term) and, when the mean of ``n`` frames was subtracted, the factor
    ``1 - 1/n`` and the other frames' noise (a Gaussian term). Ignoring them biases lambda
    upwards (lighter tails) by a few hundredths, e.g. -0.026 read as 0.0 with 8 frames.
    The Tukey scale is ``s / sqrt(Var TL(lambda))``.

* **Flats** (uniform light, several levels, at least two frames per level). Frames are grouped
  by level (sorted by mean; a new group starts at a jump of more than ``level_tolerance``).
  Within a group each frame's mean is aligned to the group's (removing flicker) and the mean
  per-pixel temporal variance is taken - for two frames exactly ``Var(A - B) / 2`` - so
  photo-response non-uniformity and vignetting do not count. Levels that touch the white
  level or the 0 DN floor are dropped. The photon-transfer line ``variance = K * mean + c``
  (weighted least squares) gives the system gain ``K`` in DN per electron.

The equivalent noise level in normalised units is ``shot = K / (white - black)`` and
``read = V / (white - black)^2`` (read, row and quantisation together), as
:func:`raw_synth.noise.equivalent_read_dn2` defines it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Literal, Optional, Sequence, Union

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.signal import fftconvolve

from raw_synth.calibrate.nlf import BinStats, NoiseFit, fit_nlf_line
from raw_synth.calibrate.pairs import PackedInput, as_packed_list
from raw_synth.errors import RawSynthError
from raw_synth.noise import PhysicsParams, tukey_lambda_ppf, tukey_lambda_variance
from raw_synth.per_plane import per_plane

__all__ = [
    "PhysicsFit",
    "fit_flat_dark",
    "dark_statistics",
    "ppcc",
    "tukey_quantiles",
    "ResidualModel",
    "fit_tukey_lambda",
    "DEFAULT_LAMBDA_GRID",
]

logger = logging.getLogger(__name__)

DEFAULT_LAMBDA_GRID = np.round(np.arange(-0.45, 1.0 + 1e-9, 0.02), 2)
"""Tukey-lambda shapes searched by default (heavy tails < 0.14 ~ Gaussian < light tails)."""

_ROW_GROUPS = ((0, 1), (2, 3))  # packed planes sharing mosaic rows: R/Gr and Gb/B
_FPN_SIGNIFICANT = 0.02  # fixed-pattern variance above this fraction of the temporal variance is removed


@dataclass(frozen=True, eq=False)
class PhysicsFit:
    """Calibrated physics-model parameters (DN) and their normalised equivalent.

    Attributes:
        gain: system gain ``K`` per plane, DN per electron, float64 ``(4,)``.
        read_sigma: standard deviation of the read noise per plane in DN, without row noise
            and quantisation, float64 ``(4,)``.
        tukey_lambda: Tukey-lambda shape of the read noise (PPCC maximum).
        tukey_scale: Tukey-lambda scale per plane in DN, ``read_sigma / sqrt(Var TL(lambda))``.
        row_sigma: row-noise standard deviation in DN.
        bias: mean dark level per plane in DN above the black level (black-level error).
        black_level: black level per plane in DN, float64 ``(4,)``.
        white_level: white level in DN.
        quantized: whether the data were integer DN (then ``1/12`` DN^2 is quantisation).
        shot: equivalent shot coefficient, normalised units, ``(4,)``.
        read: equivalent read coefficient (read + row + quantisation), normalised, ``(4,)``.
        ppcc: the maximal probability-plot correlation coefficient.
        ptc: photon-transfer points per plane (mean signal DN, temporal variance DN^2,
            pixels, used).
        ptc_intercept: intercept of the photon-transfer line per plane, DN^2.
        r2: weighted R^2 of the photon-transfer line per plane.
        n_flat_levels: number of flat-field levels (groups of frames).
        n_darks: number of dark frames.
    """

    gain: np.ndarray
    read_sigma: np.ndarray
    tukey_lambda: float
    tukey_scale: np.ndarray
    row_sigma: float
    bias: np.ndarray
    black_level: np.ndarray
    white_level: float
    quantized: bool
    shot: np.ndarray
    read: np.ndarray
    ppcc: float
    ptc: tuple[BinStats, ...]
    ptc_intercept: np.ndarray
    r2: np.ndarray
    n_flat_levels: int
    n_darks: int

    def to_params(
        self,
        read_model: Literal["tukey", "gaussian"] = "tukey",
        *,
        row: bool = True,
        bias: bool = True,
        quantize: Optional[bool] = None,
        clip: bool = True,
    ) -> PhysicsParams:
        """The fitted camera as :class:`raw_synth.noise.PhysicsParams`.

        Args:
            read_model: ``"tukey"`` (scale ``tukey_scale``, shape ``tukey_lambda``) or
                ``"gaussian"`` (standard deviation ``read_sigma``).
            row: include the row noise.
            bias: include the black-level error.
            quantize: round to DN; defaults to whether the calibration data were integer.
            clip: clip to the sensor range.

        Returns:
            The parameters (per-plane values as tuples).
        """
        if read_model not in ("tukey", "gaussian"):
            raise RawSynthError(f"read_model: expected 'tukey' or 'gaussian', got {read_model!r}")
        tukey = read_model == "tukey"
        return PhysicsParams(
            gain=tuple(float(v) for v in self.gain),
            read_scale=tuple(float(v) for v in (self.tukey_scale if tukey else self.read_sigma)),
            black=tuple(float(v) for v in self.black_level),
            white=float(self.white_level),
            read_model=read_model,
            tukey_lambda=float(self.tukey_lambda) if tukey else 0.0,
            row_scale=float(self.row_sigma) if row else 0.0,
            bias=tuple(float(v) for v in self.bias) if bias else 0.0,
            quantize=self.quantized if quantize is None else bool(quantize),
            clip=clip,
        )

    def to_noise_fit(self) -> NoiseFit:
        """The equivalent heteroscedastic noise level as a :class:`NoiseFit` (``"flat-dark"``)."""
        return NoiseFit(shot=self.shot, read=self.read, method="flat-dark", r2=self.r2,
                        n_pixels=np.array([int(b.count[b.used].sum()) for b in self.ptc]), bins=self.ptc)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (DN quantities and the normalised equivalent)."""
        return {
            "method": "flat-dark",
            "gain": [float(v) for v in self.gain],
            "read_sigma": [float(v) for v in self.read_sigma],
            "tukey_lambda": float(self.tukey_lambda),
            "tukey_scale": [float(v) for v in self.tukey_scale],
            "row_sigma": float(self.row_sigma),
            "bias": [float(v) for v in self.bias],
            "black_level": [float(v) for v in self.black_level],
            "white_level": float(self.white_level),
            "quantized": bool(self.quantized),
            "shot": [float(v) for v in self.shot],
            "read": [float(v) for v in self.read],
            "ppcc": float(self.ppcc),
            "ptc_intercept": [float(v) for v in self.ptc_intercept],
            "r2": [None if not math.isfinite(v) else float(v) for v in self.r2],
            "n_flat_levels": int(self.n_flat_levels),
            "n_darks": int(self.n_darks),
        }


# ----------------------------------------------------------------------------- PPCC


def _order_statistic_medians(n: int) -> np.ndarray:
    """Filliben's estimate of the medians of the uniform order statistics."""
    u = (np.arange(1, n + 1, dtype=np.float64) - 0.3175) / (n + 0.365)
    u[-1] = 0.5 ** (1.0 / n)
    u[0] = 1.0 - u[-1]
    return u


_LOGIT = np.linspace(-20.0, 20.0, 8001)  # grid of logit(u) tabulating the Tukey-lambda CDF
_LOG_U = -np.log1p(np.exp(-_LOGIT))  # ln u
_LOG_V = -np.log1p(np.exp(_LOGIT))  # ln (1 - u)
_U = np.exp(_LOG_U)
_MAX_GRID = 1 << 15
_LOCAL_SPAN = 0.1  # lambda range searched with the full residual model around the plain optimum


def _tl_from_logs(log_u: np.ndarray, log_v: np.ndarray, lam: float) -> np.ndarray:
    if abs(lam) < 1e-8:
        return log_u - log_v
    return (np.expm1(lam * log_u) - np.expm1(lam * log_v)) / lam


@dataclass(frozen=True)
class ResidualModel:
    """How a set of dark residuals relates to the read noise, for the Tukey-lambda fit.

    The residuals are modelled as ``shrink * (s * TL(lambda) + U) + G``: ``s`` the Tukey scale
    (from ``read_var``, the continuous read-noise variance, and the shape), ``U`` the rounding
    error, uniform over ``quant_step`` DN (0: not quantised), ``shrink`` the factor a fixed-pattern
    subtraction applies (``1 - 1/n`` when the mean of ``n`` frames is removed, else 1) and ``G``
    Gaussian with standard deviation ``gauss_sd``, the other frames' noise that the subtraction
    brings in.
    """

    read_var: float
    quant_step: float = 0.0
    shrink: float = 1.0
    gauss_sd: float = 0.0


def tukey_quantiles(
    u: np.ndarray, lam: float, scale: float = 1.0, quant_step: float = 0.0, gauss_sd: float = 0.0
) -> np.ndarray:
    """Quantiles of ``scale * TL(lam) + U(-step/2, step/2) + N(0, gauss_sd^2)``.

    Without the uniform and Gaussian terms this is ``scale * Q(u)`` exactly. Otherwise the
    Tukey-lambda CDF is tabulated on a regular grid, convolved with the (discretised) density of
    the other terms and inverted by interpolation.

    Args:
        u: probabilities in ``(0, 1)``, float array.
        lam: Tukey-lambda shape.
        scale: Tukey-lambda scale, ``> 0``.
        quant_step: width of the uniform term (1.0 for rounding to integer DN), ``>= 0``.
        gauss_sd: standard deviation of the Gaussian term, ``>= 0``.

    Returns:
        float64 quantiles, shape of ``u``.
    """
    u = np.asarray(u, dtype=np.float64)
    scale = max(float(scale), 1e-12)
    if quant_step <= 0.0 and gauss_sd <= 0.0:
        return scale * tukey_lambda_ppf(u, lam)
    x_tab = scale * _tl_from_logs(_LOG_U, _LOG_V, lam)
    reach = 0.5 * quant_step + 8.0 * gauss_sd
    lo = scale * float(tukey_lambda_ppf(np.array(max(float(u.min()), 1e-9)), lam)) - reach
    hi = scale * float(tukey_lambda_ppf(np.array(min(float(u.max()), 1.0 - 1e-9)), lam)) + reach
    widths = [w for w in (quant_step, gauss_sd, scale) if w > 0.0]
    step = max(min(widths) / 8.0, (hi - lo) / _MAX_GRID)
    grid = np.arange(lo - reach, hi + reach + step, step)
    cdf = np.interp(grid, x_tab, _U, left=0.0, right=1.0)
    half = int(math.ceil(reach / step)) + 1
    offsets = np.arange(-half, half + 1) * step
    density = np.ones_like(offsets)
    if quant_step > 0.0:
        # exact box average over each cell: overlap of [o - step/2, o + step/2] with the box
        left = np.maximum(offsets - 0.5 * step, -0.5 * quant_step)
        right = np.minimum(offsets + 0.5 * step, 0.5 * quant_step)
        density = np.maximum(right - left, 0.0)
    if gauss_sd > 0.0:
        gauss = np.exp(-0.5 * (offsets / gauss_sd) ** 2)
        density = fftconvolve(density, gauss, mode="same") if quant_step > 0.0 else gauss
    density /= density.sum()
    padded = np.concatenate([np.zeros(half), cdf, np.ones(half)])
    conv = fftconvolve(padded, density[::-1], mode="same")[half:-half]
    conv = np.maximum.accumulate(conv) + np.arange(conv.size) * 1e-15  # strictly increasing
    return np.interp(u, conv, grid)


def ppcc(
    samples: np.ndarray, lam: float, *, scale: float = 1.0, quant_step: float = 0.0, gauss_sd: float = 0.0
) -> float:
    """Probability-plot correlation coefficient of ``samples`` against Tukey-lambda(``lam``).

    The correlation between the sorted samples and the quantiles (see :func:`tukey_quantiles`)
    of Filliben's uniform order-statistic medians; without the extra terms this is what
    ``scipy.stats.probplot(x, (lam,), dist="tukeylambda")`` reports as ``r``.

    Args:
        samples: 1-D real array, at least 3 values.
        lam: shape parameter.
        scale: Tukey scale of the samples' read component (matters only with the extra terms).
        quant_step: quantisation step of the samples (0: none).
        gauss_sd: standard deviation of an added Gaussian term (0: none).

    Returns:
        The correlation coefficient in ``[-1, 1]``.
    """
    z = np.sort(np.asarray(samples, dtype=np.float64).reshape(-1))
    if z.size < 3:
        raise RawSynthError(f"ppcc: need at least 3 samples, got {z.size}")
    q = tukey_quantiles(_order_statistic_medians(z.size), lam, scale, quant_step, gauss_sd)
    return float(np.corrcoef(q, z)[0, 1])


def _norm(v: np.ndarray) -> float:
    # einsum rather than BLAS: a multi-threaded BLAS call on a busy machine can be 100x slower
    return math.sqrt(float(np.einsum("i,i->", v, v)))


class _PpccScore:
    """Mean PPCC over several sample sets (e.g. one per plane) as a function of lambda."""

    def __init__(self, samples: Sequence[np.ndarray], models: Optional[Sequence[ResidualModel]]) -> None:
        self.sets = []
        for i, arr in enumerate(samples):
            z = np.sort(np.asarray(arr, dtype=np.float64).reshape(-1))
            if z.size < 3:
                raise RawSynthError(f"tukey lambda: need at least 3 samples per set, got {z.size}")
            zc = z - z.mean()
            u = _order_statistic_medians(z.size)
            model = None if models is None else models[i]
            if model is not None and model.quant_step <= 0.0 and model.gauss_sd <= 0.0:
                model = None
            self.sets.append((zc / max(_norm(zc), 1e-300), np.log(u), np.log1p(-u), u, model))

    def __call__(self, lam: float) -> float:
        total = 0.0
        for zn, log_u, log_v, u, model in self.sets:
            if model is None:
                q = _tl_from_logs(log_u, log_v, lam)
            else:
                scale = model.shrink * math.sqrt(max(model.read_var, 0.0) / tukey_lambda_variance(lam))
                q = tukey_quantiles(u, lam, scale, model.shrink * model.quant_step, model.gauss_sd)
            q = q - q.mean()
            total += float(np.einsum("i,i->", q, zn)) / max(_norm(q), 1e-300)
        return total / len(self.sets)


def fit_tukey_lambda(
    samples: Union[np.ndarray, Sequence[np.ndarray]],
    grid: Optional[Sequence[float]] = None,
    *,
    models: Optional[Sequence[ResidualModel]] = None,
    refine: bool = True,
) -> tuple[float, float]:
    """Tukey-lambda shape that maximises the (mean) PPCC of ``samples``.

    Args:
        samples: a 1-D real array, or a list of them (e.g. one per plane; their mean PPCC is
            maximised), each at least 3 values.
        grid: shapes to search (default :data:`DEFAULT_LAMBDA_GRID`); all ``> -0.5``.
        models: one :class:`ResidualModel` per set, or ``None`` for pure Tukey-lambda samples.
            Rounding and fixed-pattern subtraction make dark residuals lighter-tailed than the
            read noise; modelling them removes that bias.
        refine: refine the best grid point by a bounded scalar search between its neighbours.

    Returns:
        ``(lambda, ppcc)``.
    """
    lams = np.asarray(DEFAULT_LAMBDA_GRID if grid is None else grid, dtype=np.float64).reshape(-1)
    if lams.size == 0 or np.any(lams <= -0.5) or not np.all(np.isfinite(lams)):
        raise RawSynthError("lambda_grid: expected finite shapes, all > -0.5")
    lams = np.unique(lams)
    sets = [samples] if isinstance(samples, np.ndarray) and samples.ndim <= 1 else list(samples)
    if models is not None and len(models) != len(sets):
        raise RawSynthError(f"models: expected one per sample set ({len(sets)}), got {len(models)}")
    score = _PpccScore(sets, models)
    if models is not None and lams.size > 1:
        # a fast pass without the rounding / fixed-pattern terms finds the region, which then
        # is searched with them (the terms shift the optimum by a few hundredths)
        plain = _PpccScore(sets, None)
        centre = float(lams[int(np.argmax([plain(lam) for lam in lams]))])
        near = lams[np.abs(lams - centre) <= _LOCAL_SPAN + 1e-12]
        lams = np.unique(np.concatenate([near, np.clip(centre + np.arange(-_LOCAL_SPAN, _LOCAL_SPAN + 1e-9, 0.01),
                                                       near.min(), near.max())]))
    scores = np.array([score(lam) for lam in lams])
    best = int(np.argmax(scores))
    lam, value = float(lams[best]), float(scores[best])
    if refine and lams.size > 1:
        lo = float(lams[max(best - 1, 0)])
        hi = float(lams[min(best + 1, lams.size - 1)])
        res = minimize_scalar(lambda t: -score(t), bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
        if res.success and -float(res.fun) > value:
            lam, value = float(res.x), -float(res.fun)
    return lam, value


# ----------------------------------------------------------------------------- darks


@dataclass(frozen=True)
class _DarkStats:
    bias: np.ndarray  # (4,) DN
    total_var: np.ndarray  # (4,) DN^2, temporal: read + row + quantisation
    row_var: float  # DN^2
    residuals: np.ndarray  # standardised residuals for the PPCC
    quantized: bool


def _is_integer(dn: np.ndarray, black: np.ndarray) -> bool:
    flat = dn.reshape(dn.shape[0], 4, -1)[:, :, :: max(1, dn[0, 0].size // 4096)]
    raw = flat + black[None, :, None]
    return bool(np.all(np.abs(raw - np.rint(raw)) < 1e-2))


def _row_means(res: np.ndarray) -> np.ndarray:
    """Row means per row group: ``(n, 2, h)`` from ``(n, 4, h, w)``."""
    return np.stack([res[:, list(g)].mean(axis=(1, 3)) for g in _ROW_GROUPS], axis=1)


def dark_statistics(
    darks: PackedInput,
    white_level: float,
    black_level: Union[float, Sequence[float]],
    *,
    quantized: Optional[bool] = None,
    max_samples: int = 400_000,
) -> dict[str, Any]:
    """Bias, read noise, row noise and Tukey-lambda residuals from dark frames.

    Args:
        darks: dark (bias) frames, packed normalised ``(4, h, w)`` (a list or a stack).
        white_level: white level in DN.
        black_level: black level in DN, one value or 4 (R, Gr, Gb, B).
        quantized: whether the frames are integer DN (``None``: detect).
        max_samples: residuals kept for the PPCC (a fixed-seed subsample).

    Returns:
        ``{"bias": (4,) DN, "total_var": (4,) DN^2, "row_sigma": DN, "read_sigma": (4,) DN,
        "read_var": (4,) DN^2, "quantized": bool, "residuals": 4 float64 arrays (DN, plane mean,
        row means and a significant fixed pattern removed; a fixed-seed subsample), "models": 4
        :class:`ResidualModel`, "n_frames": int}``.
    """
    black, scale = _levels(white_level, black_level)
    frames = as_packed_list(darks, "darks")
    shape = frames[0].shape
    for i, f in enumerate(frames):
        if f.shape != shape:
            raise RawSynthError(f"darks[{i}]: shape {f.shape} differs from darks[0] {shape}")
    dn = np.stack(frames) * scale[None, :, None, None]
    n, _, h, w = dn.shape
    if quantized is None:
        quantized = _is_integer(dn, black)
    floor = np.mean(dn + black[None, :, None, None] <= 0.5)
    if floor > 0.001:
        logger.warning("darks: %.1f%% of the pixels sit at 0 DN (black level %s): the read noise is underestimated",
                       100 * floor, black.tolist())
    bias = dn.mean(axis=(0, 2, 3))
    if n >= 2:
        mean_frame = dn.mean(axis=0)
        res = dn - mean_frame[None]
        factor = n / (n - 1.0)
    else:
        mean_frame = None
        res = dn - dn.mean(axis=(2, 3), keepdims=True)
        factor = 1.0
    pixel_var = (res**2).mean(axis=(0, 2, 3))
    total_var = pixel_var * factor
    rows = _row_means(res)  # (n, 2, h)
    if n >= 2:
        row_mean_var = (rows**2).mean(axis=(0, 2))
    else:
        row_mean_var = (rows - rows.mean(axis=2, keepdims=True)).var(axis=2, ddof=1).mean(axis=0)
    per_row = 2 * w
    group_var = np.array([pixel_var[list(g)].mean() for g in _ROW_GROUPS])
    row_var_groups = (row_mean_var - group_var / per_row) / (1.0 - 1.0 / per_row) * factor
    row_var = max(float(row_var_groups.mean()), 0.0)
    quant = 1.0 / 12.0 if quantized else 0.0
    read_var = np.maximum(total_var - row_var - quant, 0.0)

    # residuals for the Tukey-lambda shape: single frames, fixed pattern removed only if it matters
    single = dn - dn.mean(axis=(2, 3), keepdims=True)
    step = 1.0 if quantized else 0.0
    models = [ResidualModel(float(read_var[c]), step) for c in range(4)]
    if mean_frame is not None:
        fpn_var = (mean_frame - mean_frame.mean(axis=(1, 2), keepdims=True)).var(axis=(1, 2)) - total_var / n
        if np.any(fpn_var > _FPN_SIGNIFICANT * total_var):
            logger.info("darks: fixed pattern %.3g DN^2 removed before the Tukey-lambda fit", float(fpn_var.max()))
            single = res
            shrink = 1.0 - 1.0 / n
            models = [
                ResidualModel(float(read_var[c]), step, shrink, math.sqrt((n - 1.0) / n**2 * (read_var[c] + quant)))
                for c in range(4)
            ]
    single = single - _row_means(single)[:, [0, 0, 1, 1], :, None]
    gen = np.random.default_rng(0)
    per_plane = max(3, max_samples // 4)
    residuals = []
    for c in range(4):
        z = single[:, c].reshape(-1)
        if z.size > per_plane:
            z = gen.choice(z, size=per_plane, replace=False)
        residuals.append(z)
    return {
        "bias": bias,
        "total_var": total_var,
        "row_sigma": math.sqrt(row_var),
        "read_sigma": np.sqrt(read_var),
        "quantized": bool(quantized),
        "read_var": read_var,
        "residuals": residuals,
        "models": models,
        "n_frames": n,
    }


# ----------------------------------------------------------------------------- flats


def _levels(white_level: float, black_level: Union[float, Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    try:
        black = per_plane(black_level)
        white = float(white_level)
    except (TypeError, ValueError):
        raise RawSynthError(f"black_level/white_level: expected numbers, "
                            f"got {black_level!r}, {white_level!r}") from None
    if black is None or not np.all(np.isfinite(black)) or not math.isfinite(white):
        raise RawSynthError(f"black_level: expected 1 or 4 finite numbers, got {black_level!r}")
    if np.any(white <= black):
        raise RawSynthError(f"white_level {white:g} must be greater than every black level {black.tolist()}")
    return black, white - black


def _group_levels(means: np.ndarray, tolerance: float) -> list[list[int]]:
    order = np.argsort(means, kind="stable")
    groups: list[list[int]] = []
    for i in order:
        if groups and abs(means[i] - means[groups[-1][0]]) <= tolerance * max(abs(means[groups[-1][0]]), 1.0):
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    return groups


def fit_flat_dark(
    flats: PackedInput,
    darks: PackedInput,
    white_level: float,
    black_level: Union[float, Sequence[float]],
    *,
    level_tolerance: float = 0.02,
    lambda_grid: Optional[Sequence[float]] = None,
    quantized: Optional[bool] = None,
    margin: float = 3.0,
    max_samples: int = 400_000,
) -> PhysicsFit:
    """Photon-transfer calibration of the physics noise model from flat and dark frames.

    Args:
        flats: flat-field frames, packed normalised ``(4, h, w)`` (list or stack): at least two
            frames per light level, one or more levels (two or more for a gain fit that does
            not lean on the darks).
        darks: dark (bias) frames, packed normalised, one or more (two or more to separate the
            fixed pattern).
        white_level: white level in DN.
        black_level: black level in DN, one value or 4 (R, Gr, Gb, B).
        level_tolerance: relative difference of frame means within one light level.
        lambda_grid: Tukey-lambda shapes searched (default :data:`DEFAULT_LAMBDA_GRID`).
        quantized: whether the frames are integer DN (``None``: detect).
        margin: a level is dropped for a plane when its mean is within ``margin`` noise
            standard deviations of the white level, or any of its pixels is clipped.
        max_samples: dark residuals used for the PPCC.

    Returns:
        :class:`PhysicsFit`.

    Raises:
        RawSynthError: on bad inputs, or when a plane has no usable flat level.
    """
    black, scale = _levels(white_level, black_level)
    white = float(white_level)
    frames = as_packed_list(flats, "flats")
    shape = frames[0].shape
    for i, f in enumerate(frames):
        if f.shape != shape:
            raise RawSynthError(f"flats[{i}]: shape {f.shape} differs from flats[0] {shape}")
    dn = np.stack(frames) * scale[None, :, None, None]  # DN above black
    raw = dn + black[None, :, None, None]
    groups = _group_levels(dn.mean(axis=(1, 2, 3)), level_tolerance)
    groups = [g for g in groups if len(g) >= 2]
    if not groups:
        raise RawSynthError("flats: need at least two frames at the same light level (pairs of flats)")
    dark = dark_statistics(darks, white_level, black_level, quantized=quantized, max_samples=max_samples)
    lam, best_ppcc = fit_tukey_lambda(dark["residuals"], lambda_grid, models=dark["models"])
    tl_var = tukey_lambda_variance(lam)

    gains, intercepts, r2s, ptc = [], [], [], []
    for c in range(4):
        means, variances, dofs, used_level = [], [], [], []
        for g in groups:
            block = dn[g, c]
            k = len(g)
            aligned = block - block.mean(axis=(1, 2), keepdims=True) + block.mean()
            tvar = float(aligned.var(axis=0, ddof=1).mean())
            level = float(block.mean() - dark["bias"][c])
            clipped = bool(np.any(raw[g, c] >= white - 0.5) or np.any(raw[g, c] <= 0.5))
            near_white = block.mean() + margin * math.sqrt(max(tvar, 0.0)) >= scale[c]
            means.append(level)
            variances.append(tvar)
            dofs.append((k - 1) * block[0].size)
            used_level.append(not (clipped or near_white))
        means_a, vars_a, dofs_a = np.array(means), np.array(variances), np.array(dofs, dtype=np.float64)
        ok = np.array(used_level)
        if ok.sum() >= 2:
            s, icpt, r2, used = fit_nlf_line(means_a[ok], vars_a[ok], dofs_a[ok])
        elif ok.sum() == 1:
            # one level: anchor the line at the dark frames' temporal variance
            s = max((float(vars_a[ok][0]) - float(dark["total_var"][c])) / max(float(means_a[ok][0]), 1e-12), 0.0)
            icpt, r2, used = float(dark["total_var"][c]), float("nan"), np.ones(1, bool)
        else:
            raise RawSynthError(f"flats: plane {c} has no flat level clear of clipping")
        if s <= 0.0:
            raise RawSynthError(f"flats: plane {c}: the photon-transfer slope is not positive; "
                                f"are the flats at different levels?")
        used_all = np.zeros(len(groups), bool)
        used_all[np.flatnonzero(ok)[used]] = True
        gains.append(s)
        intercepts.append(icpt)
        r2s.append(r2)
        ptc.append(BinStats(means_a, vars_a, np.array([len(g) * dn[0, c].size for g in groups], np.int64), used_all))

    gain = np.array(gains)
    read_sigma = dark["read_sigma"]
    return PhysicsFit(
        gain=gain,
        read_sigma=read_sigma,
        tukey_lambda=lam,
        tukey_scale=read_sigma / math.sqrt(tl_var),
        row_sigma=float(dark["row_sigma"]),
        bias=dark["bias"],
        black_level=black,
        white_level=white,
        quantized=dark["quantized"],
        shot=gain / scale,
        read=dark["total_var"] / scale**2,
        ppcc=best_ppcc,
        ptc=tuple(ptc),
        ptc_intercept=np.array(intercepts),
        r2=np.array(r2s),
        n_flat_levels=len(groups),
        n_darks=int(dark["n_frames"]),
    )
