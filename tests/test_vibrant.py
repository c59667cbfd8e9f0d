"""VibrantLeaves corpus: output contract, determinism, pinned values, arguments, image statistics."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from raw_synth.corpora import (
    CORPORA,
    DEFAULT_VIBRANT_SIZE,
    corpus_item_id,
    corpus_length,
    iter_corpus,
    load_corpus_image,
)
from raw_synth.corpora.deadleaves import dead_leaves
from raw_synth.corpora.vibrant import VibrantParams, vibrant_leaves
from raw_synth.errors import RawSynthError

# ----------------------------------------------------------------------------- contract


@pytest.mark.parametrize("size", [(1, 1), (3, 70), (57, 31), (2, 300), (64, 64)])
def test_shape_dtype_range(size: tuple[int, int]) -> None:
    for seed in range(3):
        img = vibrant_leaves(size, seed)
        assert img.shape == (*size, 3) and img.dtype == np.float32
        assert img.flags.c_contiguous
        assert np.isfinite(img).all() and img.min() >= 0.0 and img.max() <= 1.0


def test_square_size_and_generator_seed() -> None:
    img = vibrant_leaves(24, 3)
    assert img.shape == (24, 24, 3)
    assert np.array_equal(img, vibrant_leaves((24, 24), np.random.default_rng(3)))


def test_deterministic_and_seed_dependent() -> None:
    a = vibrant_leaves((65, 80), 11)
    assert a.tobytes() == vibrant_leaves((65, 80), 11).tobytes()
    b = vibrant_leaves((65, 80), 12)
    assert np.mean(np.abs(a - b)) > 0.05


def test_registry() -> None:
    assert "vibrant" in CORPORA
    assert corpus_length("vibrant") is None
    assert corpus_item_id("vibrant", 6) == "vibrant#6"
    assert load_corpus_image("vibrant", 0, size=(16, 8)).shape == (16, 8, 3)
    assert DEFAULT_VIBRANT_SIZE == (512, 512)


def test_corpus_is_order_independent_and_returns_new_arrays() -> None:
    a3 = load_corpus_image("vibrant", 3, size=(32, 40), seed=7)
    a1 = load_corpus_image("vibrant", 1, size=(32, 40), seed=7)
    assert a1.tobytes() == load_corpus_image("vibrant", 1, size=(32, 40), seed=7).tobytes()
    assert a3.tobytes() == load_corpus_image("vibrant", 3, size=(32, 40), seed=7).tobytes()
    assert not np.array_equal(a1, a3)
    assert not np.array_equal(a1, load_corpus_image("vibrant", 1, size=(32, 40), seed=8))
    a1[:] = 0
    assert load_corpus_image("vibrant", 1, size=(32, 40), seed=7).max() > 0
    items = list(iter_corpus("vibrant", 2, start=5, size=24, seed=1))
    assert np.array_equal(items[1], load_corpus_image("vibrant", 6, size=24, seed=1))
    with pytest.raises(RawSynthError, match=r"^count: corpus 'vibrant' is unbounded, give a count$"):
        next(iter_corpus("vibrant"))


def test_pinned_values() -> None:
    """Values recorded from the implementation, so a stored training set stays reproducible."""
    img = vibrant_leaves((48, 64), 5)
    quantised = np.round(img * 65535).astype("<u2").tobytes()
    assert hashlib.sha256(quantised).hexdigest() == (
        "ada66c0908d851ddfcf996e9548048465e02396dae1e346d4abd2014c1f1188a"
    )
    assert float(img.astype(np.float64).sum()) == pytest.approx(2698.099053462036, abs=1e-3)
    pinned = {
        (0, 0): [0.2644903361797333, 0.29261910915374756, 0.2512877285480499],
        (20, 30): [0.33223938941955566, 0.2839660942554474, 0.3798224627971649],
        (47, 63): [0.12447882443666458, 0.12661729753017426, 0.12452694773674011],
    }
    for yx, rgb in pinned.items():
        np.testing.assert_allclose(img[yx], rgb, atol=1e-6)
    img = load_corpus_image("vibrant", 3, size=256, seed=7)
    assert float(img.astype(np.float64).sum()) == pytest.approx(69006.20928949211, abs=1e-2)
    pinned = {
        (100, 200): [0.28226613998413086, 0.30163779854774475, 0.27958768606185913],
        (3, 5): [0.3310520648956299, 0.3421328365802765, 0.3421030044555664],
        (255, 0): [0.13721197843551636, 0.16628074645996094, 0.12520471215248108],
    }
    for yx, rgb in pinned.items():
        np.testing.assert_allclose(img[yx], rgb, atol=1e-6)


# ----------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, r"^size: must be a positive int or \(height, width\), got 0$"),
        ({"size": (8, 2.5)}, r"^size: must be a positive int or \(height, width\), got \(8, 2.5\)$"),
        ({"size": (8, 8, 3)}, r"^size: must be a positive int or \(height, width\), got \(8, 8, 3\)$"),
        ({"seed": -1}, r"^seed: must be a non-negative int or a numpy Generator, got -1$"),
        ({"seed": 1.5}, r"^seed: must be a non-negative int or a numpy Generator, got 1.5$"),
        ({"rmin": 0.0}, r"^rmin: must be a positive number of pixels, got 0.0$"),
        ({"rmin": 4.0, "rmax": 2.0}, r"^rmax: must be a number >= rmin \(4.0\), got 2.0$"),
        ({"alpha": float("inf")}, r"^alpha: must be a finite number, got inf$"),
        (
            {"shapes": ("disk", "star")},
            r"^shapes: must be a non-empty tuple of disk, ellipse, rectangle, polygon, got \('disk', 'star'\)$",
        ),
        ({"shapes": ()}, r"^shapes: must be a non-empty tuple of"),
        ({"textured": 1.5}, r"^textured: must be in \[0, 1\], got 1.5$"),
        ({"near_coverage": 1.0}, r"^near_coverage: must be in \[0, 1\), got 1.0$"),
        ({"max_defocus": -1.0}, r"^max_defocus: must be >= 0, got -1.0$"),
        ({"lens_sigma": (0.8, 0.2)}, r"^lens_sigma: must be \(low, high\) with 0 <= low <= high, got \(0.8, 0.2\)$"),
        ({"illumination": float("nan")}, r"^illumination: must be in \[0, 0.5\], got nan$"),
        ({"illumination": 0.6}, r"^illumination: must be in \[0, 0.5\], got 0.6$"),
        ({"blur": 1.0}, r"^blur: unknown VibrantLeaves parameter; available: alpha, illumination, "),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    args = {"size": 16, "seed": 0} | kwargs
    with pytest.raises(RawSynthError, match=message):
        vibrant_leaves(**args)


def test_registry_size_errors() -> None:
    with pytest.raises(RawSynthError, match=r"^size: must be a positive int or \(height, width\), got \(0, 5\)$"):
        load_corpus_image("vibrant", 0, size=(0, 5))
    with pytest.raises(RawSynthError, match=r"^seed: must be a non-negative int, got -2$"):
        load_corpus_image("vibrant", 0, seed=-2)


def test_params_object_and_overrides() -> None:
    params = VibrantParams(max_defocus=0.0, near_coverage=0.0)
    a = vibrant_leaves(32, 4, params)
    assert np.array_equal(a, vibrant_leaves(32, 4, max_defocus=0.0, near_coverage=0.0))
    assert not np.array_equal(a, vibrant_leaves(32, 4))
    overrides = [
        {"textured": 0.0},
        {"shapes": ("disk",)},
        {"rmin": 3.0, "rmax": 3.0},
        {"alpha": 2.0},
        {"alpha": 1.0},
        {"lens_sigma": (0.0, 0.0)},
        {"illumination": 0.5},
    ]
    for override in overrides:
        img = vibrant_leaves((20, 30), 1, **override)
        assert img.shape == (20, 30, 3) and img.min() >= 0.0 and img.max() <= 1.0


# ----------------------------------------------------------------------------- kernels


def _inside_margin(geometry: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """How far inside each leaf (rows of ``geometry``) each pixel centre is, in the leaf frame;
    negative outside. An independent point test for the painter's row spans. Returns (n, P)."""
    from raw_synth.corpora import _vibrant_kernels as K

    out = np.empty((geometry.shape[0], ys.size))
    for i, leaf in enumerate(geometry):
        cy, cx, r, kind, angle, aspect, sides = leaf[:7]
        dy, dx = ys - cy, xs - cx
        c, s = np.cos(angle), np.sin(angle)
        u, v = c * dx + s * dy, (c * dy - s * dx) / aspect
        if kind in (K.SHAPE_DISK, K.SHAPE_ELLIPSE):
            out[i] = r - np.hypot(u, v)
        elif kind == K.SHAPE_RECTANGLE:
            half = r / np.sqrt(1 + aspect**2)
            out[i] = half - np.maximum(np.abs(u), np.abs(v))
        else:
            n = int(sides)
            t = np.pi / n + 2 * np.pi * np.arange(n) / n  # outward edge normals
            support = u[None, :] * np.cos(t)[:, None] + v[None, :] * np.sin(t)[:, None]
            out[i] = r * np.cos(np.pi / n) - support.max(axis=0)
    return out


@pytest.mark.parametrize(("height", "width", "seed"), [(23, 37, 0), (40, 17, 1), (1, 9, 2), (31, 31, 3)])
def test_painter_shows_first_fallen_leaf(height: int, width: int, seed: int) -> None:
    """Every pixel shows the first kept leaf whose shape contains it (brute force over all kept
    leaves, skipped leaves cannot cover an uncovered pixel), and the shapes are what they say."""
    from raw_synth.corpora import _vibrant_kernels as K

    labels = np.full((height, width), K.UNCOVERED, dtype=np.int32)
    geometry = np.empty((20000, K.N_GEOMETRY))
    state = np.array([seed], dtype=np.uint64)
    codes = np.array([K.SHAPE_DISK, K.SHAPE_ELLIPSE, K.SHAPE_RECTANGLE, K.SHAPE_POLYGON])
    rmax = max(height, width) / 2.0
    kept, dropped, done = K.paint_leaves(labels, 0, state, 1.0, rmax, 3.0, codes, -1, geometry)
    assert done and kept <= dropped and (labels >= 0).all()
    geometry = geometry[:kept]
    assert set(geometry[:, K.G_KIND].astype(int)) <= set(codes.tolist())
    assert (geometry[:, K.G_R] >= 1.0).all() and (geometry[:, K.G_R] <= rmax).all()
    assert np.bincount(labels.ravel(), minlength=kept).tolist() == geometry[:, K.G_PIXELS].astype(int).tolist()
    ys, xs = (a.ravel().astype(np.float64) for a in np.mgrid[0:height, 0:width])
    margin = _inside_margin(geometry, ys, xs)  # (kept, pixels)
    flat = labels.ravel()
    eps = 1e-9
    assert (margin[flat, np.arange(flat.size)] >= -eps).all()  # each pixel lies in its own leaf
    for p, leaf in enumerate(flat):  # and in no earlier leaf (up to rounding at the very edge)
        assert not (margin[:leaf, p] > eps).any()


def test_gaussian_blur_equals_scipy() -> None:
    from scipy import ndimage

    from raw_synth.corpora.vibrant import _gaussian_blur

    rng = np.random.default_rng(1)
    for shape in [(64, 48), (3, 5), (1, 1), (20, 2)]:
        image = rng.random((*shape, 3)).astype(np.float32)
        before = image.copy()
        for sigma in [0.35, 0.75, 2.0, 3.0]:
            radius = int(np.ceil(3.0 * sigma))  # three sigmas, rounded up
            expected = ndimage.gaussian_filter(image, (sigma, sigma, 0.0), mode="reflect", radius=(radius, radius, 0))
            np.testing.assert_allclose(_gaussian_blur(image, sigma), expected, rtol=0, atol=5e-7)
        np.testing.assert_array_equal(image, before)


def test_kernels_compile_without_a_cache_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where numba has nowhere to cache (it raises at decoration), a kernel compiles without it."""
    import numba

    from raw_synth.corpora import _vibrant_kernels as K

    real_njit = numba.njit
    calls: list[bool] = []

    def njit_without_cache(*args, **kwargs):
        calls.append(bool(kwargs.get("cache")))
        if kwargs.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return real_njit(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", njit_without_cache)

    def twice(x):
        return 2 * x

    assert K._compiled(twice)(21) == 42
    assert calls == [True, False]


# ----------------------------------------------------------------------------- statistics


def _spectrum_slope(img: np.ndarray) -> float:
    """Slope of the radially averaged power spectrum of luminance, log-log, 4/N..0.25 cyc/px."""
    g = img.astype(np.float64).mean(axis=-1)
    g = g - g.mean()
    h, w = g.shape
    power = np.abs(np.fft.fft2(g * np.outer(np.hanning(h), np.hanning(w)))) ** 2
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    edges = np.geomspace(4.0 / min(h, w), 0.25, 13)
    band = np.digitize(f, edges)
    fb = [f[band == i].mean() for i in range(1, len(edges))]
    pb = [power[band == i].mean() for i in range(1, len(edges))]
    return float(np.polyfit(np.log(fb), np.log(pb), 1)[0])


def _block_std(img: np.ndarray) -> np.ndarray:
    """Standard deviation of the luminance in each 8x8 block."""
    g = img.astype(np.float64).mean(axis=-1)
    h, w = (s // 8 * 8 for s in g.shape)
    return g[:h, :w].reshape(h // 8, 8, w // 8, 8).std(axis=(1, 3)).ravel()


def _flat_blocks(img: np.ndarray) -> float:
    """Fraction of 8x8 blocks that are perfectly flat once quantised to 8 bits."""
    q = np.round(img * 255.0)
    h, w = (s // 8 * 8 for s in q.shape[:2])
    b = q[:h, :w].reshape(h // 8, 8, w // 8, 8, 3)
    return float(np.mean((b.max(axis=(1, 3)) == b.min(axis=(1, 3))).all(axis=-1)))


def _gradient_kurtosis(img: np.ndarray) -> float:
    d = np.diff(img.astype(np.float64).mean(axis=-1), axis=1).ravel()
    d -= d.mean()
    return float(np.mean(d**4) / np.mean(d**2) ** 2)


@pytest.fixture(scope="module")
def renders() -> dict[str, list[np.ndarray]]:
    seeds = range(8)
    return {
        "vibrant": [vibrant_leaves(256, s) for s in seeds],
        "deadleaves": [dead_leaves(256, 256, s) for s in seeds],
        "flat_deadleaves": [dead_leaves(256, 256, s, shading=0.0, blur_sigma=0.0) for s in seeds],
    }


def test_power_spectrum_is_natural(renders: dict[str, list[np.ndarray]]) -> None:
    # Measured over 8 seeds at 256x256: slopes -2.71 .. -1.62, mean -2.13 (photos: about -2;
    # the steepest images have a defocused far plane).
    slopes = [_spectrum_slope(img) for img in renders["vibrant"]]
    assert -2.3 <= float(np.mean(slopes)) <= -1.9, slopes
    assert all(-3.0 <= s <= -1.4 for s in slopes), slopes
    # The radius law still sets it: fewer small leaves (alpha 2) steepen the spectrum.
    steep = np.mean([_spectrum_slope(vibrant_leaves(256, s, alpha=2.0)) for s in range(3)])
    assert steep < np.mean(slopes) - 0.3


def test_fewer_flat_and_busy_blocks_than_dead_leaves(renders: dict[str, list[np.ndarray]]) -> None:
    vib = np.concatenate([_block_std(img) for img in renders["vibrant"]])
    dead = np.concatenate([_block_std(img) for img in renders["deadleaves"]])
    # Measured: perfectly flat 8-bit blocks 0.45 % (flat dead leaves 7.0 %, shaded 0.55 %).
    flat_vib = np.mean([_flat_blocks(img) for img in renders["vibrant"]])
    flat_dead = np.mean([_flat_blocks(img) for img in renders["flat_deadleaves"]])
    assert flat_vib < flat_dead / 5
    # Low-contrast texture (block std 0.5/255 .. 8/255): 16 % of blocks against 9 % for dead
    # leaves (photos: 45 %); high-contrast clutter (std > 32/255): 30 % against 49 % (photos 8 %).
    texture = lambda std: np.mean((std >= 0.5 / 255) & (std < 8 / 255))  # noqa: E731
    assert texture(vib) > 1.3 * texture(dead)
    assert np.mean(vib > 32 / 255) < 0.8 * np.mean(dead > 32 / 255)


def test_gradients_are_heavy_tailed(renders: dict[str, list[np.ndarray]]) -> None:
    # A Gaussian has kurtosis 3; photos about 20, these renders about 11.
    assert np.median([_gradient_kurtosis(img) for img in renders["vibrant"]]) > 6.0


def test_colours_are_natural(renders: dict[str, list[np.ndarray]]) -> None:
    pixels = np.concatenate([img.reshape(-1, 3) for img in renders["vibrant"]])
    luma = pixels.mean(axis=1)
    assert 0.25 < luma.mean() < 0.5 and 0.12 < luma.std() < 0.3
    # Channels move together (not uniform RGB, whose channels are independent).
    corr = np.corrcoef(pixels.T)
    assert corr[np.triu_indices(3, 1)].min() > 0.6
    # Mostly muted, some colourful: saturation (max - min) / max well below uniform RGB's 0.5.
    saturation = (pixels.max(axis=1) - pixels.min(axis=1)) / (pixels.max(axis=1) + 1e-6)
    assert 0.05 < saturation.mean() < 0.4
