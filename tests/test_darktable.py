"""darktable noise profiles -> camera profiles (cameras import-darktable)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from raw_synth.camera import load_profile
from raw_synth.errors import RawSynthError
from raw_synth.noise import apply_noise
from raw_synth.noise.darktable import READ_FLOOR, read_darktable_profiles
from raw_synth.noise.profiles import sample_camera_noise
from raw_synth_cli.cli import main
from tests.conftest import shared_file

SMALL = {
    "version": 0,
    "noiseprofiles": [
        {"maker": "Acme", "models": [
            {"model": "Pro 1", "profiles": [
                {"name": "Pro 1 iso 400", "iso": 400, "a": [4e-5, 2e-5, 3e-5], "b": [2e-7, 1e-7, -1e-8]},
                {"name": "Pro 1 iso 100", "iso": 100, "a": [1e-5, 5e-6, 8e-6], "b": [1e-7, 5e-8, 6e-8]},
            ]},
            {"model": "Mini", "profiles": [
                {"name": "Mini iso 200", "iso": 200, "a": [1e-4, 1e-4, 1e-4], "b": [1e-6, 1e-6, 1e-6]},
            ]},
        ]},
    ],
}


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "noiseprofiles.json"
    path.write_text(json.dumps(SMALL))
    return path


def test_conversion_maps_rgb_fits_to_four_planes_sorted_by_iso(tmp_path: Path) -> None:
    profiles = read_darktable_profiles(_write(tmp_path), cfa="GRBG", bit_depth=12, black_level=64)
    assert [p.name for p in profiles] == ["dt-acme-mini", "dt-acme-pro-1"]
    pro = profiles[1]
    assert (pro.cfa, pro.bit_depth, pro.black_level[0], pro.white_level[0]) == ("GRBG", 12, 64.0, 4095.0)
    params = pro.noise.params
    assert params["iso"] == [100.0, 400.0]
    assert params["shot"] == [[1e-5, 5e-6, 5e-6, 8e-6], [4e-5, 2e-5, 2e-5, 3e-5]]
    assert params["read"][1] == [2e-7, 1e-7, 1e-7, READ_FLOOR]  # the negative fit is floored


def test_imported_profile_drives_noise_with_its_level(tmp_path: Path) -> None:
    profile = read_darktable_profiles(_write(tmp_path), model="mini")[0]
    draw = sample_camera_noise(profile, np.random.default_rng(0))
    assert draw.iso == 200.0
    clean = np.full((4, 256, 256), 0.5, np.float32)
    result = apply_noise(clean, draw.params, np.random.default_rng(1))
    np.testing.assert_allclose(result.noisy.reshape(4, -1).var(1), np.asarray(result.shot) * 0.5 + result.read,
                               rtol=0.03)


def test_command_writes_loadable_profiles(tmp_path: Path) -> None:
    out = tmp_path / "profiles"
    result = CliRunner().invoke(main, ["cameras", "import-darktable", str(_write(tmp_path)), "--out", str(out),
                                       "--maker", "acme", "--bit-depth", "10"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"wrote 2 camera profile(s) to {out}"
    loaded = load_profile(out / "dt-acme-pro-1.yaml")
    assert loaded.noise.params["iso"] == [100.0, 400.0] and loaded.white_level[0] == 1023.0


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(RawSynthError, match=r"no camera matches model 'zz'$"):
        read_darktable_profiles(_write(tmp_path), model="zz")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(RawSynthError,
                       match=r"bad.json: not a darktable noiseprofiles.json \(no 'noiseprofiles' list\)$"):
        read_darktable_profiles(bad)


def test_real_darktable_file(shared_data: Path) -> None:
    path = shared_file(shared_data, "darktable-noiseprofiles/noiseprofiles.json")
    (canon,) = read_darktable_profiles(path, maker="canon", model="EOS 550D")
    assert canon.name == "dt-canon-eos-550d"
    assert canon.noise.params["iso"][0] == 100.0 and len(canon.noise.params["iso"]) >= 7
    shots = np.array(canon.noise.params["shot"])
    assert np.all(np.diff(shots[:, 1]) > 0)  # noise grows with ISO
