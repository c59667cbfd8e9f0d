"""Camera profiles: loading, validation errors, bundled profiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from raw_synth.camera import CameraProfile, get_profile, list_profiles, load_profile, parse_profile
from raw_synth.errors import RawSynthError

GOOD = {
    "name": "test-cam",
    "cfa": "grbg",
    "bit_depth": 12,
    "black_level": [64, 64, 65, 64],
    "white_level": 4095,
    "xyz_to_cam": [[0.6, -0.1, -0.1], [-0.4, 1.2, 0.2], [-0.05, 0.15, 0.6]],
    "white_balance": {"red_gain": [1.5, 2.0], "blue_gain": [1.4, 1.8]},
    "noise": {"model": "heteroscedastic-gaussian", "sampler": "unprocessing", "params": {"a": 1}},
}


def _write(tmp_path: Path, data: object, name: str = "cam.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_load_profile_reads_every_field(tmp_path: Path) -> None:
    profile = load_profile(_write(tmp_path, GOOD))
    assert profile.name == "test-cam"
    assert profile.cfa == "GRBG"
    assert profile.bit_depth == 12
    assert profile.black_level == (64.0, 64.0, 65.0, 64.0)
    assert profile.white_level == (4095.0,) * 4
    np.testing.assert_array_equal(profile.xyz_to_cam_matrix, np.array(GOOD["xyz_to_cam"]))
    assert profile.white_balance.red_gain == (1.5, 2.0)
    assert profile.noise is not None and profile.noise.sampler == "unprocessing"
    assert profile.source == str(tmp_path / "cam.yaml")


def test_profile_round_trips_through_yaml(tmp_path: Path) -> None:
    profile = load_profile(_write(tmp_path, GOOD))
    again = parse_profile(yaml.safe_load(profile.to_yaml()), origin=profile.source)
    assert again == profile


def test_bundled_profiles_load_and_resolve_by_name() -> None:
    names = [p.name for p in list_profiles()]
    assert "canon-eos-550d" in names and "sidd-s6" in names
    assert names == sorted(names)
    s6 = get_profile("sidd-s6")
    assert isinstance(s6, CameraProfile)
    assert (s6.cfa, s6.bit_depth, s6.white_level[0]) == ("GRBG", 10, 1023.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cfa": "RGBX"}, "field 'cfa': unknown CFA pattern 'RGBX': expected one of RGGB, GRBG, GBRG, BGGR"),
        ({"black_level": [1, 2, 3]}, "field 'black_level': expected 1 or 4 numbers, got 3"),
        ({"black_level": "low"}, "field 'black_level': expected a number, got 'low'"),
        ({"white_level": 50}, "field 'white_level': plane 0: expected 0 <= black < white, got black 64.0, white 50.0"),
        ({"white_level": 5000}, "field 'white_level': 5000.0 exceeds the 12-bit maximum 4095"),
        ({"bit_depth": 20}, "field 'bit_depth': expected an integer from 1 to 16, got 20"),
        ({"xyz_to_cam": [[1, 0], [0, 1]]}, "field 'xyz_to_cam': expected a finite 3x3 matrix, got shape (2, 2)"),
        ({"xyz_to_cam": [[1, 2, 3], [2, 4, 6], [0, 0, 1]]}, "field 'xyz_to_cam': matrix is singular"),
        ({"white_balance": {"red_gain": [2.0, 1.0]}},
         "field 'white_balance.red_gain': expected 0 < low <= high, got [2.0, 1.0]"),
        ({"noise": {"model": "x"}}, "field 'noise.sampler': expected a non-empty string, got None"),
        ({"colour": 1}, "unknown field 'colour' (known: bit_depth, black_level, cfa, description, name, noise, "
                        "white_balance, white_level, xyz_to_cam)"),
        ({"name": None}, "missing required field 'name'"),
    ],
)
def test_malformed_fields_name_file_and_field(tmp_path: Path, change: dict, message: str) -> None:
    path = _write(tmp_path, {**GOOD, **change})
    with pytest.raises(RawSynthError) as info:
        load_profile(path)
    assert str(info.value) == f"{path}: {message}"


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(RawSynthError, match=f"^{missing}: camera profile file not found$"):
        load_profile(missing)
    bad = _write(tmp_path, "name: [unclosed\n", "bad.yaml")
    with pytest.raises(RawSynthError, match=rf"^{bad}: not valid YAML \(line 2\)$"):
        load_profile(bad)
    listing = _write(tmp_path, "- 1\n- 2\n", "list.yaml")
    with pytest.raises(RawSynthError, match="a camera profile must be a YAML mapping, got list$"):
        load_profile(listing)
    with pytest.raises(RawSynthError, match="^unknown camera profile 'no-such-cam': expected a YAML path or one of "):
        get_profile("no-such-cam")
