"""One parser for per-plane values: one number for all four Bayer planes, or four (R, Gr, Gb, B).

Black and white levels, noise coefficients and similar settings are given either as one number
or as one per plane. :func:`per_plane` turns such a value into a float64 ``(4,)`` array, or
``None`` when it holds another count of numbers, so that every caller keeps its own error message.

Example:
    >>> per_plane(0.5).tolist()
    [0.5, 0.5, 0.5, 0.5]
    >>> per_plane([1, 2, 3, 4]).tolist()
    [1.0, 2.0, 3.0, 4.0]
    >>> per_plane([1, 2]) is None
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["per_plane"]


def per_plane(value: Any, *, flatten: bool = True) -> np.ndarray | None:
    """A per-plane value as float64 ``(4,)``: one number repeated, or four numbers as they are.

    Args:
        value: A number, 4 numbers, or anything ``numpy.array`` turns into them.
        flatten: Accept any array of 1 or 4 elements (e.g. ``[x]``, ``[[a, b], [c, d]]``); when
            False only a scalar (0-d) or a ``(4,)`` array is accepted.

    Returns:
        A new float64 ``(4,)`` array, or ``None`` when ``value`` has another count of numbers (or
        shape, with ``flatten=False``). Values are not checked (NaN and inf pass).

    Raises:
        TypeError, ValueError: When ``value`` is not numbers (as :func:`numpy.array` raises them).
    """
    arr = np.array(value, dtype=np.float64)
    if flatten:
        arr = arr.reshape(-1)
        if arr.size == 1:
            return np.full(4, float(arr[0]))
    elif arr.ndim == 0:
        return np.full(4, float(arr))
    return arr if arr.shape == (4,) else None
