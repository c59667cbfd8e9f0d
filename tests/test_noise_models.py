"""Tests of raw_synth.noise models: variance per plane and intensity, equivalents, row noise,
Tukey-lambda, quantisation, clipping, numpy/torch agreement, determinism and input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from raw_synth.errors import RawSynthError
from raw_synth.noise import (
    AddNoise,
    GaussianParams,
    NoiseResult,
    PhysicsParams,
    PoissonGaussianParams,
    apply_noise,
    equivalent_read_dn2,
    from_dn,
    sample_tukey_lambda,
    to_dn,
    tukey_lambda_ppf,
    tukey_lambda_variance,
)

LEVELS = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9)
ROWS, COLS = 2048, 32  # per level and plane: 65536 samples -> sampling error of a variance ~0.6 %
BLACK, WHITE = 512.0, 16383.0
SCALE = WHITE - BLACK


def flat_levels(levels=LEVELS, rows=ROWS, cols=COLS) -> np.ndarray:
    """(4, rows, len(levels) * cols) float32: column block j is flat at levels[j] in every plane."""
    row = np.repeat(np.asarray(levels, np.float32), cols)
    return np.ascontiguousarray(np.broadcast_to(row, (4, rows, row.size)))


def block_variances(noisy: np.ndarray, n_levels: int, cols: int = COLS) -> np.ndarray:
    """(4, n_levels) per-plane variance of each flat column block."""
    h = noisy.shape[1]
    blocks = noisy.reshape(4, h, n_levels, cols)
    return blocks.var(axis=(1, 3), dtype=np.float64)


def expected_variances(shot: np.ndarray, read: np.ndarray, levels=LEVELS) -> np.ndarray:
    return np.asarray(shot, np.float64)[:, None] * np.asarray(levels)[None, :] + np.asarray(read, np.float64)[:, None]


def run_both(x: np.ndarray, params, seed: int):
    """(numpy result, torch result as numpy) of apply_noise on x and on x[None]."""
    res_np = apply_noise(x, params, np.random.default_rng(seed))
    res_t = apply_noise(torch.from_numpy(x)[None], params, torch.Generator().manual_seed(seed))
    return res_np, NoiseResult(res_t.noisy[0].numpy(), res_t.shot[0].numpy(), res_t.read[0].numpy())


# ----------------------------------------------------------------------------- heteroscedastic Gaussian


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gaussian_variance_per_plane_and_level(seed: int) -> None:
    shot = (0.01, 0.004, 0.002, 0.008)
    read = (1e-4, 4e-5, 2e-4, 1e-5)
    x = flat_levels()
    for res in run_both(x, GaussianParams(shot=shot, read=read), seed):
        np.testing.assert_allclose(res.shot, np.float32(shot))
        np.testing.assert_allclose(res.read, np.float32(read))
        assert res.noisy.dtype == np.float32
        got = block_variances(res.noisy, len(LEVELS))
        np.testing.assert_allclose(got, expected_variances(shot, read), rtol=0.03)
        means = res.noisy.reshape(4, ROWS, len(LEVELS), COLS).mean(axis=(1, 3))
        np.testing.assert_allclose(means, np.broadcast_to(LEVELS, (4, len(LEVELS))), atol=1e-3)


def test_gaussian_clip_off_by_default_and_on_request() -> None:
    x = np.zeros((4, 64, 64), np.float32)
    x[:, :, 32:] = 1.0
    params = GaussianParams(shot=0.01, read=0.01)
    noisy = apply_noise(x, params, 3).noisy
    assert noisy.min() < 0.0 and noisy.max() > 1.0
    clipped = apply_noise(x, GaussianParams(shot=0.01, read=0.01, clip=True), 3).noisy
    assert clipped.min() == 0.0 and clipped.max() == 1.0
    np.testing.assert_array_equal(clipped, np.clip(noisy, 0.0, 1.0))


def test_gaussian_torch_batch_per_sample_params() -> None:
    shot = torch.tensor([[0.01] * 4, [0.001] * 4])
    read = torch.tensor([[1e-4] * 4, [1e-3] * 4])
    x = torch.full((2, 4, 256, 256), 0.5)
    res = apply_noise(x, GaussianParams(shot=shot, read=read), torch.Generator().manual_seed(0))
    assert res.shot.shape == (2, 4) and res.read.shape == (2, 4)
    var = res.noisy.var(dim=(2, 3)).double()
    np.testing.assert_allclose(var.numpy(), (shot * 0.5 + read).double().numpy(), rtol=0.03)


# ----------------------------------------------------------------------------- Poisson-Gaussian


@pytest.mark.parametrize("seed", [0, 1])
def test_poisson_gaussian_equivalents_match_variance(seed: int) -> None:
    gain = (2.0, 1.0, 1.5, 3.0)
    read_dn = (4.0, 8.0, 2.0, 6.0)
    params = PoissonGaussianParams(gain=gain, read_dn=read_dn, black=BLACK, white=WHITE)
    x = flat_levels()
    for res in run_both(x, params, seed):
        np.testing.assert_allclose(res.shot, np.asarray(gain) / SCALE, rtol=1e-6)
        np.testing.assert_allclose(res.read, (np.asarray(read_dn) / SCALE) ** 2, rtol=1e-6)
        got = block_variances(res.noisy, len(LEVELS))
        np.testing.assert_allclose(got, expected_variances(res.shot, res.read), rtol=0.03)


def test_poisson_gaussian_is_poisson_in_electrons() -> None:
    # Without read noise, noisy * scale / K is an integer electron count with mean = variance.
    params = PoissonGaussianParams(gain=4.0, read_dn=0.0, black=0, white=1000)
    x = np.full((4, 256, 256), 0.01, np.float32)  # 2.5 electrons
    electrons = apply_noise(x, params, 0).noisy.astype(np.float64) * 1000 / 4.0
    np.testing.assert_allclose(electrons, np.round(electrons), atol=1e-3)
    assert abs(electrons.mean() - 2.5) < 0.02 and abs(electrons.var() - 2.5) < 0.05


def test_poisson_gaussian_clip() -> None:
    params = PoissonGaussianParams(gain=1.0, read_dn=50.0, black=64, white=1023, clip=True)
    x = np.zeros((4, 64, 64), np.float32)
    x[:, :, 32:] = 1.0
    noisy = apply_noise(x, params, 0).noisy
    assert noisy.min() == pytest.approx(-64 / 959) and noisy.max() == pytest.approx(1.0)
    unclipped = apply_noise(x, PoissonGaussianParams(gain=1.0, read_dn=50.0, black=64, white=1023), 0).noisy
    assert unclipped.max() > 1.0


def test_poisson_gaussian_from_noise_level() -> None:
    p = PoissonGaussianParams.from_noise_level(shot=0.002, read=(1e-5, 2e-5, 3e-5, 4e-5), black=0, white=1023)
    res = apply_noise(np.zeros((4, 2, 2), np.float32), p, 0)
    np.testing.assert_allclose(res.shot, 0.002, rtol=1e-6)
    np.testing.assert_allclose(res.read, [1e-5, 2e-5, 3e-5, 4e-5], rtol=1e-5)


# ----------------------------------------------------------------------------- Tukey-lambda


@pytest.mark.parametrize("lam", [-0.3, -0.1, 1e-5, 0.0, 0.14, 0.5, 1.0])
def test_tukey_lambda_variance_closed_form_matches_scipy(lam: float) -> None:
    assert tukey_lambda_variance(lam) == pytest.approx(float(stats.tukeylambda.var(lam)), rel=1e-9)


def test_tukey_lambda_variance_limit_and_domain() -> None:
    assert tukey_lambda_variance(0.0) == pytest.approx(math.pi**2 / 3, rel=1e-15)
    assert tukey_lambda_variance(1e-9) == pytest.approx(math.pi**2 / 3, rel=1e-8)
    with pytest.raises(RawSynthError, match=r"tukey_lambda: must be > -0.5"):
        tukey_lambda_variance(-0.5)


@pytest.mark.parametrize("lam", [-0.2, 0.0, 0.1])
def test_tukey_lambda_ppf_matches_scipy(lam: float) -> None:
    u = np.array([1e-9, 0.01, 0.3, 0.5, 0.8, 0.999])
    np.testing.assert_allclose(tukey_lambda_ppf(u, lam), stats.tukeylambda.ppf(u, lam), rtol=1e-10, atol=1e-12)
    ut = torch.from_numpy(u)
    np.testing.assert_allclose(tukey_lambda_ppf(ut, lam).numpy(), stats.tukeylambda.ppf(u, lam), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("lam", [-0.1, 0.0, 0.14, 0.5])
def test_tukey_lambda_sampler_variance(lam: float) -> None:
    draws = sample_tukey_lambda((1_000_000,), lam, 2.0, np.random.default_rng(7))
    assert np.isfinite(draws).all()
    assert draws.var() == pytest.approx(4.0 * tukey_lambda_variance(lam), rel=0.02)
    assert abs(draws.mean()) < 0.01
    # Distribution, not only variance: Kolmogorov-Smirnov distance to scipy's Tukey-lambda.
    assert stats.kstest(draws[:20000] / 2.0, stats.tukeylambda(lam).cdf).statistic < 0.015


# ----------------------------------------------------------------------------- physics model


@pytest.mark.parametrize(
    ("read_model", "lam", "seed"),
    [("gaussian", 0.0, 0), ("tukey", -0.1, 1), ("tukey", 0.12, 2)],
)
def test_physics_equivalents_match_variance(read_model: str, lam: float, seed: int) -> None:
    params = PhysicsParams(
        gain=(1.5, 2.0, 2.5, 1.0),
        read_scale=(4.0, 3.0, 5.0, 2.0),
        black=BLACK,
        white=WHITE,
        read_model=read_model,
        tukey_lambda=lam,
        row_scale=1.5,
        bias=(0.5, -0.5, 1.0, 0.0),
    )
    x = flat_levels()
    tl_var = tukey_lambda_variance(lam) if read_model == "tukey" else 1.0
    read_dn2 = np.array([4.0, 3.0, 5.0, 2.0]) ** 2 * tl_var + 1.5**2 + 1.0 / 12.0
    np.testing.assert_allclose(equivalent_read_dn2(params), read_dn2, rtol=1e-12)
    for res in run_both(x, params, seed):
        np.testing.assert_allclose(res.shot, np.array([1.5, 2.0, 2.5, 1.0]) / SCALE, rtol=1e-6)
        np.testing.assert_allclose(res.read, read_dn2 / SCALE**2, rtol=1e-6)
        got = block_variances(res.noisy, len(LEVELS))
        np.testing.assert_allclose(got, expected_variances(res.shot, res.read), rtol=0.03)


def test_physics_row_noise_is_shared_by_mosaic_rows() -> None:
    # Row noise dominates: R/Gr share a mosaic row, Gb/B share another, independent one.
    params = PhysicsParams(gain=0.5, read_scale=3.0, black=BLACK, white=WHITE, row_scale=4.0, quantize=False)
    x = np.full((4, 4096, 64), 0.005, np.float32)
    pixel_var = 0.5 * 0.005 * SCALE + 9.0  # DN^2, shot + read
    expected = (16.0 + pixel_var / 64) / SCALE**2  # variance of a row mean
    expected_corr = 16.0 / (16.0 + pixel_var / 64)  # ~0.95
    for res in run_both(x, params, 5):
        row_means = res.noisy.astype(np.float64).mean(axis=2)  # (4, rows)
        corr = np.corrcoef(row_means)
        assert abs(corr[0, 1] - expected_corr) < 0.02 and abs(corr[2, 3] - expected_corr) < 0.02  # R-Gr, Gb-B
        for a, b in [(0, 2), (0, 3), (1, 2), (1, 3)]:
            assert abs(corr[a, b]) < 0.06
        np.testing.assert_allclose(row_means.var(axis=1), expected, rtol=0.08)
    # Without row noise the row means only carry the pixel noise.
    no_row = apply_noise(x, PhysicsParams(gain=0.5, read_scale=3.0, black=BLACK, white=WHITE, quantize=False), 5)
    assert abs(np.corrcoef(no_row.noisy.mean(axis=2))[0, 1]) < 0.06


def test_physics_quantisation_gives_integer_dn() -> None:
    params = PhysicsParams(gain=2.0, read_scale=2.5, black=BLACK, white=WHITE, read_model="tukey", tukey_lambda=-0.05)
    x = flat_levels(rows=64)
    res_np, res_t = run_both(x, params, 0)
    for res in (res_np, res_t):
        dn = res.noisy.astype(np.float64) * SCALE + BLACK
        np.testing.assert_allclose(dn, np.round(dn), atol=1e-2)
    stored = to_dn(res_np.noisy, BLACK, WHITE)
    assert stored.dtype == np.uint16
    np.testing.assert_array_equal(from_dn(stored, BLACK, WHITE), res_np.noisy)  # exact round trip
    unquantised = apply_noise(x, PhysicsParams(gain=2.0, read_scale=2.5, black=BLACK, white=WHITE, quantize=False), 0)
    frac = np.abs(unquantised.noisy * SCALE + BLACK - np.round(unquantised.noisy * SCALE + BLACK))
    assert frac.max() > 0.3


@pytest.mark.parametrize("use_torch", [False, True])
def test_physics_clips_at_zero_and_white(use_torch: bool) -> None:
    black, white = 64.0, 1023.0
    params = PhysicsParams(gain=4.0, read_scale=100.0, black=black, white=white, row_scale=20.0)
    x = np.zeros((4, 64, 64), np.float32)
    x[:, :, 32:] = 1.0
    if use_torch:
        noisy = apply_noise(torch.from_numpy(x)[None], params, 0).noisy[0].numpy()
    else:
        noisy = apply_noise(x, params, 0).noisy
    assert noisy.min() == pytest.approx(-black / (white - black), abs=1e-7)
    assert noisy.max() == pytest.approx(1.0, abs=1e-7)
    assert (noisy <= -black / (white - black) + 1e-7).mean() > 0.1 and (noisy >= 1.0 - 1e-7).mean() > 0.1
    dn = to_dn(noisy, black, white)
    assert dn.min() == 0 and dn.max() == 1023
    free = apply_noise(x, PhysicsParams(gain=4.0, read_scale=100.0, black=black, white=white, clip=False), 0)
    assert free.noisy.min() < -black / (white - black) and free.noisy.max() > 1.0


def test_physics_bias_and_fixed_pattern() -> None:
    bias = (2.0, -3.0, 5.0, 0.0)
    pattern = np.random.default_rng(1).normal(0.0, 4.0, (4, 32, 32))
    base = dict(gain=1.0, read_scale=2.0, black=BLACK, white=WHITE, row_scale=1.0, quantize=False, clip=False)
    x = np.full((4, 32, 32), 0.3, np.float32)
    plain = apply_noise(x, PhysicsParams(**base), 11).noisy.astype(np.float64)
    shifted = apply_noise(x, PhysicsParams(**base, bias=bias, fixed_pattern=pattern), 11).noisy.astype(np.float64)
    expected = (np.asarray(bias)[:, None, None] + pattern) / SCALE
    np.testing.assert_allclose(shifted - plain, expected, atol=1e-6)
    t_plain = apply_noise(torch.from_numpy(x)[None], PhysicsParams(**base), 11).noisy
    t_fp = PhysicsParams(**base, bias=bias, fixed_pattern=torch.from_numpy(pattern))
    t_shifted = apply_noise(torch.from_numpy(x)[None], t_fp, 11).noisy
    np.testing.assert_allclose((t_shifted - t_plain)[0].double().numpy(), expected, atol=1e-5)


def test_physics_from_noise_level_round_trip() -> None:
    p = PhysicsParams.from_noise_level(shot=1e-3, read=(1e-6, 2e-6, 3e-6, 4e-6), black=0, white=1023)
    res = apply_noise(np.zeros((4, 2, 2), np.float32), p, 0)
    np.testing.assert_allclose(res.shot, 1e-3, rtol=1e-6)
    np.testing.assert_allclose(res.read, [1e-6, 2e-6, 3e-6, 4e-6], rtol=1e-5)


def test_physics_torch_batch_per_sample_lambda_and_row() -> None:
    params = PhysicsParams(
        gain=torch.tensor([[1.0] * 4, [3.0] * 4]),
        read_scale=3.0,
        black=BLACK,
        white=WHITE,
        read_model="tukey",
        tukey_lambda=torch.tensor([0.0, -0.1]),
        row_scale=torch.tensor([0.0, 2.0]),
    )
    res = apply_noise(torch.full((2, 4, 512, 256), 0.2), params, torch.Generator().manual_seed(0))
    expected = res.shot.double() * 0.2 + res.read.double()
    var = res.noisy.double().var(dim=(2, 3))
    np.testing.assert_allclose(var.numpy(), expected.numpy(), rtol=0.04)
    read0 = (9.0 * math.pi**2 / 3 + 1 / 12) / SCALE**2
    read1 = (9.0 * tukey_lambda_variance(-0.1) + 4.0 + 1 / 12) / SCALE**2
    np.testing.assert_allclose(res.read.numpy(), [[read0] * 4, [read1] * 4], rtol=1e-5)


# ----------------------------------------------------------------------------- numpy vs torch, determinism


def test_numpy_and_torch_statistics_agree() -> None:
    params = PhysicsParams(gain=2.0, read_scale=4.0, black=BLACK, white=WHITE, read_model="tukey", tukey_lambda=0.05,
                           row_scale=1.0)
    res_np, res_t = run_both(flat_levels(), params, 9)
    np.testing.assert_array_equal(res_np.shot, res_t.shot)
    np.testing.assert_allclose(res_np.read, res_t.read, rtol=1e-6)
    v_np = block_variances(res_np.noisy, len(LEVELS))
    v_t = block_variances(res_t.noisy, len(LEVELS))
    np.testing.assert_allclose(v_np, v_t, rtol=0.04)
    m_np = res_np.noisy.reshape(4, ROWS, len(LEVELS), COLS).mean(axis=(1, 3))
    m_t = res_t.noisy.reshape(4, ROWS, len(LEVELS), COLS).mean(axis=(1, 3))
    np.testing.assert_allclose(m_np, m_t, atol=2e-4)


ALL_PARAMS = [
    GaussianParams(shot=0.01, read=1e-4),
    PoissonGaussianParams(gain=2.0, read_dn=3.0, black=BLACK, white=WHITE),
    PhysicsParams(gain=2.0, read_scale=3.0, black=BLACK, white=WHITE, read_model="tukey", tukey_lambda=-0.1,
                  row_scale=1.0),
]


@pytest.mark.parametrize("params", ALL_PARAMS, ids=["gaussian", "poisson_gaussian", "physics"])
def test_determinism_and_no_mutation(params) -> None:
    x = np.random.default_rng(0).random((4, 16, 24), dtype=np.float32)
    x_copy = x.copy()
    a = apply_noise(x, params, np.random.default_rng(42)).noisy
    b = apply_noise(x, params, np.random.default_rng(42)).noisy
    c = apply_noise(x, params, np.random.default_rng(43)).noisy
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(apply_noise(x, params, 42).noisy, a)  # integer seed = default_rng(seed)
    np.testing.assert_array_equal(x, x_copy)

    xt = torch.from_numpy(x_copy).unsqueeze(0).repeat(2, 1, 1, 1)
    xt_copy = xt.clone()
    ta = apply_noise(xt, params, torch.Generator().manual_seed(42)).noisy
    tb = apply_noise(xt, params, torch.Generator().manual_seed(42)).noisy
    tc = apply_noise(xt, params, torch.Generator().manual_seed(43)).noisy
    assert torch.equal(ta, tb) and not torch.equal(ta, tc)
    assert not torch.equal(ta[0], ta[1])  # independent noise per batch item
    assert torch.equal(xt, xt_copy)
    assert ta.dtype == torch.float32 and ta.shape == xt.shape


def test_add_noise_module() -> None:
    layer = AddNoise(ALL_PARAMS[2])
    x = torch.full((3, 4, 8, 8), 0.5)
    noisy, shot, read = layer(x, generator=torch.Generator().manual_seed(0))
    assert noisy.shape == (3, 4, 8, 8) and shot.shape == (3, 4) and read.shape == (3, 4)
    assert torch.equal(noisy, apply_noise(x, ALL_PARAMS[2], torch.Generator().manual_seed(0)).noisy)
    assert list(layer.parameters()) == []
    with pytest.raises(RawSynthError, match="x: AddNoise takes a torch tensor"):
        layer(np.zeros((4, 8, 8), np.float32))


# ----------------------------------------------------------------------------- DN conversion


def test_to_dn_and_from_dn() -> None:
    black = (60.0, 64.0, 64.0, 62.0)
    x = np.array([-1.0, -0.01, 0.0, 0.5, 1.0, 1.5], np.float32).reshape(1, 1, 6).repeat(4, axis=0)
    dn = to_dn(x, black, 1023)
    assert dn.dtype == np.uint16 and dn.shape == (4, 1, 6)
    assert dn[0, 0].tolist() == [0, 50, 60, 542, 1023, 1023]  # round(0.5 * 963 + 60) = 542
    assert dn[1, 0].tolist() == [0, 54, 64, 544, 1023, 1023]  # 0.5 * 959 + 64 = 543.5 -> 544 (even)
    back = from_dn(dn, black, 1023)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back[0, 0], (np.array([0, 50, 60, 542, 1023, 1023]) - 60) / 963, rtol=1e-6)
    dn_t = to_dn(torch.from_numpy(x)[None], black, 1023)
    assert dn_t.dtype == torch.uint16
    assert dn_t[0].to(torch.int32).numpy().tolist() == dn.astype(np.int32).tolist()
    back_t = from_dn(dn_t, black, 1023)
    np.testing.assert_allclose(back_t[0].numpy(), back, rtol=1e-6)


def test_dn_level_checks() -> None:
    x = np.zeros((4, 2, 2), np.float32)
    with pytest.raises(RawSynthError, match="white: must be greater than black"):
        to_dn(x, 1023, 1023)
    with pytest.raises(RawSynthError, match=r"white: must be <= 65535"):
        to_dn(x, 0, 70000)
    with pytest.raises(RawSynthError, match=r"x: per-plane black/white need shape \(\.\.\., 4, h, w\)"):
        to_dn(np.zeros((3, 2, 2), np.float32), (0, 0, 0, 0), 1023)


# ----------------------------------------------------------------------------- input and parameter checks


def test_input_checks() -> None:
    p = ALL_PARAMS[0]
    with pytest.raises(RawSynthError, match=r"x: expected a numpy array of shape \(4, h, w\), got shape \(3, 8, 8\)"):
        apply_noise(np.zeros((3, 8, 8), np.float32), p, 0)
    with pytest.raises(RawSynthError,
                       match=r"x: expected a torch tensor of shape \(B, 4, h, w\), got shape \(4, 8, 8\)"):
        apply_noise(torch.zeros(4, 8, 8), p, 0)
    with pytest.raises(RawSynthError, match="x: expected a floating-point array, got uint16"):
        apply_noise(np.zeros((4, 8, 8), np.uint16), p, 0)
    with pytest.raises(RawSynthError, match="x: expected a numpy array or a torch tensor, got list"):
        apply_noise([[0.0]], p, 0)
    with pytest.raises(RawSynthError, match="rng: expected a torch Generator"):
        apply_noise(torch.zeros(1, 4, 8, 8), p, np.random.default_rng(0))
    with pytest.raises(RawSynthError, match="rng: expected a numpy Generator"):
        apply_noise(np.zeros((4, 8, 8), np.float32), p, torch.Generator())
    with pytest.raises(RawSynthError,
                       match="params: expected GaussianParams, PoissonGaussianParams or PhysicsParams, got dict"):
        apply_noise(np.zeros((4, 8, 8), np.float32), {"shot": 0.1}, 0)
    with pytest.raises(RawSynthError, match=r"shot: numpy input takes a scalar or 4 values"):
        apply_noise(np.zeros((4, 8, 8), np.float32), GaussianParams(shot=np.zeros((2, 4)), read=0.0), 0)
    with pytest.raises(RawSynthError, match=r"shot: expected a scalar, 4 values or a \(3, 4\) array for a batch of 3"):
        apply_noise(torch.zeros(3, 4, 8, 8), GaussianParams(shot=np.zeros((2, 4)), read=0.0), 0)
    with pytest.raises(RawSynthError, match=r"fixed_pattern: shape \(4, 4, 4\) does not match the image \(4, 8, 8\)"):
        fp = PhysicsParams(gain=1.0, read_scale=1.0, black=0, white=100, fixed_pattern=np.zeros((4, 4, 4)))
        apply_noise(np.zeros((4, 8, 8), np.float32), fp, 0)


def test_parameter_checks() -> None:
    with pytest.raises(RawSynthError,
                       match=r"shot: values must be >= 0, got \[-0.1\]|shot: values must be >= 0, got -0.1"):
        GaussianParams(shot=-0.1, read=0.0)
    with pytest.raises(RawSynthError,
                       match=r"read: expected a scalar, 4 values \(R, Gr, Gb, B\) or a \(B, 4\) array, "
                             r"got shape \(3,\)"):
        GaussianParams(shot=0.1, read=(0.1, 0.1, 0.1))
    with pytest.raises(RawSynthError, match="gain: values must be > 0"):
        PoissonGaussianParams(gain=0.0, read_dn=1.0, black=0, white=100)
    with pytest.raises(RawSynthError, match="white: must be greater than black"):
        PhysicsParams(gain=1.0, read_scale=1.0, black=200, white=100)
    with pytest.raises(RawSynthError, match="read_model: expected 'gaussian' or 'tukey', got 'laplace'"):
        PhysicsParams(gain=1.0, read_scale=1.0, black=0, white=100, read_model="laplace")
    with pytest.raises(RawSynthError, match="tukey_lambda: values must be > -0.5"):
        PhysicsParams(gain=1.0, read_scale=1.0, black=0, white=100, read_model="tukey", tukey_lambda=-0.6)
    with pytest.raises(RawSynthError, match="read_scale: values must be finite"):
        PhysicsParams(gain=1.0, read_scale=float("nan"), black=0, white=100)
    with pytest.raises(RawSynthError, match="clip: expected a bool, got int"):
        GaussianParams(shot=0.1, read=0.1, clip=1)
