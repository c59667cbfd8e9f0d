"""Built-in corpora: bundled sample photos, procedural dead leaves, and the corpus registry."""

from __future__ import annotations

import numpy as np
import pytest

from raw_synth.corpora import (
    CORPORA,
    DEFAULT_DEADLEAVES_SIZE,
    corpus_item_id,
    corpus_length,
    iter_corpus,
    load_corpus_image,
)
from raw_synth.corpora import deadleaves as dl
from raw_synth.corpora.deadleaves import dead_leaves
from raw_synth.corpora.samples import list_samples, load_sample, sample_names, sample_path
from raw_synth.errors import RawSynthError

EXPECTED_SAMPLES = ["astronaut", "chelsea", "coffee", "rocket"]


# ----------------------------------------------------------------------------- bundled samples


def test_list_samples_files_and_licences() -> None:
    paths = list_samples()
    assert [p.name for p in paths] == [f"{n}.jpg" for n in EXPECTED_SAMPLES]
    assert sample_names() == EXPECTED_SAMPLES
    assert all(p.is_absolute() and p.is_file() for p in paths)
    assert sum(p.stat().st_size for p in paths) < 1.5e6
    licences = (paths[0].parent / "LICENSES.md").read_text(encoding="utf-8")
    for name in EXPECTED_SAMPLES:
        row = next(line for line in licences.splitlines() if line.startswith(f"| `{name}.jpg`"))
        assert ("Public domain" in row) or ("CC0" in row), row


def test_load_sample_matches_scikit_image_original() -> None:
    skdata = pytest.importorskip("skimage.data")
    for name in EXPECTED_SAMPLES:
        img = load_sample(name)
        ref = getattr(skdata, name)().astype(np.float64) / 255.0
        assert img.dtype == np.float32 and img.ndim == 3 and img.shape == ref.shape
        assert img.min() >= 0.0 and img.max() <= 1.0
        mse = float(np.mean((img.astype(np.float64) - ref) ** 2))
        # JPEG quality 95 of the PNG originals is above 40 dB; rocket is the original file.
        assert mse == 0.0 or 10 * np.log10(1.0 / mse) > 38.0, name


def test_load_sample_returns_fresh_array_and_accepts_file_name() -> None:
    a = load_sample("coffee.jpg")
    a[:] = 0
    assert load_sample("coffee").max() > 0.9
    assert sample_path("coffee") == sample_path("coffee.jpg")


def test_load_sample_unknown_name() -> None:
    with pytest.raises(
        RawSynthError,
        match=r"^sample 'lena': unknown sample; available: astronaut, chelsea, coffee, rocket$",
    ):
        load_sample("lena")


# ----------------------------------------------------------------------------- dead leaves


@pytest.mark.parametrize("size", [(1, 1), (3, 70), (57, 31), (64, 64)])
def test_dead_leaves_shape_dtype_range(size: tuple[int, int]) -> None:
    img = dead_leaves(*size, seed=3)
    assert img.shape == (*size, 3) and img.dtype == np.float32
    assert img.flags.c_contiguous
    assert np.isfinite(img).all() and img.min() >= 0.0 and img.max() <= 1.0


def test_dead_leaves_deterministic_and_seed_dependent() -> None:
    a = dead_leaves(65, 80, seed=11)
    assert np.array_equal(a, dead_leaves(65, 80, seed=11))
    assert np.array_equal(a, dead_leaves(65, 80, np.random.default_rng(11)))
    b = dead_leaves(65, 80, seed=12)
    assert np.mean(np.abs(a - b)) > 0.05


def test_dead_leaves_piecewise_constant_without_shading_and_blur() -> None:
    img = dead_leaves(48, 48, seed=5, shading=0.0, blur_sigma=0.0)
    colours = np.unique(img.reshape(-1, 3), axis=0)
    # Many leaves (scale invariance puts lots of small ones), far fewer than pixels.
    assert 20 < len(colours) < 48 * 48 // 2
    # Natural colour model: not grey, not saturated noise.
    assert 0.25 < img.mean() < 0.55


def _brute_force_check(labels: np.ndarray, cy: np.ndarray, cx: np.ndarray, r: np.ndarray) -> None:
    h, w = labels.shape
    ys, xs = np.mgrid[0:h, 0:w]
    assert labels.min() >= 0 and labels.max() < r.size
    inside_own = (ys - cy[labels]) ** 2 + (xs - cx[labels]) ** 2 <= r[labels] ** 2
    assert inside_own.all()
    covers = (ys[..., None] - cy) ** 2 + (xs[..., None] - cx) ** 2 <= r**2  # (h, w, n)
    first = np.argmax(covers, axis=-1)  # the first disk to fall on each pixel
    np.testing.assert_array_equal(labels, first)


@pytest.mark.parametrize(("height", "width", "seed"), [(23, 37, 0), (23, 37, 1), (40, 17, 2), (1, 9, 3)])
def test_dead_leaves_occlusion_is_first_fallen_leaf(height: int, width: int, seed: int) -> None:
    """Every pixel shows the earliest disk covering it, checked by brute force over all disks."""
    rmax = max(1.0, max(height, width) / 2.0)
    labels, cy, cx, r = dl._leaf_labels(height, width, np.random.default_rng(seed), 1.0, rmax, 3.0)
    assert labels.shape == (height, width) and labels.dtype == np.int32
    assert cy.shape == cx.shape == r.shape and r.min() >= 1.0 and r.max() <= rmax
    _brute_force_check(labels, cy, cx, r)


def test_dead_leaves_pinned_values() -> None:
    """The compiled painter, shading and blur reproduce the images of the numpy implementation
    they replaced (values recorded from it), so stores made before the change stay reproducible."""
    img = dead_leaves(256, 256, seed=7)
    assert float(img.astype(np.float64).sum()) == pytest.approx(70671.54703685665, abs=1e-3)
    np.testing.assert_allclose(img[100, 200], [0.2302626371383667, 0.28647711873054504, 0.22938257455825806], atol=1e-6)
    np.testing.assert_allclose(img[3, 5], [0.279733806848526, 0.4519089460372925, 0.4264654815196991], atol=1e-6)
    np.testing.assert_allclose(img[255, 0], [0.6867832541465759, 0.4575890600681305, 0.9875476956367493], atol=1e-6)
    img = dead_leaves(40, 64, seed=1, blur_sigma=1.2, shading=0.5)
    assert float(img.astype(np.float64).sum()) == pytest.approx(2631.208429928869, abs=1e-3)
    np.testing.assert_allclose(img[20, 30], [0.3575133979320526, 0.4565484821796417, 0.3666997253894806], atol=1e-6)


def test_dead_leaves_kernels_compile_without_a_cache_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where numba has nowhere to cache (it raises at decoration), the kernels compile per process
    and render the same image."""
    import importlib

    import numba

    from raw_synth.corpora import _deadleaves_kernels as kernels

    expected = dead_leaves(24, 20, seed=3)
    real_njit = numba.njit
    calls: list[bool] = []

    def njit_without_cache(*args, **kwargs):
        calls.append(bool(kwargs.get("cache")))
        if kwargs.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return real_njit(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", njit_without_cache)
    try:
        importlib.reload(kernels)
        assert calls == [True, False] * 4  # each of the four kernels: cache refused, compiled without
        np.testing.assert_array_equal(dead_leaves(24, 20, seed=3), expected)
    finally:
        monkeypatch.undo()
        importlib.reload(kernels)


def test_dead_leaves_shading_kernel_equals_numpy() -> None:
    from raw_synth.corpora._deadleaves_kernels import shade

    rng = np.random.default_rng(4)
    labels = rng.integers(0, 50, size=(13, 21))
    colours = rng.random((50, 3)).astype(np.float32)
    table = (rng.random((50, 3)) * [1.0, 0.01, -0.02] + [0.5, 0, 0]).astype(np.float32)
    ys = np.arange(13, dtype=np.float32)[:, None]
    xs = np.arange(21, dtype=np.float32)[None, :]
    leaf = table[labels]
    expected = colours[labels] * (leaf[..., 0] + leaf[..., 1] * ys + leaf[..., 2] * xs)[..., None]
    out = shade(labels, colours, table)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


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


def test_dead_leaves_power_spectrum_is_natural() -> None:
    # Measured over 20 seeds at 256x256: slopes -2.30 .. -1.60, mean -1.86 (natural photos ~ -2).
    slopes = [_spectrum_slope(dead_leaves(256, 256, seed=s)) for s in range(6)]
    assert all(-2.6 <= s <= -1.4 for s in slopes), slopes
    assert -2.2 <= float(np.mean(slopes)) <= -1.6
    # The slope follows the radius law: more small leaves (alpha 4) flatten it, fewer steepen it.
    flat = np.mean([_spectrum_slope(dead_leaves(256, 256, seed=s, alpha=4.0)) for s in range(3)])
    steep = np.mean([_spectrum_slope(dead_leaves(256, 256, seed=s, alpha=2.0)) for s in range(3)])
    assert steep < np.mean(slopes) - 0.4 and flat > np.mean(slopes) + 0.4
    # White noise, for contrast, is flat.
    assert abs(_spectrum_slope(np.random.default_rng(0).random((256, 256, 3)))) < 0.2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"height": 0}, r"^height: must be a positive int, got 0$"),
        ({"width": 2.5}, r"^width: must be a positive int, got 2.5$"),
        ({"rmin": 0.0}, r"^rmin: must be a positive number of pixels, got 0.0$"),
        ({"rmin": 4.0, "rmax": 2.0}, r"^rmax: must be a number >= rmin \(4.0\), got 2.0$"),
        ({"seed": -1}, r"^seed: must be a non-negative int or a numpy Generator, got -1$"),
        ({"seed": 1.5}, r"^seed: must be a non-negative int or a numpy Generator, got 1.5$"),
        ({"shading": -0.1}, r"^shading: must be >= 0, got -0.1$"),
        ({"blur_sigma": float("nan")}, r"^blur_sigma: must be >= 0, got nan$"),
    ],
)
def test_dead_leaves_bad_arguments(kwargs: dict, message: str) -> None:
    args = {"height": 16, "width": 16, "seed": 0} | kwargs
    with pytest.raises(RawSynthError, match=message):
        dead_leaves(**args)


# ----------------------------------------------------------------------------- registry


def test_corpus_names_and_lengths() -> None:
    assert CORPORA == ("samples", "deadleaves", "vibrant")
    assert corpus_length("samples") == 4
    assert corpus_length("deadleaves") is None
    assert corpus_item_id("samples", 6) == "samples/coffee#6"
    assert corpus_item_id("deadleaves", 6) == "deadleaves#6"


def test_samples_corpus_full_images_cycle() -> None:
    assert np.array_equal(load_corpus_image("samples", 0), load_sample("astronaut"))
    assert np.array_equal(load_corpus_image("samples", 7, seed=9), load_sample("rocket"))


def _find_crop(photo: np.ndarray, crop: np.ndarray) -> list[tuple[int, int]]:
    h, w = crop.shape[:2]
    ys, xs = np.nonzero((photo == crop[0, 0]).all(axis=-1))
    return [
        (y, x)
        for y, x in zip(ys, xs)
        if y + h <= photo.shape[0]
        and x + w <= photo.shape[1]
        and np.array_equal(photo[y : y + h, x : x + w], crop)
    ]


def test_samples_corpus_crops() -> None:
    crop = load_corpus_image("samples", 2, size=(40, 56), seed=1)
    assert crop.shape == (40, 56, 3) and crop.dtype == np.float32
    assert np.array_equal(crop, load_corpus_image("samples", 2, size=(40, 56), seed=1))
    assert _find_crop(load_sample("coffee"), crop)
    # Index 6 is coffee again, index 2 with another seed too: different crops.
    assert not np.array_equal(crop, load_corpus_image("samples", 6, size=(40, 56), seed=1))
    assert not np.array_equal(crop, load_corpus_image("samples", 2, size=(40, 56), seed=2))
    square = load_corpus_image("samples", 3, size=33)
    assert square.shape == (33, 33, 3)
    assert _find_crop(load_sample("rocket"), square)


def test_deadleaves_corpus_is_order_independent() -> None:
    a3 = load_corpus_image("deadleaves", 3, size=(32, 40), seed=7)
    a1 = load_corpus_image("deadleaves", 1, size=(32, 40), seed=7)
    assert np.array_equal(a1, load_corpus_image("deadleaves", 1, size=(32, 40), seed=7))
    assert np.array_equal(a3, load_corpus_image("deadleaves", 3, size=(32, 40), seed=7))
    assert not np.array_equal(a1, a3)
    assert not np.array_equal(a1, load_corpus_image("deadleaves", 1, size=(32, 40), seed=8))
    assert load_corpus_image("deadleaves", 0).shape == (*DEFAULT_DEADLEAVES_SIZE, 3)


def test_iter_corpus() -> None:
    shapes = [img.shape for img in iter_corpus("samples")]
    assert shapes == [(512, 512, 3), (300, 451, 3), (400, 600, 3), (427, 640, 3)]
    items = list(iter_corpus("deadleaves", 2, start=5, size=24, seed=1))
    assert len(items) == 2
    assert np.array_equal(items[1], load_corpus_image("deadleaves", 6, size=24, seed=1))
    unbounded = r"^count: corpus 'deadleaves' is unbounded, give a count$"
    with pytest.raises(RawSynthError, match=unbounded):
        next(iter_corpus("deadleaves"))


REGISTRY_ERRORS = [
    (
        lambda: load_corpus_image("flickr", 0),
        r"^corpus 'flickr': unknown corpus; available: samples, deadleaves, vibrant$",
    ),
    (
        lambda: load_corpus_image("samples", -1),
        r"^index: must be a non-negative int, got -1$",
    ),
    (
        lambda: load_corpus_image("samples", 1, size=(301, 10)),
        r"^size: a 301x10 crop does not fit sample 'chelsea' \(300x451\)$",
    ),
    (
        lambda: load_corpus_image("deadleaves", 0, size=(0, 5)),
        r"^size: must be a positive int or \(height, width\), got \(0, 5\)$",
    ),
    (
        lambda: load_corpus_image("deadleaves", 0, size=(8, 8, 3)),
        r"^size: must be a positive int or \(height, width\)",
    ),
    (
        lambda: load_corpus_image("deadleaves", 0, seed=-2),
        r"^seed: must be a non-negative int, got -2$",
    ),
    (lambda: corpus_length("nope"), r"^corpus 'nope': unknown corpus"),
]


@pytest.mark.parametrize(("call", "message"), REGISTRY_ERRORS)
def test_registry_errors(call, message: str) -> None:
    with pytest.raises(RawSynthError, match=message):
        call()


@pytest.mark.parametrize("shape", [(64, 48), (3, 5), (2, 9), (1, 1)])
@pytest.mark.parametrize("sigma", [0.3, 0.5, 1.0, 2.0])
def test_dead_leaves_blur_equals_scipy_gaussian_filter(shape: tuple[int, int], sigma: float) -> None:
    from scipy import ndimage

    from raw_synth.corpora.deadleaves import _gaussian_blur

    image = np.random.default_rng(1).random((*shape, 3)).astype(np.float32)
    before = image.copy()
    out = _gaussian_blur(image, sigma)
    expected = ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0.0), mode="reflect")
    assert out.shape == expected.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=0, atol=3e-7)
    np.testing.assert_array_equal(image, before)  # the input is not modified
