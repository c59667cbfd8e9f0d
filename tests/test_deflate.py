"""Tests of raw_synth.store.deflate: HDF5's shuffle + deflate filters run outside HDF5."""

from __future__ import annotations

import importlib
import subprocess
import sys
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest

from raw_synth.store import deflate
from raw_synth.store.deflate import decode_chunk, encode_chunk, shuffle

DTYPES = ("uint16", "float16", "float32", "uint8", ">u2", "float64")


def _chunk(dtype: str, shape: tuple[int, ...] = (4, 12, 10)) -> np.ndarray:
    return (np.random.default_rng(0).random(shape) * 1000).astype(dtype)


def test_shuffle_is_hdf5_byte_planes() -> None:
    chunk = np.array([0x0102, 0x0304, 0x0506], dtype="<u2")
    assert shuffle(chunk).tolist() == [0x02, 0x04, 0x06, 0x01, 0x03, 0x05]
    assert shuffle(np.array([[1.5]], dtype=np.float32)).tolist() == [0, 0, 0xC0, 0x3F]


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip(dtype: str) -> None:
    chunk = _chunk(dtype)
    before = chunk.copy()
    back = decode_chunk(encode_chunk(chunk), chunk.dtype, chunk.shape)
    assert back.dtype == chunk.dtype and np.array_equal(back, chunk)
    assert np.array_equal(chunk, before)


@pytest.mark.parametrize("dtype", ("uint16", "float16", "float32"))
def test_hdf5_reads_our_chunks(tmp_path: Path, dtype: str) -> None:
    data = np.stack([_chunk(dtype), _chunk(dtype)[::-1].copy()])
    with h5py.File(tmp_path / "x.h5", "w") as f:
        ds = f.create_dataset("x", shape=data.shape, dtype=data.dtype, chunks=(1, *data.shape[1:]),
                              compression="gzip", compression_opts=1, shuffle=True)
        for i in range(len(data)):
            ds.id.write_direct_chunk((i, 0, 0, 0), encode_chunk(data[i]))
    with h5py.File(tmp_path / "x.h5", "r") as f:
        assert np.array_equal(f["x"][...], data)


def test_zlib_backend_is_byte_for_byte_hdf5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With zlib, a chunk is exactly what HDF5's own shuffle + gzip level 1 filters store."""
    monkeypatch.setattr(deflate, "BACKEND", "zlib")
    data = np.stack([_chunk("uint16"), _chunk("float16").view(np.uint16)])
    with h5py.File(tmp_path / "x.h5", "w") as f:
        ds = f.create_dataset("x", data=data, chunks=(1, *data.shape[1:]), compression="gzip",
                              compression_opts=1, shuffle=True)
        for i in range(len(data)):
            mask, stored = ds.id.read_direct_chunk((i, 0, 0, 0))
            assert mask == 0
            assert stored == encode_chunk(data[i]) == zlib.compress(shuffle(data[i]).tobytes(), 1)


def test_backend_from_environment() -> None:
    code = "from raw_synth.store import deflate; print(deflate.BACKEND)"
    env = {"RAW_SYNTH_DEFLATE": "zlib", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "zlib"
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"RAW_SYNTH_DEFLATE": "lz4", "PATH": ""})
    assert bad.returncode != 0
    assert "RAW_SYNTH_DEFLATE='lz4': expected 'isal' or 'zlib'" in bad.stderr


def test_isal_used_when_installed() -> None:
    try:
        importlib.import_module("isal.isal_zlib")
    except ImportError:
        assert deflate.BACKEND == "zlib"
    else:
        assert deflate.BACKEND == "isal"
