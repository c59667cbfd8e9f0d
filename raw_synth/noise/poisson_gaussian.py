"""Poisson-Gaussian noise with a system gain: photon shot noise plus Gaussian read noise in DN.

The clean normalised signal ``x`` is ``x * (white - black)`` DN above black, that is
``x * (white - black) / K`` electrons for a system gain ``K`` (DN per electron). The noisy
signal in DN is ``K * Poisson(electrons) + N(0, read_dn^2)``, returned normalised again. Its
variance is ``shot * x + read`` with

    shot = K / (white - black),    read = (read_dn / (white - black))^2.

Negative clean values give zero electrons. Values are not rounded (see :mod:`.physics` for
quantisation); clipping to the sensor range ``[0, white]`` DN, i.e. normalised
``[-black / (white - black), 1]``, is optional and off by default.

Example:
    >>> import numpy as np
    >>> p = PoissonGaussianParams(gain=2.0, read_dn=3.0, black=64, white=1023)
    >>> noisy, shot, read = apply(np.full((4, 4, 4), 0.3, np.float32), p, 0)
    >>> round(float(shot[0]) * 959, 6), round(float(read[0]) * 959 ** 2, 4)
    (2.0, 9.0)
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
    check_levels,
    check_packed,
    check_per_plane,
    numpy_rng,
    per_plane_np,
    per_plane_t,
    torch_generator,
)

if TYPE_CHECKING:
    import torch

__all__ = ["PoissonGaussianParams", "apply"]


@dataclass(frozen=True)
class PoissonGaussianParams:
    """Parameters of the Poisson-Gaussian model.

    Per-plane fields take a scalar, 4 values (R, Gr, Gb, B) or, for a torch batch, ``(B, 4)``.

    Attributes:
        gain: system gain ``K`` in DN per electron, ``> 0``.
        read_dn: standard deviation of the Gaussian read noise in DN, ``>= 0``.
        black: black level in DN, ``>= 0``.
        white: white (saturation) level in DN, ``black < white <= 65535``.
        clip: clip the noisy DN to ``[0, white]``; off by default.
    """

    gain: PerPlane
    read_dn: PerPlane
    black: PerPlane
    white: PerPlane
    clip: bool = False

    def __post_init__(self) -> None:
        check_per_plane(self.gain, "gain", minimum=0.0, strict=True)
        check_per_plane(self.read_dn, "read_dn", minimum=0.0)
        check_levels(self.black, self.white)
        if not isinstance(self.clip, bool):
            raise RawSynthError(f"clip: expected a bool, got {type(self.clip).__name__}")

    @classmethod
    def from_noise_level(
        cls, shot: PerPlane, read: PerPlane, black: PerPlane, white: PerPlane, clip: bool = False
    ) -> "PoissonGaussianParams":
        """Parameters whose equivalent noise level is ``(shot, read)`` (normalised units).

        ``gain = shot * (white - black)`` and ``read_dn = sqrt(read) * (white - black)``; scalars
        or 4 values (numpy, returned as tuples when per plane).
        """
        s = per_plane_np(shot, "shot")
        r = per_plane_np(read, "read")
        if np.any(s <= 0.0) or np.any(r < 0.0):
            raise RawSynthError(f"shot/read: need shot > 0 and read >= 0, got {s.tolist()}, {r.tolist()}")
        scale = per_plane_np(white, "white") - per_plane_np(black, "black")
        return cls(
            gain=tuple((s * scale).tolist()),
            read_dn=tuple((np.sqrt(r) * scale).tolist()),
            black=black,
            white=white,
            clip=clip,
        )


def apply(x: Array, params: PoissonGaussianParams, rng: RandomSource = None) -> NoiseResult:
    """Add Poisson-Gaussian noise to a packed RAW image.

    Args:
        x: clean packed RAW, normalised; numpy float ``(4, h, w)`` or torch float ``(B, 4, h, w)``.
            Not modified.
        params: the noise parameters.
        rng: numpy ``Generator`` for numpy input, torch ``Generator`` (on ``x``'s device) for
            torch input, or an integer seed; ``None`` draws fresh entropy.

    Returns:
        ``NoiseResult(noisy, shot, read)``: ``noisy`` float32 like ``x`` (normalised); equivalent
        ``shot = K / (white - black)`` and ``read = (read_dn / (white - black))^2``, float32
        ``(4,)`` (numpy) or ``(B, 4)`` (torch).

    Raises:
        RawSynthError: on a wrongly shaped input, parameter or generator.
    """
    if not isinstance(params, PoissonGaussianParams):
        raise RawSynthError(f"params: expected PoissonGaussianParams, got {type(params).__name__}")
    if check_packed(x):
        return _apply_torch(x, params, rng)
    gen = numpy_rng(rng)
    gain = per_plane_np(params.gain, "gain")
    read_dn = per_plane_np(params.read_dn, "read_dn")
    black = per_plane_np(params.black, "black")
    scale = per_plane_np(params.white, "white") - black
    col = (slice(None), None, None)
    electrons = np.maximum(np.asarray(x, dtype=np.float64) * (scale / gain)[col], 0.0)
    dn = gain[col] * gen.poisson(electrons) + read_dn[col] * gen.standard_normal(electrons.shape)
    if params.clip:
        np.clip(dn, -black[col], scale[col], out=dn)
    noisy = (dn / scale[col]).astype(np.float32)
    return NoiseResult(noisy, (gain / scale).astype(np.float32), ((read_dn / scale) ** 2).astype(np.float32))


def _apply_torch(x: torch.Tensor, params: PoissonGaussianParams, rng: RandomSource) -> NoiseResult:
    import torch  # x is a tensor: torch is loaded already

    batch, device = x.shape[0], x.device
    gen = torch_generator(rng, device)
    gain = per_plane_t(params.gain, batch, "gain", device)
    read_dn = per_plane_t(params.read_dn, batch, "read_dn", device)
    black = per_plane_t(params.black, batch, "black", device)
    scale = per_plane_t(params.white, batch, "white", device) - black
    g, r, b, s = (v[:, :, None, None] for v in (gain, read_dn, black, scale))
    electrons = (x.to(torch.float32) * (s / g)).clamp_min(0.0)
    dn = g * torch.poisson(electrons, generator=gen)
    dn = dn + r * torch.randn(dn.shape, generator=gen, device=device, dtype=torch.float32)
    if params.clip:
        dn = torch.minimum(torch.maximum(dn, -b), s)
    return NoiseResult(dn / s, gain / scale, (read_dn / scale) ** 2)
