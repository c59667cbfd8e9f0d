"""Draw one sample's noise from a camera profile's ``noise`` section.

A camera profile (:mod:`raw_synth.camera`) names a noise ``model`` and a parameter ``sampler``;
:func:`sample_camera_noise` turns that into concrete noise parameters for one sample, plus the ISO
(or gain) it drew, so that every generated pair can record where its noise came from.

Samplers and their ``params``:

=================  ==========================================================================
``unprocessing``   none. Brooks et al.: ``ln shot ~ U(ln 1e-4, ln 0.012)``, read from the line.
``cycleisp-dnd``   none. CycleISP's DND sampler (base-10 logs).
``cycleisp-sidd``  none. CycleISP's SIDD sampler.
``iso-table``      ``iso: [..]``, ``shot: [[4 values] per ISO]`` (or one value per ISO),
                   ``read:`` likewise, optional ``shot_scatter``/``read_scatter`` (std of ln).
                   ISO is drawn log-uniformly over the table.
``eld``            an ELD calibration (``Kmin``, ``Kmax``, ``G_shape``, ``Profile-1``, ...,
                   ``color_bias``), optional ``read_model`` (``tukey``/``gaussian``), ``row``,
                   ``bias``. The profile's black/white level give the DN scale.
=================  ==========================================================================

Models: ``heteroscedastic-gaussian`` (all samplers but ``eld``), ``poisson-gaussian`` (the
sampled noise level realised as Poisson shot noise with the equivalent gain) and ``physics``
(``eld`` only).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping, Union

import numpy as np

from raw_synth.camera import CameraProfile
from raw_synth.errors import RawSynthError
from raw_synth.noise.gaussian import GaussianParams
from raw_synth.noise.physics import PhysicsParams
from raw_synth.noise.poisson_gaussian import PoissonGaussianParams
from raw_synth.noise.sampling import (
    _draw_iso,
    _sample_checked_nlf,
    check_nlf_table,
    sample_cycleisp_dnd,
    sample_cycleisp_sidd,
    sample_eld,
    sample_unprocessing,
)

__all__ = ["NoiseDraw", "sample_camera_noise", "iso_table", "SAMPLERS", "MODELS"]

SAMPLERS = ("unprocessing", "cycleisp-dnd", "cycleisp-sidd", "iso-table", "eld")
MODELS = ("heteroscedastic-gaussian", "poisson-gaussian", "physics")

NoiseParamsType = Union[GaussianParams, PoissonGaussianParams, PhysicsParams]


@dataclass(frozen=True)
class NoiseDraw:
    """The noise of one sample.

    Attributes:
        params: Parameters for :func:`raw_synth.noise.apply_noise`.
        iso: The ISO drawn (``iso-table``), else ``None``.
        gain: The system gain K in DN per electron (``eld``), else ``None``.
    """

    params: NoiseParamsType
    iso: float | None = None
    gain: float | None = None


def iso_table(params: Mapping[str, Any], origin: str = "noise.params") -> dict[float, tuple[Any, Any]]:
    """The ``{iso: (shot, read)}`` table of an ``iso-table`` sampler's params.

    Raises:
        RawSynthError: If ``iso``, ``shot`` and ``read`` are missing or of different lengths.
    """
    try:
        isos, shots, reads = params["iso"], params["shot"], params["read"]
    except KeyError as missing:
        raise RawSynthError(f"{origin}: iso-table needs 'iso', 'shot' and 'read', missing {missing}") from None
    if not (isinstance(isos, list) and isinstance(shots, list) and isinstance(reads, list)):
        raise RawSynthError(f"{origin}: iso-table 'iso', 'shot' and 'read' must be lists")
    if not len(isos) == len(shots) == len(reads) or not isos:
        raise RawSynthError(
            f"{origin}: iso-table 'iso', 'shot' and 'read' must have the same non-zero length, "
            f"got {len(isos)}, {len(shots)}, {len(reads)}"
        )
    return {float(i): (s, r) for i, s, r in zip(isos, shots, reads)}


def _freeze(value: Any) -> Any:
    """A hashable copy of nested dicts, lists and tuples of numbers."""
    if isinstance(value, Mapping):
        return tuple((k, _freeze(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


@functools.lru_cache(maxsize=256)
def _checked_iso_table(frozen: tuple, origin: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`~raw_synth.noise.sampling.check_nlf_table` of a frozen ``{iso: (shot, read)}``,
    once per table: read-only ``(isos, shots, reads)``."""
    checked = check_nlf_table(dict(frozen), origin)
    for arr in checked:
        arr.flags.writeable = False
    return checked


def sample_camera_noise(profile: CameraProfile, rng: np.random.Generator) -> NoiseDraw:
    """Draw the noise parameters of one sample from a profile.

    Args:
        profile: Camera profile with a ``noise`` section.
        rng: The sample's generator (see :func:`raw_synth.seeding.sample_rng`).

    Returns:
        A :class:`NoiseDraw`.

    Raises:
        RawSynthError: If the profile has no noise section, or names an unknown model or sampler.
    """
    origin = profile.source or profile.name
    noise = profile.noise
    if noise is None:
        raise RawSynthError(f"{origin}: camera profile {profile.name!r} has no noise section")
    if noise.sampler not in SAMPLERS:
        raise RawSynthError(f"{origin}: field 'noise.sampler': unknown sampler {noise.sampler!r}: "
                            f"expected one of {', '.join(SAMPLERS)}")
    if noise.model not in MODELS:
        raise RawSynthError(f"{origin}: field 'noise.model': unknown model {noise.model!r}: "
                            f"expected one of {', '.join(MODELS)}")
    if (noise.model == "physics") != (noise.sampler == "eld"):
        raise RawSynthError(f"{origin}: field 'noise.model': model 'physics' goes with sampler 'eld' only")

    params = dict(noise.params)
    if noise.sampler == "eld":
        options = {k: params.pop(k) for k in ("read_model", "row", "bias", "profile") if k in params}
        physics = sample_eld(params, rng, black=profile.black_level, white=profile.white_level, **options)
        return NoiseDraw(params=physics, gain=float(physics.gain))

    iso = None
    if noise.sampler == "unprocessing":
        gaussian = sample_unprocessing(rng)
    elif noise.sampler == "cycleisp-dnd":
        gaussian = sample_cycleisp_dnd(rng)
    elif noise.sampler == "cycleisp-sidd":
        gaussian = sample_cycleisp_sidd(rng)
    else:
        # as sample_iso then sample_nlf(iso=...), with the table checked once per profile
        checked = _checked_iso_table(_freeze(iso_table(params, f"{origin}: noise.params")), f"{origin}: noise.params")
        iso = _draw_iso(checked[0], rng)
        gaussian = _sample_checked_nlf(checked, rng, iso, float(params.get("shot_scatter", 0.1)),
                                       float(params.get("read_scatter", 0.1)), False)

    if noise.model == "poisson-gaussian":
        converted = PoissonGaussianParams.from_noise_level(
            gaussian.shot, gaussian.read, profile.black_level, profile.white_level, clip=True)
        return NoiseDraw(params=converted, iso=iso)
    return NoiseDraw(params=gaussian, iso=iso)
