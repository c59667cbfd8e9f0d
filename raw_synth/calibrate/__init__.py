"""Noise calibration: measure a camera's noise level and build a profile's ``noise`` section.

Everything works on packed RAW, numpy ``(4, h, w)`` float, planes R, Gr, Gb, B, normalised as
``(DN - black) / (white - black)``; results are per plane, ``variance(x) = shot * x + read``
(normalised units).

* :func:`fit_pairs` - aligned noisy/clean pairs: binned mean-variance line, clipping excluded.
* :func:`fit_flat_dark` - flat-field and dark frames: photon transfer (gain ``K``), read, row
  noise and Tukey-lambda shape (ELD physics model), as :class:`PhysicsFit`.
* :func:`estimate_blind` - a single noisy image: weak-texture blocks (Liu et al. 2013 style).
* :func:`noise_from_dng` - a DNG's NoiseProfile tag.
* :func:`fit_iso_relation` - fits at several ISOs to a profile ``noise`` section
  (``iso-table`` for :func:`raw_synth.noise.sample_nlf`, or ELD parameters for
  :func:`raw_synth.noise.sample_eld`).
* :func:`calibrate_files` - the same from files, grouped by ISO (what the CLI calls).

Example:
    >>> import numpy as np
    >>> from raw_synth.calibrate import fit_pairs
    >>> from raw_synth.noise import GaussianParams, apply_noise
    >>> clean = np.tile(np.linspace(0.01, 0.9, 256, dtype=np.float32), (4, 256, 1))
    >>> noisy = apply_noise(clean, GaussianParams(shot=1e-3, read=1e-5), 0).noisy
    >>> fit = fit_pairs(noisy, clean)
    >>> bool(abs(fit.shot[0] / 1e-3 - 1) < 0.05)
    True
"""

from __future__ import annotations

from raw_synth.calibrate.blind import estimate_blind
from raw_synth.calibrate.dng import noise_fit_from_raw, noise_from_dng
from raw_synth.calibrate.files import METHODS, Calibration, calibrate_files, load_raw_file
from raw_synth.calibrate.nlf import BinStats, NoiseFit, fit_nlf_line
from raw_synth.calibrate.pairs import fit_pairs
from raw_synth.calibrate.photon_transfer import (
    PhysicsFit,
    dark_statistics,
    fit_flat_dark,
    fit_tukey_lambda,
    ppcc,
)
from raw_synth.calibrate.profile_fit import fit_iso_relation

__all__ = [
    "NoiseFit",
    "BinStats",
    "PhysicsFit",
    "Calibration",
    "METHODS",
    "fit_pairs",
    "fit_flat_dark",
    "dark_statistics",
    "fit_tukey_lambda",
    "ppcc",
    "estimate_blind",
    "noise_from_dng",
    "noise_fit_from_raw",
    "fit_nlf_line",
    "fit_iso_relation",
    "calibrate_files",
    "load_raw_file",
]
