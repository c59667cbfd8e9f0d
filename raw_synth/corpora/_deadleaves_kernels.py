"""Compiled inner loops of the dead-leaves renderer (numba).

The random draws stay in numpy (:mod:`raw_synth.corpora.deadleaves`), so a seed gives the same
image as it always did; these loops only replace array programs whose temporaries cost more than
the arithmetic: painting the disks of one round, shading the leaves, and the two passes of the
small Gaussian blur. Each does exactly the floating-point operations of the numpy formulation it
replaced, in the same order, so the images are bit-identical (``tests/test_corpora.py`` pins
them).

Compiled functions are cached on disk (numba ``cache=True``), so only the first process on a
machine pays the compile (about 6 s for all four); without a writable cache folder every process
compiles.
"""

from __future__ import annotations

import logging
import math

import numba
import numpy as np

logger = logging.getLogger(__name__)


def _compiled(function):
    """``numba.njit(nogil=True)`` with the on-disk cache, or without it where numba finds no
    writable cache folder (a read-only install and no home directory): then each process compiles."""
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError as error:  # "cannot cache function ...: no locator available"
        logger.debug("%s: compiling without a cache (%s)", function.__name__, error)
        return numba.njit(nogil=True)(function)


#: Label of a pixel that no disk covers yet (leaf labels count from 0).
UNCOVERED = -1
#: Leaf labels are int32: painting moves half the bytes of int64 labels.
LABEL_DTYPE = np.int32
#: Block side of the coverage summary used to drop disks that land on covered regions.
BLOCK = 8


@_compiled
def paint_round(labels, height, width, base, r, cy, cx, use_blocks, kept):
    """Paint one round of disks onto the flat ``labels``; return ``(kept count, pixels painted)``.

    ``labels`` holds :data:`UNCOVERED` (-1) where no disk has landed yet. Disk ``k`` of the round
    (centre ``(cy[k], cx[k])``, radius ``r[k]``) is kept when its bounding box, clipped to the
    image, is not empty and, if ``use_blocks``, touches a ``BLOCK`` x ``BLOCK`` block that held
    an uncovered pixel when the round began (a conservative test: a dropped disk could not have
    painted anything). Kept disks get the labels ``base, base + 1, ...`` in draw order and their
    indices are written to ``kept``. A pixel ``(y, x)`` is covered when
    ``(y - cy)**2 + (x - cx)**2 <= r**2``; it takes the first kept disk that covers it, so
    painting in draw order and never overwriting is the minimum-label rule.
    """
    half_h = (height - 1) / 2.0
    half_w = (width - 1) / 2.0
    hb = (height + BLOCK - 1) // BLOCK
    wb = (width + BLOCK - 1) // BLOCK
    # Uncovered pixels per row (fully covered rows of a disk are skipped) and the summed-area
    # table of "this block has an uncovered pixel", both taken before painting.
    row_holes = np.zeros(height, dtype=np.int64)
    sat = np.zeros((hb + 1, wb + 1), dtype=np.int64)
    for y in range(height):
        row = y * width
        for x in range(width):
            if labels[row + x] < 0:
                row_holes[y] += 1
                sat[y // BLOCK + 1, x // BLOCK + 1] = 1
    if use_blocks:
        for i in range(1, hb + 1):
            for j in range(1, wb + 1):
                sat[i, j] += sat[i - 1, j] + sat[i, j - 1] - sat[i - 1, j - 1]
    n_kept = 0
    painted = 0
    for k in range(r.size):
        rk, cyk, cxk = r[k], cy[k], cx[k]
        # Cheap superset of the disks whose box meets the image (slack against rounding).
        if not (abs(cyk - half_h) - rk <= half_h + 1e-6 and abs(cxk - half_w) - rk <= half_w + 1e-6):
            continue
        y0 = int(max(math.ceil(cyk - rk), 0.0))
        y1 = int(min(math.floor(cyk + rk), height - 1.0))
        x0 = int(max(math.ceil(cxk - rk), 0.0))
        x1 = int(min(math.floor(cxk + rk), width - 1.0))
        if y0 > y1 or x0 > x1:
            continue
        if use_blocks:
            by0, by1 = y0 // BLOCK, y1 // BLOCK + 1
            bx0, bx1 = x0 // BLOCK, x1 // BLOCK + 1
            if sat[by1, bx1] - sat[by0, bx1] - sat[by1, bx0] + sat[by0, bx0] <= 0:
                continue
        label = base + n_kept
        kept[n_kept] = k
        n_kept += 1
        r2 = rk * rk
        for y in range(y0, y1 + 1):
            dy = y - cyk
            dy2 = dy * dy
            rest = r2 - dy2
            if rest < 0.0 or row_holes[y] == 0:  # dy2 > r2: no pixel of this row is inside
                continue
            # The row's chord, one pixel wider on each side; the exact test decides.
            half = math.sqrt(rest)
            xa = max(x0, int(math.floor(cxk - half)) - 1)
            xb = min(x1, int(math.ceil(cxk + half)) + 1)
            row = y * width
            for x in range(xa, xb + 1):
                if labels[row + x] < 0:
                    dx = x - cxk
                    if dy2 + dx * dx <= r2:
                        labels[row + x] = label
                        row_holes[y] -= 1
                        painted += 1
    return n_kept, painted


@_compiled
def shade(labels, colours, table):
    """``colours[l] * (table[l, 0] + table[l, 1] * y + table[l, 2] * x)`` per pixel, float32.

    Args:
        labels: ``(H, W)`` int64 leaf index per pixel.
        colours: ``(n, 3)`` float32 leaf colours.
        table: ``(n, 3)`` float32 shading ramp per leaf (offset, y slope, x slope).

    Returns:
        ``(H, W, 3)`` float32 image.
    """
    height, width = labels.shape
    img = np.empty((height, width, 3), dtype=np.float32)
    for y in range(height):
        fy = np.float32(y)
        for x in range(width):
            leaf = labels[y, x]
            ramp = table[leaf, 0] + table[leaf, 1] * fy + table[leaf, 2] * np.float32(x)
            for c in range(3):
                img[y, x, c] = colours[leaf, c] * ramp
    return img


@_compiled
def blur_rows(src, taps):
    """Symmetric-boundary blur along axis 0 of a float32 ``(H, M)`` array.

    ``out[y] = src[y] * taps[0] + sum_j (src[y - j] + src[y + j]) * taps[j]``, summed in that
    order; indices past an edge mirror with the edge repeated (numpy ``symmetric`` padding).
    Needs ``len(taps) - 1 < H``.
    """
    height, m = src.shape
    radius = taps.size - 1
    out = np.empty_like(src)
    for y in range(height):
        o = out[y]
        centre = src[y]
        t0 = taps[0]
        for i in range(m):
            o[i] = centre[i] * t0
        for j in range(1, radius + 1):
            a = y - j if y >= j else j - y - 1
            b = y + j if y + j < height else 2 * height - y - j - 1
            above, below, tj = src[a], src[b], taps[j]
            for i in range(m):
                o[i] = o[i] + (above[i] + below[i]) * tj
    return out


@_compiled
def blur_columns(src, taps):
    """:func:`blur_rows` along axis 1 of a float32 ``(H, W, C)`` array (needs ``len(taps) - 1 < W``)."""
    height, width, ch = src.shape
    radius = taps.size - 1
    m = width * ch
    base = radius * ch
    rows = src.reshape(height, m)
    out = np.empty((height, m), dtype=np.float32)
    padded = np.empty(m + 2 * base, dtype=np.float32)  # one row with mirrored margins
    for y in range(height):
        for i in range(m):
            padded[base + i] = rows[y, i]
        for j in range(1, radius + 1):
            for c in range(ch):
                padded[base - j * ch + c] = padded[base + (j - 1) * ch + c]
                padded[base + m + (j - 1) * ch + c] = padded[base + m - j * ch + c]
        o = out[y]
        t0 = taps[0]
        for i in range(m):
            o[i] = padded[base + i] * t0
        for j in range(1, radius + 1):
            left, right, tj = base - j * ch, base + j * ch, taps[j]
            for i in range(m):
                o[i] = o[i] + (padded[left + i] + padded[right + i]) * tj
    return out.reshape(height, width, ch)
