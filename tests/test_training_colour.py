"""Colour facts of a trained inverse ISP (virtual chart) and the colour-shift augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from raw_synth.cfa import mosaic, pack
from raw_synth.errors import RawSynthError
from raw_synth.isp.color import cam_to_rgb_from_xyz_to_cam, rgb_to_cam_from_xyz_to_cam
from raw_synth.training.augment import colour_shift_pair
from raw_synth.training.colour import (
    bt709_decode,
    bt709_encode,
    chart_colours,
    fit_colour,
    measure_colour,
)
from raw_synth.training.config import DataConfig

# Canon EOS 550D ColorMatrix1 and an as-shot white balance (the tinydng DNG's facts)
CANON_XYZ_TO_CAM = np.array([[0.6461, -0.1164, -0.0857], [-0.3825, 1.1597, 0.2534], [-0.0416, 0.1540, 0.6039]])
CANON_GAINS = (2.477, 1.0, 1.0, 1.694)


def _linear_camera(linear: np.ndarray, exposure: float = 0.8) -> np.ndarray:
    """What a linear camera with the Canon's facts reads for linear sRGB ``(..., 3)`` (R, G, B)."""
    rgb_to_cam = rgb_to_cam_from_xyz_to_cam(CANON_XYZ_TO_CAM)
    inverse_wb = np.array([1 / CANON_GAINS[0], 1.0, 1 / CANON_GAINS[3]])
    return exposure * (linear @ rgb_to_cam.T) * inverse_wb


def test_bt709_curve_values_and_inverse() -> None:
    np.testing.assert_allclose(bt709_encode(np.array([0.0, 0.01, 0.018, 0.18, 1.0])),
                               [0.0, 0.045, 1.099 * 0.018**0.45 - 0.099, 1.099 * 0.18**0.45 - 0.099, 1.0])
    x = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(bt709_decode(bt709_encode(x)), x, atol=2e-4)  # the curve's 2 pieces meet at ~0.081


def test_chart_colours_grid() -> None:
    chart = chart_colours(3)
    assert chart.shape == (27, 3) and chart.dtype == np.float32
    assert sorted(set(chart[:, 0].tolist())) == pytest.approx([0.05, 0.5, 0.95])
    with pytest.raises(RawSynthError, match=r"^levels must be an integer >= 2, got 1$"):
        chart_colours(1)


def test_fit_recovers_a_linear_cameras_facts_exactly() -> None:
    srgb = chart_colours(5)
    readings = _linear_camera(bt709_decode(srgb))
    fit = fit_colour(srgb, readings, clip_level=2.0)
    np.testing.assert_allclose(fit.wb_gains, CANON_GAINS, rtol=1e-9)
    np.testing.assert_allclose(rgb_to_cam_from_xyz_to_cam(fit.xyz_to_cam),
                               rgb_to_cam_from_xyz_to_cam(CANON_XYZ_TO_CAM), atol=1e-9)
    assert fit.exposure == pytest.approx(0.8) and fit.rms < 1e-12 and fit.patches == 125
    camera = fit.to_camera("probe")
    assert camera["name"] == "probe" and camera["colour_fit"]["patches"] == 125


def test_fit_leaves_out_clipped_patches_and_refuses_too_few() -> None:
    srgb = chart_colours(5)
    readings = _linear_camera(bt709_decode(srgb), exposure=2.0)
    fit = fit_colour(srgb, np.minimum(readings, 1.0))
    assert fit.patches == int((readings < 0.95).all(axis=1).sum()) and fit.rms < 1e-12
    with pytest.raises(RawSynthError, match=r"^fit_colour: only 0 unclipped patches; need at least 9$"):
        fit_colour(srgb, np.ones_like(readings))
    with pytest.raises(RawSynthError, match=r"^fit_colour: expected two \(N, 3\) arrays"):
        fit_colour(srgb, readings[:, :2])


def test_measure_colour_photographs_flat_patches() -> None:
    calls = []

    def predict(images: np.ndarray) -> np.ndarray:  # a linear camera as an 'inverse ISP'
        calls.append(images.shape)
        cam = _linear_camera(bt709_decode(images[:, ::2, ::2, :]))  # (B, h, w, 3)
        return np.stack([cam[..., 0], cam[..., 1], cam[..., 1], cam[..., 2]], axis=1)

    fit = measure_colour(predict, levels=4, size=16, batch_size=50)
    assert calls == [(50, 16, 16, 3), (14, 16, 16, 3)]
    np.testing.assert_allclose(fit.wb_gains, CANON_GAINS, rtol=1e-6)
    with pytest.raises(RawSynthError,
                       match=r"^measure_colour: predict returned shape \(8, 4\), expected \(8, 4, 8, 8\)$"):
        measure_colour(lambda images: np.zeros((len(images), 4)), levels=2, size=16)


def test_colour_shift_matches_a_pair_made_from_the_shifted_scene() -> None:
    rng = np.random.default_rng(3)
    from scipy.ndimage import gaussian_filter

    # a camera image (white balanced, demosaiced) whose sRGB stays inside (0, 1)
    cam = 0.05 + 0.5 * gaussian_filter(rng.random((32, 32, 3)), (2, 2, 0))
    cam_to_rgb = cam_to_rgb_from_xyz_to_cam(CANON_XYZ_TO_CAM)
    inverse_wb = np.array([1 / CANON_GAINS[0], 1.0, 1 / CANON_GAINS[3]])

    def pair(scene: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rgb = bt709_encode(np.clip(scene @ cam_to_rgb.T, 0, 1)).astype(np.float32)
        return rgb, pack(mosaic(scene * inverse_wb, "RGGB"), "RGGB").astype(np.float32)

    gains = np.array([0.6, 1.0, 0.8])
    rgb, raw = pair(cam)
    assert 0 < rgb.min() and rgb.max() < 1
    expected_rgb, expected_raw = pair(cam * gains)
    out_rgb, out_raw = colour_shift_pair(rgb, raw, gains, cam_to_rgb)
    np.testing.assert_allclose(out_raw, expected_raw, atol=1e-6)
    np.testing.assert_allclose(out_rgb, expected_rgb, atol=2e-4)  # float32 input through the curve
    assert out_rgb.dtype == np.float32 and rgb.base is None  # the inputs are not modified
    np.testing.assert_array_equal(colour_shift_pair(rgb, raw, (1.0, 1.0, 1.0), cam_to_rgb)[1], raw)
    with pytest.raises(RawSynthError, match=r"^colour shift gains must be 3 positive numbers, got \[1.0, 0.0, 1.0\]$"):
        colour_shift_pair(rgb, raw, (1.0, 0.0, 1.0), cam_to_rgb)


def test_colour_shift_settings_are_checked() -> None:
    assert DataConfig().colour_shift == 0.0 and DataConfig().colour_shift_p == 0.5
    with pytest.raises(RawSynthError, match=r"data.colour_shift: must be >= 0, got -1"):
        DataConfig(colour_shift=-1)
    with pytest.raises(RawSynthError, match=r"data.colour_shift_p: must be <= 1, got 1.5"):
        DataConfig(colour_shift_p=1.5)


def test_training_exports_measured_colour_facts(tmp_path) -> None:
    from raw_synth.checkpoint import load_model
    from raw_synth.training import train_isp
    from raw_synth.training.colour import model_predictor
    from tests.test_training import _make_paired, _tiny_config

    data = _make_paired(tmp_path / "data", count=2)
    cfg = _tiny_config(total_steps=2, flat_steps=1, progressive=[[2, 16, 2]])
    cfg["export"] = {"colour": "measured"}
    summary = train_isp(cfg, data, tmp_path / "run")
    model, meta = load_model(summary.model_path, kind="ssdnet-isp")
    camera = meta["extra"]["camera"]
    assert camera["name"] == "as learned from unknown camera (colour measured)"
    assert camera["cameras"][0]["name"] == "unknown camera"
    # the stored facts are those of the exported weights' own response
    again = measure_colour(model_predictor(model))
    np.testing.assert_allclose(camera["wb_gains"], again.wb_gains, rtol=1e-6)
    assert camera["colour_fit"]["patches"] == again.patches
    with pytest.raises(RawSynthError, match=r"export.colour"):
        cfg["export"] = {"colour": "guess"}
        train_isp(cfg, data, tmp_path / "other")


def test_bundled_checkpoint_carries_its_own_measured_colour() -> None:
    from raw_synth.checkpoint import load_model
    from raw_synth.engine import bundled_checkpoint, create_engine
    from raw_synth.training.colour import model_predictor

    path = bundled_checkpoint()
    if path is None:
        pytest.skip("no bundled checkpoint in this checkout")
    model, meta = load_model(path, kind="ssdnet-isp")
    camera = meta["extra"]["camera"]
    assert camera["name"].endswith("(colour measured)") and len(camera["cameras"]) == 3
    fit = measure_colour(model_predictor(model))
    np.testing.assert_allclose(camera["wb_gains"], fit.wb_gains, rtol=1e-4)
    np.testing.assert_allclose(camera["xyz_to_cam"], fit.xyz_to_cam, rtol=1e-4, atol=1e-6)
    # the engine hands exactly these facts to every DNG it makes
    engine = create_engine("ssdnet")
    result = engine.convert(np.full((32, 32, 3), 0.5, np.float32), np.random.default_rng(0))
    assert result.wb_gains == tuple(camera["wb_gains"])
    np.testing.assert_array_equal(result.xyz_to_cam, np.asarray(camera["xyz_to_cam"]))


def test_synthetic_training_dng_renders_back_to_its_scene(tmp_path) -> None:
    """benchmarks/make_isp_training_data.py --synthetic: LibRaw renders the DNG back to the dead-leaves scene."""
    import importlib.util

    import rawpy

    from raw_synth.corpora.deadleaves import dead_leaves
    from raw_synth.io import RawImage
    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location("make_isp_training_data",
                                                  REPO / "benchmarks" / "make_isp_training_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    camera = RawImage(packed=np.zeros((4, 2, 2), np.float32), cfa="RGGB", black_level=2056.0, white_level=15000.0,
                      wb=CANON_GAINS, xyz_to_cam=CANON_XYZ_TO_CAM, camera="Canon")
    path = module.synthetic_dng(tmp_path / "s.dng", camera, seed=3, height=64, width=96)
    with rawpy.imread(str(path)) as raw:
        assert raw.raw_pattern.tolist() == [[0, 1], [3, 2]] and raw.black_level_per_channel == [2056] * 4
        out = raw.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=16, user_flip=0,
                              adjust_maximum_thr=0).astype(np.float64) / 65535
    scene = dead_leaves(64, 96, 3).astype(np.float64)
    interior = (slice(4, -4), slice(4, -4))
    np.testing.assert_allclose(out[interior].reshape(-1, 3).mean(0), scene[interior].reshape(-1, 3).mean(0), atol=0.01)
    assert np.abs(out[interior] - scene[interior]).mean() < 0.05
