"""Tests of raw_synth.store.file_write: whole-file writes past the page cache, and their fallback."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from raw_synth.store import file_write
from raw_synth.store.file_write import DIRECT_MIN_BYTES, write_file

SIZES = (0, 1, 4095, 4096, 4097, DIRECT_MIN_BYTES - 1, DIRECT_MIN_BYTES, DIRECT_MIN_BYTES + 4097, 3 * DIRECT_MIN_BYTES)


def _payload(size: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_every_size(tmp_path: Path, size: int) -> None:
    data = _payload(size)
    target = tmp_path / "f.bin"
    write_file(target, data)
    assert target.read_bytes() == data
    assert target.stat().st_size == size


def test_direct_path_taken_on_this_file_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On Linux the large write goes through O_DIRECT (or says why not), never silently buffered."""
    if not hasattr(os, "O_DIRECT"):
        pytest.skip("no O_DIRECT on this platform")
    calls: list[bool] = []
    real = file_write._write_direct
    monkeypatch.setattr(file_write, "_write_direct", lambda p, v: calls.append(real(p, v)) or calls[-1])
    write_file(tmp_path / "big.bin", _payload(2 * DIRECT_MIN_BYTES))
    write_file(tmp_path / "small.bin", _payload(DIRECT_MIN_BYTES - 1))
    assert len(calls) == 1  # only the large file tries O_DIRECT
    if not calls[0]:
        pytest.skip(f"{tmp_path}: this file system refuses O_DIRECT (the buffered path was used)")


def test_truncates_an_existing_file_and_keeps_input(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    write_file(target, _payload(3 * DIRECT_MIN_BYTES, seed=1))
    data = bytearray(_payload(DIRECT_MIN_BYTES + 5, seed=2))
    before = bytes(data)
    write_file(target, data)
    assert target.read_bytes() == before
    assert bytes(data) == before


def test_accepts_numpy_buffers_and_memoryviews(tmp_path: Path) -> None:
    array = np.arange(DIRECT_MIN_BYTES // 2, dtype=np.uint16).reshape(64, -1)
    write_file(tmp_path / "a.bin", array)  # type: ignore[arg-type]  # any C-contiguous buffer
    write_file(tmp_path / "m.bin", memoryview(array.tobytes()))
    assert (tmp_path / "a.bin").read_bytes() == array.tobytes() == (tmp_path / "m.bin").read_bytes()


def test_scratch_buffer_is_reused(tmp_path: Path) -> None:
    write_file(tmp_path / "1.bin", _payload(2 * DIRECT_MIN_BYTES))
    first = file_write._buffer
    write_file(tmp_path / "2.bin", _payload(2 * DIRECT_MIN_BYTES + 100_000))  # within the eighth of headroom
    if first is None:
        pytest.skip("O_DIRECT not used here")
    assert file_write._buffer is first
    assert (tmp_path / "2.bin").read_bytes() == _payload(2 * DIRECT_MIN_BYTES + 100_000)


@pytest.mark.parametrize("where", ["open", "write"])
def test_falls_back_to_buffered_when_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """tmpfs and some network file systems answer EINVAL: the same bytes are written buffered."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        pytest.skip("no O_DIRECT on this platform")
    real_open, real_write = os.open, os.write
    direct_fds: set[int] = set()

    def fake_open(path: Any, flags: int, *args: Any) -> int:
        if flags & flag and where == "open":
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        fd = real_open(path, flags, *args)
        if flags & flag:
            direct_fds.add(fd)
        return fd

    def fake_write(fd: int, data: Any) -> int:
        if fd in direct_fds:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_write(fd, data)

    monkeypatch.setattr(file_write.os, "open", fake_open)
    monkeypatch.setattr(file_write.os, "write", fake_write)
    data = _payload(DIRECT_MIN_BYTES + 12345, seed=3)
    target = tmp_path / "f.bin"
    write_file(target, data)
    assert target.read_bytes() == data


def test_disk_full_is_an_oserror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not hasattr(os, "O_DIRECT"):
        pytest.skip("no O_DIRECT on this platform")
    monkeypatch.setattr(file_write.os, "write", lambda fd, data: 0)  # nothing more fits
    with pytest.raises(OSError) as err:
        write_file(tmp_path / "f.bin", _payload(DIRECT_MIN_BYTES))
    assert err.value.errno == errno.ENOSPC


def test_buffered_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_write, "_write_direct", lambda p, v: pytest.fail("O_DIRECT tried"))
    data = _payload(2 * DIRECT_MIN_BYTES)
    write_file(tmp_path / "f.bin", data, direct=False)
    assert (tmp_path / "f.bin").read_bytes() == data
