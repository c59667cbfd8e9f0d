"""Noise realism: how close synthetic noise is to real SIDD noise (Noise Flow's marginal KL).

Protocol (after Abdelhamed et al., "Noise Flow", ICCV 2019, and its code): for each real
noisy/clean RAW pair of SIDD-Medium, the real residual is ``noisy - clean`` on the packed planes
(R, Gr, Gb, B). Each noise model synthesises a noisy image from the *same* clean image (and the
scene's metadata: NoiseProfile, black/white level, ISO); its residual is compared with the real
one through the forward KL divergence ``KL(real || synthetic)`` of their histograms.

Details of this implementation:

* **Intensity bins.** Pixels are grouped by clean intensity, ``bins=10`` equal-count bins per
  pair by default (or fixed edges). The KL is computed per bin and averaged (``kl_mean``, the
  headline number), besides the marginal KL over all pixels (``kl_all``, Noise Flow's number) and
  per plane (``kl_planes``).
* **Histograms.** Real and synthetic residuals of a bin share bin edges: ``hist_bins`` equal
  bins between the 0.1 % and 99.9 % quantiles of the real residuals, plus two open-ended tail
  bins (``hist_edges="noiseflow"`` selects Noise Flow's fixed edges: width 0.2/64 on [-0.1, 0.1]
  plus two tail bins). Counts are smoothed with a pseudo-count (``smoothing=1``, as in
  Noise2NoiseFlow) so empty synthetic bins give a finite KL. Finite samples bias the KL
  upwards by about ``(hist_bins + 1) / N`` for ``N`` pixels per intensity bin (about 0.01 for a
  256x256 packed crop with 10 bins; negligible for full SIDD images).
* **Clipping.** SIDD noisy images are clipped to [0, 1]; with ``clip=True`` (default) synthetic
  noisy images are clipped the same way before the residual is taken.
* **Randomness.** Each (pair, model) gets its own generator from ``(seed, scene, set, model
  name)``, so results do not depend on the order or number of models.

Noise models are callables ``fn(clean, metadata, rng) -> noisy`` with ``clean`` float32
``(4, h, w)`` packed normalised, ``metadata`` a :class:`~raw_synth.io.sidd.SiddMetadata` and
``rng`` a numpy ``Generator``; they return float ``(4, h, w)``. :data:`NOISE_MODELS_FOR_EVAL`
holds the built-in ones:

* ``gaussian-nlf``: heteroscedastic Gaussian with the scene's NoiseProfile (NLF); zero
  NoiseProfile values are raised to :data:`NLF_FLOOR` = 1e-6 as in Noise Flow.
* ``poisson-gaussian``: Poisson shot noise with gain ``K = beta1 * (white - black)`` plus Gaussian
  read noise, same equivalent level.
* ``physics-quantized``: the physics model with Gaussian read noise, 1-DN quantisation and
  clipping to the sensor range, same equivalent level (quantisation variance included).
* ``unprocessing``, ``cycleisp-sidd``: the training-data samplers (random level per image,
  ignoring the scene's NLF), to measure how far the synthetic training noise is from SIDD.
* ``profile:<name or path>`` (resolved on demand, see :func:`profile_noise_model`): the noise
  sampler of a camera profile.

CLI entry point (for ``raw-synth noise-eval``)::

    report = evaluate_noise_models(sidd_root, models=["gaussian-nlf", "poisson-gaussian"],
                                   bins=10, seed=0, crop=None, max_pairs=None)
    write_noise_eval(report, out_dir)   # report.md, report.json, noise_kl.png
"""

from __future__ import annotations

import json
import logging
import math
import warnings
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from raw_synth.errors import RawSynthError
from raw_synth.io.sidd import SiddMetadata, iter_sidd_medium
from raw_synth.noise import gaussian, physics, poisson_gaussian
from raw_synth.noise.gaussian import GaussianParams
from raw_synth.noise.physics import PhysicsParams
from raw_synth.noise.poisson_gaussian import PoissonGaussianParams
from raw_synth.noise.sampling import sample_cycleisp_sidd, sample_nlf, sample_unprocessing

__all__ = [
    "NLF_FLOOR",
    "NOISEFLOW_EDGES",
    "NoiseModelFn",
    "NOISE_MODELS_FOR_EVAL",
    "register_noise_model",
    "profile_noise_model",
    "resolve_noise_models",
    "intensity_bin_edges",
    "residual_edges",
    "histogram_kl",
    "BinnedKL",
    "binned_kl",
    "evaluate_pair",
    "PairResult",
    "NoiseEvalReport",
    "evaluate_noise_models",
    "write_noise_eval",
]

logger = logging.getLogger(__name__)

NoiseModelFn = Callable[[np.ndarray, SiddMetadata, np.random.Generator], np.ndarray]
"""``fn(clean (4, h, w) float32, metadata, rng) -> noisy (4, h, w) float``."""

#: Floor applied to NoiseProfile values (Noise Flow replaces zeros by 1e-6).
NLF_FLOOR = 1e-6

#: Noise Flow's inner histogram edges: width 0.2/64 on [-0.1, 0.1] (65 edges; with the two
#: open-ended tail bins this is their [-1000, -0.1, ..., 0.1, 1000]).
NOISEFLOW_EDGES = np.arange(-0.1, 0.1 + 1e-9, 0.2 / 64)


# ============================================================================ noise models


def _nlf(metadata: SiddMetadata) -> tuple[tuple[float, ...], tuple[float, ...]]:
    shot, read = metadata.nlf(floor=NLF_FLOOR)
    return tuple(shot.tolist()), tuple(read.tolist())


def gaussian_nlf_model(clean: np.ndarray, metadata: SiddMetadata, rng: np.random.Generator) -> np.ndarray:
    """Heteroscedastic Gaussian with the scene's NoiseProfile (``variance = beta1 x + beta2``)."""
    shot, read = _nlf(metadata)
    return gaussian.apply(clean, GaussianParams(shot=shot, read=read), rng).noisy


def poisson_gaussian_model(clean: np.ndarray, metadata: SiddMetadata, rng: np.random.Generator) -> np.ndarray:
    """Poisson-Gaussian with the NoiseProfile's equivalent gain and read noise."""
    shot, read = _nlf(metadata)
    params = PoissonGaussianParams.from_noise_level(shot, read, metadata.black_level, metadata.white_level)
    return poisson_gaussian.apply(clean, params, rng).noisy


def physics_quantized_model(clean: np.ndarray, metadata: SiddMetadata, rng: np.random.Generator) -> np.ndarray:
    """Physics model (Gaussian read, quantised to DN, clipped), NoiseProfile-equivalent level."""
    shot, read = _nlf(metadata)
    params = PhysicsParams.from_noise_level(shot, read, metadata.black_level, metadata.white_level)
    return physics.apply(clean, params, rng).noisy


def _sampler_model(sampler: Callable[..., GaussianParams], name: str) -> NoiseModelFn:
    def model(clean: np.ndarray, metadata: SiddMetadata, rng: np.random.Generator) -> np.ndarray:
        params = sampler(rng, clip=False)
        return gaussian.apply(clean, params, rng).noisy

    model.__name__ = name
    model.__doc__ = f"Heteroscedastic Gaussian with a level drawn by ``{sampler.__name__}`` (ignores the scene)."
    return model


#: Built-in models, name -> ``fn(clean, metadata, rng) -> noisy``. Extend with
#: :func:`register_noise_model`; ``profile:<name>`` entries are resolved on demand.
NOISE_MODELS_FOR_EVAL: dict[str, NoiseModelFn] = {
    "gaussian-nlf": gaussian_nlf_model,
    "poisson-gaussian": poisson_gaussian_model,
    "physics-quantized": physics_quantized_model,
    "unprocessing": _sampler_model(sample_unprocessing, "unprocessing"),
    "cycleisp-sidd": _sampler_model(sample_cycleisp_sidd, "cycleisp-sidd"),
}

def register_noise_model(name: str, fn: NoiseModelFn, *, overwrite: bool = False) -> None:
    """Add a model to :data:`NOISE_MODELS_FOR_EVAL`.

    Args:
        name: registry name (non-empty, no comma).
        fn: ``fn(clean, metadata, rng) -> noisy``.
        overwrite: allow replacing an existing entry.

    Raises:
        RawSynthError: on a bad name, a non-callable, or an existing name without ``overwrite``.
    """
    if not isinstance(name, str) or not name.strip() or "," in name:
        raise RawSynthError(f"noise model name: expected a non-empty string without commas, got {name!r}")
    if not callable(fn):
        raise RawSynthError(f"noise model {name!r}: expected a callable, got {type(fn).__name__}")
    if name in NOISE_MODELS_FOR_EVAL and not overwrite:
        raise RawSynthError(f"noise model {name!r} is already registered (pass overwrite=True)")
    NOISE_MODELS_FOR_EVAL[name] = fn


def profile_noise_model(profile: Any) -> NoiseModelFn:
    """A noise model from a camera profile's ``noise`` section.

    ``iso-table`` profiles use the level of the scene's own ISO (clamped to the table's range)
    with the profile's scatter, so the comparison is at matched ISO; every other sampler draws
    its level as ``raw-synth generate`` does (:func:`raw_synth.noise.profiles.sample_camera_noise`).

    Args:
        profile: a :class:`~raw_synth.camera.CameraProfile`, or a bundled profile name / YAML path.

    Returns:
        ``fn(clean, metadata, rng) -> noisy``.

    Raises:
        RawSynthError: if the profile has no noise section.
    """
    from raw_synth.camera import CameraProfile, get_profile
    from raw_synth.noise import apply_noise
    from raw_synth.noise.profiles import iso_table, sample_camera_noise

    prof = profile if isinstance(profile, CameraProfile) else get_profile(profile)
    if prof.noise is None:
        raise RawSynthError(f"camera profile {prof.name!r}: has no noise section to evaluate")
    params = dict(prof.noise.params)

    if prof.noise.sampler == "iso-table":
        table = iso_table(params, f"camera profile {prof.name!r}: noise.params")
        isos = sorted(table)
        shot_scatter = float(params.get("shot_scatter", 0.1))
        read_scatter = float(params.get("read_scatter", 0.1))

        def model(clean: np.ndarray, metadata: SiddMetadata, rng: np.random.Generator) -> np.ndarray:
            iso = min(max(float(metadata.iso or isos[0]), isos[0]), isos[-1])
            level = sample_nlf(table, rng, iso=iso, shot_scatter=shot_scatter, read_scatter=read_scatter)
            return gaussian.apply(clean, level, rng).noisy
    else:

        def model(clean: np.ndarray, metadata: SiddMetadata, rng: np.random.Generator) -> np.ndarray:
            return apply_noise(clean, sample_camera_noise(prof, rng).params, rng).noisy

    model.__name__ = f"profile:{prof.name}"
    return model


def _lookup(name: str) -> NoiseModelFn:
    if name in NOISE_MODELS_FOR_EVAL:
        return NOISE_MODELS_FOR_EVAL[name]
    if name.startswith("profile:"):
        return profile_noise_model(name[len("profile:") :])
    known = ", ".join([*NOISE_MODELS_FOR_EVAL, "profile:<name>"])
    raise RawSynthError(f"noise model {name!r}: unknown (known: {known})")


ModelsArg = Union[None, str, NoiseModelFn, Sequence[Union[str, NoiseModelFn]], Mapping[str, Union[str, NoiseModelFn]]]


def resolve_noise_models(models: ModelsArg = None) -> dict[str, NoiseModelFn]:
    """Turn the ``models`` argument into an ordered ``{name: fn}``.

    Args:
        models: ``None`` (every registered model), a name or comma-separated names, a callable,
            a sequence of names/callables (a callable is named by its ``__name__``), or a
            mapping ``{display name: name or callable}``.

    Returns:
        ``{name: fn}`` in the given order.

    Raises:
        RawSynthError: on unknown names, duplicates, non-callables or an empty selection.
    """
    if models is None:
        items: list[tuple[str, Any]] = list(NOISE_MODELS_FOR_EVAL.items())
    elif isinstance(models, str):
        items = [(n.strip(), n.strip()) for n in models.split(",") if n.strip()]
    elif callable(models):
        items = [(getattr(models, "__name__", "model"), models)]
    elif isinstance(models, Mapping):
        items = [(str(k), v) for k, v in models.items()]
    elif isinstance(models, Iterable):
        items = []
        for i, entry in enumerate(models):
            label = entry if isinstance(entry, str) else getattr(entry, "__name__", f"model{i}")
            items.append((label, entry))
    else:
        raise RawSynthError(f"models: expected names, callables or a mapping, got {type(models).__name__}")
    out: dict[str, NoiseModelFn] = {}
    for label, entry in items:
        if label in out:
            raise RawSynthError(f"models: {label!r} is given twice")
        if isinstance(entry, str):
            out[label] = _lookup(entry)
        elif callable(entry):
            out[label] = entry
        else:
            raise RawSynthError(f"models: {label!r} is neither a model name nor a callable")
    if not out:
        raise RawSynthError("models: no noise model selected")
    return out


# ============================================================================ KL machinery


def intensity_bin_edges(clean: np.ndarray, bins: Union[int, Sequence[float]] = 10) -> np.ndarray:
    """Edges of the clean-intensity bins.

    Args:
        clean: clean values (any shape).
        bins: a count ``n >= 1`` (equal-count bins from the quantiles of ``clean``; repeated
            quantiles, e.g. of flat images, are merged) or increasing fixed edges.

    Returns:
        float64 increasing edges ``(n + 1,)``. Every value lies in ``[edges[0], edges[-1]]`` for
        a count; for fixed edges values outside are left out of the bins.

    Raises:
        RawSynthError: on a count below 1, fewer than 2 fixed edges, or non-increasing edges.
    """
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise RawSynthError(f"bins: need at least 1 intensity bin, got {bins}")
        values = np.asarray(clean, dtype=np.float64).reshape(-1)
        if values.size == 0:
            raise RawSynthError("clean: no pixels to bin")
        edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, int(bins) + 1)))
        if edges.size == 1:
            edges = np.array([edges[0], edges[0]])
        return edges
    edges = np.asarray(bins, dtype=np.float64).reshape(-1)
    if edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise RawSynthError(f"bins: expected a count or at least 2 increasing edges, "
                            f"got {list(np.asarray(bins).reshape(-1))}")
    return edges


def _assign_bins(clean: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index of each value (-1 outside ``[edges[0], edges[-1]]``); the last bin is closed."""
    index = np.searchsorted(edges, clean, side="right") - 1
    n = edges.size - 1
    index[clean == edges[-1]] = n - 1
    index[(clean < edges[0]) | (clean > edges[-1])] = -1
    return index


def residual_edges(real_residual: np.ndarray, hist_bins: int = 64, tail: float = 1e-3) -> np.ndarray:
    """Inner histogram edges from the real residuals: ``hist_bins`` equal bins between the
    ``tail`` and ``1 - tail`` quantiles (two open-ended tail bins are added by :func:`histogram_kl`).

    Args:
        real_residual: real residual values (any shape, at least one).
        hist_bins: number of inner bins, ``>= 1``.
        tail: quantile left in each open-ended tail bin, in ``[0, 0.5)``.

    Returns:
        float64 ``(hist_bins + 1,)`` increasing edges.
    """
    if hist_bins < 1:
        raise RawSynthError(f"hist_bins: need at least 1, got {hist_bins}")
    if not 0.0 <= tail < 0.5:
        raise RawSynthError(f"tail: must be in [0, 0.5), got {tail}")
    lo, hi = np.quantile(np.asarray(real_residual, dtype=np.float64).reshape(-1), [tail, 1.0 - tail])
    if not hi > lo:
        half = max(abs(lo) * 1e-6, 1e-9)
        lo, hi = lo - half, hi + half
    return np.linspace(lo, hi, hist_bins + 1)


def histogram_kl(real: np.ndarray, synthetic: np.ndarray, edges: np.ndarray, smoothing: float = 1.0) -> float:
    """Forward KL divergence ``KL(P_real || P_synthetic)`` of two samples' histograms (nats).

    The histograms have ``len(edges) + 1`` bins: the inner bins of ``edges`` plus one open bin
    below ``edges[0]`` and one above ``edges[-1]``. Each count gets ``smoothing`` added
    (pseudo-count) before normalising, so the result is finite.

    Args:
        real: real sample values (any shape, at least one).
        synthetic: synthetic sample values (any shape, at least one).
        edges: increasing inner edges.
        smoothing: pseudo-count per bin, ``> 0``.

    Returns:
        KL in nats, ``>= 0``.
    """
    if smoothing <= 0.0:
        raise RawSynthError(f"smoothing: must be > 0, got {smoothing}")
    edges = np.asarray(edges, dtype=np.float64)
    k = edges.size + 1
    counts = []
    for sample in (real, synthetic):
        values = np.asarray(sample).reshape(-1)
        if values.size == 0:
            raise RawSynthError("histogram_kl: empty sample")
        index = np.searchsorted(edges, values, side="right")
        counts.append(np.bincount(index, minlength=k).astype(np.float64) + smoothing)
    p = counts[0] / counts[0].sum()
    q = counts[1] / counts[1].sum()
    return float(max(np.sum(p * np.log(p / q)), 0.0))


@dataclass(frozen=True, eq=False)
class BinnedKL:
    """KL divergences of one (pair, model).

    Attributes:
        edges: clean-intensity bin edges, float64 ``(n + 1,)``.
        centers: mean clean value per bin, ``(n,)`` (NaN for an empty bin).
        counts: pixels per bin, int64 ``(n,)``.
        kl: KL per intensity bin, ``(n,)`` (NaN for bins with fewer than ``min_count`` pixels).
        kl_mean: mean of ``kl`` over the non-empty bins (the headline number).
        kl_all: marginal KL over all pixels (Noise Flow's number).
        kl_planes: marginal KL per plane (R, Gr, Gb, B), ``(4,)`` (NaN for a non-packed input).
    """

    edges: np.ndarray
    centers: np.ndarray
    counts: np.ndarray
    kl: np.ndarray
    kl_mean: float
    kl_all: float
    kl_planes: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN written as None)."""
        return {
            "edges": _json_list(self.edges),
            "centers": _json_list(self.centers),
            "counts": self.counts.tolist(),
            "kl": _json_list(self.kl),
            "kl_mean": _json_num(self.kl_mean),
            "kl_all": _json_num(self.kl_all),
            "kl_planes": _json_list(self.kl_planes),
        }


def _json_num(value: float) -> Optional[float]:
    return None if not math.isfinite(value) else float(value)


def _json_list(values: np.ndarray) -> list[Optional[float]]:
    return [_json_num(float(v)) for v in np.asarray(values).reshape(-1)]


EdgesArg = Union[None, str, Sequence[float], np.ndarray]


def _edges_for(real_residual: np.ndarray, hist_edges: EdgesArg, hist_bins: int) -> np.ndarray:
    if hist_edges is None or (isinstance(hist_edges, str) and hist_edges == "adaptive"):
        return residual_edges(real_residual, hist_bins)
    if isinstance(hist_edges, str):
        if hist_edges == "noiseflow":
            return NOISEFLOW_EDGES
        raise RawSynthError(f"hist_edges: expected 'adaptive', 'noiseflow' or an array of edges, got {hist_edges!r}")
    edges = np.asarray(hist_edges, dtype=np.float64).reshape(-1)
    if edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise RawSynthError("hist_edges: expected at least 2 increasing edges")
    return edges


def binned_kl(
    clean: np.ndarray,
    real_noisy: np.ndarray,
    synthetic_noisy: np.ndarray,
    *,
    bins: Union[int, Sequence[float]] = 10,
    hist_bins: int = 64,
    hist_edges: EdgesArg = None,
    smoothing: float = 1.0,
    min_count: int = 100,
) -> BinnedKL:
    """Marginal KL of real vs synthetic residuals, per clean-intensity bin.

    Args:
        clean: clean image, packed ``(4, h, w)`` (or any shape; per-plane KL needs planes first).
        real_noisy: real noisy image, same shape.
        synthetic_noisy: synthetic noisy image, same shape.
        bins: intensity bins (see :func:`intensity_bin_edges`).
        hist_bins: inner residual-histogram bins for adaptive edges.
        hist_edges: ``None``/``"adaptive"`` (from the real residuals of each bin), ``"noiseflow"``
            (:data:`NOISEFLOW_EDGES`) or fixed inner edges.
        smoothing: pseudo-count per histogram bin.
        min_count: intensity bins with fewer pixels get KL NaN.

    Returns:
        :class:`BinnedKL`.

    Raises:
        RawSynthError: on shape mismatches or bad options.
    """
    clean = np.asarray(clean, dtype=np.float64)
    real = np.asarray(real_noisy, dtype=np.float64)
    synth = np.asarray(synthetic_noisy, dtype=np.float64)
    if real.shape != clean.shape or synth.shape != clean.shape:
        raise RawSynthError(
            f"binned_kl: shapes differ: clean {clean.shape}, real {real.shape}, synthetic {synth.shape}"
        )
    res_real = real - clean
    res_synth = synth - clean
    edges = intensity_bin_edges(clean, bins)
    index = _assign_bins(clean, edges)
    n = edges.size - 1
    counts = np.bincount(index[index >= 0], minlength=n).astype(np.int64)
    sums = np.bincount(index[index >= 0], weights=clean[index >= 0], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        centers = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    kl = np.full(n, np.nan)
    for b in range(n):
        if counts[b] < max(min_count, 1):
            continue
        mask = index == b
        r, s = res_real[mask], res_synth[mask]
        kl[b] = histogram_kl(r, s, _edges_for(r, hist_edges, hist_bins), smoothing)
    valid = kl[np.isfinite(kl)]
    kl_mean = float(valid.mean()) if valid.size else math.nan
    kl_all = histogram_kl(res_real, res_synth, _edges_for(res_real, hist_edges, hist_bins), smoothing)
    if clean.ndim == 3 and clean.shape[0] == 4:
        kl_planes = np.array(
            [
                histogram_kl(res_real[c], res_synth[c], _edges_for(res_real[c], hist_edges, hist_bins), smoothing)
                for c in range(4)
            ]
        )
    else:
        kl_planes = np.full(4, np.nan)
    return BinnedKL(edges, centers, counts, kl, kl_mean, kl_all, kl_planes)


def _model_rng(seed: int, key: str, model: str) -> np.random.Generator:
    words = [int(seed) & 0xFFFFFFFF, zlib.crc32(key.encode()), zlib.crc32(model.encode())]
    return np.random.default_rng(np.random.SeedSequence(words))


def evaluate_pair(
    noisy: np.ndarray,
    clean: np.ndarray,
    metadata: SiddMetadata,
    models: ModelsArg = None,
    *,
    seed: int = 0,
    key: str = "",
    clip: bool = True,
    bins: Union[int, Sequence[float]] = 10,
    hist_bins: int = 64,
    hist_edges: EdgesArg = None,
    smoothing: float = 1.0,
    min_count: int = 100,
) -> dict[str, BinnedKL]:
    """Compare every model's synthetic noise with one real pair.

    Args:
        noisy: real noisy packed image, float ``(4, h, w)``, normalised.
        clean: clean packed image, same shape.
        metadata: the pair's metadata (NoiseProfile, levels, ISO).
        models: see :func:`resolve_noise_models`.
        seed: run seed; each model's generator comes from ``(seed, key, model name)``.
        key: identifies the pair in the seed (e.g. ``"<scene>/010"``).
        clip: clip synthetic noisy images to [0, 1] like SIDD's.
        bins, hist_bins, hist_edges, smoothing, min_count: see :func:`binned_kl`.

    Returns:
        ``{model name: BinnedKL}``.

    Raises:
        RawSynthError: on bad shapes or a model returning the wrong shape.
    """
    noisy = np.asarray(noisy, dtype=np.float32)
    clean = np.asarray(clean, dtype=np.float32)
    if clean.ndim != 3 or clean.shape[0] != 4 or noisy.shape != clean.shape:
        raise RawSynthError(
            f"evaluate_pair: expected packed (4, h, w) noisy and clean of equal shape, "
            f"got {noisy.shape} and {clean.shape}"
        )
    out: dict[str, BinnedKL] = {}
    for name, fn in resolve_noise_models(models).items():
        synthetic = np.asarray(fn(clean.copy(), metadata, _model_rng(seed, key, name)), dtype=np.float32)
        if synthetic.shape != clean.shape:
            raise RawSynthError(f"noise model {name!r}: returned shape {synthetic.shape}, expected {clean.shape}")
        if clip:
            synthetic = np.clip(synthetic, 0.0, 1.0)
        out[name] = binned_kl(
            clean,
            noisy,
            synthetic,
            bins=bins,
            hist_bins=hist_bins,
            hist_edges=hist_edges,
            smoothing=smoothing,
            min_count=min_count,
        )
    return out


# ============================================================================ report


@dataclass(frozen=True)
class PairResult:
    """One (SIDD pair, model) result.

    Attributes:
        scene: scene folder name.
        set_id: ``"010"`` or ``"011"``.
        camera: SIDD phone code.
        iso: ISO.
        model: model name.
        result: the KL numbers.
    """

    scene: str
    set_id: str
    camera: str
    iso: int
    model: str
    result: BinnedKL


def _fmt(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.4f}"


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else math.nan


@dataclass(frozen=True)
class NoiseEvalReport:
    """Results of :func:`evaluate_noise_models`.

    Attributes:
        results: one :class:`PairResult` per (pair, model), pairs in scene order.
        models: model names in evaluation order.
        settings: the evaluation options (JSON-ready).
    """

    results: tuple[PairResult, ...]
    models: tuple[str, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)

    def model_summary(self) -> dict[str, dict[str, float]]:
        """``{model: {"kl_mean", "kl_all", "pairs"}}``: means over pairs."""
        out: dict[str, dict[str, float]] = {}
        for model in self.models:
            rows = [r.result for r in self.results if r.model == model]
            out[model] = {
                "kl_mean": _nanmean([r.kl_mean for r in rows]),
                "kl_all": _nanmean([r.kl_all for r in rows]),
                "pairs": float(len(rows)),
            }
        return out

    def camera_summary(self) -> dict[tuple[str, int], dict[str, float]]:
        """``{(camera, iso): {model: mean kl_mean}}``, sorted by camera then ISO."""
        groups: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in self.results:
            groups[(r.camera, r.iso)][r.model].append(r.result.kl_mean)
        return {
            key: {model: _nanmean(groups[key].get(model, [])) for model in self.models} for key in sorted(groups)
        }

    def kl_by_bin(self, model: str, camera: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean per-bin KL of one model over pairs (optionally one camera).

        Pairs with a different number of intensity bins (flat images) are left out.

        Returns:
            ``(centers, kl)``: mean clean intensity and mean KL per bin, ``(n,)`` each (empty
            when nothing matches).
        """
        rows = [r.result for r in self.results if r.model == model and (camera is None or r.camera == camera)]
        if not rows:
            return np.zeros(0), np.zeros(0)
        n = max(len(r.kl) for r in rows)
        rows = [r for r in rows if len(r.kl) == n]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            centers = np.nanmean(np.stack([r.centers for r in rows]), axis=0)
            kl = np.nanmean(np.stack([r.kl for r in rows]), axis=0)
        return centers, kl

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: settings, per-model and per-camera/ISO summaries, every pair."""
        return {
            "settings": dict(self.settings),
            "models": list(self.models),
            "summary": {m: {k: _json_num(v) for k, v in s.items()} for m, s in self.model_summary().items()},
            "by_camera_iso": [
                {"camera": cam, "iso": iso, "kl_mean": {m: _json_num(v) for m, v in row.items()}}
                for (cam, iso), row in self.camera_summary().items()
            ],
            "pairs": [
                {"scene": r.scene, "set": r.set_id, "camera": r.camera, "iso": r.iso, "model": r.model,
                 **r.result.to_dict()}
                for r in self.results
            ],
        }

    def to_markdown(self, per_pair: bool = True) -> str:
        """Markdown report: per-model summary, per camera/ISO table, optionally every pair.

        Args:
            per_pair: include the per-pair table.

        Returns:
            The Markdown text (ends with a newline).
        """
        lines = [
            "# Noise realism: marginal KL divergence to real SIDD noise",
            "",
            "KL(real || synthetic) of noisy - clean residual histograms, in nats; lower is better. "
            f"Intensity bins: {self.settings.get('bins', '?')}; "
            f"pairs: {len({(r.scene, r.set_id) for r in self.results})}.",
            "",
            "## Per model",
            "",
            "| model | mean KL over intensity bins | marginal KL (all pixels) | pairs |",
            "| --- | ---: | ---: | ---: |",
        ]
        for model, s in self.model_summary().items():
            lines.append(f"| {model} | {_fmt(s['kl_mean'])} | {_fmt(s['kl_all'])} | {int(s['pairs'])} |")
        lines += ["", "## Per camera and ISO (mean KL over intensity bins)", ""]
        lines.append("| camera | ISO | " + " | ".join(self.models) + " |")
        lines.append("| --- | ---: | " + " | ".join("---:" for _ in self.models) + " |")
        for (cam, iso), row in self.camera_summary().items():
            lines.append(f"| {cam or '?'} | {iso} | " + " | ".join(_fmt(row[m]) for m in self.models) + " |")
        if per_pair:
            lines += ["", "## Per pair", "", "| scene | set | model | mean KL | marginal KL | KL per bin |"]
            lines.append("| --- | --- | --- | ---: | ---: | --- |")
            for r in self.results:
                per_bin = " ".join(_fmt(v) for v in r.result.kl)
                lines.append(
                    f"| {r.scene} | {r.set_id} | {r.model} | {_fmt(r.result.kl_mean)} | "
                    f"{_fmt(r.result.kl_all)} | {per_bin} |"
                )
        return "\n".join(lines) + "\n"

    def plot(self, path: Union[str, Path]) -> Path:
        """Save a figure: KL per model and camera (bars, log scale) and KL vs intensity bin.

        Args:
            path: image file (``.png``, ``.pdf``, ``.svg``).

        Returns:
            The path written.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        p = Path(path)
        fig = Figure(figsize=(12, 4.5))
        FigureCanvasAgg(fig)
        ax_bar, ax_bin = fig.subplots(1, 2)
        cameras = sorted({r.camera for r in self.results})
        width = 0.8 / max(len(self.models), 1)
        for k, model in enumerate(self.models):
            heights = [
                _nanmean([r.result.kl_mean for r in self.results if r.model == model and r.camera == cam])
                for cam in cameras
            ]
            xs = np.arange(len(cameras)) + (k - (len(self.models) - 1) / 2) * width
            ax_bar.bar(xs, np.nan_to_num(heights, nan=0.0), width, label=model)
        ax_bar.set_xticks(np.arange(len(cameras)), [c or "?" for c in cameras])
        ax_bar.set_ylabel("mean KL over intensity bins (nats)")
        ax_bar.set_title("KL per model and camera")
        if any(r.result.kl_mean > 0 for r in self.results):
            ax_bar.set_yscale("log")
        ax_bar.legend(fontsize="small")
        for model in self.models:
            centers, kl = self.kl_by_bin(model)
            if centers.size:
                ax_bin.plot(centers, kl, marker="o", label=model)
        ax_bin.set_xlabel("clean intensity (bin mean, normalised)")
        ax_bin.set_ylabel("KL (nats)")
        ax_bin.set_title("KL vs intensity")
        if any(np.nanmax(r.result.kl, initial=0.0) > 0 for r in self.results):
            ax_bin.set_yscale("log")
        ax_bin.legend(fontsize="small")
        fig.tight_layout()
        try:
            fig.savefig(p, dpi=100)
        except OSError as exc:
            raise RawSynthError(f"{p}: cannot write plot ({exc.strerror or exc})") from None
        return p


def _center_crop(arrays: Sequence[np.ndarray], crop: Optional[int]) -> list[np.ndarray]:
    if crop is None:
        return list(arrays)
    h, w = arrays[0].shape[-2:]
    ch, cw = min(crop, h), min(crop, w)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return [a[..., y0 : y0 + ch, x0 : x0 + cw] for a in arrays]


def evaluate_noise_models(
    root: Union[str, Path],
    models: ModelsArg = None,
    *,
    bins: Union[int, Sequence[float]] = 10,
    sets: Sequence[str] = ("010", "011"),
    cameras: Optional[Sequence[str]] = None,
    seed: int = 0,
    clip: bool = True,
    crop: Optional[int] = None,
    max_pairs: Optional[int] = None,
    hist_bins: int = 64,
    hist_edges: EdgesArg = None,
    smoothing: float = 1.0,
    min_count: int = 100,
) -> NoiseEvalReport:
    """Evaluate noise models against the real pairs of a SIDD-Medium RAW folder.

    Args:
        root: SIDD-Medium RAW folder (``SIDD_Medium_Raw``, its ``Data`` folder, or one scene).
        models: model names / callables (see :func:`resolve_noise_models`); ``None`` = all
            registered models.
        bins: clean-intensity bins: a count (equal-count per pair) or fixed edges.
        sets: which sets of each scene to use.
        cameras: only these phone codes (e.g. ``["S6", "GP"]``); ``None`` = all.
        seed: run seed (results are reproducible for a given seed).
        clip: clip synthetic noisy images to [0, 1], like SIDD's.
        crop: evaluate only the central ``crop x crop`` of each packed plane (speed).
        max_pairs: stop after this many pairs.
        hist_bins, hist_edges, smoothing, min_count: see :func:`binned_kl`.

    Returns:
        :class:`NoiseEvalReport`.

    Raises:
        RawSynthError: if no pair is found, or on malformed files / bad options.
    """
    named = resolve_noise_models(models)
    if crop is not None and crop < 2:
        raise RawSynthError(f"crop: must be >= 2 packed pixels, got {crop}")
    wanted = None if cameras is None else {c.upper() for c in cameras}
    results: list[PairResult] = []
    pairs_done = 0
    for scene in iter_sidd_medium(root, sets):
        if wanted is not None and scene.phone not in wanted:
            continue
        for pair in scene.pairs:
            if max_pairs is not None and pairs_done >= max_pairs:
                break
            metadata = pair.metadata()
            noisy, clean = _center_crop(pair.packed(metadata.cfa), crop)
            key = f"{scene.name}/{pair.set_id}"
            logger.info("noise-eval %s (%s ISO %d)", key, scene.phone, scene.iso)
            per_model = evaluate_pair(
                noisy,
                clean,
                metadata,
                named,
                seed=seed,
                key=key,
                clip=clip,
                bins=bins,
                hist_bins=hist_bins,
                hist_edges=hist_edges,
                smoothing=smoothing,
                min_count=min_count,
            )
            for name, res in per_model.items():
                results.append(PairResult(scene.name, pair.set_id, scene.phone, scene.iso, name, res))
            pairs_done += 1
    if not results:
        raise RawSynthError(f"{root}: no SIDD-Medium noisy/clean pair found "
                            f"(scene folders with NOISY, GT and METADATA .MAT files)")
    settings = {
        "root": str(root),
        "bins": bins if isinstance(bins, int) else [float(b) for b in bins],
        "sets": list(sets),
        "cameras": None if cameras is None else sorted(wanted or []),
        "seed": seed,
        "clip": clip,
        "crop": crop,
        "hist_bins": hist_bins,
        "hist_edges": hist_edges if hist_edges is None or isinstance(hist_edges, str) else "custom",
        "smoothing": smoothing,
        "min_count": min_count,
    }
    return NoiseEvalReport(tuple(results), tuple(named), settings)


def write_noise_eval(report: NoiseEvalReport, out_dir: Union[str, Path]) -> dict[str, Path]:
    """Write ``report.md``, ``report.json`` and ``noise_kl.png`` into ``out_dir`` (created).

    Returns:
        ``{"markdown": path, "json": path, "plot": path}``.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        md = out / "report.md"
        md.write_text(report.to_markdown(), encoding="utf-8")
        js = out / "report.json"
        js.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    except OSError as exc:
        raise RawSynthError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    plot = report.plot(out / "noise_kl.png")
    return {"markdown": md, "json": js, "plot": plot}
