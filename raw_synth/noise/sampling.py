"""Samplers of noise parameters: one call draws the parameters of one training sample.

Every sampler takes a numpy ``Generator`` (or an integer seed) and is deterministic for it.

* :func:`sample_unprocessing`: Brooks et al. (CVPR 2019), natural logs:
  ``ln shot ~ U(ln 1e-4, ln 0.012)``, ``ln read = 2.18 ln shot + 1.20 + N(0, 0.26^2)``.
* :func:`sample_cycleisp_dnd`: CycleISP's DND variant, the same numbers in base 10
  (``log10 shot ~ U(-4, log10 0.012)``, ``log10 read = 2.18 log10 shot + 1.20 + N(0, 0.26^2)``);
  the read-noise distribution therefore differs from Unprocessing's.
* :func:`sample_cycleisp_sidd`: CycleISP's SIDD variant, base 10:
  ``log10 shot ~ U(log10 0.00068674, log10 0.02194856)``,
  ``log10 read = 1.85 log10 shot + 0.30 + N(0, 0.20^2)``.
* :func:`sample_eld`: ELD physics model from a calibrated parameter dict (ELD's
  ``*_params`` format): ``ln K ~ U(ln Kmin, ln Kmax)``, and for the Tukey scale, the Gaussian read
  scale and the row scale ``ln s = slope ln K + bias + sigma N(0, 1)``.
* :func:`sample_nlf`: a per-ISO noise-level table: ISO log-uniform over the table's range,
  ``shot``/``read`` interpolated linearly in ``ln`` ISO on ``ln`` values (exact for power laws),
  times log-normal scatter.

The heteroscedastic-Gaussian samplers give the same ``shot``/``read`` to the four planes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from raw_synth.errors import RawSynthError
from raw_synth.noise._base import PerPlane, RandomSource, numpy_rng, to_numpy_values
from raw_synth.noise.gaussian import GaussianParams
from raw_synth.noise.physics import PhysicsParams, ReadModel
from raw_synth.per_plane import per_plane

__all__ = [
    "sample_log_linear",
    "sample_unprocessing",
    "sample_cycleisp_dnd",
    "sample_cycleisp_sidd",
    "ELD_SCALES",
    "ELD_TO_RGGB",
    "load_eld_params",
    "check_eld_params",
    "sample_eld",
    "NlfTable",
    "check_nlf_table",
    "interpolate_nlf",
    "sample_iso",
    "sample_nlf",
]

ELD_SCALES = ("G_scale", "g_scale", "R_scale")
"""Log-linear fits of an ELD profile: Tukey-lambda scale, Gaussian read scale, row-noise scale."""

ELD_TO_RGGB = (0, 1, 3, 2)
"""ELD packs a Bayer tile as (0,0), (0,1), (1,1), (1,0), i.e. R, Gr, B, Gb for RGGB; its
``color_bias`` columns are taken in that order and reordered to R, Gr, Gb, B with this index."""

NlfTable = Mapping[float, tuple[PerPlane, PerPlane]]
"""``{iso: (shot, read)}``; ``shot`` and ``read`` a scalar or 4 values (R, Gr, Gb, B), all ``> 0``."""


# ----------------------------------------------------------------------------- log-linear


def sample_log_linear(
    rng: RandomSource = None,
    *,
    shot_range: tuple[float, float],
    slope: float,
    intercept: float,
    scatter: float,
    base: float = math.e,
    clip: bool = False,
) -> GaussianParams:
    """Draw ``shot`` log-uniformly and ``read`` on a log-linear line with Gaussian scatter.

    ``log_b shot ~ U(log_b lo, log_b hi)``; ``log_b read = slope * log_b shot + intercept + N(0,
    scatter^2)``, with ``b = base``. Draw order: shot, then the scatter.

    Args:
        rng: numpy ``Generator`` or integer seed.
        shot_range: ``(lo, hi)``, ``0 < lo <= hi``.
        slope: slope of the line.
        intercept: intercept of the line (in ``log_b`` units).
        scatter: standard deviation of the residual (in ``log_b`` units), ``>= 0``.
        base: logarithm base (``math.e`` or ``10``).
        clip: ``clip`` flag of the returned parameters.

    Returns:
        :class:`GaussianParams` with four equal ``shot`` and four equal ``read`` values (tuples).
    """
    lo, hi = (float(v) for v in shot_range)
    if not (0.0 < lo <= hi) or not math.isfinite(hi):
        raise RawSynthError(f"shot_range: expected 0 < lo <= hi, got {shot_range}")
    if scatter < 0.0:
        raise RawSynthError(f"scatter: must be >= 0, got {scatter}")
    if base <= 0.0 or base == 1.0:
        raise RawSynthError(f"base: must be > 0 and != 1, got {base}")
    gen = numpy_rng(rng)
    log_b = math.log(base)
    log_shot = gen.uniform(math.log(lo) / log_b, math.log(hi) / log_b)
    log_read = slope * log_shot + intercept + scatter * gen.standard_normal()
    shot, read = float(base**log_shot), float(base**log_read)
    return GaussianParams(shot=(shot,) * 4, read=(read,) * 4, clip=clip)


def sample_unprocessing(rng: RandomSource = None, *, clip: bool = False) -> GaussianParams:
    """Unprocessing (Brooks et al. 2019) noise levels, natural logs; no clipping by default.

    Args:
        rng: numpy ``Generator`` or integer seed.
        clip: ``clip`` flag of the returned parameters.

    Returns:
        :class:`GaussianParams`, ``shot`` in ``[1e-4, 0.012]``.
    """
    return sample_log_linear(
        rng, shot_range=(1e-4, 0.012), slope=2.18, intercept=1.20, scatter=0.26, base=math.e, clip=clip
    )


def sample_cycleisp_dnd(rng: RandomSource = None, *, clip: bool = True) -> GaussianParams:
    """CycleISP DND-variant noise levels (Brooks' line in base 10); clips to [0, 1] like CycleISP.

    Args:
        rng: numpy ``Generator`` or integer seed.
        clip: ``clip`` flag of the returned parameters.

    Returns:
        :class:`GaussianParams`, ``shot`` in ``[1e-4, 0.012]``.
    """
    return sample_log_linear(
        rng, shot_range=(1e-4, 0.012), slope=2.18, intercept=1.20, scatter=0.26, base=10.0, clip=clip
    )


def sample_cycleisp_sidd(rng: RandomSource = None, *, clip: bool = True) -> GaussianParams:
    """CycleISP SIDD-variant noise levels (base 10); clips to [0, 1] like CycleISP.

    Args:
        rng: numpy ``Generator`` or integer seed.
        clip: ``clip`` flag of the returned parameters.

    Returns:
        :class:`GaussianParams`, ``shot`` in ``[0.00068674, 0.02194856]``.
    """
    return sample_log_linear(
        rng, shot_range=(0.00068674, 0.02194856), slope=1.85, intercept=0.30, scatter=0.20, base=10.0, clip=clip
    )


# ----------------------------------------------------------------------------- ELD


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RawSynthError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def check_eld_params(params: Mapping[str, Any], name: str = "eld params") -> dict[str, Any]:
    """Validate an ELD parameter dict and return a clean copy (floats and lists).

    Required keys: ``Kmin``, ``Kmax`` (``0 < Kmin <= Kmax``), ``G_shape`` (non-empty list, each
    ``> -0.5``) and at least one ``Profile-N`` with ``G_scale``, ``g_scale`` and ``R_scale``, each
    ``{slope, bias, sigma}``. Optional: ``color_bias``, a list of 4-value rows, as many as
    ``G_shape``.

    Args:
        params: the dict, e.g. from ``json.load`` of an ELD ``*_params.json``.
        name: how to name the source in error messages (a file name).

    Returns:
        A validated copy.

    Raises:
        RawSynthError: naming ``name`` and the offending key.
    """
    if not isinstance(params, Mapping):
        raise RawSynthError(f"{name}: expected a mapping of ELD parameters, got {type(params).__name__}")
    for key in ("Kmin", "Kmax", "G_shape"):
        if key not in params:
            raise RawSynthError(f"{name}: missing key {key!r}")
    out: dict[str, Any] = {
        "Kmin": _number(params["Kmin"], f"{name}: Kmin"),
        "Kmax": _number(params["Kmax"], f"{name}: Kmax"),
    }
    if not 0.0 < out["Kmin"] <= out["Kmax"]:
        raise RawSynthError(f"{name}: expected 0 < Kmin <= Kmax, got Kmin {out['Kmin']} and Kmax {out['Kmax']}")
    shapes = params["G_shape"]
    if isinstance(shapes, (str, bytes)) or not isinstance(shapes, Sequence) or len(shapes) == 0:
        raise RawSynthError(f"{name}: G_shape must be a non-empty list of numbers")
    out["G_shape"] = [_number(v, f"{name}: G_shape[{i}]") for i, v in enumerate(shapes)]
    if min(out["G_shape"]) <= -0.5:
        raise RawSynthError(f"{name}: G_shape values must be > -0.5 (finite variance), got {min(out['G_shape'])}")
    profiles = sorted(k for k in params if isinstance(k, str) and k.startswith("Profile-"))
    if not profiles:
        raise RawSynthError(f"{name}: no 'Profile-N' entry")
    for profile in profiles:
        entry = params[profile]
        if not isinstance(entry, Mapping):
            raise RawSynthError(f"{name}: {profile} must be a mapping")
        out[profile] = {}
        for scale in ELD_SCALES:
            fit = entry.get(scale)
            if not isinstance(fit, Mapping):
                raise RawSynthError(f"{name}: {profile} has no {scale} entry")
            clean = {}
            for key in ("slope", "bias", "sigma"):
                if key not in fit:
                    raise RawSynthError(f"{name}: {profile}.{scale} is missing {key!r}")
                clean[key] = _number(fit[key], f"{name}: {profile}.{scale}.{key}")
            if clean["sigma"] < 0.0:
                raise RawSynthError(f"{name}: {profile}.{scale}.sigma must be >= 0, got {clean['sigma']}")
            out[profile][scale] = clean
    if "color_bias" in params:
        rows = to_numpy_values(params["color_bias"], f"{name}: color_bias")
        if rows.ndim != 2 or rows.shape[1] != 4 or rows.shape[0] != len(out["G_shape"]):
            raise RawSynthError(
                f"{name}: color_bias must be {len(out['G_shape'])} rows of 4 values (one per G_shape), "
                f"got shape {rows.shape}"
            )
        out["color_bias"] = rows.tolist()
    return out


def load_eld_params(path: Union[str, Path]) -> dict[str, Any]:
    """Read an ELD parameter file in JSON form (the ``.npy`` originals are pickles: not read).

    Args:
        path: a ``.json`` file holding the ELD dict.

    Returns:
        The validated dict (see :func:`check_eld_params`).

    Raises:
        RawSynthError: unreadable file, bad JSON or missing/invalid keys, naming the file.
    """
    p = Path(path)
    if p.suffix.lower() == ".npy":
        raise RawSynthError(f"{p}: ELD .npy files are pickles and are not loaded; convert them to JSON")
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RawSynthError(f"{p}: cannot read ELD parameters ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RawSynthError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return check_eld_params(data, str(p))


def sample_eld(
    eld: Mapping[str, Any],
    rng: RandomSource = None,
    *,
    black: PerPlane,
    white: PerPlane,
    profile: Optional[str] = "Profile-1",
    read_model: ReadModel = "tukey",
    k_range: Optional[tuple[float, float]] = None,
    row: bool = True,
    bias: bool = True,
    quantize: bool = True,
    clip: bool = True,
) -> PhysicsParams:
    """Draw physics-model parameters from an ELD calibration.

    Draw order (fixed, whatever the options): ``ln K ~ U(ln Kmin, ln Kmax)``; an index ``i``
    uniform over the calibration settings; three ``N(0, 1)`` for ``G_scale``, ``g_scale`` and
    ``R_scale`` (``ln s = slope ln K + bias + sigma z``). The Tukey shape is ``G_shape[i]`` and the
    black-level error is row ``i`` of ``color_bias`` (same setting), reordered from ELD's
    R, Gr, B, Gb columns to R, Gr, Gb, B (:data:`ELD_TO_RGGB`). With ``profile=None`` a profile is
    drawn first, uniformly among the ``Profile-N`` entries.

    Args:
        eld: ELD parameter dict (checked with :func:`check_eld_params`).
        rng: numpy ``Generator`` or integer seed.
        black: black level in DN of the target sensor (ELD's fits are in the calibrated
            camera's DN, 14-bit for all five published cameras).
        white: white level in DN.
        profile: which ``Profile-N`` to use, or ``None`` for a random one.
        read_model: ``"tukey"`` (``G_scale`` + ``G_shape``) or ``"gaussian"`` (``g_scale``).
        k_range: override ``(Kmin, Kmax)`` (ELD's public ``noise.py`` uses ``(0.1, 30)``).
        row: include row noise (``R_scale``).
        bias: include the per-channel black-level error (``color_bias``; zero when absent).
        quantize: ``quantize`` flag of the parameters.
        clip: ``clip`` flag of the parameters.

    Returns:
        :class:`PhysicsParams` with python floats / tuples.

    Raises:
        RawSynthError: on invalid parameters or an unknown profile.
    """
    eld = check_eld_params(eld)
    gen = numpy_rng(rng)
    profiles = sorted(k for k in eld if k.startswith("Profile-"))
    if profile is None:
        profile = profiles[int(gen.integers(len(profiles)))]
    elif profile not in eld:
        raise RawSynthError(f"profile: {profile!r} not in the ELD parameters (have {', '.join(profiles)})")
    if read_model not in ("gaussian", "tukey"):
        raise RawSynthError(f"read_model: expected 'gaussian' or 'tukey', got {read_model!r}")
    k_lo, k_hi = (eld["Kmin"], eld["Kmax"]) if k_range is None else (float(k_range[0]), float(k_range[1]))
    if not 0.0 < k_lo <= k_hi:
        raise RawSynthError(f"k_range: expected 0 < Kmin <= Kmax, got {(k_lo, k_hi)}")

    log_k = gen.uniform(math.log(k_lo), math.log(k_hi))
    index = int(gen.integers(len(eld["G_shape"])))
    z = gen.standard_normal(3)
    fits = eld[profile]
    scales = {
        name: math.exp(fits[name]["slope"] * log_k + fits[name]["bias"] + fits[name]["sigma"] * z[i])
        for i, name in enumerate(ELD_SCALES)
    }
    if bias and "color_bias" in eld:
        offset = tuple(float(eld["color_bias"][index][c]) for c in ELD_TO_RGGB)
    else:
        offset = (0.0, 0.0, 0.0, 0.0)
    tukey = read_model == "tukey"
    return PhysicsParams(
        gain=math.exp(log_k),
        read_scale=scales["G_scale"] if tukey else scales["g_scale"],
        black=black,
        white=white,
        read_model=read_model,
        tukey_lambda=eld["G_shape"][index] if tukey else 0.0,
        row_scale=scales["R_scale"] if row else 0.0,
        bias=offset,
        quantize=quantize,
        clip=clip,
    )


# ----------------------------------------------------------------------------- per-ISO tables


def check_nlf_table(table: NlfTable, name: str = "table") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a per-ISO noise-level table.

    Args:
        table: ``{iso: (shot, read)}``, at least one entry; ``iso > 0``; ``shot``/``read`` a
            scalar or 4 values, all ``> 0`` (they are interpolated in log space).
        name: how to name the table in error messages.

    Returns:
        ``(isos (n,), shot (n, 4), read (n, 4))`` float64, sorted by ISO.

    Raises:
        RawSynthError: on an empty table or invalid entries.
    """
    if not isinstance(table, Mapping) or len(table) == 0:
        raise RawSynthError(f"{name}: expected a non-empty mapping iso -> (shot, read)")
    try:
        keys = sorted(table, key=float)
    except (TypeError, ValueError):
        raise RawSynthError(f"{name}: ISO keys must be positive numbers, got {list(table)!r}") from None
    isos, shots, reads = [], [], []
    for iso in keys:
        iso_f = float(iso)
        if not (math.isfinite(iso_f) and iso_f > 0.0):
            raise RawSynthError(f"{name}: ISO keys must be positive numbers, got {iso!r}")
        entry = table[iso]
        if not isinstance(entry, (tuple, list)) or len(entry) != 2:
            raise RawSynthError(f"{name}: ISO {iso_f:g} must map to a pair (shot, read)")
        pair = []
        for label, value in zip(("shot", "read"), entry):
            arr = per_plane(to_numpy_values(value, f"{name}: ISO {iso_f:g} {label}"), flatten=False)
            if arr is None or np.any(arr <= 0.0):
                raise RawSynthError(f"{name}: ISO {iso_f:g} {label} must be a positive scalar or 4 positive values")
            pair.append(arr)
        isos.append(iso_f)
        shots.append(pair[0])
        reads.append(pair[1])
    return np.array(isos), np.stack(shots), np.stack(reads)


def _interpolate(isos: np.ndarray, shots: np.ndarray, reads: np.ndarray, iso: float) -> tuple[np.ndarray, np.ndarray]:
    iso = float(iso)
    if not (isos[0] * (1 - 1e-12) <= iso <= isos[-1] * (1 + 1e-12)):
        raise RawSynthError(f"iso: {iso:g} is outside the table's range [{isos[0]:g}, {isos[-1]:g}]")
    for k, table_iso in enumerate(isos):
        if abs(table_iso - iso) <= 1e-12 * table_iso:
            return shots[k].copy(), reads[k].copy()
    j = int(np.searchsorted(isos, iso))  # isos[j - 1] < iso < isos[j]
    t = (math.log(iso) - math.log(isos[j - 1])) / (math.log(isos[j]) - math.log(isos[j - 1]))
    shot = np.exp((1.0 - t) * np.log(shots[j - 1]) + t * np.log(shots[j]))
    read = np.exp((1.0 - t) * np.log(reads[j - 1]) + t * np.log(reads[j]))
    return shot, read


def interpolate_nlf(table: NlfTable, iso: float) -> tuple[np.ndarray, np.ndarray]:
    """Noise level at ``iso``: piecewise linear in ``ln`` ISO on ``ln shot`` and ``ln read``.

    Args:
        table: per-ISO table (see :func:`check_nlf_table`).
        iso: ISO within the table's range.

    Returns:
        ``(shot, read)``, float64 ``(4,)`` each; exact at table entries.

    Raises:
        RawSynthError: if ``iso`` is outside the table's range.
    """
    return _interpolate(*check_nlf_table(table), iso)


def _draw_iso(isos: np.ndarray, gen: np.random.Generator) -> float:
    iso = float(math.exp(gen.uniform(math.log(isos[0]), math.log(isos[-1]))))
    return float(min(max(iso, isos[0]), isos[-1]))


def sample_iso(table: NlfTable, rng: RandomSource = None) -> float:
    """Draw an ISO log-uniformly over the table's range (one draw from ``rng``).

    Args:
        table: per-ISO table.
        rng: numpy ``Generator`` or integer seed.

    Returns:
        The ISO, a float in ``[min ISO, max ISO]``.
    """
    isos, _, _ = check_nlf_table(table)
    return _draw_iso(isos, numpy_rng(rng))


def sample_nlf(
    table: NlfTable,
    rng: RandomSource = None,
    *,
    iso: Optional[float] = None,
    shot_scatter: float = 0.1,
    read_scatter: float = 0.1,
    clip: bool = False,
) -> GaussianParams:
    """Draw a heteroscedastic-Gaussian noise level from a per-ISO table.

    Draw order: the ISO (only when ``iso`` is None, as :func:`sample_iso`), then one ``N(0, 1)``
    for the shot scatter and one for the read scatter. The scatter factors
    ``exp(shot_scatter * z1)`` and ``exp(read_scatter * z2)`` are shared by the four planes, so
    the table's plane-to-plane ratios are kept. To record the ISO, draw it with
    :func:`sample_iso` and pass it in.

    Args:
        table: ``{iso: (shot, read)}`` (see :func:`check_nlf_table`).
        rng: numpy ``Generator`` or integer seed.
        iso: the ISO to use (within the table's range); drawn when None.
        shot_scatter: standard deviation of ``ln shot`` around the table, ``>= 0``.
        read_scatter: standard deviation of ``ln read`` around the table, ``>= 0``.
        clip: ``clip`` flag of the returned parameters.

    Returns:
        :class:`GaussianParams` with per-plane tuples.
    """
    return _sample_checked_nlf(check_nlf_table(table), numpy_rng(rng), iso, shot_scatter, read_scatter, clip)


def _sample_checked_nlf(
    checked: tuple[np.ndarray, np.ndarray, np.ndarray],
    gen: np.random.Generator,
    iso: Optional[float],
    shot_scatter: float,
    read_scatter: float,
    clip: bool,
) -> GaussianParams:
    """:func:`sample_nlf` on a table :func:`check_nlf_table` has already checked (the same draws)."""
    if shot_scatter < 0.0 or read_scatter < 0.0:
        raise RawSynthError(f"shot_scatter/read_scatter: must be >= 0, got {shot_scatter}, {read_scatter}")
    isos, shots, reads = checked
    if iso is None:
        iso = _draw_iso(isos, gen)
    shot, read = _interpolate(isos, shots, reads, iso)
    z = gen.standard_normal(2)
    shot = shot * math.exp(shot_scatter * z[0])
    read = read * math.exp(read_scatter * z[1])
    return GaussianParams(shot=tuple(float(v) for v in shot), read=tuple(float(v) for v in read), clip=clip)
