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
    np.testing.assert_allclose(img[0, 0], [0.2644903361797333, 0.29261910915374756, 0.2512877285480499], atol=1e-6)
    np.testing.assert_allclose(img[20, 30], [0.33223938941955566, 0.2839660942554474, 0.3798224627971649], atol=1e-6)
    np.testing.assert_allclose(img[47, 63], [0.12447882443666458, 0.12661729753017426, 0.12452694773674011], atol=1e-6)
    img = load_corpus_image("vibrant", 3, size=256, seed=7)
    assert float(img.astype(np.float64).sum()) == pytest.approx(69006.20928949211, abs=1e-2)
    np.testing.assert_allclose(img[100, 200], [0.28226613998413086, 0.30163779854774475, 0.27958768606185913], atol=1e-6)
    np.testing.assert_allclose(img[3, 5], [0.3310520648956299, 0.3421328365802765, 0.3421030044555664], atol=1e-6)
    np.testing.assert_allclose(img[255, 0], [0.13721197843551636, 0.16628074645996094, 0.12520471215248108], atol=1e-6)


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
        ({"shapes": ("disk", "star")}, r"^shapes: must be a non-empty tuple of disk, ellipse, rectangle, polygon, got \('disk', 'star'\)$"),
        ({"shapes": ()}, r"^shapes: must be a non-empty tuple of"),
        ({"textured": 1.5}, r"^textured: must be in \[0, 1\], got 1.5$"),
        ({"near_coverage": 1.0}, r"^near_coverage: must be in \[0, 1\), got 1.0$"),
        ({"max_defocus": -1.0}, r"^max_defocus: must be >= 0, got -1.0$"),
        ({"lens_sigma": (0.8, 0.2)}, r"^lens_sigma: must be \(low, high\) with 0 <= low <= high, got \(0.8, 0.2\)$"),
        ({"illumination": float("nan")}, r"^illumination: must be in \[0, 1\], got nan$"),
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
    for override in [{"textured": 0.0}, {"shapes": ("disk",)}, {"rmin": 3.0, "rmax": 3.0}, {"alpha": 2.0}, {"lens_sigma": (0.0, 0.0)}]:
        img = vibrant_leaves((20, 30), 1, **override)
        assert img.shape == (20, 30, 3) and img.min() >= 0.0 and img.max() <= 1.0


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


def test_power_spectrum_is_natural() -> None:
    slopes = [_spectrum_slope(vibrant_leaves(256, s)) for s in range(8)]
    assert -2.3 <= float(np.mean(slopes)) <= -1.8, slopes
