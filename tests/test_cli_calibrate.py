"""raw-synth calibrate: pairs, blind and DNG NoiseProfile inputs to a profile that drives generate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from raw_synth.camera import load_profile
from raw_synth.cli import main
from raw_synth.io import RawImage, write_dng
from raw_synth.noise import GaussianParams, apply_noise

SHOT = (2e-3, 1.5e-3, 1.5e-3, 2.5e-3)
READ = (1e-4, 8e-5, 8e-5, 1.2e-4)


def _pair(tmp_path: Path, iso: float, scale: float, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:256, 0:256] / 255.0
    clean = np.stack([0.004 + 0.8 * (0.6 * xx + 0.4 * yy) ** 2] * 4).astype(np.float32)
    clean *= rng.uniform(0.95, 1.0, size=(4, 1, 1)).astype(np.float32)
    shot = tuple(scale * s for s in SHOT)
    noisy = apply_noise(clean, GaussianParams(shot=shot, read=READ), rng).noisy
    paths = []
    for kind, data in (("noisy", noisy), ("clean", clean)):
        raw = RawImage(np.clip(data, 0, 1), "GRBG", 64, 16383, iso=iso)
        paths.append(write_dng(tmp_path / f"{kind}_{int(iso)}.dng", raw))
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
