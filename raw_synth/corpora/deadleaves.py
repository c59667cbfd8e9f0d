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

Speed: the random draws are numpy's (so a seed's image is fixed), and the loops that paint the
disks, shade the leaves and blur run compiled (:mod:`raw_synth.corpora._deadleaves_kernels`,
numba): about 8 ms for 256x256 on one core.

Example:
    >>> img = dead_leaves(64, 96, seed=0)
    >>> img.shape, img.dtype
    ((64, 96, 3), dtype('float32'))
"""

from __future__ import annotations

import logging
import math

import numpy as np

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

# Disks drawn per round (between these bounds, one per 16 pixels).
_CHUNK_MIN = 16384
_CHUNK_MAX = 1 << 20


def _as_generator(seed: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise RawSynthError(
            f"seed: must be a non-negative int or a numpy Generator, got {seed!r}"
        )
    return np.random.default_rng(int(seed))


def _uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    """``rng.uniform(low, high, n)``, the same numbers (numpy computes ``low + (high - low) * u``)
    a third faster, without its broadcasting machinery."""
    u = rng.random(n)
    u *= high - low
    u += low
    return u


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


def _leaf_labels(
    height: int, width: int, rng: np.random.Generator, rmin: float, rmax: float, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Label map of the visible (first-fallen) leaf at every pixel.

    Disk centres are uniform over the image grown by ``rmax`` on every side, so every disk that
    can touch the image is possible. Pixel ``(y, x)`` is covered when its centre lies inside the
    disk, ``(y - cy)**2 + (x - cx)**2 <= r**2``. Disks fall in rounds of ``chunk``; each pixel
    takes the first disk that covers it, and rounds continue until no pixel is left uncovered.
    Disks that cannot reach an uncovered pixel (outside the image or, once half the image is
    covered, over blocks with no hole left) change nothing and are dropped; the others are kept
    and numbered in draw order (:func:`~raw_synth.corpora._deadleaves_kernels.paint_round`).

    Returns:
        labels ``(H, W)`` int32 indices into the three returned per-leaf arrays ``cy, cx, r``
        (float64, one entry per kept disk).

    Raises:
        RawSynthError: More leaves than int32 labels can number (an image of billions of pixels).
    """
    from raw_synth.corpora._deadleaves_kernels import LABEL_DTYPE, UNCOVERED, paint_round

    labels = np.full(height * width, UNCOVERED, dtype=LABEL_DTYPE)
    uncovered = height * width
    all_cy: list[np.ndarray] = []
    all_cx: list[np.ndarray] = []
    all_r: list[np.ndarray] = []
    base = 0
    rounds = 0
    chunk = int(np.clip(height * width // 16, _CHUNK_MIN, _CHUNK_MAX))
    kept = np.empty(chunk, dtype=np.int64)
    while uncovered > 0:
        rounds += 1
        r = _power_law(rng, chunk, rmin, rmax, alpha)
        cy = _uniform(rng, -rmax, height - 1 + rmax, chunk)
        cx = _uniform(rng, -rmax, width - 1 + rmax, chunk)
        use_blocks = uncovered < height * width // 2
        if base + chunk > np.iinfo(LABEL_DTYPE).max:
            raise RawSynthError(f"dead leaves {height}x{width}: more leaves than int32 labels can number")
        n_kept, painted = paint_round(labels, height, width, base, r, cy, cx, use_blocks, kept)
        index = kept[:n_kept]
        all_cy.append(cy[index])
        all_cx.append(cx[index])
        all_r.append(r[index])
        uncovered -= painted
        base += n_kept
    logger.debug("dead leaves %dx%d: %d disks in %d rounds", height, width, base, rounds)
    return (
        labels.reshape(height, width),
        np.concatenate(all_cy),
        np.concatenate(all_cx),
        np.concatenate(all_r),
    )


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
    from raw_synth.corpora._deadleaves_kernels import shade

    labels, cy, cx, r = _leaf_labels(height, width, rng, float(rmin), float(rmax), float(alpha))
    n = r.size
    colours = _leaf_colours(rng, n)
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    strength = shading * rng.random(n)
    gy, gx = strength * np.sin(angle) / r, strength * np.cos(angle) / r

    # Per-pixel shading ramp 1 + g . (p - c), in float32 (ample for values near 1): one table row
    # per leaf, (offset, gy, gx), looked up per pixel, times the leaf's colour.
    table = np.empty((n, 3), dtype=np.float32)
    table[:, 0] = 1.0 - gy * cy - gx * cx
    table[:, 1] = gy
    table[:, 2] = gx
    img = shade(labels, colours.astype(np.float32), table)
    if blur_sigma > 0:
        img = _gaussian_blur(img, float(blur_sigma))
    return np.clip(img, 0.0, 1.0, out=img)


#: Largest kernel radius that :func:`_gaussian_blur` sums by hand (sigma up to 1.5).
_BLUR_MAX_RADIUS = 6


def _gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(img, (sigma, sigma, 0), mode="reflect")`` for float32 ``(H, W, 3)``.

    The same kernel (``truncate=4``, radius ``int(4 sigma + 0.5)``) and boundary (scipy's
    ``reflect`` mirrors with the edge repeated), summed in float32 by two compiled passes: within
    3e-7 of scipy and several times faster for the default sigma of 0.5, whose 5-tap kernel
    leaves scipy's per-line overhead dominant. Wide kernels and images smaller than the kernel go
    to scipy. The input is not modified.
    """
    radius = int(4.0 * sigma + 0.5)
    height, width, channels = img.shape
    if radius > _BLUR_MAX_RADIUS or radius >= min(height, width):
        from scipy import ndimage  # here, not at the top: only wide kernels and tiny images need scipy

        return ndimage.gaussian_filter(img, sigma=(sigma, sigma, 0.0), mode="reflect")
    if radius == 0:
        return img
    from raw_synth.corpora._deadleaves_kernels import blur_columns, blur_rows

    taps = np.exp(-0.5 * (np.arange(radius + 1) / sigma) ** 2)
    taps = (taps / (2.0 * taps.sum() - taps[0])).astype(np.float32)  # normalised over -radius..radius
    src = np.ascontiguousarray(img, dtype=np.float32)
    rows = blur_rows(src.reshape(height, width * channels), taps)
    return blur_columns(rows.reshape(height, width, channels), taps)
