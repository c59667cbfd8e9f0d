"""Tests of raw_synth.noise.sampling: published log-linear relations, ELD calibrations and
per-ISO noise-level tables."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from raw_synth.errors import RawSynthError
from raw_synth.noise import GaussianParams, PhysicsParams, apply_noise, tukey_lambda_variance
from raw_synth.noise.sampling import (
    ELD_TO_RGGB,
    check_eld_params,
    check_nlf_table,
    interpolate_nlf,
    load_eld_params,
    sample_cycleisp_dnd,
    sample_cycleisp_sidd,
    sample_eld,
    sample_iso,
    sample_log_linear,
    sample_nlf,
    sample_unprocessing,
)
from tests.conftest import shared_file

N_DRAWS = 4000


def draw_levels(sampler, seed: int = 0, n: int = N_DRAWS) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = [sampler(rng) for _ in range(n)]
    for p in params[:5]:
        assert isinstance(p, GaussianParams)
        assert len(set(p.shot)) == 1 and len(set(p.read)) == 1 and len(p.shot) == 4
    return np.array([p.shot[0] for p in params]), np.array([p.read[0] for p in params])


# ----------------------------------------------------------------------------- log-linear samplers


@pytest.mark.parametrize(
    ("sampler", "log", "lo", "hi", "slope", "intercept", "scatter", "clip"),
    [
        (sample_unprocessing, np.log, 1e-4, 0.012, 2.18, 1.20, 0.26, False),
        (sample_cycleisp_dnd, np.log10, 1e-4, 0.012, 2.18, 1.20, 0.26, True),
        (sample_cycleisp_sidd, np.log10, 0.00068674, 0.02194856, 1.85, 0.30, 0.20, True),
    ],
    ids=["unprocessing", "cycleisp_dnd", "cycleisp_sidd"],
)
def test_log_linear_samplers(sampler, log, lo, hi, slope, intercept, scatter, clip) -> None:
    shot, read = draw_levels(sampler)
    assert shot.min() >= lo and shot.max() <= hi
    # log shot is uniform over the range
    u = (log(shot) - log(lo)) / (log(hi) - log(lo))
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # log read sits on the published line with Gaussian scatter of the published size
    resid = log(read) - (slope * log(shot) + intercept)
    assert abs(resid.mean()) < 0.02
    assert resid.std() == pytest.approx(scatter, rel=0.04)
    fit = stats.linregress(log(shot), log(read))
    assert fit.slope == pytest.approx(slope, abs=0.03)
    assert sampler(np.random.default_rng(0)).clip is clip


def test_unprocessing_and_cycleisp_dnd_differ_in_read_noise() -> None:
    # Same numbers in another log base. With the same draws the shot is identical and
    # ln(read_dnd / read_unprocessing) = (1.20 + 0.26 z) (ln 10 - 1): CycleISP's DND read is larger.
    for seed in range(5):
        p_e = sample_unprocessing(np.random.default_rng(seed))
        p_10 = sample_cycleisp_dnd(np.random.default_rng(seed))
        assert p_e.shot == pytest.approx(p_10.shot, rel=1e-9)
        z = (math.log(p_e.read[0]) - 2.18 * math.log(p_e.shot[0]) - 1.20) / 0.26
        ratio = p_10.read[0] / p_e.read[0]
        assert ratio == pytest.approx(math.exp((1.20 + 0.26 * z) * (math.log(10) - 1)), rel=1e-9)


def test_log_linear_determinism_and_checks() -> None:
    assert sample_unprocessing(np.random.default_rng(5)) == sample_unprocessing(np.random.default_rng(5))
    assert sample_unprocessing(5) == sample_unprocessing(np.random.default_rng(5))
    assert sample_unprocessing(5) != sample_unprocessing(6)
    with pytest.raises(RawSynthError, match=r"shot_range: expected 0 < lo <= hi"):
        sample_log_linear(0, shot_range=(0.1, 0.01), slope=1.0, intercept=0.0, scatter=0.1)
    with pytest.raises(RawSynthError, match="scatter: must be >= 0"):
        sample_log_linear(0, shot_range=(0.01, 0.1), slope=1.0, intercept=0.0, scatter=-1.0)


def test_sampled_gaussian_params_drive_the_model() -> None:
    p = sample_cycleisp_sidd(np.random.default_rng(1))
    x = np.full((4, 256, 256), 0.4, np.float32)
    res = apply_noise(x, GaussianParams(shot=p.shot, read=p.read), 2)
    np.testing.assert_allclose(res.noisy.var(axis=(1, 2)), np.asarray(p.shot) * 0.4 + np.asarray(p.read), rtol=0.03)


# ----------------------------------------------------------------------------- ELD

HAND_ELD = {
    "Kmin": 0.5,
    "Kmax": 8.0,
    "G_shape": [0.1, 0.0, -0.05, -0.12],
    "Profile-1": {
        "G_scale": {"slope": 0.5, "bias": 0.6, "sigma": 0.25},
        "g_scale": {"slope": 0.55, "bias": 1.2, "sigma": 0.2},
        "R_scale": {"slope": 0.5, "bias": -0.6, "sigma": 0.3},
    },
    "Profile-2": {
        "G_scale": {"slope": 1.0, "bias": -1.0, "sigma": 0.0},
        "g_scale": {"slope": 1.0, "bias": 0.2, "sigma": 0.0},
        "R_scale": {"slope": 1.0, "bias": -2.7, "sigma": 0.0},
    },
    # ELD column order R, Gr, B, Gb
    "color_bias": [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [-1.0, -2.0, -3.0, -4.0], [0.5, 0.6, 0.7, 0.8]],
}


def test_eld_sampler_relations() -> None:
    rng = np.random.default_rng(0)
    draws = [sample_eld(HAND_ELD, rng, black=512, white=16383) for _ in range(N_DRAWS)]
    log_k = np.log([p.gain for p in draws])
    assert log_k.min() >= math.log(0.5) and log_k.max() <= math.log(8.0)
    assert stats.kstest((log_k - math.log(0.5)) / math.log(16.0), "uniform").pvalue > 1e-3
    fits = HAND_ELD["Profile-1"]
    for field, key in [("read_scale", "G_scale"), ("row_scale", "R_scale")]:
        resid = np.log([getattr(p, field) for p in draws]) - (fits[key]["slope"] * log_k + fits[key]["bias"])
        assert abs(resid.mean()) < 0.02
        assert resid.std() == pytest.approx(fits[key]["sigma"], rel=0.04)
    lambdas = [p.tukey_lambda for p in draws]
    assert set(lambdas) == set(HAND_ELD["G_shape"])
    for p in draws[:50]:
        assert p.read_model == "tukey" and p.quantize and p.clip and p.black == 512 and p.white == 16383
        row = HAND_ELD["color_bias"][HAND_ELD["G_shape"].index(p.tukey_lambda)]  # same setting
        assert p.bias == tuple(row[c] for c in ELD_TO_RGGB)
    assert draws[0].bias in {(1.0, 2.0, 4.0, 3.0), (5.0, 6.0, 8.0, 7.0), (-1.0, -2.0, -4.0, -3.0), (0.5, 0.6, 0.8, 0.7)}


def test_eld_sampler_options() -> None:
    p = sample_eld(HAND_ELD, 1, black=0, white=1023, read_model="gaussian", row=False, bias=False)
    assert p.read_model == "gaussian" and p.tukey_lambda == 0.0 and p.row_scale == 0.0 and p.bias == (0.0,) * 4
    g = HAND_ELD["Profile-1"]["g_scale"]
    z = (math.log(p.read_scale) - g["slope"] * math.log(p.gain) - g["bias"]) / g["sigma"]
    assert abs(z) < 5
    # Profile-2 has zero scatter: the scales sit exactly on its lines.
    p2 = sample_eld(HAND_ELD, 2, black=0, white=1023, profile="Profile-2")
    assert math.log(p2.read_scale) == pytest.approx(math.log(p2.gain) - 1.0, abs=1e-12)
    assert math.log(p2.row_scale) == pytest.approx(math.log(p2.gain) - 2.7, abs=1e-12)
    # random profile, overridden K range, determinism
    chosen = {sample_eld(HAND_ELD, s, black=0, white=1023, profile=None).row_scale > 0 for s in range(5)}
    assert chosen == {True}
    ks = [sample_eld(HAND_ELD, s, black=0, white=1023, k_range=(0.1, 30.0)).gain for s in range(300)]
    assert min(ks) < 0.5 and max(ks) > 8.0 and 0.1 <= min(ks) and max(ks) <= 30.0
    assert sample_eld(HAND_ELD, 9, black=0, white=1023) == sample_eld(HAND_ELD, 9, black=0, white=1023)
    assert sample_eld(HAND_ELD, 9, black=0, white=1023) != sample_eld(HAND_ELD, 10, black=0, white=1023)


def test_eld_checks() -> None:
    with pytest.raises(RawSynthError, match="eld params: missing key 'Kmax'"):
        check_eld_params({k: v for k, v in HAND_ELD.items() if k != "Kmax"})
    with pytest.raises(RawSynthError, match=r"cam.json: Profile-1 has no R_scale entry"):
        bad = dict(HAND_ELD, **{"Profile-1": {"G_scale": HAND_ELD["Profile-1"]["G_scale"],
                                              "g_scale": HAND_ELD["Profile-1"]["g_scale"]}})
        check_eld_params(bad, "cam.json")
    with pytest.raises(RawSynthError, match=r"eld params: color_bias must be 4 rows of 4 values"):
        check_eld_params(dict(HAND_ELD, color_bias=[[0.0] * 4] * 3))
    with pytest.raises(RawSynthError, match="eld params: expected 0 < Kmin <= Kmax"):
        check_eld_params(dict(HAND_ELD, Kmin=9.0))
    with pytest.raises(RawSynthError, match="profile: 'Profile-3' not in the ELD parameters"):
        sample_eld(HAND_ELD, 0, black=0, white=1023, profile="Profile-3")
    no_bias = {k: v for k, v in HAND_ELD.items() if k != "color_bias"}
    assert sample_eld(no_bias, 0, black=0, white=1023).bias == (0.0,) * 4


def test_load_eld_params_errors(tmp_path: Path) -> None:
    good = tmp_path / "cam.json"
    good.write_text(json.dumps(HAND_ELD))
    assert load_eld_params(good)["G_shape"] == HAND_ELD["G_shape"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RawSynthError, match=r"bad.json: not valid JSON"):
        load_eld_params(bad)
    with pytest.raises(RawSynthError, match=r"cam_params.npy: ELD .npy files are pickles"):
        load_eld_params(tmp_path / "cam_params.npy")
    with pytest.raises(RawSynthError, match=r"missing.json: cannot read ELD parameters"):
        load_eld_params(tmp_path / "missing.json")


ELD_KRANGE = {  # facts.md section 6
    "SonyA7S2": (0.0939, 6.0106),
    "CanonEOS5D4": (0.2182, 13.964),
    "NikonD850": (0.4150, 26.563),
    "CanonEOS70D": (0.4075, 26.080),
    "CanonEOS700D": (0.4476, 28.648),
}


@pytest.mark.parametrize("camera", sorted(ELD_KRANGE))
def test_eld_published_files(shared_data: Path, camera: str) -> None:
    eld = load_eld_params(shared_file(shared_data, f"eld-noise-params/{camera}_params.json"))
    k_lo, k_hi = ELD_KRANGE[camera]
    assert eld["Kmin"] == pytest.approx(k_lo, abs=1e-3) and eld["Kmax"] == pytest.approx(k_hi, abs=1e-3)
    assert len(eld["color_bias"]) == len(eld["G_shape"])
    p = sample_eld(eld, np.random.default_rng(0), black=512, white=16383)
    assert isinstance(p, PhysicsParams) and k_lo * 0.999 <= p.gain <= k_hi * 1.001
    assert p.tukey_lambda in eld["G_shape"]
    res = apply_noise(np.full((4, 128, 128), 0.05, np.float32), p, 1)
    expected_read = (p.read_scale**2 * tukey_lambda_variance(p.tukey_lambda) + p.row_scale**2 + 1 / 12) / 15871**2
    np.testing.assert_allclose(res.read, expected_read, rtol=1e-5)
    assert np.isfinite(res.noisy).all()


def test_eld_sony_profile_values(shared_data: Path) -> None:
    eld = load_eld_params(shared_file(shared_data, "eld-noise-params/SonyA7S2_params.json"))
    fits = eld["Profile-1"]
    assert ((fits["G_scale"]["slope"], fits["G_scale"]["bias"], fits["G_scale"]["sigma"])
            == pytest.approx((0.4621, 0.5657, 0.2634), abs=1e-4))
    assert ((fits["R_scale"]["slope"], fits["R_scale"]["bias"], fits["R_scale"]["sigma"])
            == pytest.approx((0.5275, -0.5917, 0.2943), abs=1e-4))


# ----------------------------------------------------------------------------- per-ISO tables

TABLE = {
    100: ((1e-3, 2e-3, 2e-3, 1.5e-3), 1e-6),
    400: ((4e-3, 8e-3, 8e-3, 6e-3), 4e-6),
    3200: ((3.2e-2, 6.4e-2, 6.4e-2, 4.8e-2), 1e-4),
}


def test_interpolate_nlf_is_log_log() -> None:
    shot, read = interpolate_nlf(TABLE, 400)
    np.testing.assert_allclose(shot, [4e-3, 8e-3, 8e-3, 6e-3], rtol=1e-12)
    np.testing.assert_allclose(read, 4e-6, rtol=1e-12)
    shot, read = interpolate_nlf(TABLE, 200)  # geometric midpoint of 100 and 400
    np.testing.assert_allclose(shot, [2e-3, 4e-3, 4e-3, 3e-3], rtol=1e-12)
    np.testing.assert_allclose(read, 2e-6, rtol=1e-12)
    shot, read = interpolate_nlf(TABLE, 400 * math.sqrt(8))  # geometric midpoint of 400 and 3200
    np.testing.assert_allclose(read, math.sqrt(4e-6 * 1e-4), rtol=1e-12)
    with pytest.raises(RawSynthError, match=r"iso: 6400 is outside the table's range \[100, 3200\]"):
        interpolate_nlf(TABLE, 6400)


def test_sample_iso_log_uniform() -> None:
    rng = np.random.default_rng(0)
    isos = np.array([sample_iso(TABLE, rng) for _ in range(N_DRAWS)])
    assert isos.min() >= 100 and isos.max() <= 3200
    assert stats.kstest(np.log(isos / 100) / math.log(32), "uniform").pvalue > 1e-3


def test_sample_nlf_scatter_and_determinism() -> None:
    p = sample_nlf(TABLE, 0, iso=400, shot_scatter=0.0, read_scatter=0.0)
    assert p == GaussianParams(shot=(4e-3, 8e-3, 8e-3, 6e-3), read=(4e-6,) * 4)
    rng = np.random.default_rng(1)
    draws = [sample_nlf(TABLE, rng, iso=400, shot_scatter=0.2, read_scatter=0.3) for _ in range(N_DRAWS)]
    ratio_shot = np.log([d.shot[1] / 8e-3 for d in draws])
    ratio_read = np.log([d.read[0] / 4e-6 for d in draws])
    assert ratio_shot.std() == pytest.approx(0.2, rel=0.04) and abs(ratio_shot.mean()) < 0.015
    assert ratio_read.std() == pytest.approx(0.3, rel=0.04) and abs(ratio_read.mean()) < 0.02
    d = draws[0]
    assert d.shot[1] / d.shot[0] == pytest.approx(2.0)  # plane ratios kept
    # drawing the ISO: same as sample_iso then sample_nlf with that ISO
    a = sample_nlf(TABLE, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    iso = sample_iso(TABLE, rng)
    assert a == sample_nlf(TABLE, rng, iso=iso)
    assert a != sample_nlf(TABLE, np.random.default_rng(8))


def test_nlf_table_checks() -> None:
    with pytest.raises(RawSynthError, match="table: expected a non-empty mapping"):
        check_nlf_table({})
    with pytest.raises(RawSynthError, match="table: ISO 100 read must be a positive scalar or 4 positive values"):
        check_nlf_table({100: (1e-3, 0.0)})
    with pytest.raises(RawSynthError, match="table: ISO 100 must map to a pair"):
        check_nlf_table({100: 1e-3})
    with pytest.raises(RawSynthError, match="table: ISO keys must be positive numbers"):
        check_nlf_table({"high": (1e-3, 1e-6)})
    single = {800: (0.003, 2e-6)}
    assert sample_iso(single, 0) == 800.0
    assert sample_nlf(single, 0, shot_scatter=0.0, read_scatter=0.0).shot == (0.003,) * 4


def read_sidd_nlf(path: Path) -> dict[str, dict[float, tuple[float, float]]]:
    """``{phone: {iso: (beta1, beta2)}}`` from noise_flow's cam_iso_nlf.txt (read here, never copied)."""
    tables: dict[str, dict[float, tuple[float, float]]] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            phone, iso = row["cam_iso"].split("_")
            tables.setdefault(phone, {})[float(iso)] = (float(row["beta1"]), float(row["beta2"]))
    return tables


def test_sidd_nlf_table(shared_data: Path) -> None:
    tables = read_sidd_nlf(shared_file(shared_data, "sidd-metadata/cam_iso_nlf.txt"))
    s6 = tables["S6"]
    assert sorted(s6) == [100.0, 400.0, 800.0, 1600.0, 3200.0]
    p = sample_nlf(s6, 0, iso=800, shot_scatter=0.0, read_scatter=0.0)  # facts.md 4.3: S6_00800
    assert p.shot == pytest.approx((0.003696,) * 4) and p.read == pytest.approx((0.000002,) * 4)
    rng = np.random.default_rng(0)
    for _ in range(200):
        q = sample_nlf(s6, rng, shot_scatter=0.0, read_scatter=0.0)
        assert 0.000479 <= q.shot[0] <= 0.019930
