"""The one noise-level type: per plane, ``variance(x) = shot * x + read`` in normalised units.

A camera's noise at one ISO is two numbers per packed plane (R, Gr, Gb, B): the shot coefficient
and the read variance, for pixels normalised ``(DN - black) / (white - black)`` - the units of a
DNG NoiseProfile and of SIDD's noise level functions. :class:`NoiseLevel` holds them, checked and
read-only; calibration's :class:`~raw_synth.calibrate.nlf.NoiseFit` is a :class:`NoiseLevel` with
the facts of its fit, and the denoiser's variance map is :meth:`NoiseLevel.variance_map`.

Example:
    >>> level = NoiseLevel(1e-3, [1e-5, 2e-5, 2e-5, 3e-5])
    >>> level.variance(0.5).round(7).tolist()
    [0.00051, 0.00052, 0.00052, 0.00053]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from raw_synth.errors import RawSynthError
from raw_synth.per_plane import per_plane

__all__ = ["NoiseLevel"]


@dataclass(frozen=True, eq=False)
class NoiseLevel:
    """Per-plane noise level ``variance(x) = shot * x + read`` (normalised units).

    Attributes:
        shot: Shot coefficient per plane (R, Gr, Gb, B): 1 or 4 numbers, stored as read-only
            float64 ``(4,)``, finite and ``>= 0``.
        read: Read variance per plane, the same forms.

    Raises:
        RawSynthError: Another count of values, or values that are not finite and ``>= 0``
            (``"NoiseLevel.shot: expected 1 or 4 values, got 3"``; subclasses name themselves).
    """

    shot: Any
    read: Any

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name in ("shot", "read"):
            try:
                arr = per_plane(getattr(self, name))
            except (TypeError, ValueError):
                raise RawSynthError(f"{owner}.{name}: expected 1 or 4 numbers, got {getattr(self, name)!r}") from None
            if arr is None:
                size = np.asarray(getattr(self, name)).size
                raise RawSynthError(f"{owner}.{name}: expected 1 or 4 values, got {size}")
            if not np.all(np.isfinite(arr)) or np.any(arr < 0.0):
                raise RawSynthError(f"{owner}.{name}: values must be finite and >= 0, got {arr.tolist()}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def variance(self, x: Union[float, np.ndarray]) -> np.ndarray:
        """Noise variance at clean level ``x``.

        Args:
            x: A level, or a packed image ``(4, h, w)`` (normalised).

        Returns:
            float64 ``shot * x + read``: ``(4,)`` for a scalar, ``(4, h, w)`` for an image.
        """
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim == 0:
            return self.shot * float(arr) + self.read
        return self.shot[:, None, None] * arr + self.read[:, None, None]

    def variance_map(self, noisy: np.ndarray) -> np.ndarray:
        """The variance map a conditioned denoiser takes: ``max(shot * noisy + read, 0)``, float32.

        Args:
            noisy: ``(4, h, w)`` normalised packed RAW (the noisy image stands in for the clean one).
        """
        return np.maximum(self.variance(noisy), 0.0).astype(np.float32)

    @property
    def noise_profile(self) -> tuple[tuple[float, float], ...]:
        """``(shot, read)`` per plane, as a DNG NoiseProfile and :class:`raw_synth.io.RawImage` take it."""
        return tuple((float(s), float(r)) for s, r in zip(self.shot, self.read))
