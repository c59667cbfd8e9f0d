"""Tests for raw_synth.noise_eval: marginal KL of real vs synthetic SIDD noise."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from raw_synth.camera import NoiseSection, get_profile
from raw_synth.errors import RawSynthError
from raw_synth.io.sidd import SiddMetadata, read_sidd_metadata
from raw_synth.noise.gaussian import GaussianParams, apply
from raw_synth.noise_eval import (
    NOISE_MODELS_FOR_EVAL,
    binned_kl,
    evaluate_noise_models,
    evaluate_pair,
    histogram_kl,
    intensity_bin_edges,
    profile_noise_model,
    resolve_noise_models,
    write_noise_eval,
)
from tests.fixtures_sidd import make_scene_pair, write_sidd_metadata, write_sidd_scene

# Different (beta1, beta2) per colour R, G, B so that a plane mix-up would show.
NLF = (0.004, 2e-5, 0.002, 1e-5, 0.006, 3e-5)
SCENES = (
    ("0001_001_S6_00100_00060_3200_L", "GRBG", 100, "SM-G925I"),
    ("0002_002_GP_00800_00100_5500_N", "BGGR", 800, "Pixel"),
)


def four_x_variance(clean: np.ndarray, metadata: SiddMetadata, rng: np.random.Generator) -> np.ndarray:
    """A deliberately wrong model: the scene's NLF times 4."""
    shot, read = metadata.nlf(floor=1e-6)
    return apply(clean, GaussianParams(shot=tuple(4 * shot), read=tuple(4 * read)), rng).noisy


@pytest.fixture(scope="module")
def sidd_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two SIDD-Medium scenes whose 'real' noise is a known heteroscedastic Gaussian (NLF)."""
    root = tmp_path_factory.mktemp("sidd") / "SIDD_Medium_Raw"
    rng = np.random.default_rng(2024)
    for name, cfa, iso, model in SCENES:
        noisy, clean = make_scene_pair(rng, 512, 512, NLF, cfa=cfa)
        write_sidd_scene(root / "Data", name, noisy, clean, cfa=cfa, iso=iso, model=model, noise_profile=NLF)
    return root


@pytest.fixture(scope="module")
def report(sidd_root: Path):  # type: ignore[no-untyped-def]
    return evaluate_noise_models(sidd_root, ["gaussian-nlf", four_x_variance], bins=10, seed=3)


# ---------------------------------------------------------------- the protocol on known noise


def test_matching_model_near_zero_wrong_model_far(report) -> None:  # type: ignore[no-untyped-def]
    assert report.models == ("gaussian-nlf", "four_x_variance")
    assert len(report.results) == 4  # 2 pairs x 2 models
    for r in report.results:
        assert r.result.kl.shape == (10,) and np.all(np.isfinite(r.result.kl))
        assert r.result.counts.sum() == 4 * 256 * 256
    good = {(r.scene, r.set_id): r.result for r in report.results if r.model == "gaussian-nlf"}
    bad = {(r.scene, r.set_id): r.result for r in report.results if r.model == "four_x_variance"}
    for key in good:
        assert good[key].kl_mean < 0.01
        assert good[key].kl_all < 0.01
        assert np.all(good[key].kl_planes < 0.01)  # per-colour NLF mapped to the right planes
        assert np.all(good[key].kl < 0.02)
        assert bad[key].kl_mean > 10 * good[key].kl_mean
        assert bad[key].kl_mean > 0.1
    summary = report.model_summary()
    assert summary["gaussian-nlf"]["kl_mean"] < 0.01 < 0.1 < summary["four_x_variance"]["kl_mean"]
    by_camera = report.camera_summary()
    assert list(by_camera) == [("GP", 800), ("S6", 100)]
    assert by_camera[("S6", 100)]["four_x_variance"] > 10 * by_camera[("S6", 100)]["gaussian-nlf"]


def test_equivalent_models_are_close_and_samplers_far(sidd_root: Path) -> None:
    rep = evaluate_noise_models(
        sidd_root, ["poisson-gaussian", "physics-quantized", "unprocessing"], cameras=["S6"], crop=128
    )
    assert {r.camera for r in rep.results} == {"S6"}
    s = rep.model_summary()
    assert s["poisson-gaussian"]["kl_mean"] < 0.03
    assert s["physics-quantized"]["kl_mean"] < 0.03
    assert s["unprocessing"]["kl_mean"] > 0.05


def test_markdown_table(report) -> None:  # type: ignore[no-untyped-def]
    text = report.to_markdown()
    assert text.startswith("# Noise realism: marginal KL divergence to real SIDD noise\n")
    assert "| model | mean KL over intensity bins | marginal KL (all pixels) | pairs |" in text
    assert "| camera | ISO | gaussian-nlf | four_x_variance |" in text
    good = report.model_summary()["gaussian-nlf"]
    assert f"| gaussian-nlf | {good['kl_mean']:.4f} | {good['kl_all']:.4f} | 2 |" in text
    assert "| S6 | 100 |" in text and "| GP | 800 |" in text
    assert "| 0001_001_S6_00100_00060_3200_L | 010 | gaussian-nlf |" in text
    assert "## Per pair" not in report.to_markdown(per_pair=False)


def test_plot_and_written_report(report, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    png = report.plot(tmp_path / "kl.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    files = write_noise_eval(report, tmp_path / "out")
    assert sorted(p.name for p in files.values()) == ["noise_kl.png", "report.json", "report.md"]
    data = json.loads(files["json"].read_text())
    assert data["models"] == ["gaussian-nlf", "four_x_variance"]
    assert len(data["pairs"]) == 4 and len(data["pairs"][0]["kl"]) == 10
    assert data["settings"]["bins"] == 10 and data["settings"]["seed"] == 3
    centers, kl = report.kl_by_bin("gaussian-nlf")
    assert centers.shape == kl.shape == (10,) and np.all(np.diff(centers) > 0)


def test_seeded_and_order_independent(sidd_root: Path) -> None:
    kwargs = dict(bins=4, crop=64, max_pairs=1, seed=5)
    a = evaluate_noise_models(sidd_root, ["gaussian-nlf", "cycleisp-sidd"], **kwargs)
    b = evaluate_noise_models(sidd_root, ["cycleisp-sidd", "gaussian-nlf"], **kwargs)
    c = evaluate_noise_models(sidd_root, ["gaussian-nlf"], **{**kwargs, "seed": 6})
    get = lambda rep, m: next(r.result for r in rep.results if r.model == m)  # noqa: E731
    for model in ("gaussian-nlf", "cycleisp-sidd"):
        np.testing.assert_array_equal(get(a, model).kl, get(b, model).kl)
    assert not np.array_equal(get(a, "gaussian-nlf").kl, get(c, "gaussian-nlf").kl)


def test_no_pairs_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RawSynthError, match=r"empty: no SIDD-Medium noisy/clean pair found"):
        evaluate_noise_models(empty)


# ---------------------------------------------------------------- KL building blocks


def test_histogram_kl_gaussian_variance_ratio() -> None:
    rng = np.random.default_rng(0)
    p = rng.standard_normal(400_000)
    q = 2.0 * rng.standard_normal(400_000)  # variance 4
    edges = np.linspace(-4.0, 4.0, 161)
    expected = 0.5 * (1 / 4 + math.log(4.0) - 1.0)  # KL(N(0,1) || N(0,4)) = 0.3181
    assert histogram_kl(p, q, edges) == pytest.approx(expected, abs=0.01)
    assert histogram_kl(p, p, edges) == 0.0
    with pytest.raises(RawSynthError, match="smoothing: must be > 0"):
        histogram_kl(p, q, edges, smoothing=0.0)


def test_intensity_bin_edges() -> None:
    values = np.random.default_rng(1).random(10_000)
    edges = intensity_bin_edges(values, 10)
    assert edges.shape == (11,) and edges[0] == values.min() and edges[-1] == values.max()
    counts = np.histogram(values, edges)[0]
    assert counts.max() - counts.min() <= 2
    np.testing.assert_array_equal(intensity_bin_edges(values, [0.0, 0.5, 1.0]), [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(intensity_bin_edges(np.full(50, 0.3), 5), [0.3, 0.3])
    with pytest.raises(RawSynthError, match="bins: need at least 1 intensity bin, got 0"):
        intensity_bin_edges(values, 0)
    with pytest.raises(RawSynthError, match="bins: expected a count or at least 2 increasing edges"):
        intensity_bin_edges(values, [0.5, 0.2])


def test_binned_kl_fixed_bins_and_noiseflow_edges() -> None:
    rng = np.random.default_rng(4)
    clean = rng.random((4, 64, 64))
    real = clean + 0.02 * rng.standard_normal(clean.shape)
    synth = clean + 0.02 * rng.standard_normal(clean.shape)
    res = binned_kl(clean, real, synth, bins=[0.0, 0.5, 1.0], hist_edges="noiseflow")
    assert res.counts.sum() == clean.size and res.kl.shape == (2,)
    assert res.kl_mean < 0.02
    empty = binned_kl(clean, real, synth, bins=[2.0, 3.0])
    assert empty.counts.tolist() == [0] and math.isnan(empty.kl_mean)
    with pytest.raises(RawSynthError, match=r"binned_kl: shapes differ"):
        binned_kl(clean, real[:, :8], synth)


# ---------------------------------------------------------------- models and registry


def test_resolve_noise_models() -> None:
    assert list(resolve_noise_models(None)) == list(NOISE_MODELS_FOR_EVAL)
    assert {"gaussian-nlf", "poisson-gaussian", "physics-quantized"} <= set(NOISE_MODELS_FOR_EVAL)
    assert list(resolve_noise_models("gaussian-nlf, poisson-gaussian")) == ["gaussian-nlf", "poisson-gaussian"]
    assert list(resolve_noise_models({"mine": four_x_variance})) == ["mine"]
    with pytest.raises(RawSynthError, match=r"noise model 'nope': unknown \(known: gaussian-nlf, "):
        resolve_noise_models(["nope"])
    with pytest.raises(RawSynthError, match=r"models: 'gaussian-nlf' is given twice"):
        resolve_noise_models(["gaussian-nlf", "gaussian-nlf"])


def test_model_returning_wrong_shape(tmp_path: Path) -> None:
    meta = read_sidd_metadata(write_sidd_metadata(tmp_path / "m.MAT"))
    clean = np.full((4, 8, 8), 0.5, np.float32)
    with pytest.raises(RawSynthError, match=r"noise model 'broken': returned shape \(4, 4, 4\), expected \(4, 8, 8\)"):
        evaluate_pair(clean, clean, meta, {"broken": lambda c, m, r: c[:, :4, :4]})


def test_builtin_models_use_the_scene_nlf(tmp_path: Path) -> None:
    meta = read_sidd_metadata(write_sidd_metadata(tmp_path / "m.MAT", noise_profile=NLF, cfa="RGGB"))
    clean = np.full((4, 128, 128), 0.5, np.float32)
    expected_var = np.array([0.004, 0.002, 0.002, 0.006]) * 0.5 + np.array([2e-5, 1e-5, 1e-5, 3e-5])
    for name in ("gaussian-nlf", "poisson-gaussian", "physics-quantized"):
        noisy = NOISE_MODELS_FOR_EVAL[name](clean, meta, np.random.default_rng(0))
        var = (noisy - clean).reshape(4, -1).var(axis=1)
        np.testing.assert_allclose(var, expected_var, rtol=0.05, err_msg=name)


def test_profile_noise_model(tmp_path: Path) -> None:
    meta = read_sidd_metadata(write_sidd_metadata(tmp_path / "m.MAT", iso=400))
    section = NoiseSection("heteroscedastic-gaussian", "iso-table",
                           {"iso": [100, 1600], "shot": [1e-3, 1.6e-2], "read": [1e-5, 1e-5],
                            "shot_scatter": 0.0, "read_scatter": 0.0})
    profile = get_profile("sidd-s6").replace(noise=section)
    fn = profile_noise_model(profile)
    clean = np.full((4, 128, 128), 0.5, np.float32)
    var = float((fn(clean, meta, np.random.default_rng(0)) - clean).var())
    assert var == pytest.approx(4e-3 * 0.5 + 1e-5, rel=0.05)  # ISO 400: log-interpolated shot 4e-3
    with pytest.raises(RawSynthError, match=r"camera profile 'sidd-s6': has no noise section"):
        profile_noise_model(get_profile("sidd-s6").replace(noise=None))
    odd = get_profile("sidd-s6").replace(noise=NoiseSection("heteroscedastic-gaussian", "magic", {}))
    with pytest.raises(RawSynthError, match=r"field 'noise.sampler': unknown sampler 'magic'"):
        profile_noise_model(odd)(clean, meta, np.random.default_rng(0))
    eld = profile_noise_model("eld-sony-a7s2")(clean, meta, np.random.default_rng(0))
    assert eld.shape == clean.shape and float((eld - clean).std()) > 0


def test_noise_eval_command(sidd_root: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from raw_synth_cli.cli import main

    out = tmp_path / "eval"
    result = CliRunner().invoke(main, ["noise-eval", "--sidd-dir", str(sidd_root), "--models",
                                       "gaussian-nlf,profile:sidd-s6", "--out", str(out), "--bins", "5"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {"report.md", "report.json", "noise_kl.png"}
    summary = json.loads((out / "report.json").read_text())
    assert "gaussian-nlf" in json.dumps(summary) and "profile:sidd-s6" in json.dumps(summary)
    assert "gaussian-nlf" in result.output
    missing = CliRunner().invoke(main, ["noise-eval", "--sidd-dir", str(tmp_path), "--out", str(out)])
    assert missing.exit_code == 2 and missing.output.startswith("error: ")
