"""From per-ISO calibrations to the ``noise`` section of a camera profile.

Heteroscedastic fits (:class:`NoiseFit`) give::

    noise:
      model: heteroscedastic-gaussian
      sampler: iso-table
      params:                       # as raw_synth.noise.profiles reads an iso-table
        iso: [100, 800]
        shot: [[R, Gr, Gb, B], [R, Gr, Gb, B]]     # one row per ISO, normalised units
        read: [[R, Gr, Gb, B], [R, Gr, Gb, B]]
        shot_scatter: 0.05          # sd of ln shot around the ISO line (0 with < 3 ISOs)
        read_scatter: 0.12          # sd of ln read around the read-vs-shot line
      relation:                     # informative, not used by the sampler
        isos: [100, 800]
        shot_vs_iso: {slope: [4], intercept: [4], sigma: [4]}   # ln shot = slope ln ISO + intercept
        read_vs_shot: {slope: [4], intercept: [4], sigma: [4]}  # ln read = slope ln shot + intercept

The table holds the measured values (:func:`raw_synth.noise.sample_nlf` interpolates them in
log ISO, see :func:`raw_synth.noise.profiles.sample_camera_noise`); the lines are the Brooks et
al. style summary (natural logs), ``null`` with fewer than two ISOs. The ``relation`` entry sits
beside ``params`` and is not part of a parsed :class:`~raw_synth.camera.NoiseSection`.

Physics fits (:class:`PhysicsFit`, from flat and dark frames) give an ELD-format parameter
dict for :func:`raw_synth.noise.sample_eld` (``model: physics``, ``sampler: eld``): ``Kmin``,
``Kmax``, ``G_shape`` (Tukey lambda per ISO), ``Profile-1`` with ``G_scale`` (Tukey scale),
``g_scale`` (Gaussian read sigma) and ``R_scale`` (row sigma), each ``{slope, bias, sigma}`` of
``ln scale = slope ln K + bias``, and ``color_bias`` (black-level error per ISO in ELD's column
order R, Gr, B, Gb). All DN values are in the calibrated camera's DN.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Mapping, Optional, Union

import numpy as np

from raw_synth.calibrate.nlf import NoiseFit
from raw_synth.calibrate.photon_transfer import PhysicsFit
from raw_synth.errors import RawSynthError
from raw_synth.noise.sampling import ELD_TO_RGGB, check_eld_params, check_nlf_table

__all__ = ["fit_iso_relation", "log_linear", "NOISE_FLOOR"]

logger = logging.getLogger(__name__)

NOISE_FLOOR = 1e-10
"""Smallest ``shot``/``read`` written to a table (the sampler works in log space)."""

_DN_FLOOR = 1e-6  # smallest scale (DN) in an ELD fit


def log_linear(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares line ``y = slope * x + intercept`` and the residual standard deviation.

    Args:
        x: abscissae, float ``(n,)``, ``n >= 1``.
        y: ordinates, float ``(n,)``.

    Returns:
        ``(slope, intercept, sigma)``; with one point ``(0, y, 0)``; ``sigma`` uses ``n - 2``
        degrees of freedom (0 for ``n <= 2``).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size == 1 or np.ptp(x) == 0.0:
        return 0.0, float(y.mean()), float(y.std(ddof=1)) if y.size > 1 else 0.0
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    sigma = float(math.sqrt(np.sum(resid**2) / (x.size - 2))) if x.size > 2 else 0.0
    return float(slope), float(intercept), sigma


def _iso_key(iso: float) -> Union[int, float]:
    return int(round(iso)) if abs(iso - round(iso)) < 1e-9 else float(iso)


def _sorted_fits(fits: Mapping[Any, Any]) -> list[tuple[float, Any]]:
    if not isinstance(fits, Mapping) or not fits:
        raise RawSynthError("fits: expected a non-empty mapping iso -> fit")
    out = []
    for key, fit in fits.items():
        try:
            iso = float(key)
        except (TypeError, ValueError):
            raise RawSynthError(f"fits: ISO keys must be positive numbers, got {key!r}") from None
        if not (math.isfinite(iso) and iso > 0):
            raise RawSynthError(f"fits: ISO keys must be positive numbers, got {key!r}")
        if not isinstance(fit, (NoiseFit, PhysicsFit)):
            raise RawSynthError(f"fits: ISO {iso:g} maps to {type(fit).__name__}, expected NoiseFit or PhysicsFit")
        out.append((iso, fit))
    return sorted(out, key=lambda item: item[0])


def fit_iso_relation(
    fits: Mapping[float, Union[NoiseFit, PhysicsFit]],
    *,
    model: Optional[str] = None,
) -> dict[str, Any]:
    """Build a camera-profile ``noise`` section from calibrations at one or more ISOs.

    Args:
        fits: ``{iso: fit}``; all :class:`NoiseFit`, or all :class:`PhysicsFit`.
        model: ``"heteroscedastic-gaussian"`` or ``"physics"``; default ``"physics"`` when all
            fits are physics fits, else ``"heteroscedastic-gaussian"`` (physics fits then enter
            through their equivalent ``shot``/``read``).

    Returns:
        ``{"model", "sampler", "params", "relation"}`` (plain data, YAML/JSON-able). See the
        module docstring for the two layouts.

    Raises:
        RawSynthError: on an empty mapping, bad keys, or ``model="physics"`` with non-physics fits.
    """
    items = _sorted_fits(fits)
    all_physics = all(isinstance(fit, PhysicsFit) for _, fit in items)
    if model is None:
        model = "physics" if all_physics else "heteroscedastic-gaussian"
    if model == "physics":
        if not all_physics:
            raise RawSynthError("model: 'physics' needs flat/dark (PhysicsFit) calibrations at every ISO")
        return _physics_section(items)
    if model != "heteroscedastic-gaussian":
        raise RawSynthError(f"model: expected 'heteroscedastic-gaussian' or 'physics', got {model!r}")
    return _gaussian_section([(iso, fit.to_noise_fit() if isinstance(fit, PhysicsFit) else fit) for iso, fit in items])


def _gaussian_section(items: list[tuple[float, NoiseFit]]) -> dict[str, Any]:
    isos = np.array([iso for iso, _ in items])
    shot = np.stack([fit.shot for _, fit in items])  # (n, 4)
    read = np.stack([fit.read for _, fit in items])
    if np.any(shot < NOISE_FLOOR) or np.any(read < NOISE_FLOOR):
        logger.warning("noise table: shot/read values below %g raised to it (a zero read term was fitted)", NOISE_FLOOR)
    shot = np.maximum(shot, NOISE_FLOOR)
    read = np.maximum(read, NOISE_FLOOR)
    iso_list = [_iso_key(iso) for iso in isos]
    check_nlf_table({iso: (shot[k], read[k]) for k, iso in enumerate(iso_list)}, "noise table")
    relation: dict[str, Any] = {"isos": [_iso_key(iso) for iso in isos], "log": "natural"}
    shot_scatter = read_scatter = 0.0
    if isos.size >= 2:
        lines = [log_linear(np.log(isos), np.log(shot[:, c])) for c in range(4)]
        relation["shot_vs_iso"] = {key: [line[i] for line in lines]
                                   for i, key in enumerate(("slope", "intercept", "sigma"))}
        reads = [log_linear(np.log(shot[:, c]), np.log(read[:, c])) for c in range(4)]
        relation["read_vs_shot"] = {key: [line[i] for line in reads]
                                    for i, key in enumerate(("slope", "intercept", "sigma"))}
        shot_scatter = float(math.sqrt(np.mean([line[2] ** 2 for line in lines])))
        read_scatter = float(math.sqrt(np.mean([line[2] ** 2 for line in reads])))
    else:
        relation["shot_vs_iso"] = None
        relation["read_vs_shot"] = None
    return {
        "model": "heteroscedastic-gaussian",
        "sampler": "iso-table",
        "params": {
            "iso": iso_list,
            "shot": [[float(v) for v in row] for row in shot],
            "read": [[float(v) for v in row] for row in read],
            "shot_scatter": shot_scatter,
            "read_scatter": read_scatter,
        },
        "relation": relation,
    }


def _physics_section(items: list[tuple[float, PhysicsFit]]) -> dict[str, Any]:
    isos = [iso for iso, _ in items]
    gains = np.array([math.exp(float(np.mean(np.log(fit.gain)))) for _, fit in items])
    log_k = np.log(gains)

    def scale_fit(values: list[float]) -> dict[str, float]:
        slope, bias, sigma = log_linear(log_k, np.log(np.maximum(values, _DN_FLOOR)))
        return {"slope": slope, "bias": bias, "sigma": sigma}

    def geo(values: np.ndarray) -> float:
        return math.exp(float(np.mean(np.log(np.maximum(values, _DN_FLOOR)))))

    params = {
        "Kmin": float(gains.min()),
        "Kmax": float(gains.max()),
        "G_shape": [float(fit.tukey_lambda) for _, fit in items],
        "Profile-1": {
            "G_scale": scale_fit([geo(fit.tukey_scale) for _, fit in items]),
            "g_scale": scale_fit([geo(fit.read_sigma) for _, fit in items]),
            "R_scale": scale_fit([max(fit.row_sigma, _DN_FLOOR) for _, fit in items]),
        },
        "color_bias": [[float(fit.bias[c]) for c in ELD_TO_RGGB] for _, fit in items],
    }
    check_eld_params(params, "physics noise parameters")
    first = items[0][1]
    return {
        "model": "physics",
        "sampler": "eld",
        "params": params,
        "relation": {
            "isos": [_iso_key(iso) for iso in isos],
            "gain": [float(v) for v in gains],
            "black_level": [float(v) for v in first.black_level],
            "white_level": float(first.white_level),
        },
    }
