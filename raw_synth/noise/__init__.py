"""Sensor noise models on packed RAW, and samplers of their parameters.

Images are packed RAW: numpy float ``(4, h, w)`` or torch float ``(B, 4, h, w)``, planes R, Gr,
Gb, B, normalised as ``(DN - black) / (white - black)``. Each model is a frozen parameter
dataclass plus ``apply(x, params, rng) -> NoiseResult(noisy, shot, read)``; ``shot``/``read`` are
the per-plane equivalent noise level, ``variance = shot * x + read`` (normalised units), numpy
``(4,)`` or torch ``(B, 4)``. Inputs are never modified; numpy input takes a numpy ``Generator``,
torch input a torch ``Generator`` (or an integer seed for either).

Models:
    * :class:`GaussianParams` - heteroscedastic Gaussian (Unprocessing / CycleISP).
    * :class:`PoissonGaussianParams` - Poisson shot noise with system gain + Gaussian read noise.
    * :class:`PhysicsParams` - ELD physics model: Poisson shot, Gaussian or Tukey-lambda read
      noise, row noise, quantisation, black-level error, fixed pattern, clipping.

:func:`apply_noise` dispatches on the parameter type; :class:`AddNoise` is the ``nn.Module``
(created on first access, so that importing this package does not import torch).
:func:`to_dn` / :func:`from_dn` convert to and from ``uint16`` DN for storage. Parameter
samplers live in :mod:`raw_synth.noise.sampling`.

Example:
    >>> import numpy as np
    >>> from raw_synth.noise import PhysicsParams, apply_noise, to_dn
    >>> p = PhysicsParams(gain=2.0, read_scale=3.0, black=512, white=16383, row_scale=1.0)
    >>> noisy, shot, read = apply_noise(np.full((4, 8, 8), 0.25, np.float32), p, np.random.default_rng(0))
    >>> to_dn(noisy, 512, 16383).dtype
    dtype('uint16')
"""

from __future__ import annotations

from typing import Any

from raw_synth.lazy_torch import lazy_attribute
from raw_synth.noise._base import NoiseResult
from raw_synth.noise.dn import from_dn, to_dn
from raw_synth.noise.gaussian import GaussianParams
from raw_synth.noise.models import NoiseParams, apply_noise
from raw_synth.noise.physics import (
    PhysicsParams,
    equivalent_read_dn2,
    sample_tukey_lambda,
    tukey_lambda_ppf,
    tukey_lambda_variance,
)
from raw_synth.noise.poisson_gaussian import PoissonGaussianParams
from raw_synth.noise.sampling import (
    load_eld_params,
    sample_cycleisp_dnd,
    sample_cycleisp_sidd,
    sample_eld,
    sample_iso,
    sample_nlf,
    sample_unprocessing,
)

__all__ = [
    "NoiseResult",
    "NoiseParams",
    "GaussianParams",
    "PoissonGaussianParams",
    "PhysicsParams",
    "apply_noise",
    "AddNoise",
    "to_dn",
    "from_dn",
    "equivalent_read_dn2",
    "tukey_lambda_ppf",
    "tukey_lambda_variance",
    "sample_tukey_lambda",
    "load_eld_params",
    "sample_unprocessing",
    "sample_cycleisp_dnd",
    "sample_cycleisp_sidd",
    "sample_eld",
    "sample_iso",
    "sample_nlf",
]


def _add_noise() -> type:
    from raw_synth.noise.models import AddNoise

    return AddNoise


def __getattr__(name: str) -> Any:
    """``AddNoise`` on first access (see :func:`raw_synth.lazy_torch.lazy_attribute`)."""
    return lazy_attribute(__name__, name, {"AddNoise": _add_noise})
