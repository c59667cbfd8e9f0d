"""Heteroscedastic Gaussian noise, the "Unprocessing" model (Brooks et al., CVPR 2019).

``noisy = x + sqrt(shot * x + read) * N(0, 1)`` with per-plane ``shot`` and ``read`` in normalised
units. This is the Gaussian approximation of Poisson-Gaussian sensor noise used by Unprocessing
and CycleISP. Brooks et al. do not clip the noisy image, so clipping is off by default; CycleISP
clips to ``[0, 1]`` (``clip=True``). The variance is taken at the *clean* level and floored at 0.

Example:
    >>> import numpy as np
    >>> x = np.full((4, 8, 8), 0.5, np.float32)
    >>> noisy, shot, read = apply(x, GaussianParams(shot=0.01, read=1e-4), np.random.default_rng(0))
    >>> noisy.shape, noisy.dtype, shot.shape
    ((4, 8, 8), dtype('float32'), (4,))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from raw_synth.errors import RawSynthError
from raw_synth.noise._base import (
    Array,
    NoiseResult,
    PerPlane,
    RandomSource,
    check_packed,
    check_per_plane,
    numpy_rng,
    per_plane_np,
    per_plane_t,
    torch_generator,
)

if TYPE_CHECKING:
    import torch

__all__ = ["GaussianParams", "apply"]


@dataclass(frozen=True)
class GaussianParams:
    """Parameters of the heteroscedastic Gaussian model.

    Attributes:
        shot: per-plane shot coefficient (normalised units), ``>= 0``: scalar, 4 values, or a
            ``(B, 4)`` array for a torch batch.
        read: per-plane read variance (normalised units), ``>= 0``; same forms as ``shot``.
        clip: clip the noisy image to ``[0, 1]`` (CycleISP); off by default as in Unprocessing.
    """

    shot: PerPlane
    read: PerPlane
    clip: bool = False

    def __post_init__(self) -> None:
        check_per_plane(self.shot, "shot", minimum=0.0)
        check_per_plane(self.read, "read", minimum=0.0)
        if not isinstance(self.clip, bool):
            raise RawSynthError(f"clip: expected a bool, got {type(self.clip).__name__}")


def apply(x: Array, params: GaussianParams, rng: RandomSource = None) -> NoiseResult:
    """Add heteroscedastic Gaussian noise to a packed RAW image.

    Args:
        x: clean packed RAW, normalised; numpy float ``(4, h, w)`` or torch float ``(B, 4, h, w)``.
            Not modified.
        params: the noise parameters.
        rng: numpy ``Generator`` for numpy input, torch ``Generator`` (on ``x``'s device) for
            torch input, or an integer seed; ``None`` draws fresh entropy.

    Returns:
        ``NoiseResult(noisy, shot, read)``: ``noisy`` float32 like ``x``; ``shot`` and ``read``
        float32 ``(4,)`` (numpy) or ``(B, 4)`` (torch), equal to the parameters.

    Raises:
        RawSynthError: on a wrongly shaped input, parameter or generator.
    """
    if not isinstance(params, GaussianParams):
        raise RawSynthError(f"params: expected GaussianParams, got {type(params).__name__}")
    if check_packed(x):
        return _apply_torch(x, params, rng)
    gen = numpy_rng(rng)
    shot = per_plane_np(params.shot, "shot").astype(np.float32)
    read = per_plane_np(params.read, "read").astype(np.float32)
    xf = np.asarray(x, dtype=np.float32)
    var = shot[:, None, None] * xf + read[:, None, None]
    std = np.sqrt(np.maximum(var, 0.0, out=var), out=var)
    noisy = xf + std * gen.standard_normal(xf.shape, dtype=np.float32)
    if params.clip:
        np.clip(noisy, 0.0, 1.0, out=noisy)
    return NoiseResult(noisy, shot, read)


def _apply_torch(x: torch.Tensor, params: GaussianParams, rng: RandomSource) -> NoiseResult:
    import torch  # x is a tensor: torch is loaded already

    batch, device = x.shape[0], x.device
    gen = torch_generator(rng, device)
    shot = per_plane_t(params.shot, batch, "shot", device)
    read = per_plane_t(params.read, batch, "read", device)
    xf = x.to(torch.float32)
    std = (shot[:, :, None, None] * xf + read[:, :, None, None]).clamp_min(0.0).sqrt()
    noise = torch.randn(xf.shape, generator=gen, device=device, dtype=torch.float32)
    noisy = xf + std * noise
    if params.clip:
        noisy = noisy.clamp(0.0, 1.0)
    return NoiseResult(noisy, shot, read)
