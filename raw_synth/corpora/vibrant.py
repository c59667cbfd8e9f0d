"""VibrantLeaves: procedural images with the statistics of photographs, seeded, any size.

Plain dead leaves (:mod:`raw_synth.corpora.deadleaves`) get the scale invariance and the
occlusions of natural images right, but every leaf is flat: a denoiser trained on them learns
that the world is piecewise constant. VibrantLeaves (Achddou, Gousseau, Ladjal & Suesstrunk 2025,
"VibrantLeaves: a principled parametric image generator for training deep restoration models",
arXiv:2504.10201) keeps the dead-leaves occlusion model and adds the three things it lacks:
geometry, texture and image acquisition. This module is an independent, speed-minded
implementation of those principles:

Geometry
    Leaves are rotated disks, ellipses, rectangles and regular polygons (3 to 8 sides, squashed
    by a random aspect ratio), with bounding radii drawn from ``p(r) ~ r**-alpha`` (``alpha = 3``
    is scale invariant) and piled up until the image is covered; the first leaf to fall on a
    pixel hides the later ones.
Texture
    Each leaf mixes two colours ``A`` and ``B`` along a pattern ``t`` in [0, 1]: flat, a linear
    or radial colour gradient, a sinusoidal grating (soft or, with high contrast, striped), or a
    band-limited fractal noise texture (amplitude spectrum ``1 / f**beta``, ``beta`` drawn per
    image), possibly stretched along a random axis. Most leaves also carry a faint fine-grained
    noise texture and a shading ramp. ``B`` is usually ``A`` in another brightness (one material
    in light and shadow), sometimes an unrelated colour.
Colour
    Luminance from a Kumaraswamy law within 0.003 of ``Beta(1.4, 2.3)`` (the statistics of the
    bundled sample photos, as in dead leaves) and Gaussian opponent chroma, around a per-image
    colour cast and with a per-image saturation, so whole images can be muted or colourful; a
    per-image tone exponent varies the contrast.
Acquisition
    Two depth planes: a fully covered far plane and a near plane of bigger leaves that covers a
    random part of it. One of them may be out of focus (a Gaussian defocus blur of a few
    pixels; the near plane's edges blur with it). The scene is lit by a smooth illumination
    gradient with vignetting, and seen through a mild lens PSF (a Gaussian of 0.35 to 0.75
    pixels) that softens the staircase of the point-sampled leaf edges; the leaves are not
    supersampled, which would cost four times the painting. The noise texture is band-limited
    (a periodic 128x128 field at most, sampled at 1 to 4x magnification) and gratings have
    periods of at least three pixels, so textures do not alias.

The output is ``(H, W, 3)`` float32 sRGB in [0, 1]. Everything random comes from the seed: the
per-image choices and the look of each leaf are numpy draws, and the leaves' positions, sizes
and shapes are drawn inside the compiled painter from a splitmix64 stream that numpy seeds
(:mod:`raw_synth.corpora._vibrant_kernels`, where all per-pixel loops run).

Speed: about twice dead leaves, 11-13 ms of CPU for 256x256 on one core of the 2-core VM
(``benchmarks/RESULTS.md``, "Procedural corpus: vibrant"); most of it is piling up the leaves of
the far plane.

Example:
    >>> img = vibrant_leaves((64, 96), seed=0)
    >>> img.shape, img.dtype
    ((64, 96, 3), dtype('float32'))
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import numpy as np

from raw_synth.corpora import _vibrant_kernels as K
from raw_synth.errors import RawSynthError

__all__ = ["VibrantParams", "vibrant_leaves", "SHAPES"]

logger = logging.getLogger(__name__)

#: Leaf shape names, as :attr:`VibrantParams.shapes` takes them.
SHAPES: dict[str, int] = {
    "disk": K.SHAPE_DISK,
    "ellipse": K.SHAPE_ELLIPSE,
    "rectangle": K.SHAPE_RECTANGLE,
    "polygon": K.SHAPE_POLYGON,
}

# Relative frequency of the textured patterns (linear, radial, grating, noise); flat leaves take
# the rest, 1 - VibrantParams.textured.
_PATTERN_WEIGHTS = np.array([0.25, 0.15, 0.2, 0.4])
# Mean area of a leaf shape relative to its bounding disk (ellipses, rectangles and squashed
# polygons fill less of it); used to size the near plane.
_SHAPE_FILL = 0.7


@dataclass(frozen=True)
class VibrantParams:
    """Parameters of :func:`vibrant_leaves`; the defaults are the ``vibrant`` corpus.

    Attributes:
        rmin: smallest leaf radius in pixels, > 0.
        rmax: largest leaf radius in pixels, >= ``rmin``; ``None`` gives half the longer side.
        alpha: exponent of the radius law ``p(r) ~ r**-alpha``; 3 is scale invariant.
        shapes: leaf shapes to draw from, names of :data:`SHAPES`, each equally likely.
        textured: fraction of leaves with a gradient, grating or noise pattern, in [0, 1];
            the others are flat (apart from their shading ramp and fine texture).
        near_coverage: largest fraction of the image the near plane covers, in [0, 1); each
            image draws its coverage uniformly below it. 0 gives a single plane.
        max_defocus: largest defocus blur (Gaussian standard deviation, pixels) of the plane
            that is out of focus, >= 0; 0 keeps both planes sharp.
        lens_sigma: ``(low, high)`` range of the lens PSF's standard deviation in pixels.
        illumination: strength of the illumination gradient and vignetting, in [0, 0.5]: the
            light falls by up to this fraction across the image and by up to twice it in the
            corners.
    """

    rmin: float = 1.0
    rmax: float | None = None
    alpha: float = 3.0
    shapes: tuple[str, ...] = ("disk", "ellipse", "rectangle", "polygon")
    textured: float = 0.85
    near_coverage: float = 0.6
    max_defocus: float = 3.0
    lens_sigma: tuple[float, float] = (0.35, 0.75)
    illumination: float = 0.3

    def validate(self) -> None:
        """Raise :class:`RawSynthError` naming the first bad field."""
        if not (_finite(self.rmin) and self.rmin > 0):
            raise RawSynthError(f"rmin: must be a positive number of pixels, got {self.rmin!r}")
        if self.rmax is not None and not (_finite(self.rmax) and self.rmax >= self.rmin):
            raise RawSynthError(f"rmax: must be a number >= rmin ({self.rmin}), got {self.rmax!r}")
        if not _finite(self.alpha):
            raise RawSynthError(f"alpha: must be a finite number, got {self.alpha!r}")
        shapes = self.shapes
        if isinstance(shapes, str) or not shapes or any(s not in SHAPES for s in shapes):
            raise RawSynthError(
                f"shapes: must be a non-empty tuple of {', '.join(SHAPES)}, got {shapes!r}"
            )
        if not (_finite(self.textured) and 0 <= self.textured <= 1):
            raise RawSynthError(f"textured: must be in [0, 1], got {self.textured!r}")
        if not (_finite(self.near_coverage) and 0 <= self.near_coverage < 1):
            raise RawSynthError(f"near_coverage: must be in [0, 1), got {self.near_coverage!r}")
        if not (_finite(self.max_defocus) and self.max_defocus >= 0):
            raise RawSynthError(f"max_defocus: must be >= 0, got {self.max_defocus!r}")
        lens = self.lens_sigma
        if not (
            isinstance(lens, tuple)
            and len(lens) == 2
            and all(_finite(v) and v >= 0 for v in lens)
            and lens[0] <= lens[1]
        ):
            raise RawSynthError(f"lens_sigma: must be (low, high) with 0 <= low <= high, got {lens!r}")
        if not (_finite(self.illumination) and 0 <= self.illumination <= 0.5):
            raise RawSynthError(f"illumination: must be in [0, 0.5], got {self.illumination!r}")


def _finite(value: object) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _check_size(size: int | tuple[int, int]) -> tuple[int, int]:
    hw = (size, size) if isinstance(size, (int, np.integer)) else size
    if (
        not isinstance(hw, (tuple, list))
        or len(hw) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in hw)
    ):
        raise RawSynthError(f"size: must be a positive int or (height, width), got {size!r}")
    return int(hw[0]), int(hw[1])


def _as_generator(seed: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise RawSynthError(f"seed: must be a non-negative int or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def _mean_square_radius(rmin: float, rmax: float, alpha: float) -> float:
    """``E[r**2]`` under the radius law ``p(r) ~ r**-alpha`` on [rmin, rmax]."""

    def integral(p: float) -> float:  # of r**p over [rmin, rmax]
        if rmax == rmin:
            return rmin**p
        if abs(p + 1.0) < 1e-12:
            return math.log(rmax / rmin)
        return (rmax ** (p + 1.0) - rmin ** (p + 1.0)) / (p + 1.0)

    return integral(2.0 - alpha) / integral(-alpha)


# ----------------------------------------------------------------------------- geometry


@dataclass
class _Plane:
    """The visible leaves of one depth plane.

    Attributes:
        labels: ``(H, W)`` int32 leaf index per pixel, ``UNCOVERED`` (-1) where none.
        geometry: ``(n, N_GEOMETRY)`` float64, one row per visible leaf (columns ``G_*``).
    """

    labels: np.ndarray
    geometry: np.ndarray


def _paint_plane(
    rng: np.random.Generator, height: int, width: int, rmin: float, rmax: float, alpha: float,
    shape_codes: np.ndarray, count: int | None,
) -> _Plane:
    """Pile leaves until the plane is covered (``count=None``), or drop exactly ``count`` leaves.

    The leaves are drawn inside the compiled painter
    (:func:`~raw_synth.corpora._vibrant_kernels.paint_leaves`) from a splitmix64 stream seeded
    by ``rng``. Leaves that end up hidden everywhere are dropped, the rest renumbered in falling
    order.
    """
    labels = np.full((height, width), K.UNCOVERED, dtype=np.int32)
    state = rng.integers(0, 2**63, size=1, dtype=np.uint64)
    capacity = max(4096, height * width // 4)
    remaining = -1 if count is None else count
    parts: list[np.ndarray] = []
    base = 0
    done = False
    while not done:
        geometry = np.empty((capacity, K.N_GEOMETRY))
        kept, dropped, done = K.paint_leaves(
            labels, base, state, rmin, rmax, alpha, shape_codes, remaining, geometry
        )
        parts.append(geometry[:kept])
        base += kept
        if remaining >= 0:
            remaining -= dropped
    geometry = np.concatenate(parts)
    seen = geometry[:, K.G_PIXELS] > 0
    mapping = (np.cumsum(seen) - 1).astype(np.int32)
    K.relabel(labels, mapping)
    return _Plane(labels, geometry[seen])


# ----------------------------------------------------------------------------- colour and texture


@dataclass(frozen=True)
class _Palette:
    """Per-image colour statistics: opponent chroma cast, saturation and tone exponent."""

    cast_rg: float
    cast_yb: float
    saturation: float
    gamma: float

    @classmethod
    def draw(cls, u: np.ndarray) -> _Palette:
        """From four uniforms: a mild cast, saturation 0.25 .. 1.25, tone exponent 1/1.3 .. 1.3."""
        return cls(
            cast_rg=0.15 * (2 * u[0] - 1),
            cast_yb=0.2 * (2 * u[1] - 1),
            saturation=0.25 + 1.0 * u[2],
            gamma=math.exp(math.log(1.3) * (2 * u[3] - 1)),
        )

    def as_array(self) -> np.ndarray:
        return np.array([self.cast_rg, self.cast_yb, self.saturation, self.gamma])


def _noise_field(rng: np.random.Generator, side: int, beta: float) -> np.ndarray:
    """``(side, side)`` float32 periodic Gaussian noise with amplitude spectrum ``~ 1 / f**beta``,
    zero mean and unit variance (band-limited: nothing above Nyquist)."""
    spectrum = np.fft.rfft2(rng.standard_normal((side, side)))
    f = np.hypot(np.fft.fftfreq(side)[:, None], np.fft.rfftfreq(side)[None, :])
    f[0, 0] = 1.0
    spectrum *= f**-beta
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(side, side))
    field /= field.std() + 1e-12
    return field.astype(np.float32)


def _shade(
    rng: np.random.Generator, plane: _Plane, palette: _Palette, textured: float,
    field: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Colour one plane: ``(H, W, 3)`` float32 (0 where uncovered) and ``(H, W, 1)`` coverage."""
    n = plane.geometry.shape[0]
    weights = np.concatenate([[1.0 - textured], textured * _PATTERN_WEIGHTS])
    cdf = np.cumsum(weights) / weights.sum()
    kind = np.empty(n, dtype=np.int64)
    table = np.empty((n, K.N_PARAMS), dtype=np.float32)
    u = rng.random((13, n))
    z = rng.standard_normal((4, n))
    K.leaf_table(plane.geometry, u, z, palette.as_array(), cdf, field.shape[0], kind, table)
    height, width = plane.labels.shape
    img = np.empty((height, width, 3), dtype=np.float32)
    coverage = np.empty((height, width, 1), dtype=np.float32)
    K.shade_layer(plane.labels, kind, table, field, img, coverage[..., 0])
    return img, coverage


# ----------------------------------------------------------------------------- acquisition


@dataclass(frozen=True)
class _Shot:
    """What one image draws once: colours, texture roughness, the near plane, focus, lens, light.

    Attributes:
        palette: the image's colour statistics.
        beta: exponent of the noise texture's amplitude spectrum ``1 / f**beta``, 0.8 .. 1.7.
        coverage: expected fraction of the image the near plane covers.
        focus: the plane in focus, ``"near"`` or ``"far"`` (the other one is defocused), or
            ``"both"``.
        defocus: standard deviation of the defocus blur in pixels, log-uniform in
            [max_defocus / 5, max_defocus].
        lens: standard deviation of the lens PSF in pixels.
        light: ``(g0, gy, gx, vignetting, gain)`` of :func:`~raw_synth.corpora._vibrant_kernels.compose`.
    """

    palette: _Palette
    beta: float
    coverage: float
    focus: str
    defocus: float
    lens: float
    light: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, params: VibrantParams) -> _Shot:
        """Draw from ``rng``, always 14 uniforms in the same order (index 9 is spare)."""
        g = rng.random(14)
        if g[2] < 0.4 or params.max_defocus == 0:
            focus = "both"
        else:
            focus = "near" if g[2] < 0.8 else "far"
        low, high = params.lens_sigma
        strength = params.illumination
        return cls(
            palette=_Palette.draw(g[10:]),
            beta=0.8 + 0.9 * g[0],
            coverage=params.near_coverage * g[1],
            focus=focus,
            defocus=params.max_defocus * 0.2 ** g[3],
            lens=low + (high - low) * g[4],
            light=np.array(
                [
                    1.0,
                    strength * (g[5] - 0.5),  # brightness gradient top to bottom
                    strength * (g[6] - 0.5),  # and left to right, up to +-strength/2 at the edges
                    strength * g[7],  # vignetting: corners darker by up to 2 * strength
                    math.exp(0.3 * (g[8] - 0.5)),  # exposure, x 0.86 .. 1.16
                ]
            ),
        )


def _gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a float32 ``(H, W, C)`` array, mirrored edges (a new array)."""
    radius = int(math.ceil(3.0 * sigma))
    if sigma <= 0 or radius == 0:
        return img
    taps = np.exp(-0.5 * (np.arange(radius + 1) / sigma) ** 2)
    taps = (taps / (2.0 * taps.sum() - taps[0])).astype(np.float32)
    height, width, channels = img.shape
    rows = K.blur_rows(np.ascontiguousarray(img).reshape(height, width * channels), taps)
    return K.blur_columns(rows.reshape(height, width, channels), taps)


def vibrant_leaves(
    size: int | tuple[int, int],
    seed: int | np.random.Generator,
    params: VibrantParams | None = None,
    **overrides: object,
) -> np.ndarray:
    """Render one VibrantLeaves image (see the module docstring for the model).

    Args:
        size: ``(height, width)`` in pixels, or one int for a square; each >= 1.
        seed: a non-negative int (same int, same image) or a ``numpy.random.Generator``, which
            is advanced.
        params: model parameters; default :class:`VibrantParams()`.
        **overrides: fields of :class:`VibrantParams` to change, e.g. ``max_defocus=0``.

    Returns:
        ``(height, width, 3)`` float32 sRGB in [0, 1], a new array.

    Raises:
        RawSynthError: a bad size, seed or parameter, or an unknown parameter name.
    """
    height, width = _check_size(size)
    params = params if params is not None else VibrantParams()
    if overrides:
        names = {f.name for f in dataclasses.fields(VibrantParams)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise RawSynthError(
                f"{unknown[0]}: unknown VibrantLeaves parameter; available: {', '.join(sorted(names))}"
            )
        params = dataclasses.replace(params, **overrides)
    params.validate()
    rng = _as_generator(seed)

    rmin = float(params.rmin)
    rmax = float(params.rmax) if params.rmax is not None else max(rmin, max(height, width) / 2.0)
    alpha = float(params.alpha)
    shape_codes = np.array([SHAPES[s] for s in params.shapes], dtype=np.int64)

    shot = _Shot.draw(rng, params)

    far = _paint_plane(rng, height, width, rmin, rmax, alpha, shape_codes, None)
    # The near plane: bigger leaves (radii from 4 rmin), as many as cover the drawn fraction on
    # average: coverage = 1 - exp(-count * mean leaf area / area where centres fall).
    near_rmin = min(4.0 * rmin, rmax)
    area = (height + 2 * rmax) * (width + 2 * rmax)
    mean_area = _SHAPE_FILL * math.pi * _mean_square_radius(near_rmin, rmax, alpha)
    n_near = int(-math.log1p(-shot.coverage) * area / mean_area)
    near = _paint_plane(rng, height, width, near_rmin, rmax, alpha, shape_codes, n_near)
    logger.debug(
        "vibrant %dx%d: %d far leaves, %d near leaves (coverage %.2f), in focus: %s, defocus %.2f",
        height, width, far.geometry.shape[0], near.geometry.shape[0], shot.coverage, shot.focus,
        shot.defocus,
    )

    field_side = 1 << max(4, min(7, math.ceil(math.log2(max(height, width)))))
    field = _noise_field(rng, field_side, shot.beta)
    far_img, _ = _shade(rng, far, shot.palette, params.textured, field)
    near_img, near_alpha = _shade(rng, near, shot.palette, params.textured, field)
    if shot.focus == "near":
        far_img = _gaussian_blur(far_img, shot.defocus)
    elif shot.focus == "far":
        near_img = _gaussian_blur(near_img, shot.defocus)  # premultiplied: colour and coverage
        near_alpha = _gaussian_blur(near_alpha, shot.defocus)
    img = K.compose(far_img, near_img, near_alpha, shot.light)
    img = _gaussian_blur(img, shot.lens)
    return np.clip(img, 0.0, 1.0, out=img)
