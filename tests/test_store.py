"""Tests of raw_synth.store: shard writing (both formats), checksums, atomicity, errors, manifest,
open_shards (incl. after fork), summary, plots."""

from __future__ import annotations

import dataclasses
import errno
import json
import multiprocessing
import os
import pickle
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr

from raw_synth.errors import RawSynthError
from raw_synth.store import (
    Manifest,
    SampleRecord,
    ShardInfo,
    checksum_columns,
    cleanup_partial,
    open_shard_file,
    open_shards,
    plot_store,
    preview_grid,
    records_to_columns,
    shard_name,
    summarize_store,
    write_shard,
)
from raw_synth.store import writer as writer_module

FORMATS = ("zarr", "hdf5")
XYZ_TO_CAM = np.array([[0.6461, -0.1164, -0.0857], [-0.3825, 1.1597, 0.2534], [-0.0416, 0.1540, 0.6039]])


def make_record(i: int, h: int = 6, w: int = 8, uncertainty: bool = False) -> SampleRecord:
    """A deterministic record with global index ``i`` (two cameras, ISO None every 5th)."""
    rng = np.random.default_rng(1000 + i)
    black = np.array([64.0, 64.0, 60.0, 64.0])
    white = np.array([1023.0, 1023.0, 1000.0, 1023.0])
    clean = rng.random((4, h, w)).astype(np.float32)
    dn = clean * (white - black)[:, None, None] + black[:, None, None] + rng.normal(0, 8, (4, h, w))
    noisy = np.clip(np.round(dn), 0, white[:, None, None]).astype(np.uint16)
    return SampleRecord(
        index=i,
        noisy_dn=noisy,
        clean=clean,
        camera="canon-eos-550d" if i % 3 else "pixel-4",
        cfa="RGGB" if i % 3 else "GRBG",
        iso=None if i % 5 == 0 else float(100 * 2 ** (i % 4)),
        gain=None if i % 2 else 1.5 + i,
        shot=np.array([1e-3, 1.1e-3, 1.2e-3, 1.3e-3]) * (i + 1),
        read=np.full(4, 2e-6 * (i + 1)),
        black_level=black,
        white_level=white,
        wb_gains=np.array([2.1, 1.0, 1.0, 1.6]),
        xyz_to_cam=XYZ_TO_CAM,
        source=f"photos/café-{i}.jpg",
        crop=(2 * i, 3 * i + 1),
        uncertainty=(0.01 + 0.1 * clean) if uncertainty else None,
    )


def build_store(root: Path, fmt: str, n: int = 10, shard_size: int = 4, **kw: Any) -> Manifest:
    """Write a complete store of ``n`` samples and its manifest into ``root``."""
    manifest = Manifest(config={"n": n, "patch": [12, 16], "fmt": fmt}, n_samples=n, shard_size=shard_size, format=fmt)
    for k, start in enumerate(range(0, n, shard_size)):
        records = [make_record(i, **kw) for i in range(start, min(n, start + shard_size))]
        manifest.record_shard(write_shard(root, k, records, fmt=fmt))
    manifest.add_skipped("photos/gray.png", "grayscale image")
    manifest.add_skipped("photos/tiny.png", "smaller than the patch")
    manifest.add_skipped("photos/gray2.png", "grayscale image")
    manifest.save(root)
    return manifest


# ---------------------------------------------------------------------------------------- names


def test_shard_name() -> None:
    assert shard_name(12, "zarr") == "shard-000012.zarr"
    assert shard_name(0, "hdf5") == "shard-000000.h5"
    with pytest.raises(RawSynthError, match="format: expected one of zarr, hdf5, got 'npz'"):
        shard_name(1, "npz")
    with pytest.raises(RawSynthError, match="shard_index: expected a non-negative integer"):
        shard_name(-1, "zarr")


# ---------------------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("clean_dtype", ["float16", "float32"])
def test_round_trip_exact(tmp_path: Path, fmt: str, clean_dtype: str) -> None:
    records = [make_record(i, uncertainty=True) for i in range(5, 9)]
    info = write_shard(tmp_path, 3, records, fmt=fmt, clean_dtype=clean_dtype)
    assert (info.name, info.start, info.stop, info.count) == (shard_name(3, fmt), 5, 9, 4)
    assert info.nbytes > 0
    manifest = Manifest(config={}, n_samples=4, shard_size=4, format=fmt)
    manifest.record_shard(info)
    manifest.save(tmp_path)
    ds = open_shards(tmp_path)
    assert len(ds) == 4
    for k, rec in enumerate(records):
        s = ds[k]
        b, w = rec.black_level[:, None, None], rec.white_level[:, None, None]
        assert s["noisy"].dtype == np.float32 and s["noisy"].shape == (4, 6, 8)
        # noisy DN is stored exactly: the normalised value maps back to the same integers
        np.testing.assert_array_equal(np.rint(s["noisy"] * (w - b) + b), rec.noisy_dn)
        np.testing.assert_allclose(s["noisy"], (rec.noisy_dn - b) / (w - b), rtol=1e-6, atol=1e-7)
        assert s["clean"].dtype == np.float32
        np.testing.assert_array_equal(s["clean"], rec.clean.astype(clean_dtype).astype(np.float32))
        np.testing.assert_array_equal(s["uncertainty"], rec.uncertainty.astype(np.float16).astype(np.float32))
        assert s["index"] == rec.index
        assert s["camera"] == rec.camera and s["cfa"] == rec.cfa and s["source"] == rec.source
        assert s["iso"] == rec.iso and s["gain"] == rec.gain
        assert s["crop"] == rec.crop
        for name in ("shot", "read", "black_level", "white_level", "wb_gains", "xyz_to_cam"):
            np.testing.assert_array_equal(s[name], getattr(rec, name))
    assert ds[-1]["index"] == 8
    assert [s["index"] for s in ds] == [5, 6, 7, 8]
    with pytest.raises(IndexError):
        ds[4]
    ds.close()


@pytest.mark.parametrize("dtype", ["uint16", "float16", "float32", ">u2"])
def test_zarr_shard_bytes_equal_zarr_own_writer(tmp_path: Path, dtype: str) -> None:
    """The hand-encoded shard file is byte for byte what Zarr writes for the same array, an
    all-zero (fill value) sample left out of the shard included, and Zarr reads it back."""
    from zarr.codecs import BloscCodec

    from raw_synth.store.zarr_shard import _compressor, _encode_shard

    rng = np.random.default_rng(0)
    data = (rng.random((5, 4, 6, 8)) * 1000).astype(dtype)
    data[2] = 0
    group = zarr.open_group(zarr.storage.LocalStore(str(tmp_path / "ref")), mode="w")
    assert isinstance(_compressor(), BloscCodec)
    arr = group.create_array(
        "a", shape=data.shape, dtype=data.dtype, chunks=(1, 4, 6, 8), shards=data.shape,
        compressors=_compressor(), fill_value=0,
    )
    arr[...] = data
    expected = (tmp_path / "ref" / "a" / "c" / "0" / "0" / "0" / "0").read_bytes()
    assert _encode_shard(data) == expected
    # index: chunk 2 is not stored
    index = np.frombuffer(expected[-(5 * 16 + 4) : -4], dtype="<u8").reshape(5, 2)
    assert index[2].tolist() == [2**64 - 1, 2**64 - 1]
    np.testing.assert_array_equal(arr[...], data)


def test_records_not_mutated_and_float16_default(tmp_path: Path) -> None:
    rec = make_record(0)
    arrays = [f.name for f in dataclasses.fields(rec) if isinstance(getattr(rec, f.name), np.ndarray)]
    before = {name: np.copy(getattr(rec, name)) for name in arrays}
    write_shard(tmp_path, 0, [rec])
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(rec, name), value)
    shard = open_shard_file(tmp_path / "shard-000000.zarr")
    assert shard.columns["clean"].dtype == np.float16
    assert shard.columns["noisy"].dtype == np.uint16
    assert shard.columns["noisy"].chunks == (1, 4, 6, 8)
    assert "uncertainty" not in shard.columns
    assert shard.attrs["complete"] is True and shard.attrs["count"] == 1
    write_shard(tmp_path, 1, [make_record(1)], fmt="hdf5")
    with h5py.File(tmp_path / "shard-000001.h5", "r") as f:
        assert f["noisy"].chunks == (1, 4, 6, 8) and f["noisy"].compression == "gzip"


# ---------------------------------------------------------------------------------------- checksum


def test_checksum_same_across_formats_and_stable(tmp_path: Path) -> None:
    records = [make_record(i, uncertainty=True) for i in range(4)]
    z = write_shard(tmp_path / "a", 0, records, fmt="zarr")
    h = write_shard(tmp_path / "b", 0, records, fmt="hdf5")
    again = write_shard(tmp_path / "c", 0, records, fmt="zarr")
    assert z.checksum == h.checksum == again.checksum
    assert len(z.checksum) == 64 and int(z.checksum, 16) >= 0
    assert z.checksum == checksum_columns(records_to_columns(records))
    assert open_shard_file(tmp_path / "b" / "shard-000000.h5").attrs["checksum"] == h.checksum
    # any change in stored content changes the checksum
    dn = records[2].noisy_dn.copy()
    dn[1, 2, 3] += 1
    changed = list(records)
    changed[2] = dataclasses.replace(records[2], noisy_dn=dn)
    assert write_shard(tmp_path / "d", 0, changed).checksum != z.checksum
    assert write_shard(tmp_path / "e", 0, records, clean_dtype="float32").checksum != z.checksum
    renamed = [dataclasses.replace(r, source=r.source + "x") for r in records]
    assert write_shard(tmp_path / "f", 0, renamed).checksum != z.checksum


# ---------------------------------------------------------------------------------------- record checks


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"noisy_dn": np.zeros((4, 6, 8), np.float32)}, "noisy_dn: expected dtype uint16, got float32"),
        ({"clean": np.full((4, 6, 8), np.nan, np.float32)}, "clean: holds non-finite values"),
        ({"clean": np.zeros((3, 6, 8), np.float32)}, r"clean: expected shape \(4, h, w\), got \(3, 6, 8\)"),
        ({"shot": np.zeros(3)}, r"shot: expected shape \(4,\), got \(3,\)"),
        ({"cfa": "XYZW"}, "cfa: unknown CFA pattern 'XYZW'"),
        ({"noisy_dn": np.full((4, 6, 8), 1020, np.uint16)}, "noisy_dn exceeds the white level"),
        ({"crop": (1, -2)}, r"crop: expected \(y, x\) non-negative integers"),
        ({"iso": float("inf")}, "iso: expected a finite number or None"),
    ],
)
def test_write_rejects_bad_records(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    bad = dataclasses.replace(make_record(1), **change)
    with pytest.raises(RawSynthError, match=r"^record 1 \(index 1, 'photos/café-1\.jpg'\): " + message):
        write_shard(tmp_path, 0, [make_record(0), bad])
    assert not list(tmp_path.iterdir())


def test_write_rejects_non_consecutive_and_mixed(tmp_path: Path) -> None:
    message = r"record 1 \(index 2, 'photos/café-2.jpg'\): indices must be consecutive from 0"
    with pytest.raises(RawSynthError, match=message):
        write_shard(tmp_path, 0, [make_record(0), make_record(2)])
    with pytest.raises(RawSynthError, match="uncertainty must be given for all records of a shard or none"):
        write_shard(tmp_path, 0, [make_record(0, uncertainty=True), make_record(1)])
    with pytest.raises(RawSynthError, match=r"noisy_dn: shape \(4, 4, 4\) differs from the shard's \(4, 6, 8\)"):
        write_shard(tmp_path, 0, [make_record(0), make_record(1, h=4, w=4)])
    with pytest.raises(RawSynthError, match="records: expected at least one SampleRecord"):
        write_shard(tmp_path, 0, [])
    with pytest.raises(RawSynthError, match="clean_dtype: expected one of float16, float32, got 'float64'"):
        write_shard(tmp_path, 0, [make_record(0)], clean_dtype="float64")


# ---------------------------------------------------------------------------------------- atomicity


def _entries(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def _patch_target(fmt: str) -> Any:
    return zarr.Array if fmt == "zarr" else h5py.Dataset


@pytest.mark.parametrize("fmt", FORMATS)
def test_killed_write_leaves_only_temp(tmp_path: Path, fmt: str) -> None:
    """A process killed mid-write (os._exit in a forked child) leaves no shard, only a temp entry."""
    records = [make_record(i) for i in range(40)]
    pid = os.fork()
    if pid == 0:  # child: die on the second image block
        try:
            cls = _patch_target(fmt)
            original = cls.__setitem__
            calls = {"n": 0}

            def dying(self: Any, key: Any, value: Any) -> None:
                calls["n"] += 1
                if calls["n"] == 2:
                    os._exit(7)
                original(self, key, value)

            cls.__setitem__ = dying
            write_shard(tmp_path, 0, records, fmt=fmt)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7
    entries = _entries(tmp_path)
    assert shard_name(0, fmt) not in entries
    assert len(entries) == 1 and entries[0].startswith(".partial-shard-000000")
    removed = cleanup_partial(tmp_path)
    assert [p.name for p in removed] == entries
    assert _entries(tmp_path) == []
    assert cleanup_partial(tmp_path) == [] and cleanup_partial(tmp_path / "absent") == []
    # the shard can then be written normally
    write_shard(tmp_path, 0, records[:2], fmt=fmt)
    assert _entries(tmp_path) == [shard_name(0, fmt)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_exception_mid_write_removes_temp(tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Any, key: Any, value: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_patch_target(fmt), "__setitem__", boom)
    with pytest.raises(KeyboardInterrupt):
        write_shard(tmp_path, 0, [make_record(0)], fmt=fmt)
    assert _entries(tmp_path) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_disk_full_raises_one_line(tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: Any, key: Any, value: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_patch_target(fmt), "__setitem__", full)
    final = tmp_path / shard_name(4, fmt)
    with pytest.raises(RawSynthError) as err:
        write_shard(tmp_path, 4, [make_record(0)], fmt=fmt)
    assert str(err.value) == f"{final}: cannot write shard: No space left on device (errno 28 ENOSPC)"
    assert _entries(tmp_path) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_permission_denied(tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        if os.geteuid() == 0:  # root ignores the mode bits: refuse creation in `out` like the kernel would
            real_mkdir, real_open = os.mkdir, os.open

            def deny(path: Any) -> None:
                if Path(path).parent == out:
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

            monkeypatch.setattr(writer_module.os, "mkdir", lambda p, *a, **k: deny(p) or real_mkdir(p, *a, **k))
            monkeypatch.setattr(writer_module.os, "open", lambda p, *a, **k: deny(p) or real_open(p, *a, **k))
        with pytest.raises(RawSynthError) as err:
            write_shard(out, 0, [make_record(0)], fmt=fmt)
    finally:
        out.chmod(0o755)
    assert str(err.value) == f"{out / shard_name(0, fmt)}: cannot write shard: Permission denied (errno 13 EACCES)"
    assert _entries(out) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_rewrite_replaces_existing_shard(tmp_path: Path, fmt: str) -> None:
    first = write_shard(tmp_path, 0, [make_record(0), make_record(1)], fmt=fmt)
    second = write_shard(tmp_path, 0, [make_record(0)], fmt=fmt)
    assert first.checksum != second.checksum
    assert _entries(tmp_path) == [shard_name(0, fmt)]
    assert open_shard_file(tmp_path / shard_name(0, fmt)).attrs["checksum"] == second.checksum


# ---------------------------------------------------------------------------------------- manifest


def test_manifest_round_trip_and_atomic_save(tmp_path: Path) -> None:
    m = Manifest(
        config={"patch": (128, 128), "cameras": ["a", "b"], "noise": {"iso": [100, 3200]}},
        n_samples=8,
        shard_size=4,
        format="hdf5",
        engine={"name": "ssdnet", "checkpoint_sha256": "ab" * 32},
    )
    m.record_shard(ShardInfo("shard-000001.h5", 4, 8, 4, "c" * 64, 10))
    m.record_shard(ShardInfo("shard-000000.h5", 0, 4, 4, "d" * 64, 11))
    m.add_skipped("x.png", "grayscale image")
    path = m.save(tmp_path)
    assert path == tmp_path / "manifest.json"
    assert _entries(tmp_path) == ["manifest.json"]
    data = json.loads(path.read_text())
    assert list(data["shards"]) == ["shard-000000.h5", "shard-000001.h5"]
    assert data["shards"]["shard-000001.h5"] == {
        "start": 4, "stop": 8, "count": 4, "checksum": "c" * 64, "nbytes": 10, "state": "complete"
    }
    assert data["config"]["patch"] == [128, 128] and data["format_version"] == 1
    loaded = Manifest.load(tmp_path)
    assert loaded == m and loaded.directory == tmp_path
    assert [n for n, _ in loaded.complete_shards()] == ["shard-000000.h5", "shard-000001.h5"]
    assert loaded.n_complete == 8 and loaded.skipped == [{"source": "x.png", "reason": "grayscale image"}]
    assert Manifest.load(path) == m


def test_manifest_check_compatible(tmp_path: Path) -> None:
    config = {"patch": 256, "format": "zarr", "noise": {"iso": (100, 3200), "model": "hetero"}, "workers": 4}
    m = Manifest(config=config, n_samples=10, shard_size=5)
    m.save(tmp_path)
    loaded = Manifest.load(tmp_path)
    loaded.check_compatible(dict(config))  # tuples and lists compare equal after JSON
    loaded.check_compatible({**config, "workers": 8}, ignore=["workers"])
    with pytest.raises(RawSynthError) as err:
        loaded.check_compatible({**config, "patch": 128})
    assert str(err.value) == (
        f"{tmp_path}: holds a store made with a different configuration (field patch: 256 != 128); "
        "use --overwrite to replace it"
    )
    with pytest.raises(RawSynthError, match=r"\(field noise\.iso: \[100, 3200\] != \[100, 6400\]\)"):
        loaded.check_compatible({**config, "noise": {"iso": [100, 6400], "model": "hetero"}})
    with pytest.raises(RawSynthError, match=r'^out: .*\(field seed: <missing> != 3\)'):
        loaded.check_compatible({**config, "seed": 3}, where="out")


def test_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(RawSynthError, match=rf"^{tmp_path}: no manifest.json \(not a raw-synth store\)$"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(RawSynthError, match=r"manifest.json: not a valid raw-synth manifest \(Expecting"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"config": {}, "n_samples": 1}))
    with pytest.raises(RawSynthError, match="not a raw-synth manifest \\(field 'shard_size' is missing\\)"):
        Manifest.load(tmp_path)
    newer = {"config": {}, "n_samples": 1, "shard_size": 1, "format_version": 9}
    (tmp_path / "manifest.json").write_text(json.dumps(newer))
    with pytest.raises(RawSynthError, match="manifest format version 9 is newer"):
        Manifest.load(tmp_path)
    with pytest.raises(RawSynthError, match="format: expected one of zarr, hdf5, got 'tiff'"):
        Manifest(config={}, n_samples=1, shard_size=1, format="tiff")


# ---------------------------------------------------------------------------------------- open_shards


@pytest.mark.parametrize("fmt", FORMATS)
def test_open_shards_only_complete_and_global_order(tmp_path: Path, fmt: str) -> None:
    m = build_store(tmp_path, fmt, n=10, shard_size=4)
    # a shard being written is not visible even if its file exists
    m.shards["shard-000001" + (".zarr" if fmt == "zarr" else ".h5")]["state"] = "running"
    m.save(tmp_path)
    ds = open_shards(tmp_path)
    assert len(ds) == 6
    assert [s["index"] for s in ds] == [0, 1, 2, 3, 8, 9]
    assert ds.locate(4) == (shard_name(2, fmt), 0)
    with pytest.raises(IndexError, match="sample 6 out of range for a store of 6 samples"):
        ds[6]
    with pytest.raises(RawSynthError, match="no manifest.json"):
        open_shards(tmp_path / "nothing")


def _child_read(path: str, indices: list[int], queue: Any) -> None:
    ds = _SHARED["ds"]
    queue.put([(ds[i]["index"], float(ds[i]["noisy"].sum()), float(ds[i]["clean"].sum())) for i in indices])


_SHARED: dict[str, Any] = {}


@pytest.mark.parametrize("fmt", FORMATS)
def test_open_shards_after_fork(tmp_path: Path, fmt: str) -> None:
    build_store(tmp_path, fmt, n=10, shard_size=4)
    ds = open_shards(tmp_path)
    expected = [(ds[i]["index"], float(ds[i]["noisy"].sum()), float(ds[i]["clean"].sum())) for i in range(10)]
    assert ds._handles  # the parent holds open handles that the children must not use
    _SHARED["ds"] = ds
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_child_read, args=(str(tmp_path), list(range(k, 10, 2)), queue)) for k in (0, 1)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    got = sorted(r for res in results for r in res)
    assert got == expected
    # the parent still reads fine afterwards, and a pickled copy (spawn workers) reads too
    assert ds[3]["index"] == 3
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._handles == {} and clone[7]["index"] == 7
    _SHARED.clear()


def test_open_shards_raw_fork(tmp_path: Path) -> None:
    build_store(tmp_path, "hdf5", n=6, shard_size=3)
    ds = open_shards(tmp_path)
    first = ds[4]["noisy"].copy()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            ok = np.array_equal(ds[4]["noisy"], first) and ds[0]["index"] == 0 and ds._pid == os.getpid()
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"1"
    os.close(r)
    os.waitpid(pid, 0)


# ---------------------------------------------------------------------------------------- summary and plots


def test_summarize_store(tmp_path: Path) -> None:
    build_store(tmp_path, "zarr", n=10, shard_size=4)
    s = summarize_store(tmp_path)
    json.dumps(s)  # plain JSON data
    assert (s["n_samples"], s["n_expected"], s["n_shards"], s["format"]) == (10, 10, 3, "zarr")
    assert s["packed_shape"] == [4, 6, 8] and s["patch_size"] == [12, 16]
    assert s["cameras"] == {"canon-eos-550d": 6, "pixel-4": 4}
    assert s["cfa"] == {"GRBG": 4, "RGGB": 6}
    # ISO of index i: None when i % 5 == 0, else 100 * 2 ** (i % 4)
    assert s["iso"] == {"values": [100.0, 200.0, 400.0, 800.0], "counts": [2, 2, 2, 2], "n_none": 2}
    # shot mean of sample i = 1.15e-3 * (i + 1): 1.15e-3 .. 1.15e-2, quarter-decade bins from 10**-3
    assert s["shot"]["log10_edges"] == [-3.0, -2.75, -2.5, -2.25, -2.0, -1.75]
    assert s["shot"]["counts"] == [1, 1, 2, 4, 2] and s["shot"]["n_nonpositive"] == 0
    assert s["shot"]["min"] == pytest.approx(1.15e-3) and s["shot"]["max"] == pytest.approx(1.15e-2)
    assert sum(s["read"]["counts"]) == 10
    assert s["skipped"] == 3
    assert s["skipped_reasons"] == {"grayscale image": 2, "smaller than the patch": 1}


def test_plot_store_and_preview(tmp_path: Path) -> None:
    from PIL import Image

    store = tmp_path / "store"
    build_store(store, "hdf5", n=5, shard_size=3, h=16, w=16)
    png = plot_store(store, tmp_path / "hist.png")
    with Image.open(png) as im:
        assert im.size == (1200, 360)
    prev = preview_grid(store, tmp_path / "grid.png", n=3)
    with Image.open(prev) as im:
        arr = np.asarray(im.convert("RGB"))
    assert arr.std() > 10  # images were drawn, not a blank page
    with pytest.raises(RawSynthError, match="n: expected a positive integer, got 0"):
        preview_grid(store, tmp_path / "x.png", n=0)
