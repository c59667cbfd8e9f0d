"""raw-synth calibrate: pairs, blind, flat/dark and DNG NoiseProfile inputs to a profile that drives generate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from raw_synth.camera import load_profile
from raw_synth.cfa import unpack
from raw_synth.io import RawImage, read_raw, write_dng
from raw_synth.noise import GaussianParams, apply_noise, to_dn
from raw_synth.noise.profiles import sample_camera_noise
from raw_synth_cli.cli import main
from tests.conftest import shared_file

SHOT = (2e-3, 1.5e-3, 1.5e-3, 2.5e-3)
READ = (1e-4, 8e-5, 8e-5, 1.2e-4)


def _pair(tmp_path: Path, iso: float | None, scale: float, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:256, 0:256] / 255.0
    clean = np.stack([0.004 + 0.8 * (0.6 * xx + 0.4 * yy) ** 2] * 4).astype(np.float32)
    clean *= rng.uniform(0.95, 1.0, size=(4, 1, 1)).astype(np.float32)
    shot = tuple(scale * s for s in SHOT)
    noisy = apply_noise(clean, GaussianParams(shot=shot, read=READ), rng).noisy
    paths = []
    for kind, data in (("noisy", noisy), ("clean", clean)):
        raw = RawImage(np.clip(data, 0, 1), "GRBG", 64, 16383, iso=iso)
        paths.append(write_dng(tmp_path / f"{kind}_{int(iso) if iso else 'noiso'}.dng", raw))
    return paths[0], paths[1]


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_pairs_at_two_isos_give_a_profile_that_drives_generate(tmp_path: Path) -> None:
    n1, c1 = _pair(tmp_path, 100, 1.0, 0)
    n2, c2 = _pair(tmp_path, 400, 4.0, 1)
    out = tmp_path / "mycam.yaml"
    result = _run("calibrate", "--noisy", str(n1), "--clean", str(c1), "--noisy", str(n2), "--clean", str(c2),
                  "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    np.testing.assert_allclose(summary["shot"], SHOT, rtol=0.05)
    np.testing.assert_allclose(summary["read"], READ, rtol=0.05)
    profile = load_profile(out)
    assert profile.name == "mycam" and profile.cfa == "GRBG"
    assert profile.noise.sampler == "iso-table" and profile.noise.params["iso"] == [100.0, 400.0]
    np.testing.assert_allclose(profile.noise.params["shot"][1], [4 * s for s in SHOT], rtol=0.05)

    store = tmp_path / "store"
    made = _run("generate", "--n", "4", "--out", str(store), "--cameras", str(out), "--patch", "32",
                "--shard-size", "4", "--workers", "1")
    assert made.exit_code == 0, made.output
    import raw_synth

    sample = raw_synth.open_shards(store)[0]
    assert sample["camera"] == "mycam" and 100 <= sample["iso"] <= 400


def test_dng_noise_profile_is_read_exactly(tmp_path: Path) -> None:
    raw = RawImage(np.full((4, 64, 64), 0.3, np.float32), "RGGB", 0, 1023,
                   noise_profile=((4.5e-4, 2e-6), (3.5e-4, 1e-6), (3.5e-4, 1e-6), (5.5e-4, 3e-6)), iso=200)
    path = write_dng(tmp_path / "np.dng", raw)
    result = _run("calibrate", "--dng", str(path), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["shot"] == [4.5e-4, 3.5e-4, 3.5e-4, 5.5e-4]
    assert summary["read"] == [2e-6, 1e-6, 1e-6, 3e-6]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "error: nothing to calibrate: give --noisy [--clean], --flat and --dark, or --dng"),
        (["--flat", "a.dng"], "error: photon transfer needs both --flat and --dark frames"),
        (["--clean", "a.dng"], "error: --clean needs matching --noisy files"),
        (["--noisy", "missing.dng", "--json"], "error: missing.dng: "),
        (["--noisy", "x.dng"], "error: give --out PROFILE.yaml and/or --json"),
    ],
)
def test_bad_calibrate_arguments(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["calibrate", *args])
    assert result.exit_code == 2
    assert result.output.startswith(message)


# ----------------------------------------------------------------------------- ISO: needed only across ISOs


def test_single_dng_without_iso(tmp_path: Path) -> None:
    raw = RawImage(np.full((4, 64, 64), 0.3, np.float32), "RGGB", 0, 1023,
                   noise_profile=((4.5e-4, 2e-6), (3.5e-4, 1e-6), (3.5e-4, 1e-6), (5.5e-4, 3e-6)))
    path = write_dng(tmp_path / "noiso.dng", raw)
    out = tmp_path / "noiso.yaml"
    result = _run("calibrate", "--dng", str(path), "--json", "--out", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["iso"] is None and summary["isos"] == [None] and summary["per_iso"][0]["iso"] is None
    assert summary["shot"] == [4.5e-4, 3.5e-4, 3.5e-4, 5.5e-4]
    assert summary["noise"]["relation"] == {"isos": [None], "log": "natural", "shot_vs_iso": None,
                                            "read_vs_shot": None, "assumed_iso": 100}
    # the profile loads and drives the sampler; its one iso-table row is labelled ISO 100
    profile = load_profile(out)
    assert profile.noise.sampler == "iso-table" and profile.noise.params["iso"] == [100]
    assert "unknown ISO" in profile.description
    draw = sample_camera_noise(profile, np.random.default_rng(0))
    np.testing.assert_allclose(draw.params.shot, summary["shot"])
    assert draw.iso == 100
    # without --json the summary line says so
    line = _run("calibrate", "--dng", str(path), "--out", str(out)).stdout
    assert line.startswith(f"{out}: dng fit at unknown ISO: shot [0.00045, ")


def test_flat_dark_bare_mosaics_without_iso(tmp_path: Path) -> None:
    from tests.test_calibrate import flat_dark_frames

    _, flats, darks = flat_dark_frames(2.0, 2.0, -0.05, 0.8, 256, 4095, 7, size=64)
    args = []
    for kind, frames in (("flat", flats), ("dark", darks)):
        for k, frame in enumerate(frames):
            path = tmp_path / f"{kind}{k}.npy"
            np.save(path, unpack(to_dn(frame, 256, 4095), "GRBG"))
            args += [f"--{kind}", str(path)]
    out = tmp_path / "phys.yaml"
    result = _run("calibrate", *args, "--cfa", "GRBG", "--black", "256", "--white", "4095", "--json", "--out", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["iso"] is None and summary["isos"] == [None]
    np.testing.assert_allclose(summary["per_iso"][0]["gain"], [2.0] * 4, rtol=0.05)
    assert summary["noise"]["model"] == "physics" and summary["noise"]["relation"]["isos"] == [None]
    profile = load_profile(out)  # the ELD parameters hold no ISO
    assert profile.noise.sampler == "eld" and 1.9 < profile.noise.params["Kmin"] < 2.1
    assert sample_camera_noise(profile, np.random.default_rng(0)).gain == pytest.approx(profile.noise.params["Kmin"])


def test_real_bare_mosaic_blind_without_iso(shared_data: Path) -> None:
    """openISP sensor frame (headerless, RGGB, 10-bit, black 0): no metadata at all, one capture."""
    raw = shared_file(shared_data, "openisp-test-raw/test.RAW")
    result = _run("calibrate", "--noisy", str(raw), "--shape", "1080x1920", "--cfa", "RGGB", "--black", "0",
                  "--white", "1023", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["iso"] is None and summary["cfa"] == "RGGB" and summary["per_iso"][0]["files"] == [str(raw)]
    assert all(0 <= v < 1e-2 for v in summary["shot"]) and max(summary["shot"]) > 0


def test_several_isos_with_one_unknown_is_an_error_naming_it(tmp_path: Path) -> None:
    n400, c400 = _pair(tmp_path, 400, 4.0, 1)
    n_unknown, c_unknown = _pair(tmp_path, None, 1.0, 0)
    args = ["calibrate", "--noisy", str(n400), "--clean", str(c400), "--noisy", str(n_unknown), "--clean",
            str(c_unknown), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.output == (f"error: {n_unknown}: ISO unknown (not in the file's metadata) while {n400} is at ISO "
                             f"400; calibrating several files needs every ISO: give it with --iso {n_unknown}=ISO "
                             f"(or --iso ISO for every input)\n")
    # given as the message says, the two ISOs make a table
    result = _run(*args, "--iso", f"{n_unknown}=100")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["isos"] == [100.0, 400.0] and summary["noise"]["params"]["iso"] == [100, 400]
    np.testing.assert_allclose(summary["shot"], SHOT, rtol=0.05)
    np.testing.assert_allclose(summary["per_iso"][1]["shot"], [4 * s for s in SHOT], rtol=0.05)


def test_iso_per_file_for_bare_mosaics(tmp_path: Path) -> None:
    """Bare mosaics carry no ISO: --iso FILE=ISO builds a multi-ISO table in one call."""
    args = []
    for iso, scale, seed in ((100, 1.0, 0), (800, 8.0, 1)):
        noisy_dng, clean_dng = _pair(tmp_path, iso, scale, seed)
        for kind, dng in (("noisy", noisy_dng), ("clean", clean_dng)):
            npy = tmp_path / f"{kind}{iso}.npy"
            np.save(npy, read_raw(dng).mosaic_dn())
            args += [f"--{kind}", str(npy)]
            if kind == "noisy":
                args += ["--iso", f"{npy}={iso}"]
    result = _run("calibrate", *args, "--cfa", "GRBG", "--black", "64", "--white", "16383", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["isos"] == [100.0, 800.0]
    np.testing.assert_allclose(summary["per_iso"][1]["shot"], [8 * s for s in SHOT], rtol=0.05)


@pytest.mark.parametrize(
    ("iso_args", "message"),
    [
        (["abc"], "error: --iso: expected ISO or FILE=ISO with a positive ISO, got 'abc'\n"),
        (["a.dng=-5"], "error: --iso: expected ISO or FILE=ISO with a positive ISO, got 'a.dng=-5'\n"),
        (["100", "a.dng=200"], "error: --iso: give one ISO for every input, or FILE=ISO for each file, not both\n"),
        (["other.dng=200"], "error: iso: other.dng is not one of the input files\n"),
        (["a.dng=200", "a.dng=300"], "error: --iso: a.dng given twice\n"),
        (["a.dng=200", "./a.dng=300"], "error: iso: ./a.dng given twice\n"),
    ],
)
def test_bad_iso_option(iso_args: list[str], message: str) -> None:
    args = ["calibrate", "--noisy", "a.dng", "--json"]
    for value in iso_args:
        args += ["--iso", value]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and result.output == message
