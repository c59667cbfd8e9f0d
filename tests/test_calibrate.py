"""Tests of raw_synth.calibrate: noisy/clean pairs, flat + dark frames (photon transfer, ELD),
blind single-image estimation, DNG NoiseProfile, per-ISO profile sections and file calibration.

Synthetic data come from raw_synth.noise with known parameters; the clean content is either an
unprocessed scikit-image photograph (lightly blurred, as smooth-ish natural content) or a
"shapes" scene of smooth gradients and edges over levels 3e-4 .. 0.8.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats
from scipy.ndimage import gaussian_filter

from raw_synth.calibrate import (
    Calibration,
    NoiseFit,
    calibrate_files,
    estimate_blind,
    fit_flat_dark,
    fit_iso_relation,
    fit_nlf_line,
    fit_pairs,
    fit_tukey_lambda,
    noise_from_dng,
    ppcc,
)
from raw_synth.calibrate.blind import null_statistics
from raw_synth.calibrate.pairs import detect_quant_step
from raw_synth.calibrate.photon_transfer import tukey_quantiles
from raw_synth.camera import parse_profile
from raw_synth.cfa import unpack
from raw_synth.errors import RawSynthError
from raw_synth.io import RawImage, write_dng
from raw_synth.isp.unprocess import unprocess
from raw_synth.noise import (
    GaussianParams,
    PhysicsParams,
    apply_noise,
    sample_tukey_lambda,
    to_dn,
    tukey_lambda_variance,
)
from raw_synth.noise.profiles import sample_camera_noise
from raw_synth.noise.sampling import check_eld_params, sample_eld
from tests.conftest import shared_file

skdata = pytest.importorskip("skimage.data")


# ----------------------------------------------------------------------------- scenes


def natural_scene(name: str, seed: int, brighten: float = 1.0) -> np.ndarray:
    """A scikit-image photo, blurred (sigma 1), unprocessed to packed RAW (4, 256, 256)."""
    image = getattr(skdata, name)().astype(np.float32) / 255.0
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = gaussian_filter(image[:512, :512, :3], (1.0, 1.0, 0.0))
    packed, _ = unprocess(image, np.random.default_rng(seed))
    return np.clip(packed * brighten, 0.0, 1.0).astype(np.float32)


def shapes_scene(seed: int, size: int = 256) -> np.ndarray:
    """Rectangles and discs with linear ramps (edges + smooth gradients), levels 3e-4 .. 0.8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.full((size, size), 0.3)
    for _ in range(14):
        level = math.exp(rng.uniform(math.log(3e-4), math.log(0.8)))
        gy, gx = rng.normal(0.0, 0.3 * level, 2)
        ramp = level + gy * (yy - 0.5) + gx * (xx - 0.5)
        if rng.random() < 0.5:
            y0, x0 = rng.uniform(0.0, 0.8, 2)
            hh, ww = rng.uniform(0.15, 0.5, 2)
            mask = (yy >= y0) & (yy < y0 + hh) & (xx >= x0) & (xx < x0 + ww)
        else:
            cy, cx = rng.uniform(0.0, 1.0, 2)
            radius = rng.uniform(0.1, 0.3)
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
        image = np.where(mask, np.clip(ramp, 1e-4, 1.0), image)
    gains = rng.uniform(0.6, 1.0, 4)
    return (image[None] * gains[:, None, None]).astype(np.float32)


@pytest.fixture(scope="module")
def scenes() -> dict[str, np.ndarray]:
    return {
        "astronaut": natural_scene("astronaut", 0),
        "astronaut-clipped": natural_scene("astronaut", 1, brighten=1.6),
        "shapes0": shapes_scene(0),
        "shapes1": shapes_scene(1),
    }


def rel_err(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(estimate, np.float64) / np.asarray(truth, np.float64) - 1.0)))


# ----------------------------------------------------------------------------- line fit


def test_fit_nlf_line_exact_on_noiseless_points() -> None:
    x = np.linspace(0.0, 1.0, 9)
    shot, read, r2, used = fit_nlf_line(x, 2e-3 * x + 4e-5, np.full(9, 100.0))
    assert shot == pytest.approx(2e-3, rel=1e-9)
    assert read == pytest.approx(4e-5, rel=1e-9)
    assert r2 == pytest.approx(1.0)
    assert used.all()
    # a line through negative read is constrained to read >= 0
    shot, read, _, _ = fit_nlf_line(x[1:], 2e-3 * x[1:] - 1e-4, np.full(8, 100.0))
    assert read == 0.0 and shot > 0.0
    with pytest.raises(RawSynthError, match="need at least 2 points at different levels"):
        fit_nlf_line(np.ones(3), np.ones(3), np.ones(3))


def test_noise_fit_validation_and_summary() -> None:
    fit = NoiseFit(shot=1e-3, read=[1e-5, 2e-5, 2e-5, 3e-5], method="x")
    assert fit.shot.tolist() == [1e-3] * 4
    np.testing.assert_allclose(fit.variance(0.5), 0.5e-3 + np.array([1e-5, 2e-5, 2e-5, 3e-5]))
    assert fit.variance(np.zeros((4, 2, 3))).shape == (4, 2, 3)
    summary = json.loads(json.dumps(fit.to_dict()))
    assert summary["read"] == [1e-5, 2e-5, 2e-5, 3e-5] and summary["r2"] == [None] * 4
    with pytest.raises(RawSynthError, match="NoiseFit.read: values must be finite and >= 0"):
        NoiseFit(shot=1e-3, read=-1.0, method="x")


# ----------------------------------------------------------------------------- pairs

PAIR_CASES = {
    # name: (noise parameters, scene)
    "gaussian-per-plane": (GaussianParams(shot=(2e-3, 1.5e-3, 1.6e-3, 2.5e-3), read=(2e-5, 1.5e-5, 1.5e-5, 3e-5)),
                           "astronaut"),
    "phone-10bit-black64": (PhysicsParams(gain=2.0, read_scale=3.0, black=64, white=1023), "astronaut-clipped"),
    "phone-12bit-iso1600": (PhysicsParams(gain=6.0, read_scale=12.0, black=256, white=4095, row_scale=2.0),
                            "astronaut-clipped"),
    "canon550d-14bit-tukey": (PhysicsParams(gain=0.3, read_scale=4.0, black=2056, white=15000, read_model="tukey",
                                            tukey_lambda=-0.1), "shapes0"),
    "cycleisp-clip01": (GaussianParams(shot=3.4e-3, read=5e-5, clip=True), "astronaut-clipped"),
    "sidd-black0-iso100": (PhysicsParams(gain=0.5, read_scale=1.5, black=0, white=1023), "shapes1"),
}


@pytest.mark.parametrize("case", sorted(PAIR_CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_fit_pairs_recovers_known_levels(scenes: dict, case: str, seed: int) -> None:
    params, scene = PAIR_CASES[case]
    clean = scenes[scene]
    result = apply_noise(clean, params, np.random.default_rng(100 + seed))
    before = result.noisy.copy()
    fit = fit_pairs(result.noisy, clean)
    np.testing.assert_array_equal(result.noisy, before)  # input not modified
    assert fit.shot.shape == fit.read.shape == (4,)
    assert rel_err(fit.shot, result.shot) < 0.05
    # Poisson shot noise of a few electrons next to a 0 DN floor is skewed, which the censored
    # Gaussian model of the floor-clipped pixels only approximates
    read_tol = 0.10 if case == "sidd-black0-iso100" else 0.05
    assert rel_err(fit.read, result.read) < read_tol
    clipped_floor = case in ("cycleisp-clip01", "sidd-black0-iso100")
    assert fit.method == ("pairs-censored" if clipped_floor else "pairs")


def test_fit_pairs_clipping_matters(scenes: dict) -> None:
    """Ignoring the clip levels biases the fit; the default excludes clipped data."""
    clean = natural_scene("astronaut", 1, brighten=3.0)
    assert np.mean(clean >= 1.0) > 0.1  # strongly saturated highlights
    params = PhysicsParams(gain=2.0, read_scale=3.0, black=64, white=1023)
    result = apply_noise(clean, params, np.random.default_rng(5))
    good = fit_pairs(result.noisy, clean)
    naive = fit_pairs(result.noisy, clean, clip_low=None, clip_high=None, margin=0.0, method="binned")
    assert rel_err(good.shot, result.shot) < 0.05 and rel_err(good.read, result.read) < 0.05
    assert rel_err(naive.shot, result.shot) > 0.10
    # the floor-clipped CycleISP case: binned (exclusion only) vs censored refinement
    result = apply_noise(clean, GaussianParams(shot=3.4e-3, read=5e-5, clip=True), np.random.default_rng(6))
    binned = fit_pairs(result.noisy, clean, method="binned")
    censored = fit_pairs(result.noisy, clean, method="censored")
    assert rel_err(binned.shot, result.shot) < 0.05
    assert rel_err(censored.read, result.read) < 0.05
    assert rel_err(censored.read, result.read) < rel_err(binned.read, result.read)


def test_fit_pairs_pools_images_and_reports_bins(scenes: dict) -> None:
    params = GaussianParams(shot=1e-3, read=1e-5)
    clean = [scenes["shapes0"], scenes["astronaut"]]
    noisy = [apply_noise(c, params, np.random.default_rng(i)).noisy for i, c in enumerate(clean)]
    fit = fit_pairs(noisy, clean)
    assert rel_err(fit.shot, [1e-3] * 4) < 0.03 and rel_err(fit.read, [1e-5] * 4) < 0.03
    assert fit.n_pixels.tolist() == [2 * 256 * 256] * 4  # nothing clipped, nothing excluded
    assert len(fit.bins) == 4 and np.all(fit.r2 > 0.95)
    for b in fit.bins:
        assert b.mean.shape == b.var.shape == b.count.shape == b.used.shape
        assert b.count.sum() == 2 * 256 * 256 and np.all(np.diff(b.mean) > 0)
    summary = json.loads(json.dumps(fit.to_dict(bins=True)))
    assert set(summary["bins"]) == {"R", "Gr", "Gb", "B"}


def test_fit_pairs_errors() -> None:
    x = np.full((4, 8, 8), 0.5, np.float32)
    with pytest.raises(RawSynthError, match=r"noisy/clean: pair 0 has shapes \(4, 8, 8\) and \(4, 8, 6\)"):
        fit_pairs(x, x[:, :, :6])
    with pytest.raises(RawSynthError, match=r"noisy\[0\]: expected packed RAW of shape \(4, h, w\)"):
        fit_pairs(np.zeros((3, 8, 8)), np.zeros((3, 8, 8)))
    with pytest.raises(RawSynthError, match="the clean image is constant"):
        fit_pairs(np.random.default_rng(0).normal(0.5, 0.01, (4, 32, 32)), np.full((4, 32, 32), 0.5))
    with pytest.raises(RawSynthError, match="method: expected 'auto', 'binned' or 'censored'"):
        fit_pairs(x, x, method="ml")


def test_detect_quant_step() -> None:
    dn = np.random.default_rng(0).integers(0, 1024, 5000)
    assert detect_quant_step((dn - 64) / 959.0) == pytest.approx(1 / 959.0)
    assert detect_quant_step(np.random.default_rng(0).random(5000)) == 0.0


# ----------------------------------------------------------------------------- flats and darks

# ELD-like cameras: (gain K, Tukey scale, lambda, row sigma, black, white, seed)
FLAT_DARK_CASES = {
    "sony-a7s2-like": (1.5, 1.76, -0.026, 0.6, 512, 16383, 0),
    "nikon-d850-like-high-iso": (8.0, 4.0, -0.2, 3.0, 512, 16383, 1),
    "phone-12bit-gaussian-read": (3.0, 3.0, 0.14, 1.0, 256, 4095, 2),
}


def flat_dark_frames(gain, scale, lam, row, black, white, seed, size=128):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    vignette = 1.0 - 0.25 * ((yy - 0.5) ** 2 + (xx - 0.5) ** 2) * 4.0
    prnu = 1.0 + 0.01 * rng.standard_normal((4, size, size))  # photo-response non-uniformity
    params = PhysicsParams(gain=gain, read_scale=scale, black=black, white=white, read_model="tukey",
                           tukey_lambda=lam, row_scale=row, bias=(0.5, -0.3, 0.2, 0.1),
                           fixed_pattern=rng.normal(0.0, 1.0, (4, size, size)))  # dark-signal non-uniformity
    flats = [apply_noise((level * vignette * prnu).astype(np.float32), params, rng).noisy
             for level in (0.05, 0.15, 0.3, 0.5, 0.7, 0.95) for _ in range(2)]
    darks = [apply_noise(np.zeros((4, size, size), np.float32), params, rng).noisy for _ in range(8)]
    return params, flats, darks


@pytest.mark.parametrize("case", sorted(FLAT_DARK_CASES))
def test_fit_flat_dark_recovers_physics_parameters(case: str) -> None:
    gain, scale, lam, row, black, white, seed = FLAT_DARK_CASES[case]
    params, flats, darks = flat_dark_frames(gain, scale, lam, row, black, white, seed)
    fit = fit_flat_dark(flats, darks, white, black)
    read_sigma = scale * math.sqrt(tukey_lambda_variance(lam))
    assert rel_err(fit.gain, [gain] * 4) < 0.05
    assert rel_err(fit.read_sigma, [read_sigma] * 4) < 0.05
    assert rel_err(fit.tukey_scale, [scale] * 4) < 0.05
    assert abs(fit.row_sigma / row - 1.0) < 0.05
    assert abs(fit.tukey_lambda - lam) < 0.03
    # the mean of 8 dark frames of 128 x 128: row noise dominates its uncertainty
    bias_sd = math.sqrt(row**2 / (8 * 128) + read_sigma**2 / (8 * 128 * 128) + 1.0 / (128 * 128))
    np.testing.assert_allclose(fit.bias, [0.5, -0.3, 0.2, 0.1], atol=4 * bias_sd)
    assert fit.quantized and fit.n_flat_levels == 6 and fit.n_darks == 8
    # the normalised equivalent equals the noise model's own
    truth = apply_noise(np.zeros((4, 128, 128), np.float32), params, 0)
    assert rel_err(fit.shot, truth.shot) < 0.05
    assert rel_err(fit.read, truth.read) < 0.05
    # round trip to noise parameters
    back = fit.to_params()
    assert back.read_model == "tukey" and back.tukey_lambda == pytest.approx(fit.tukey_lambda)
    assert back.row_scale == pytest.approx(fit.row_sigma) and back.quantize
    assert fit.to_noise_fit().method == "flat-dark"
    assert json.loads(json.dumps(fit.to_dict()))["gain"] == pytest.approx(fit.gain.tolist())


def test_fit_flat_dark_drops_saturated_levels() -> None:
    params, flats, darks = flat_dark_frames(2.0, 2.0, 0.0, 0.5, 512, 16383, 3, size=64)
    extra = [apply_noise(np.full((4, 64, 64), 1.05, np.float32), params, np.random.default_rng(k)).noisy
             for k in range(2)]
    fit = fit_flat_dark(flats + extra, darks, 16383, 512)
    assert fit.n_flat_levels == 7
    assert all(not b.used[-1] and b.used[:-1].all() for b in fit.ptc)  # the saturated level is out
    assert rel_err(fit.gain, [2.0] * 4) < 0.05


def test_fit_flat_dark_errors() -> None:
    frame = np.zeros((4, 16, 16), np.float32)
    with pytest.raises(RawSynthError, match=r"flats: need at least two frames at the same light level"):
        fit_flat_dark([frame + 0.1, frame + 0.5], [frame, frame], 1023, 64)
    with pytest.raises(RawSynthError, match=r"white_level 60 must be greater than every black level"):
        fit_flat_dark([frame], [frame], 60, 64)
    with pytest.raises(RawSynthError, match=r"darks\[1\]: shape \(4, 8, 8\) differs from darks\[0\]"):
        fit_flat_dark([frame, frame], [frame, frame[:, :8, :8]], 1023, 64)


def test_ppcc_matches_scipy_probplot() -> None:
    x = sample_tukey_lambda((3000,), -0.1, 2.0, np.random.default_rng(0))
    for lam in (-0.2, 0.0, 0.14, 0.5):
        _, (_, _, r) = stats.probplot(x, sparams=(lam,), dist="tukeylambda")
        assert ppcc(x, lam) == pytest.approx(r, abs=1e-9)


@pytest.mark.parametrize("lam", [-0.2, -0.1, 0.0, 0.14, 0.5])
def test_fit_tukey_lambda_recovers_shape(lam: float) -> None:
    x = sample_tukey_lambda((50000,), lam, 3.0, np.random.default_rng(1))
    estimate, value = fit_tukey_lambda(x)
    assert abs(estimate - lam) < 0.02 and value > 0.99


def test_tukey_quantiles_with_rounding_and_gaussian_terms() -> None:
    rng = np.random.default_rng(2)
    lam, scale = -0.1, 1.5
    u = np.array([0.001, 0.02, 0.25, 0.5, 0.75, 0.98, 0.999])
    n = 1_000_000
    mc = scale * sample_tukey_lambda((n,), lam, 1.0, rng) + rng.uniform(-0.5, 0.5, n) + rng.normal(0.0, 0.4, n)
    expected = np.quantile(mc, u)
    np.testing.assert_allclose(tukey_quantiles(u, lam, scale, 1.0, 0.4), expected, rtol=0.01, atol=0.03)
    np.testing.assert_allclose(tukey_quantiles(u, lam, scale), scale * stats.tukeylambda.ppf(u, lam), rtol=1e-9)


# ----------------------------------------------------------------------------- blind

# phone noise levels (SIDD cam_iso_nlf: GP/IP/S6 ISO 100, GP/N6/G4 ISO 800) and the ends of the range
BLIND_CASES = [(2.28e-4, 2e-6), (7.02e-4, 3e-6), (1.764e-3, 1.2e-5), (3.476e-3, 5.2e-5), (1e-2, 1e-4)]
BLIND_EXTREMES = [(1e-4, 1e-7), (1e-4, 1e-5), (1e-2, 1e-6)]


@pytest.mark.parametrize("scene, seed", [("astronaut", 0), ("astronaut", 1), ("shapes0", 2), ("shapes1", 3)])
def test_estimate_blind_recovers_phone_levels(scenes: dict, scene: str, seed: int) -> None:
    clean = scenes[scene]
    for k, (shot, read) in enumerate(BLIND_CASES):
        noisy = apply_noise(clean, GaussianParams(shot=shot, read=read), np.random.default_rng(10 * k + seed)).noisy
        fit = estimate_blind(noisy)
        assert fit.method == "blind"
        assert rel_err(fit.shot, [shot] * 4) < 0.15, (shot, read, fit.shot)
        assert rel_err(fit.read, [read] * 4) < 0.15, (shot, read, fit.read)


def test_estimate_blind_range_ends_on_gradients_and_edges(scenes: dict) -> None:
    """The read term is measurable only where enough flat area lies below ~read/shot."""
    clean = scenes["shapes0"]
    for k, (shot, read) in enumerate(BLIND_EXTREMES):
        noisy = apply_noise(clean, GaussianParams(shot=shot, read=read), np.random.default_rng(50 + k)).noisy
        fit = estimate_blind(noisy)
        assert rel_err(fit.shot, [shot] * 4) < 0.15
        if read / shot >= 1e-3:
            assert rel_err(fit.read, [read] * 4) < 0.15
        else:  # read / shot = 1e-4: below the darkest level of the scene, not identifiable
            assert np.all(fit.read < 5e-6)


def test_estimate_blind_with_clipping(scenes: dict) -> None:
    clean = scenes["astronaut-clipped"]
    result = apply_noise(clean, PhysicsParams(gain=2.0, read_scale=3.0, black=64, white=1023), np.random.default_rng(3))
    fit = estimate_blind(result.noisy)
    assert rel_err(fit.shot, result.shot) < 0.15 and rel_err(fit.read, result.read) < 0.15


def test_estimate_blind_pure_noise_levels() -> None:
    """Flat patches at known levels: the truncation-corrected estimate is unbiased."""
    levels = np.linspace(0.01, 0.6, 16).reshape(4, 4)
    clean = np.stack([np.kron(levels, np.ones((64, 64)))] * 4).astype(np.float32)
    fit = estimate_blind(apply_noise(clean, GaussianParams(shot=4e-3, read=2e-4), np.random.default_rng(4)).noisy)
    assert rel_err(fit.shot, [4e-3] * 4) < 0.05 and rel_err(fit.read, [2e-4] * 4) < 0.10
    null = null_statistics(8, 0.99)
    assert 0.95 < null.kept_mean < 1.0 and null.v_limit > 1.0 and null.dof > 10


def test_estimate_blind_errors() -> None:
    with pytest.raises(RawSynthError, match=r"noisy\[0\]: image \(4, 6, 6\) is smaller than one block"):
        estimate_blind(np.zeros((4, 6, 6), np.float32))
    with pytest.raises(RawSynthError, match="estimate_blind: need block >= 4"):
        estimate_blind(np.zeros((4, 64, 64), np.float32), block=2)


def test_estimate_blind_on_real_night_raw(shared_data: Path) -> None:
    """Real vivo X90 night RAW (12-bit, black already subtracted): a plausible positive level."""
    raw = np.load(shared_file(shared_data, "aisp-vivo-x90/x90_3_4.npy")).astype(np.float32) / 4095.0
    fit = estimate_blind(np.moveaxis(raw, -1, 0), clip_low=0.0, clip_high=1.0)
    assert np.all(fit.shot > 1e-5) and np.all(fit.shot < 5e-2)
    assert np.all(np.isfinite(fit.read)) and np.all(fit.n_pixels > 100)


# ----------------------------------------------------------------------------- DNG NoiseProfile


def _dng(tmp_path: Path, name: str, profile, iso=None, packed=None) -> Path:
    packed = np.full((4, 32, 32), 0.25, np.float32) if packed is None else packed
    return write_dng(tmp_path / name, RawImage(packed, "GRBG", black_level=64, white_level=1023,
                                               noise_profile=profile, iso=iso))


def test_noise_from_dng_one_pair(tmp_path: Path) -> None:
    fit = noise_from_dng(_dng(tmp_path, "one.dng", (0.00047946, 1.7e-6)))
    assert fit.shot.tolist() == [0.00047946] * 4
    assert fit.read.tolist() == [1.7e-6] * 4
    assert fit.method == "dng-noise-profile" and fit.source == (str(tmp_path / "one.dng"),)


def test_noise_from_dng_three_pairs(tmp_path: Path) -> None:
    profile = ((1.25e-3, 3.5e-6), (1.0e-3, 2.5e-6), (1.0e-3, 2.5e-6), (1.5e-3, 4.5e-6))  # R, G, G, B
    fit = noise_from_dng(_dng(tmp_path, "three.dng", profile))
    assert fit.shot.tolist() == [1.25e-3, 1.0e-3, 1.0e-3, 1.5e-3]
    assert fit.read.tolist() == [3.5e-6, 2.5e-6, 2.5e-6, 4.5e-6]


def test_noise_from_dng_without_profile(tmp_path: Path, shared_data: Path) -> None:
    path = _dng(tmp_path, "none.dng", None)
    with pytest.raises(RawSynthError, match=r"none.dng: no NoiseProfile tag \(51041\) in the file"):
        noise_from_dng(path)
    real = shared_file(shared_data, "tinydng-canon550d/colorchart.dng")  # a real DNG without the tag
    with pytest.raises(RawSynthError, match=r"colorchart.dng: no NoiseProfile tag \(51041\)"):
        noise_from_dng(real)


# ----------------------------------------------------------------------------- ISO relation


def test_fit_iso_relation_power_laws() -> None:
    isos = [100, 200, 400, 800, 1600]
    base_shot = np.array([1.1, 1.0, 1.0, 1.3]) * 1e-4
    fits = {}
    for iso in isos:
        shot = base_shot * (iso / 100.0) ** 0.9
        read = np.exp(2.18 * np.log(shot) + 1.2)  # Brooks' read-vs-shot line
        fits[iso] = NoiseFit(shot=shot, read=read, method="pairs")
    section = fit_iso_relation(fits)
    assert section["model"] == "heteroscedastic-gaussian" and section["sampler"] == "iso-table"
    params = section["params"]
    assert params["iso"] == isos
    np.testing.assert_allclose(params["shot"], [fits[i].shot for i in isos], rtol=1e-12)
    assert params["shot_scatter"] == pytest.approx(0.0, abs=1e-9)
    assert params["read_scatter"] == pytest.approx(0.0, abs=1e-9)
    rel = section["relation"]
    np.testing.assert_allclose(rel["shot_vs_iso"]["slope"], [0.9] * 4, rtol=1e-9)
    np.testing.assert_allclose(rel["shot_vs_iso"]["intercept"], np.log(base_shot) - 0.9 * math.log(100), rtol=1e-9)
    np.testing.assert_allclose(rel["read_vs_shot"]["slope"], [2.18] * 4, rtol=1e-9)
    np.testing.assert_allclose(rel["read_vs_shot"]["intercept"], [1.2] * 4, rtol=1e-9)
    # YAML round trip into a camera profile and a draw through the profile sampler
    text = yaml.safe_dump({"name": "cal", "cfa": "RGGB", "bit_depth": 10, "black_level": 64, "white_level": 1023,
                           "xyz_to_cam": np.eye(3).tolist(), "noise": section}, sort_keys=False)
    profile = parse_profile(yaml.safe_load(text))
    draw = sample_camera_noise(profile, np.random.default_rng(0))
    assert 100 <= draw.iso <= 1600
    # zero scatter: the draw is the table interpolated at the drawn ISO (exact power law in between)
    expected = base_shot * (draw.iso / 100.0) ** 0.9
    np.testing.assert_allclose(draw.params.shot, expected, rtol=1e-6)


def test_fit_iso_relation_scatter_and_single_iso() -> None:
    rng = np.random.default_rng(0)
    fits = {iso: NoiseFit(shot=1e-5 * iso * math.exp(0.1 * rng.standard_normal()), read=2e-6, method="blind")
            for iso in (100, 400, 1600, 3200)}
    section = fit_iso_relation(fits)
    assert section["params"]["shot_scatter"] > 0.01
    single = fit_iso_relation({800.0: NoiseFit(shot=3e-3, read=2e-5, method="dng-noise-profile")})
    assert single["params"]["iso"] == [800] and single["params"]["shot_scatter"] == 0.0
    assert single["relation"]["shot_vs_iso"] is None
    with pytest.raises(RawSynthError, match="fits: expected a non-empty mapping"):
        fit_iso_relation({})
    with pytest.raises(RawSynthError, match="model: 'physics' needs flat/dark"):
        fit_iso_relation(fits, model="physics")


def test_fit_iso_relation_physics_section() -> None:
    fits = {}
    for iso, (gain, scale, lam, row, seed) in {100: (0.5, 1.5, -0.05, 0.4, 0), 800: (4.0, 3.0, -0.1, 1.5, 1)}.items():
        _, flats, darks = flat_dark_frames(gain, scale, lam, row, 512, 16383, seed, size=64)
        fits[iso] = fit_flat_dark(flats, darks, 16383, 512)
    section = fit_iso_relation(fits)
    assert section["model"] == "physics" and section["sampler"] == "eld"
    eld = check_eld_params(section["params"])
    assert eld["Kmin"] == pytest.approx(min(np.exp(np.log(f.gain).mean()) for f in fits.values()))
    assert eld["G_shape"] == [fits[100].tukey_lambda, fits[800].tukey_lambda]
    g = eld["Profile-1"]["G_scale"]
    k100 = math.exp(float(np.log(fits[100].gain).mean()))
    assert math.exp(g["slope"] * math.log(k100) + g["bias"]) == pytest.approx(
        math.exp(float(np.log(fits[100].tukey_scale).mean())), rel=1e-9)
    # the per-channel black-level error comes back in R, Gr, Gb, B order from the ELD sampler
    one = fit_iso_relation({100: fits[100]})
    drawn = sample_eld(one["params"], 0, black=512, white=16383)
    assert drawn.gain == pytest.approx(eld["Kmin"])
    np.testing.assert_allclose(drawn.bias, fits[100].bias, rtol=1e-12)
    assert drawn.read_scale == pytest.approx(math.exp(float(np.log(fits[100].tukey_scale).mean())))


# ----------------------------------------------------------------------------- files


def _write_npy_mosaic(path: Path, packed_norm: np.ndarray, cfa: str, black: float, white: float, integer: bool) -> Path:
    if integer:
        dn = to_dn(packed_norm, black, white)
    else:
        dn = (packed_norm.astype(np.float64) * (white - black) + black).astype(np.float32)
    np.save(path, unpack(dn, cfa))
    return path


def test_calibrate_files_pairs_from_npy(tmp_path: Path, scenes: dict) -> None:
    black, white = 64, 1023
    noisy_paths, clean_paths = [], []
    truths = {}
    for iso, gain in ((100, 0.5), (800, 4.0)):
        params = PhysicsParams(gain=gain, read_scale=2.0 + gain, black=black, white=white)
        clean = scenes["astronaut-clipped"]
        result = apply_noise(clean, params, np.random.default_rng(iso))
        truths[iso] = result
        noisy_paths.append(_write_npy_mosaic(tmp_path / f"noisy{iso}.npy", result.noisy, "GBRG", black, white, True))
        clean_paths.append(_write_npy_mosaic(tmp_path / f"clean{iso}.npy", clean, "GBRG", black, white, False))
    with pytest.raises(RawSynthError, match=r"noisy100.npy: a bare mosaic needs cfa, black_level, white_level"):
        calibrate_files("pairs", noisy_paths, clean=clean_paths, iso=100)
    mosaic = dict(cfa="GBRG", black_level=black, white_level=white)
    # an ISO for one file only: the other could be at any ISO
    with pytest.raises(RawSynthError, match=r"noisy800.npy: ISO unknown \(not in the file's metadata\) while "
                                            r".*noisy100.npy is at ISO 100; .* --iso .*noisy800.npy=ISO"):
        calibrate_files("pairs", noisy_paths, clean=clean_paths, iso={noisy_paths[0]: 100}, **mosaic)
    with pytest.raises(RawSynthError, match=r"iso: elsewhere.npy is not one of the input files"):
        calibrate_files("pairs", noisy_paths, clean=clean_paths, iso={"elsewhere.npy": 100}, **mosaic)
    with pytest.raises(RawSynthError, match=r"iso of .*noisy100.npy: expected a positive number, got 0"):
        calibrate_files("pairs", noisy_paths, clean=clean_paths, iso={noisy_paths[0]: 0}, **mosaic)
    # one capture level needs no ISO: its fit's ISO is None
    single = calibrate_files("pairs", noisy_paths[:1], clean=clean_paths[:1], **mosaic)
    assert list(single.fits) == [None] and single.summary()["iso"] is None
    assert single.noise["params"]["iso"] == [100] and single.noise["relation"]["assumed_iso"] == 100
    # one ISO per call (bare mosaics carry no ISO): calibrate each, then combine
    fits = {}
    for k, iso in enumerate((100, 800)):
        cal = calibrate_files("pairs", [noisy_paths[k]], clean=[clean_paths[k]], iso=iso, cfa="GBRG",
                              black_level=black, white_level=white)
        assert isinstance(cal, Calibration) and list(cal.fits) == [float(iso)]
        fit = cal.fits[float(iso)]
        assert rel_err(fit.shot, truths[iso].shot) < 0.05 and rel_err(fit.read, truths[iso].read) < 0.05
        summary = json.loads(json.dumps(cal.summary()))
        assert summary["shot"] == pytest.approx(fit.shot.tolist()) and summary["iso"] == iso
        assert summary["noise"]["sampler"] == "iso-table" and summary["cfa"] == "GBRG"
        fits[iso] = fit
    assert fit_iso_relation(fits)["params"]["iso"] == [100, 800]
    # or in one call with an ISO per file (clean files may be named too, their ISO is unused)
    both = calibrate_files("pairs", noisy_paths, clean=clean_paths, iso={**dict(zip(noisy_paths, (100, 800))),
                                                                          clean_paths[0]: 100}, **mosaic)
    assert list(both.fits) == [100.0, 800.0]
    for iso in (100, 800):
        np.testing.assert_allclose(both.fits[float(iso)].shot, fits[iso].shot, rtol=1e-12)


def test_calibrate_files_blind_and_dng_group_by_iso(tmp_path: Path, scenes: dict) -> None:
    clean = scenes["shapes0"]
    paths, truth = [], {}
    for iso, gain in ((200, 1.0), (1600, 8.0)):
        params = PhysicsParams(gain=gain, read_scale=3.0 + gain, black=64, white=1023)
        result = apply_noise(clean, params, np.random.default_rng(iso))
        truth[iso] = result
        profile = tuple((float(s), float(r)) for s, r in zip(result.shot, result.read))
        paths.append(write_dng(tmp_path / f"iso{iso}.dng", RawImage(result.noisy, "RGGB", 64, 1023, iso=iso,
                                                                       noise_profile=profile)))
    blind = calibrate_files("blind", paths)
    assert list(blind.fits) == [200.0, 1600.0]
    for iso in (200, 1600):
        assert rel_err(blind.fits[float(iso)].shot, truth[iso].shot) < 0.15
        assert rel_err(blind.fits[float(iso)].read, truth[iso].read) < 0.15
    assert blind.noise["params"]["iso"] == [200, 1600]
    dng = calibrate_files("dng", paths)
    np.testing.assert_allclose(dng.fits[200.0].shot, truth[200].shot, rtol=1e-6)  # float32 levels written as doubles
    profile = dng.to_profile("calibrated")
    assert profile.cfa == "RGGB" and profile.bit_depth == 10 and profile.noise.sampler == "iso-table"
    draw = sample_camera_noise(parse_profile(yaml.safe_load(profile.to_yaml())), np.random.default_rng(0))
    assert 200 <= draw.iso <= 1600
    with pytest.raises(RawSynthError, match="method: expected one of pairs, flat-dark, blind, dng, got 'x'"):
        calibrate_files("x", paths)  # type: ignore[arg-type]


def test_calibrate_files_flat_dark(tmp_path: Path) -> None:
    params, flats, darks = flat_dark_frames(2.0, 2.0, -0.05, 0.8, 256, 4095, 7, size=64)
    flat_paths = [_write_npy_mosaic(tmp_path / f"flat{k}.npy", f, "GRBG", 256, 4095, True) for k, f in enumerate(flats)]
    dark_paths = [_write_npy_mosaic(tmp_path / f"dark{k}.npy", d, "GRBG", 256, 4095, True) for k, d in enumerate(darks)]
    cal = calibrate_files("flat-dark", flat_paths, darks=dark_paths, iso=400, cfa="GRBG", black_level=256,
                          white_level=4095)
    fit = cal.fits[400.0]
    assert rel_err(fit.gain, [2.0] * 4) < 0.05
    assert cal.noise["model"] == "physics" and cal.noise["sampler"] == "eld"
    summary = json.loads(json.dumps(cal.summary()))
    assert summary["per_iso"][0]["gain"] == pytest.approx(fit.gain.tolist())
    assert len(summary["per_iso"][0]["files"]) == len(flats) + len(darks)
    with pytest.raises(RawSynthError, match="darks: the flat-dark method needs dark frames"):
        calibrate_files("flat-dark", flat_paths, iso=400, cfa="GRBG", black_level=256, white_level=4095)
    with pytest.raises(RawSynthError, match=r"dark0.npy: ISO unknown .* while .*flat0.npy is at ISO 400"):
        calibrate_files("flat-dark", flat_paths, darks=dark_paths, iso=dict.fromkeys(flat_paths, 400), cfa="GRBG",
                        black_level=256, white_level=4095)
