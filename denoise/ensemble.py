"""Bayer-preserving self-ensemble: denoise the eight flips and turns of a mosaic and average them.

A denoiser's errors depend on how the scene lies on its input grid; averaging its outputs over
the dihedral transforms of the image (flips, transposes, quarter turns) cancels part of them, at
the cost of one forward pass per transform. A Bayer mosaic cannot simply be flipped: a flipped
RGGB mosaic is GRBG. Liu et al. (NTIRE 2019, "Learning Raw Image Denoising with Bayer Pattern
Unification and Bayer Preserving Augmentation") bring every transformed mosaic back to RGGB phase
by unification; here with the lossless reflect padding of :func:`raw_synth.cfa.unify`, so every
output pixel comes back to its own site and the ensemble needs no crop.

The transforms are taken in the order of :data:`TRANSFORMS`: ``n=2`` is the mosaic and its
transpose (both RGGB, no padding), ``n=4`` adds the half turn and its transpose, ``n=8`` all eight.

Example:
    >>> import torch
    >>> from denoise.ensemble import geometric_ensemble
    >>> noisy = torch.rand(1, 4, 16, 12)
    >>> out = geometric_ensemble(lambda x, v: x, noisy, None, n=8)  # the identity "denoiser"
    >>> bool(torch.allclose(out, noisy))
    True
"""

from __future__ import annotations

from typing import Callable

import torch

from raw_synth.cfa import pack, restore, unify, unpack
from raw_synth.errors import RawSynthError

__all__ = ["ENSEMBLE_SIZES", "TRANSFORMS", "check_ensemble", "geometric_ensemble"]

#: The dihedral transforms of the mosaic as ``(transpose first, quarter turns)``, in ensemble order.
TRANSFORMS: tuple[tuple[bool, int], ...] = (
    (False, 0), (True, 0), (False, 2), (True, 2), (False, 1), (True, 1), (False, 3), (True, 3),
)
#: The ensemble sizes accepted (1: the plain model).
ENSEMBLE_SIZES: tuple[int, ...] = (1, 2, 4, 8)

Predict = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def check_ensemble(n: object, label: str = "ensemble") -> int:
    """``n`` as an ensemble size of :data:`ENSEMBLE_SIZES`, or a one-line error naming ``label``."""
    if isinstance(n, bool) or not isinstance(n, int) or n not in ENSEMBLE_SIZES:
        raise RawSynthError(f"{label}: expected one of {', '.join(map(str, ENSEMBLE_SIZES))}, got {n!r}")
    return n


def _forward(mosaic: torch.Tensor, transpose: bool, turns: int) -> torch.Tensor:
    if transpose:
        mosaic = mosaic.transpose(-1, -2)
    return torch.rot90(mosaic, turns, dims=(-2, -1))


def _backward(mosaic: torch.Tensor, transpose: bool, turns: int) -> torch.Tensor:
    mosaic = torch.rot90(mosaic, -turns, dims=(-2, -1))
    return mosaic.transpose(-1, -2) if transpose else mosaic


def _pattern(transpose: bool, turns: int) -> str:
    """The Bayer pattern an RGGB mosaic has after the transform (read from a transformed 4x4 tile)."""
    sites = torch.tensor([[0, 1], [2, 3]]).repeat(2, 2)
    tile = _forward(sites, transpose, turns)[:2, :2].flatten().tolist()
    return "".join("RGGB"[int(site)] for site in tile)


def _to_rggb(mosaic: torch.Tensor, transpose: bool, turns: int, pattern: str) -> torch.Tensor:
    """The transformed mosaic, unified to RGGB phase and packed."""
    return pack(unify(_forward(mosaic, transpose, turns), pattern, "pad"), "RGGB")


def geometric_ensemble(predict: Predict, noisy: torch.Tensor, variance: torch.Tensor | None,
                       n: int = 8) -> torch.Tensor:
    """Average ``predict`` over the first ``n`` Bayer-preserving transforms of the input.

    Args:
        predict: ``predict(noisy, variance) -> denoised`` on packed RGGB ``(B, 4, h, w)`` of any
            size (e.g. :meth:`~denoise.models.SSDNetDenoiser.predict`); ``variance`` may be ``None``.
        noisy: ``(B, 4, h, w)`` packed RGGB-phase RAW (R, Gr, Gb, B).
        variance: ``(B, 4, h, w)`` per-pixel noise variance of ``noisy``, or ``None`` (blind).
        n: Transforms to average, one of :data:`ENSEMBLE_SIZES` (1 runs ``predict`` once).

    Returns:
        ``(B, 4, h, w)``, the mean of the ``n`` outputs mapped back onto the input's sites (not
        clamped; as ``predict`` returns them).

    Raises:
        RawSynthError: If ``n`` is not an ensemble size or the input is not packed RAW.
    """
    check_ensemble(n)
    if noisy.ndim != 4 or noisy.shape[1] != 4:
        raise RawSynthError(f"noisy: expected packed RAW of shape (B, 4, h, w), got {tuple(noisy.shape)}")
    if n == 1:
        return predict(noisy, variance)
    mosaic = unpack(noisy, "RGGB")
    var_mosaic = None if variance is None else unpack(variance, "RGGB")
    total: torch.Tensor | None = None
    for transpose, turns in TRANSFORMS[:n]:
        pattern = _pattern(transpose, turns)
        image = _to_rggb(mosaic, transpose, turns, pattern)
        out = predict(image, None if var_mosaic is None else _to_rggb(var_mosaic, transpose, turns, pattern))
        back = _backward(restore(unpack(out, "RGGB"), pattern, "pad"), transpose, turns)
        total = back if total is None else total + back
    assert total is not None
    return pack(total / n, "RGGB")
