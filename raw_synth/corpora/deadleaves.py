"""Procedural dead-leaves images: seeded, any size, with natural-image statistics.

The dead-leaves model (Matheron; Lee, Mumford & Huang 2001) drops opaque disks one after another
onto the image plane; the first disk to land on a pixel hides everything that falls later. With
disk radii drawn from a power law ``p(r) ~ r**-3`` between ``rmin`` and ``rmax`` the image is
scale invariant, so its power spectrum falls close to ``1 / f**2`` like that of natural photos,
and it has sharp occluding edges, flat regions and T-junctions at every scale. That makes it a
license-free stand-in for photographs when training or testing denoisers (Achddou et al. 2021,
"Synthetic images as a regularity prior for image restoration neural networks").

Each leaf gets a colour from a simple natural-colour model and a gentle linear shading ramp; an
optional Gaussian blur softens the pixel-sharp edges like a lens would.

Colour model: luminance ``L ~ Beta(1.4, 2.3)`` (mean 0.38, standard deviation 0.22, the values
measured on the bundled sample photographs); chroma is Gaussian in two opponent axes around
grey, red-green with standard deviation 0.25 and yellow-blue 0.35 (relative to ``L``), so colours
are grey on average with mostly moderate saturation. ``RGB = L * (1 + chroma mix)``, clipped to
[0, 1].

Example:
    >>> img = dead_leaves(64, 96, seed=0)
    >>> img.shape, img.dtype
    ((64, 96, 3), dtype('float32'))
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import ndimage

from raw_synth.errors import RawSynthError

__all__ = ["dead_leaves", "DEFAULT_RMIN", "DEFAULT_ALPHA"]

logger = logging.getLogger(__name__)

#: Smallest leaf radius in pixels.
DEFAULT_RMIN: float = 1.0
#: Exponent of the radius law ``p(r) ~ r**-alpha``; 3 gives scale invariance.
DEFAULT_ALPHA: float = 3.0

_LUMA_BETA = (1.4, 2.3)
_CHROMA_SD_RG = 0.25
_CHROMA_SD_YB = 0.35

# Disks drawn per round (between these bounds, one per 16 pixels), and the most (pixel, disk)
# candidate pairs built at once.
_CHUNK_MIN = 16384
_CHUNK_MAX = 1 << 20
_PAIR_BUDGET = 1 << 21
# Block side of the coverage summary used to drop disks that land on covered regions.
_BLOCK = 8
# Label of a pixel that no disk covers yet (larger than every leaf index).
_UNCOVERED = np.iinfo(np.int64).max
# Square stencil sides for the vectorised painting of small disks; a disk whose clipped bounding
# box is wider or taller than the last one is painted on its own box.
_STENCILS = np.array([2, 3, 4, 6, 8, 12, 16, 24, 32])


def _as_generator(seed: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise RawSynthError(
            f"seed: must be a non-negative int or a numpy Generator, got {seed!r}"
        )
    return np.random.default_rng(int(seed))


def _power_law(
    rng: np.random.Generator, n: int, rmin: float, rmax: float, alpha: float
) -> np.ndarray:
    """Radii with density proportional to ``r**-alpha`` on [rmin, rmax] (inverse CDF)."""
    u = rng.random(n)
    if rmax == rmin:
        return np.full(n, rmin)
    if alpha == 1.0:
        return rmin * (rmax / rmin) ** u
    e = 1.0 - alpha
    lo, hi = rmin**e, rmax**e
    base = lo + u * (hi - lo)
    if e == -2.0:  # the scale-invariant default: base ** -0.5, 15x faster than np.power
        return np.reciprocal(np.sqrt(base, out=base), out=base)
    return base ** (1.0 / e)


def _uncovered_boxes(holes: np.ndarray, height: int, width: int, y0, y1, x0, x1) -> np.ndarray:
    """True for the boxes that still hold an uncovered pixel (block-level, conservative).

    ``holes`` are the flat indices of the uncovered pixels. They are marked per ``_BLOCK`` x
    ``_BLOCK`` block; a summed-area table of those marks answers every box at once. A box is
    kept when any block it touches has a hole.
    """
    hb, wb = -(-height // _BLOCK), -(-width // _BLOCK)
    rows = holes // width
    marks = np.zeros(hb * wb, dtype=np.int64)
    marks[(rows // _BLOCK) * wb + (holes - rows * width) // _BLOCK] = 1
    sat = np.zeros((hb + 1, wb + 1), dtype=np.int64)
    sat[1:, 1:] = marks.reshape(hb, wb).cumsum(0).cumsum(1)
    by0, by1, bx0, bx1 = y0 // _BLOCK, y1 // _BLOCK + 1, x0 // _BLOCK, x1 // _BLOCK + 1
    return (sat[by1, bx1] - sat[by0, bx1] - sat[by1, bx0] + sat[by0, bx0]) > 0


def _leaf_labels(
    height: int, width: int, rng: np.random.Generator, rmin: float, rmax: float, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Label map of the visible (first-fallen) leaf at every pixel.

    Disk centres are uniform over the image grown by ``rmax`` on every side, so every disk that
    can touch the image is possible. Pixel ``(y, x)`` is covered when its centre lies inside the
    disk, ``(y - cy)**2 + (x - cx)**2 <= r**2``. Disks fall in rounds of ``chunk``; each pixel
    takes the first disk that covers it (the smallest leaf index: painting takes the minimum, so
    the disks of a round may be painted in any order), and rounds continue until no pixel is left
    uncovered. Disks that cannot reach an uncovered pixel (outside the image, or over already
    covered blocks) change nothing and are dropped early.

    Returns:
        labels ``(H, W)`` int64 indices into the three returned per-leaf arrays ``cy, cx, r``
        (float64, one entry per kept disk).
    """
    labels = np.full(height * width, _UNCOVERED, dtype=np.int64)
    grid = labels.reshape(height, width)
    uncovered = height * width
    holes = np.arange(height * width)  # flat indices of the uncovered pixels, ascending
    all_cy: list[np.ndarray] = []
    all_cx: list[np.ndarray] = []
    all_r: list[np.ndarray] = []
    base = 0
    rounds = 0
    chunk = int(np.clip(height * width // 16, _CHUNK_MIN, _CHUNK_MAX))
    half_h, half_w = (height - 1) / 2.0, (width - 1) / 2.0
    while uncovered > 0:
        rounds += 1
        r = _power_law(rng, chunk, rmin, rmax, alpha)
        cy = rng.uniform(-rmax, height - 1 + rmax, chunk)
        cx = rng.uniform(-rmax, width - 1 + rmax, chunk)
        # Cheap superset of the disks whose box meets the image (slack against rounding), then
        # the exact boxes of those only.
        near = np.abs(cy - half_h) - r <= half_h + 1e-6
        near &= np.abs(cx - half_w) - r <= half_w + 1e-6
        near = np.flatnonzero(near)
        r, cy, cx = r[near], cy[near], cx[near]
        y0 = np.maximum(np.ceil(cy - r), 0).astype(np.int64)
        y1 = np.minimum(np.floor(cy + r), height - 1).astype(np.int64)
        x0 = np.maximum(np.ceil(cx - r), 0).astype(np.int64)
        x1 = np.minimum(np.floor(cx + r), width - 1).astype(np.int64)
        keep = (y0 <= y1) & (x0 <= x1)
        if uncovered < height * width // 2:
            keep[keep] = _uncovered_boxes(holes, height, width, y0[keep], y1[keep], x0[keep], x1[keep])
        keep = np.flatnonzero(keep)
        r, cy, cx, y0, y1, x0, x1 = (a[keep] for a in (r, cy, cx, y0, y1, x0, x1))
        all_cy.append(cy)
        all_cx.append(cx)
        all_r.append(r)
        if uncovered < height * width // 2:
            # Few holes left: visit only the uncovered pixels inside each disk's box.
            _paint_holes(labels, width, holes, base, cy, cx, r, y0, y1, x0, x1)
        else:
            _paint_disks(grid, base, cy, cx, r, y0, y1, x0, x1)
        holes = np.flatnonzero(labels == _UNCOVERED)
        uncovered = int(holes.size)
        base += r.size
    logger.debug("dead leaves %dx%d: %d disks in %d rounds", height, width, base, rounds)
    return grid, np.concatenate(all_cy), np.concatenate(all_cx), np.concatenate(all_r)


def _paint_holes(
    labels: np.ndarray,
    width: int,
    holes: np.ndarray,
    base: int,
    cy: np.ndarray,
    cx: np.ndarray,
    r: np.ndarray,
    y0: np.ndarray,
    y1: np.ndarray,
    x0: np.ndarray,
    x1: np.ndarray,
) -> None:
    """Like :func:`_paint_disks`, but only for the uncovered pixels ``holes`` (flat, ascending).

    Every box row of every disk looks up its stretch of holes with a binary search, so the work
    is the number of box rows plus the holes inside the boxes, not the box areas: once most of
    the image is covered this is far less. Disks are taken in runs of at most ``_PAIR_BUDGET``
    box rows, and rows in batches of at most ``_PAIR_BUDGET`` (pixel, disk) candidates.
    """
    rows = y1 - y0 + 1
    row_ends = np.cumsum(rows)
    first_disk = 0
    while first_disk < r.size:
        done = int(row_ends[first_disk - 1]) if first_disk else 0
        stop_disk = max(first_disk + 1, int(np.searchsorted(row_ends, done + _PAIR_BUDGET, side="right")))
        _paint_holes_run(labels, width, holes, base, first_disk, stop_disk, cy, cx, r, y0, rows, x0, x1)
        first_disk = stop_disk


def _paint_holes_run(
    labels: np.ndarray,
    width: int,
    holes: np.ndarray,
    base: int,
    start: int,
    stop: int,
    cy: np.ndarray,
    cx: np.ndarray,
    r: np.ndarray,
    y0: np.ndarray,
    rows: np.ndarray,
    x0: np.ndarray,
    x1: np.ndarray,
) -> None:
    """:func:`_paint_holes` for disks ``start:stop``."""
    n_rows = rows[start:stop]
    row_disk = np.repeat(np.arange(start, stop), n_rows)
    row_y = y0[row_disk] + (np.arange(row_disk.size) - np.repeat(np.cumsum(n_rows) - n_rows, n_rows))
    row_start = row_y * width
    lo = np.searchsorted(holes, row_start + x0[row_disk])
    hi = np.searchsorted(holes, row_start + x1[row_disk], side="right")
    count = hi - lo
    ends = np.cumsum(count)
    first = 0
    while first < row_disk.size:
        # Rows first..stop hold at most _PAIR_BUDGET candidates (always at least one row).
        done = int(ends[first - 1]) if first else 0
        last = max(first + 1, int(np.searchsorted(ends, done + _PAIR_BUDGET, side="right")))
        n = count[first:last]
        pair_row = np.repeat(np.arange(first, last), n)
        if pair_row.size:
            pix = holes[lo[pair_row] + (np.arange(pair_row.size) - np.repeat(np.cumsum(n) - n, n))]
            disk = row_disk[pair_row]
            dy2 = (row_y[pair_row] - cy[disk]) ** 2
            inside = dy2 + (pix - row_start[pair_row] - cx[disk]) ** 2 <= r[disk] * r[disk]
            np.minimum.at(labels, pix[inside], base + disk[inside])
        first = last


def _paint_disks(
    grid: np.ndarray,
    base: int,
    cy: np.ndarray,
    cx: np.ndarray,
    r: np.ndarray,
    y0: np.ndarray,
    y1: np.ndarray,
    x0: np.ndarray,
    x1: np.ndarray,
) -> None:
    """Paint disks ``k`` (label ``base + k``) onto ``grid`` in place, keeping the smaller label.

    ``(y0, y1, x0, x1)`` is each disk's bounding box clipped to the grid (inclusive, non-empty).
    Disks are grouped by box side: small ones (most of them, the radius law favours them) are
    tested on a shared ``S x S`` stencil, all disks of a group at once, and scattered with
    ``np.minimum.at``; large ones are painted one by one on their own box. Either way the cost
    is about the sum of the box areas.
    """
    height, width = grid.shape
    labels = grid.reshape(-1)
    side = np.maximum(y1 - y0, x1 - x0) + 1
    group = np.searchsorted(_STENCILS, side)  # index of the smallest stencil >= side
    order = np.argsort(group, kind="stable")  # disks of one group become one slice
    group = group[order]
    bounds = np.flatnonzero(np.diff(group)) + 1
    starts = [0, *bounds.tolist()]
    stops = [*bounds.tolist(), group.size]
    label = base + order
    cy, cx, r2, y0, y1, x0, x1 = (a[order] for a in (cy, cx, r * r, y0, y1, x0, x1))
    small = _PAIR_BUDGET // 4
    for start, stop in zip(starts, stops):
        g = int(group[start])
        if g >= _STENCILS.size or int(_STENCILS[g]) ** 2 > small:
            for k in range(start, stop):
                ys = np.arange(y0[k], y1[k] + 1, dtype=np.float64)
                xs = np.arange(x0[k], x1[k] + 1, dtype=np.float64)
                inside = ((ys - cy[k]) ** 2)[:, None] + ((xs - cx[k]) ** 2)[None, :] <= r2[k]
                box = grid[y0[k] : y1[k] + 1, x0[k] : x1[k] + 1]
                np.minimum(box, label[k], out=box, where=inside)
            continue
        size = int(_STENCILS[g])
        offsets = np.arange(size)
        step = max(1, _PAIR_BUDGET // (size * size))
        for first in range(start, stop, step):
            k = slice(first, min(first + step, stop))
            ys = y0[k, None] + offsets  # (m, S) rows of each disk's stencil
            xs = x0[k, None] + offsets
            dy2 = (ys - cy[k, None]) ** 2
            dx2 = (xs - cx[k, None]) ** 2
            dy2[ys > y1[k, None]] = np.inf  # stencil rows/columns past the box never count
            dx2[xs > x1[k, None]] = np.inf
            inside = dy2[:, :, None] + dx2[:, None, :] <= r2[k, None, None]  # (m, S, S)
            pix = (ys * width)[:, :, None] + xs[:, None, :]
            ids = np.broadcast_to(label[k, None, None], inside.shape)
            np.minimum.at(labels, pix[inside], ids[inside])


def _leaf_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """Natural-looking leaf colours, (n, 3) float64, see the module docstring."""
    luma = rng.beta(*_LUMA_BETA, size=n)
    rg = rng.normal(0.0, _CHROMA_SD_RG, n)
    yb = rng.normal(0.0, _CHROMA_SD_YB, n)
    mix = np.stack([rg / 2 + yb / 3, -rg / 2 + yb / 3, -2 * yb / 3], axis=1)
    return np.clip(luma[:, None] * (1.0 + mix), 0.0, 1.0)


def dead_leaves(
    height: int,
    width: int,
    seed: int | np.random.Generator,
    *,
    rmin: float = DEFAULT_RMIN,
    rmax: float | None = None,
    alpha: float = DEFAULT_ALPHA,
    shading: float = 0.2,
    blur_sigma: float = 0.5,
) -> np.ndarray:
    """Render one dead-leaves colour image.

    Args:
        height: image height in pixels, >= 1 (any value, odd included).
        width: image width in pixels, >= 1.
        seed: a non-negative int (same int, same image, on every platform numpy supports) or a
            ``numpy.random.Generator``, which is advanced.
        rmin: smallest disk radius in pixels, > 0.
        rmax: largest disk radius in pixels; default ``max(rmin, max(height, width) / 2)``.
        alpha: radius law exponent, ``p(r) ~ r**-alpha``; 3 (default) is scale invariant.
        shading: strength of a random linear brightness ramp across each leaf: the leaf's
            colour is scaled by up to ``1 +/- shading`` at its rim. 0 gives flat leaves.
        blur_sigma: standard deviation in pixels of a final Gaussian blur (0 for none).

    Returns:
        ``(height, width, 3)`` float32 RGB in [0, 1].

    Raises:
        RawSynthError: a non-positive size, bad radii, a negative shading or blur, or a bad seed.
    """
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise RawSynthError(f"{name}: must be a positive int, got {value!r}")
    height, width = int(height), int(width)
    if not (math.isfinite(rmin) and rmin > 0):
        raise RawSynthError(f"rmin: must be a positive number of pixels, got {rmin!r}")
    if rmax is None:
        rmax = max(float(rmin), max(height, width) / 2.0)
    if not (math.isfinite(rmax) and rmax >= rmin):
        raise RawSynthError(f"rmax: must be a number >= rmin ({rmin}), got {rmax!r}")
    if not math.isfinite(alpha):
        raise RawSynthError(f"alpha: must be a finite number, got {alpha!r}")
    if not (shading >= 0 and math.isfinite(shading)):
        raise RawSynthError(f"shading: must be >= 0, got {shading!r}")
    if not (blur_sigma >= 0 and math.isfinite(blur_sigma)):
        raise RawSynthError(f"blur_sigma: must be >= 0, got {blur_sigma!r}")
    rng = _as_generator(seed)

    labels, cy, cx, r = _leaf_labels(height, width, rng, float(rmin), float(rmax), float(alpha))
    n = r.size
    colours = _leaf_colours(rng, n)
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    strength = shading * rng.random(n)
    gy, gx = strength * np.sin(angle) / r, strength * np.cos(angle) / r

    # Per-pixel shading ramp: 1 + g . (p - c); float32 is ample for values near 1. One table
    # row per leaf (offset, gy, gx), looked up once per pixel, then the colours.
    table = np.empty((n, 3), dtype=np.float32)
    table[:, 0] = 1.0 - gy * cy - gx * cx
    table[:, 1] = gy
    table[:, 2] = gx
    leaf = np.take(table, labels, axis=0)  # (H, W, 3)
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    ramp = leaf[..., 0] + leaf[..., 1] * ys + leaf[..., 2] * xs
    del leaf
    img = np.take(colours.astype(np.float32), labels, axis=0)  # (H, W, 3)
    img *= ramp[..., None]
    if blur_sigma > 0:
        img = _gaussian_blur(img, float(blur_sigma))
    return np.clip(img, 0.0, 1.0, out=img)


#: Largest kernel radius that :func:`_gaussian_blur` sums by hand (sigma up to 1.5).
_BLUR_MAX_RADIUS = 6


def _gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(img, (sigma, sigma, 0), mode="reflect")`` for float32 ``(H, W, 3)``.

    The same kernel (``truncate=4``, radius ``int(4 sigma + 0.5)``) and boundary (scipy's
    ``reflect`` is numpy's ``symmetric`` padding), summed in float32 with shifted slices: within
    3e-7 of scipy, and 2.4x faster for the default sigma of 0.5 (0.7 vs 1.7 ms at 256x256), whose
    5-tap kernel leaves scipy's per-line overhead dominant. Wide kernels and images smaller than
    the kernel go to scipy.
    """
    radius = int(4.0 * sigma + 0.5)
    height, width = img.shape[:2]
    if radius > _BLUR_MAX_RADIUS or radius >= min(height, width):
        return ndimage.gaussian_filter(img, sigma=(sigma, sigma, 0.0), mode="reflect")
    if radius == 0:
        return img
    taps = np.exp(-0.5 * (np.arange(radius + 1) / sigma) ** 2)
    taps = (taps / (2.0 * taps.sum() - taps[0])).astype(np.float32)  # normalised over -radius..radius
    for axis, size in ((0, height), (1, width)):
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(img, pad, mode="symmetric")

        def shifted(offset: int, padded: np.ndarray = padded, axis: int = axis, size: int = size) -> np.ndarray:
            return padded[(slice(None),) * axis + (slice(radius + offset, radius + offset + size),)]

        out = shifted(0) * taps[0]
        for j in range(1, radius + 1):
            out += (shifted(-j) + shifted(j)) * taps[j]
        img = out
    return img
