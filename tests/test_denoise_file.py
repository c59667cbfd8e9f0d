"""Tests of denoise.denoise_file: DNG in / DNG out, Bayer phases, noise-level sources, previews, errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import rawpy
import torch

from denoise.denoise_file import denoise_file
from denoise.models import create_denoiser
from raw_synth.cfa import cfa_from_raw_pattern
from raw_synth.checkpoint import save_model
from raw_synth.errors import RawSynthError
from raw_synth.io import RawImage, read_raw, write_dng
from raw_synth.models import create_model

SMALL = dict(dim=4, enc_blocks=(1, 1, 1, 1), dec_blocks=(1, 1, 1), heads=(1, 1, 1, 1))
XYZ = np.array([[0.6461, -0.1164, -0.0857], [-0.3825, 1.1597, 0.2534], [-0.0416, 0.1540, 0.6039]])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("den-models")
    torch.manual_seed(0)
    identity = create_denoiser("denoiser-tiny", conditioned=True, **SMALL)  # zero head: output = input
    blind = create_denoiser("denoiser-tiny", conditioned=False, **SMALL)  # blind identity
    return {
        "identity": save_model(folder / "id.safetensors", identity, kind="denoiser", architecture="ssdnet-denoiser"),
        "blind": save_model(folder / "blind.safetensors", blind, kind="denoiser", architecture="ssdnet-denoiser"),
        "isp": save_model(folder / "isp.safetensors", create_model("tiny"), kind="ssdnet-isp"),
    }


def make_raw(cfa: str, noise_profile: bool = True, iso: float | None = 400, h: int = 48, w: int = 64) -> RawImage:
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[0:h, 0:w]
    scene = 0.2 + 0.3 * np.sin(rows / 7.0) * np.cos(cols / 9.0) + 0.3 * (cols / w)
    mosaic = np.clip(scene + 0.02 * rng.standard_normal((h, w)), 0, 1)
    dn = np.round(mosaic * (1023 - 64) + 64)
    return RawImage.from_mosaic(
        dn, cfa, black_level=64, white_level=1023, wb=(2.0, 1.0, 1.0, 1.6), xyz_to_cam=XYZ,
        noise_profile=(4e-4, 2e-6) if noise_profile else None, iso=iso, camera="Test Cam")


@pytest.mark.parametrize("cfa", ["GRBG", "BGGR"])
def test_output_dng_keeps_cfa_levels_and_pixels(models: dict[str, Path], tmp_path: Path, cfa: str) -> None:
    source = write_dng(tmp_path / "in.dng", make_raw(cfa))
    result = denoise_file(source, models["identity"], tmp_path / "out.dng", preview=tmp_path / "p.png")
    assert result.noise_source == "noise-profile" and result.cfa == cfa and result.size == (48, 64)
    assert result.shot == (4e-4,) * 4 and result.read == (2e-6,) * 4
    with rawpy.imread(str(source)) as a, rawpy.imread(str(result.out)) as b:
        assert cfa_from_raw_pattern(b.raw_pattern, b.color_desc.decode()) == cfa
        assert list(b.black_level_per_channel) == [64] * 4 and b.white_level == 1023
        assert b.raw_image_visible.shape == (48, 64)
        # identity model: the phase unification and its inverse put every pixel back
        np.testing.assert_array_equal(b.raw_image_visible, a.raw_image_visible)
        np.testing.assert_allclose(b.camera_whitebalance[:3], a.camera_whitebalance[:3], rtol=1e-4)
    back = read_raw(result.out)
    assert back.noise_profile is None and back.iso == 400 and back.camera == "Test Cam"
    from PIL import Image

    assert Image.open(tmp_path / "p.png").size == (2 * 64 + 8, 48)


def test_blind_model_and_npy_mosaic(models: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw = make_raw("RGGB", noise_profile=False)
    packed_dn = np.round(raw.packed * (1023 - 64) + 64).astype(np.uint16)
    npy = tmp_path / "m.npy"
    np.save(npy, np.moveaxis(packed_dn, 0, -1))  # (h, w, 4) packed, like the vivo X90 sample
    with caplog.at_level(logging.INFO, logger="denoise"):
        result = denoise_file(npy, models["blind"], tmp_path / "o.dng", cfa="RGGB", black=64, white=1023)
    assert result.noise_source == "not needed (blind model)" and result.shot is None
    assert "blind model, no noise level needed" in caplog.text
    out = read_raw(result.out)
    assert out.cfa == "RGGB" and out.packed.shape == (4, 24, 32)
    np.testing.assert_allclose(out.packed, np.clip(raw.packed, 0, 1), atol=0.6 / 959)  # identity up to rounding


def test_noise_level_from_camera_profile_or_blind_estimate(models: dict[str, Path], tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    source = write_dng(tmp_path / "in.dng", make_raw("BGGR", noise_profile=False, iso=400))
    with caplog.at_level(logging.INFO, logger="denoise"):
        result = denoise_file(source, models["identity"], tmp_path / "o.dng", camera="sidd-g4")
    assert result.noise_source == "camera:sidd-g4@ISO400"
    assert "noise level from camera:sidd-g4@ISO400" in caplog.text
    assert result.shot == pytest.approx((0.00186,) * 4) and result.read == pytest.approx((2e-6,) * 4)
    # no NoiseProfile and no camera: blind estimate from the image
    flat = RawImage.from_mosaic(
        np.round(np.clip(0.3 + 0.02 * np.random.default_rng(0).standard_normal((128, 128)), 0, 1) * 959 + 64),
        "RGGB", 64, 1023, iso=100)
    blind_in = write_dng(tmp_path / "flat.dng", flat)
    result = denoise_file(blind_in, models["identity"], tmp_path / "o2.dng")
    assert result.noise_source == "blind-estimate"
    variance = np.array(result.shot) * 0.3 + np.array(result.read)
    np.testing.assert_allclose(variance, 0.02**2, rtol=0.3)


def test_clear_errors(models: dict[str, Path], tmp_path: Path) -> None:
    source = write_dng(tmp_path / "in.dng", make_raw("RGGB", noise_profile=False, iso=None))
    out = tmp_path / "o.dng"
    npy = tmp_path / "m.npy"
    np.save(npy, np.zeros((8, 8), np.uint16))
    cases = [
        (dict(in_path=tmp_path / "none.dng"), r"none.dng: file not found"),
        (dict(in_path=npy), r"m.npy: a bare mosaic \(.npy\) needs --cfa, --black and --white"),
        (dict(in_path=npy, cfa="RGGB"),
         r"m.npy: a bare mosaic needs --cfa, --black and --white \(missing --black, --white\)"),
        (dict(in_path=npy, cfa="XGGB", black=0, white=1023), r"m.npy: unknown CFA pattern 'XGGB'"),
        (dict(model_path=tmp_path / "nomodel.safetensors"), r"nomodel.safetensors: checkpoint file not found$"),
        (dict(model_path=models["isp"]),
         r"isp.safetensors: checkpoint holds a 'ssdnet-isp' model, expected 'denoiser'$"),
        (dict(model_path=npy), r"m.npy: not a safetensors checkpoint$"),
        (dict(camera="sidd-g4"),
         r"in.dng: the file records no ISO, needed to read the noise level from --camera sidd-g4"),
        (dict(camera="unprocessing"), r"--camera unprocessing: profile 'unprocessing' has no per-ISO noise table"),
        (dict(camera="no-such-camera"), r"unknown camera profile 'no-such-camera'"),
        (dict(out_path=tmp_path / "missing" / "o.dng"), r"o.dng: output folder .*missing does not exist"),
        (dict(out_path=source), r"in.dng: is the input file; choose another --out"),
    ]
    for kwargs, message in cases:
        args = dict(in_path=source, model_path=models["identity"], out_path=out) | kwargs
        with pytest.raises(RawSynthError, match=message):
            denoise_file(**args)
    junk = tmp_path / "junk.dng"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(RawSynthError, match="junk.dng: not a RAW file LibRaw can read"):
        denoise_file(junk, models["identity"], out)


@pytest.mark.parametrize("cfa", ["GRBG", "BGGR"])
def test_ensemble_keeps_pixels_and_runs_from_the_cli(models: dict[str, Path], tmp_path: Path, cfa: str) -> None:
    from click.testing import CliRunner

    from raw_synth_cli import main

    source = write_dng(tmp_path / "in.dng", make_raw(cfa))
    # the identity model through all eight flips/turns of a non-RGGB file: every pixel comes back to its site
    result = denoise_file(source, models["identity"], tmp_path / "out.dng", ensemble=8)
    with rawpy.imread(str(source)) as a, rawpy.imread(str(result.out)) as b:
        np.testing.assert_array_equal(b.raw_image_visible, a.raw_image_visible)
    run = CliRunner().invoke(main, ["denoise", str(source), "--out", str(tmp_path / "cli.dng"), "--ensemble", "2"])
    assert run.exit_code == 0, run.output
    plain = read_raw(denoise_file(source, None, tmp_path / "plain.dng").out).packed
    two = read_raw(tmp_path / "cli.dng").packed  # the bundled model, averaged with its transpose
    assert two.shape == plain.shape and 0 < np.abs(two - plain).max() < 0.05
