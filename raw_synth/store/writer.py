"""Writing shards atomically: :func:`shard_name`, :func:`write_shard`, :func:`cleanup_partial`.

A shard is written under a temporary name starting with :data:`PARTIAL_PREFIX` in the output
folder, then renamed to its final name (``os.replace`` for an HDF5 file, a directory rename for a
Zarr store; both atomic on POSIX within one file system). A process killed mid-write therefore
leaves only a temporary entry, never a partial shard under a final name;
:func:`cleanup_partial` removes such leftovers. A write that fails with an error removes its own
temporary entry and raises a one-line :class:`RawSynthError` naming the shard.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Sequence

from raw_synth import __version__
from raw_synth.errors import RawSynthError, one_line
from raw_synth.store.digests import DIGESTS_KEY, shard_digests
from raw_synth.store.records import SampleRecord, ShardInfo, records_to_columns
from raw_synth.store.shard_file import FORMATS, SUFFIXES

__all__ = ["PARTIAL_PREFIX", "SHARD_FORMAT_VERSION", "shard_name", "write_shard", "cleanup_partial", "disk_usage"]

logger = logging.getLogger(__name__)

#: Name prefix of every temporary entry the store writes (shards and manifest).
PARTIAL_PREFIX = ".partial-"

#: Version of the shard layout, saved in each shard's attributes. Version 2 added the
#: per-column and per-sample digests (:mod:`raw_synth.store.digests`); version 1 shards still read.
SHARD_FORMAT_VERSION = 2


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise RawSynthError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    return fmt


def shard_name(shard_index: int, fmt: str) -> str:
    """The file name of shard ``shard_index``: ``"shard-000012.zarr"`` or ``"shard-000012.h5"``.

    Raises:
        RawSynthError: Negative index or unknown format.
    """
    if isinstance(shard_index, bool) or not isinstance(shard_index, int) or shard_index < 0:
        raise RawSynthError(f"shard_index: expected a non-negative integer, got {shard_index!r}")
    return f"shard-{shard_index:06d}{SUFFIXES[_check_format(fmt)]}"


def disk_usage(path: Path) -> int:
    """Bytes of the file ``path`` or of every file under the directory ``path``."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _remove(path: Path) -> None:
    """Remove a file or directory tree if present; never raises."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError as exc:  # pragma: no cover - best effort
        logger.warning("%s: could not remove temporary entry (%s)", path, exc)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - not supported on this platform
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        return f"{exc.strerror} (errno {exc.errno} {errno.errorcode.get(exc.errno, '')})".replace(" )", ")")
    return one_line(exc)


def _make_temp(out_dir: Path, name: str, fmt: str) -> Path:
    tmp = out_dir / f"{PARTIAL_PREFIX}{name}.{os.getpid()}-{secrets.token_hex(4)}"
    if fmt == "zarr":
        os.mkdir(tmp)
    else:
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    return tmp


def _install(tmp: Path, final: Path) -> None:
    """Move the completed ``tmp`` to ``final``, replacing an existing shard of that name."""
    if (final.is_dir() and not final.is_symlink()) or (tmp.is_dir() and final.exists()):
        # a directory cannot be renamed onto a non-empty one: move the old one aside first
        old = final.parent / f"{PARTIAL_PREFIX}{final.name}.old-{secrets.token_hex(4)}"
        os.rename(final, old)
        os.rename(tmp, final)
        _remove(old)
    else:
        os.replace(tmp, final)


def write_shard(
    out_dir: str | Path,
    shard_index: int,
    records: Sequence[SampleRecord],
    fmt: str = "zarr",
    clean_dtype: str = "float16",
) -> ShardInfo:
    """Write ``records`` as shard ``shard_index`` of the store in ``out_dir``, atomically.

    The records must have consecutive global indices ``start .. stop-1``. Noisy is stored as
    uint16 DN, clean as ``clean_dtype``, the optional uncertainty as float16, every image with one
    chunk ``(1, 4, h, w)`` per sample. An existing shard of the same name is replaced.

    Args:
        out_dir: Store folder (created if missing).
        shard_index: Shard number; the name is :func:`shard_name` ``(shard_index, fmt)``.
        records: At least one :class:`SampleRecord` (not modified).
        fmt: ``"zarr"`` (default) or ``"hdf5"``.
        clean_dtype: ``"float16"`` (default) or ``"float32"``.

    Returns:
        :class:`ShardInfo` with the checksum (the same for both formats given the same records)
        and the bytes on disk.

    Raises:
        RawSynthError: Invalid records or arguments, or any error while writing (disk full,
            permission denied, a file-system or library error), as one line naming the shard path. No shard is
            left under the final name by a failed write, and the temporary entry is removed.
    """
    _check_format(fmt)
    name = shard_name(shard_index, fmt)
    out = Path(out_dir)
    final = out / name
    columns = records_to_columns(records, clean_dtype)
    checksum, digests = shard_digests(columns)
    start = int(columns["index"][0])
    count = int(columns["index"].shape[0])
    attrs = {
        "format_version": SHARD_FORMAT_VERSION,
        "raw_synth_version": __version__,
        "start": start,
        "stop": start + count,
        "count": count,
        "checksum": checksum,
        "clean_dtype": clean_dtype,
        "has_uncertainty": "uncertainty" in columns,
        "packed_shape": list(columns["noisy"].shape[1:]),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        DIGESTS_KEY: digests,
        "complete": True,
    }
    tmp: Path | None = None
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp = _make_temp(out, name, fmt)
        if fmt == "zarr":
            from raw_synth.store.zarr_shard import write_zarr

            write_zarr(tmp, columns, attrs)
        else:
            from raw_synth.store.hdf5_shard import write_hdf5

            write_hdf5(tmp, columns, attrs)
        nbytes = disk_usage(tmp)
        _install(tmp, final)
        tmp = None
        _fsync_dir(out)
    except RawSynthError:
        raise
    except Exception as exc:  # noqa: BLE001 - disk full, permissions, an HDF5 or Zarr error: one line
        logger.debug("writing %s failed", final, exc_info=True)
        raise RawSynthError(f"{final}: cannot write shard: {_reason(exc)}") from None
    finally:
        if tmp is not None:
            _remove(tmp)
    logger.debug("wrote %s (%d samples, %d bytes)", final, count, nbytes)
    return ShardInfo(name=name, start=start, stop=start + count, count=count, checksum=checksum, nbytes=nbytes)


def cleanup_partial(out_dir: str | Path) -> list[Path]:
    """Remove the temporary entries (``.partial-*``) that interrupted writes left in ``out_dir``.

    Call it only while no writer is running on ``out_dir`` (e.g. before resuming).

    Args:
        out_dir: Store folder; a missing folder is not an error.

    Returns:
        The removed paths, sorted.
    """
    out = Path(out_dir)
    if not out.is_dir():
        return []
    removed = sorted(p for p in out.iterdir() if p.name.startswith(PARTIAL_PREFIX))
    for path in removed:
        _remove(path)
        logger.info("removed leftover temporary entry %s", path)
    return removed
