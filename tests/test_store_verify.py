"""Tests of raw_synth.store.verify_store: a sound store passes; each kind of damage is reported
with the shard's name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr

from raw_synth.store import Manifest, verify_store, write_shard
from tests.test_store import build_store, make_record


def _shard(fmt: str, k: int) -> str:
    return f"shard-{k:06d}" + (".zarr" if fmt == "zarr" else ".h5")


@pytest.mark.parametrize("fmt", ["zarr", "hdf5"])
def test_sound_store_passes(tmp_path: Path, fmt: str) -> None:
    build_store(tmp_path, fmt, n=10, shard_size=4, uncertainty=True)
    report = verify_store(tmp_path)
    assert report.ok, report.problems
    assert (report.problems, report.n_checked, report.n_shards, report.warnings) == ([], 10, 3, [])
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True


def test_flipped_byte_in_zarr_chunk(tmp_path: Path) -> None:
    build_store(tmp_path, "zarr", n=10, shard_size=4)
    # one Zarr shard file per array holds the shard's four sample chunks; corrupt the middle of it
    chunk = tmp_path / _shard("zarr", 1) / "noisy" / "c" / "0" / "0" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    report = verify_store(tmp_path)
    assert not report.ok
    assert all(p.startswith("shard-000001.zarr: ") for p in report.problems)
    if not report.problems[0].startswith("shard-000001.zarr: cannot read samples 4..7"):
        # the chunk still decompresses: its CRC names the sample, the shard checksum confirms
        assert len(report.problems) == 2
        assert report.problems[0].startswith("shard-000001.zarr: sample ")
        assert report.problems[0].endswith(" column noisy: data does not match its stored CRC-32C (corrupt)")
        assert report.problems[1].startswith("shard-000001.zarr: checksum mismatch")


def test_tampered_value_gives_checksum_mismatch(tmp_path: Path) -> None:
    build_store(tmp_path, "hdf5", n=8, shard_size=4)
    with h5py.File(tmp_path / _shard("hdf5", 0), "r+") as f:
        f["noisy"][1, 0, 0, 0] = f["noisy"][1, 0, 0, 0] + 1
    report = verify_store(tmp_path)
    assert len(report.problems) == 2
    assert report.problems[0] == ("shard-000000.h5: sample 1 column noisy: "
                                  "data does not match its stored CRC-32C (corrupt)")
    assert report.problems[1].startswith("shard-000000.h5: checksum mismatch (stored data gives ")


@pytest.mark.parametrize("fmt", ["zarr", "hdf5"])
def test_deleted_shard(tmp_path: Path, fmt: str) -> None:
    build_store(tmp_path, fmt, n=10, shard_size=4)
    path = tmp_path / _shard(fmt, 1)
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    report = verify_store(tmp_path)
    assert not report.ok
    assert report.problems == [f"{_shard(fmt, 1)}: missing (listed in manifest.json)"]
    assert report.n_checked == 6


def test_truncated_h5(tmp_path: Path) -> None:
    build_store(tmp_path, "hdf5", n=10, shard_size=4)
    path = tmp_path / _shard("hdf5", 2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    report = verify_store(tmp_path)
    assert not report.ok and len(report.problems) == 1
    assert report.problems[0].startswith("shard-000002.h5: cannot open shard (")
    assert "truncated" in report.problems[0]
    assert "\n" not in report.problems[0]


@pytest.mark.parametrize("fmt", ["zarr", "hdf5"])
def test_nan_in_clean(tmp_path: Path, fmt: str) -> None:
    build_store(tmp_path, fmt, n=10, shard_size=4)
    path = tmp_path / _shard(fmt, 1)
    if fmt == "zarr":
        arr = zarr.open_array(str(path / "clean"), mode="r+")
        arr[2, 1, 3, 4] = np.nan
    else:
        with h5py.File(path, "r+") as f:
            f["clean"][2, 1, 3, 4] = np.nan
    report = verify_store(tmp_path)
    assert not report.ok
    assert f"{_shard(fmt, 1)}: clean holds non-finite values (NaN/inf; first at sample 6)" in report.problems
    assert (f"{_shard(fmt, 1)}: sample 6 column clean: data does not match its stored CRC-32C (corrupt)"
            in report.problems)
    assert any(p.startswith(f"{_shard(fmt, 1)}: checksum mismatch") for p in report.problems)
    assert len(report.problems) == 3


def test_noisy_above_white_and_clean_out_of_range(tmp_path: Path) -> None:
    build_store(tmp_path, "hdf5", n=4, shard_size=4)
    with h5py.File(tmp_path / _shard("hdf5", 0), "r+") as f:
        f["noisy"][3, 2, 0, 0] = 1001  # plane Gb has white level 1000
        f["clean"][1, 0, 0, 0] = 7.0
    problems = verify_store(tmp_path).problems
    assert "shard-000000.h5: noisy above the white level (first at sample 3)" in problems
    assert "shard-000000.h5: clean outside [-0.05, 1.05] (first at sample 1)" in problems


def test_incomplete_and_uncovered_ranges(tmp_path: Path) -> None:
    manifest = build_store(tmp_path, "zarr", n=10, shard_size=4)
    manifest.shards[_shard("zarr", 2)]["state"] = "running"
    manifest.save(tmp_path)
    problems = verify_store(tmp_path).problems
    assert problems == [
        "shard-000002.zarr: not complete (state 'running' in manifest.json)",
        "store: samples 8..9 are in no complete shard",
        "store: complete shards hold 8 samples, manifest.json expects 10",
    ]


def test_manifest_disagreeing_with_shard(tmp_path: Path) -> None:
    manifest = build_store(tmp_path, "zarr", n=8, shard_size=4)
    manifest.shards[_shard("zarr", 0)]["checksum"] = "0" * 64
    manifest.save(tmp_path)
    problems = verify_store(tmp_path).problems
    assert problems[0].startswith("shard-000000.zarr: checksum in the shard ('")
    assert problems[1].startswith("shard-000000.zarr: checksum mismatch")


def test_missing_manifest_and_warnings(tmp_path: Path) -> None:
    report = verify_store(tmp_path / "nowhere")
    assert not report.ok and report.problems == [f"{tmp_path / 'nowhere'}: no manifest.json (not a raw-synth store)"]
    build_store(tmp_path, "zarr", n=4, shard_size=4)
    (tmp_path / ".partial-shard-000001.zarr.1-abcd").mkdir()
    write_shard(tmp_path, 5, [make_record(20)])
    report = verify_store(tmp_path)
    assert report.ok
    assert report.warnings == [
        ".partial-shard-000001.zarr.1-abcd: leftover temporary entry (raw-synth generate removes it on resume)",
        "shard-000005.zarr: shard not listed in manifest.json",
    ]
    assert Manifest.load(tmp_path).n_complete == 4
