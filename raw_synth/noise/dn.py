"""Conversion between normalised packed RAW and integer sensor values (DN) for storage.

``DN = round(x * (white - black) + black)`` clipped to ``[0, white]``, stored as ``uint16``;
``x = (DN - black) / (white - black)``. Black and white levels are a scalar or four values
(R, Gr, Gb, B) applied along the plane axis (``-3``) of ``(..., 4, h, w)`` arrays.
"""

from __future__ import annotations

import numpy as np

from raw_synth.errors import RawSynthError
from raw_synth.lazy_torch import is_tensor
from raw_synth.noise._base import Array, PerPlane, check_levels, to_numpy_values

__all__ = ["to_dn", "from_dn"]


def _levels(black: PerPlane, white: PerPlane, like: Array, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Black/white as float64 arrays broadcastable against ``like`` (per plane on axis -3)."""
    check_levels(black, white)
    b = to_numpy_values(black, "black")
    w = to_numpy_values(white, "white")
    if b.ndim > 1 or w.ndim > 1 or (b.ndim == 1 and b.shape != (4,)) or (w.ndim == 1 and w.shape != (4,)):
        raise RawSynthError("black/white: expected a scalar or 4 values (R, Gr, Gb, B)")
    if b.ndim == 1 or w.ndim == 1:
        if like.ndim < 3 or like.shape[-3] != 4:
            raise RawSynthError(f"{name}: per-plane black/white need shape (..., 4, h, w), got {tuple(like.shape)}")
        b = np.broadcast_to(b, (4,)).reshape(4, 1, 1).copy()
        w = np.broadcast_to(w, (4,)).reshape(4, 1, 1).copy()
    return b, w


def to_dn(x: Array, black: PerPlane, white: PerPlane) -> Array:
    """Normalised RAW to integer DN.

    Args:
        x: normalised RAW, numpy array or torch tensor, any shape (``(..., 4, h, w)`` when the
            levels are per plane). Not modified.
        black: black level in DN, scalar or 4 values, ``>= 0``.
        white: white level in DN, scalar or 4 values, ``black < white <= 65535``.

    Returns:
        ``round(x * (white - black) + black)`` clipped to ``[0, white]``, ``np.uint16`` /
        ``torch.uint16``, same shape (and device) as ``x``.

    Raises:
        RawSynthError: on invalid levels or shapes.
    """
    b, w = _levels(black, white, x, "x")
    if is_tensor(x):
        import torch

        bt = torch.as_tensor(b, dtype=torch.float64, device=x.device)
        wt = torch.as_tensor(w, dtype=torch.float64, device=x.device)
        dn = torch.round(x.to(torch.float64) * (wt - bt) + bt)
        dn = torch.minimum(dn.clamp_min(0.0), wt)
        return dn.to(torch.int32).to(torch.uint16)
    xf = np.asarray(x, dtype=np.float64)
    dn = np.clip(np.rint(xf * (w - b) + b), 0.0, w)
    return dn.astype(np.uint16)


def from_dn(dn: Array, black: PerPlane, white: PerPlane) -> Array:
    """Integer (or float) DN to normalised float32 RAW.

    Args:
        dn: sensor values, numpy array or torch tensor (any integer or float dtype), any shape
            (``(..., 4, h, w)`` when the levels are per plane).
        black: black level in DN, scalar or 4 values.
        white: white level in DN, scalar or 4 values.

    Returns:
        ``(dn - black) / (white - black)`` as float32, same kind and shape as ``dn``.

    Raises:
        RawSynthError: on invalid levels or shapes.
    """
    b, w = _levels(black, white, dn, "dn")
    if is_tensor(dn):
        import torch

        bt = torch.as_tensor(b, dtype=torch.float64, device=dn.device)
        wt = torch.as_tensor(w, dtype=torch.float64, device=dn.device)
        src = dn.to(torch.int32) if dn.dtype == torch.uint16 else dn
        return ((src.to(torch.float64) - bt) / (wt - bt)).to(torch.float32)
    return ((np.asarray(dn, dtype=np.float64) - b) / (w - b)).astype(np.float32)

