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
    return (lo + u * (hi - lo)) ** (1.0 / e)


def _uncovered_boxes(grid: np.ndarray, y0, y1, x0, x1) -> np.ndarray:
    """True for the boxes that still hold an uncovered pixel (block-level, conservative).

    Uncovered pixels are counted per ``_BLOCK`` x ``_BLOCK`` block; a summed-area table of those
    counts answers every box at once. A box is kept when any block it touches has a hole.
    """
    height, width = grid.shape
    hb, wb = -(-height // _BLOCK), -(-width // _BLOCK)
    holes = np.zeros((hb * _BLOCK, wb * _BLOCK), dtype=bool)
    holes[:height, :width] = grid < 0
    # Reduce rows first (contiguous, fast), then columns.
    rows = holes.reshape(hb, _BLOCK, wb * _BLOCK).any(axis=1)
    counts = rows.reshape(hb, wb, _BLOCK).any(axis=2).astype(np.int64)
    sat = np.zeros((hb + 1, wb + 1), dtype=np.int64)
    sat[1:, 1:] = counts.cumsum(0).cumsum(1)
    by0, by1, bx0, bx1 = y0 // _BLOCK, y1 // _BLOCK + 1, x0 // _BLOCK, x1 // _BLOCK + 1
    return (sat[by1, bx1] - sat[by0, bx1] - sat[by1, bx0] + sat[by0, bx0]) > 0


def _leaf_labels(
    height: int, width: int, rng: np.random.Generator, rmin: float, rmax: float, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Label map of the visible (first-fallen) leaf at every pixel.

    Disk centres are uniform over the image grown by ``rmax`` on every side, so every disk that
    can touch the image is possible. Pixel ``(y, x)`` is covered when its centre lies inside the
    disk. Disks fall in rounds of ``chunk``; each pixel takes the first disk that covers it, and
    rounds continue until no pixel is left uncovered. Disks that cannot reach an uncovered pixel
    (outside the image, or over already covered blocks) change nothing and are dropped early.

    Returns:
        labels ``(H, W)`` int64 indices into the three returned per-leaf arrays ``cy, cx, r``
        (float64, one entry per kept disk).
    """
    labels = np.full(height * width, -1, dtype=np.int64)
    grid = labels.reshape(height, width)
    uncovered = height * width
    all_cy: list[np.ndarray] = []
    all_cx: list[np.ndarray] = []
    all_r: list[np.ndarray] = []
    base = 0
    rounds = 0
    chunk = int(np.clip(height * width // 16, _CHUNK_MIN, _CHUNK_MAX))
    while uncovered > 0:
        rounds += 1
        r = _power_law(rng, chunk, rmin, rmax, alpha)
        cy = rng.uniform(-rmax, height - 1 + rmax, chunk)
        cx = rng.uniform(-rmax, width - 1 + rmax, chunk)
        y0 = np.maximum(np.ceil(cy - r), 0).astype(np.int64)
        y1 = np.minimum(np.floor(cy + r), height - 1).astype(np.int64)
        x0 = np.maximum(np.ceil(cx - r), 0).astype(np.int64)
        x1 = np.minimum(np.floor(cx + r), width - 1).astype(np.int64)
        keep = (y0 <= y1) & (x0 <= x1)
        if uncovered < height * width // 2:
            keep[keep] = _uncovered_boxes(grid, y0[keep], y1[keep], x0[keep], x1[keep])
        r, cy, cx, y0, y1, x0, x1 = (a[keep] for a in (r, cy, cx, y0, y1, x0, x1))
        n = r.size
        all_cy.append(cy)
        all_cx.append(cx)
        all_r.append(r)
        area = (y1 - y0 + 1) * (x1 - x0 + 1)  # box area, an upper bound on covered pixels
        start = 0
        while start < n and uncovered > 0:
            if area[start] > _PAIR_BUDGET // 4:  # larger than a quarter of the pair budget
                # One large disk: paint its box directly.
                ys = np.arange(y0[start], y1[start] + 1, dtype=np.float64)[:, None]
                xs = np.arange(x0[start], x1[start] + 1, dtype=np.float64)[None, :]
                inside = (ys - cy[start]) ** 2 + (xs - cx[start]) ** 2 <= r[start] ** 2
                box = grid[y0[start] : y1[start] + 1, x0[start] : x1[start] + 1]
                fresh = inside & (box < 0)
                box[fresh] = base + start
                uncovered -= int(fresh.sum())
                start += 1
                continue
            # A run of small disks, in falling order, whose boxes hold <= _PAIR_BUDGET pixels.
            stop = start + 1
            total = int(area[start])
            small = _PAIR_BUDGET // 4
            while stop < n and area[stop] <= small and total + area[stop] <= _PAIR_BUDGET:
                total += int(area[stop])
                stop += 1
            uncovered -= _paint_run(labels, width, base, start, stop, cy, cx, r, y0, y1)
            start = stop
        base += n
    logger.debug("dead leaves %dx%d: %d disks in %d rounds", height, width, base, rounds)
    return grid, np.concatenate(all_cy), np.concatenate(all_cx), np.concatenate(all_r)


def _paint_run(
    labels: np.ndarray,
    width: int,
    base: int,
    start: int,
    stop: int,
    cy: np.ndarray,
    cx: np.ndarray,
    r: np.ndarray,
    y0: np.ndarray,
    y1: np.ndarray,
) -> int:
    """Give the still uncovered pixels of disks ``start:stop`` their first disk; return the count.

    Each disk is cut into row spans (``|x - cx| <= sqrt(r^2 - (y - cy)^2)``), the spans into
    pixels, all as flat arrays in falling order, so a pixel's first entry is its top leaf.
    """
    disk = np.arange(start, stop)
    rows = y1[start:stop] - y0[start:stop] + 1
    row_disk = np.repeat(disk, rows)
    row_local = np.arange(row_disk.size) - np.repeat(np.cumsum(rows) - rows, rows)
    y = y0[row_disk] + row_local
    half = np.sqrt(np.maximum(r[row_disk] ** 2 - (y - cy[row_disk]) ** 2, 0.0))
    xa = np.maximum(np.ceil(cx[row_disk] - half), 0).astype(np.int64)
    xb = np.minimum(np.floor(cx[row_disk] + half), width - 1).astype(np.int64)
    span = np.maximum(xb - xa + 1, 0)
    pix_row = np.repeat(np.arange(row_disk.size), span)
    pix = (
        (y * width + xa)[pix_row]
        + np.arange(pix_row.size)
        - np.repeat(np.cumsum(span) - span, span)
    )
    pix_disk = row_disk[pix_row]
    fresh = labels[pix] < 0
    pix, pix_disk = pix[fresh], pix_disk[fresh]
    first_pix, first = np.unique(pix, return_index=True)
    labels[first_pix] = base + pix_disk[first]
    return int(first_pix.size)


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

    # Per-pixel shading ramp: 1 + g . (p - c); float32 is ample for values near 1.
    offset = (1.0 - gy * cy - gx * cx).astype(np.float32)
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    ramp = offset[labels] + gy.astype(np.float32)[labels] * ys + gx.astype(np.float32)[labels] * xs
    img = colours.astype(np.float32)[labels] * ramp[..., None]
    if blur_sigma > 0:
        img = ndimage.gaussian_filter(img, sigma=(blur_sigma, blur_sigma, 0.0), mode="reflect")
    return np.clip(img, 0.0, 1.0).astype(np.float32)
