"""Write a whole file at once and make it durable, past the page cache where the file system allows.

A shard's bulk (an HDF5 file image, a Zarr shard of one image column) is tens of MB that the writer
never reads again. A buffered ``write`` copies it into page-cache pages that the kernel must first
take from its free memory, and ``fsync`` then writes them out. On a virtual machine whose
hypervisor reclaims the guest's free memory (virtio-balloon free-page reporting, common on cloud
VMs) every such page costs a fault in the host on first touch: on the 2-core VM of
``benchmarks/RESULTS.md`` ten 44 MB files took 3.1 s buffered against 0.20 s with ``O_DIRECT``
(``benchmarks/write_costs.py``), and a 3000-pair HDF5 run spent 13 % of its CPU time in that copy.

:func:`write_file` therefore opens the file with ``O_DIRECT`` (Linux), copies the data once into a
page-aligned buffer that the process keeps for the next file, writes it whole (padded to the next
4 KiB, then truncated to its size) and ``fsync``\\ s. Where the platform or the file system does not
accept ``O_DIRECT`` (macOS, Windows, tmpfs, some network file systems: ``EINVAL`` or
``EOPNOTSUPP``) it writes the ordinary buffered way; the bytes on disk are the same either way.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import threading
from pathlib import Path

__all__ = ["write_file", "DIRECT_MIN_BYTES"]

logger = logging.getLogger(__name__)

#: Files smaller than this are written buffered: the page cache costs them little.
DIRECT_MIN_BYTES = 1 << 20
#: Alignment of an ``O_DIRECT`` buffer, offset and length (a page; covers 512 B and 4 KiB sectors).
_ALIGN = 4096
#: Errors by which ``open`` or ``write`` refuse ``O_DIRECT`` (then the buffered path is used).
_NOT_SUPPORTED = (errno.EINVAL, errno.EOPNOTSUPP)

_buffer: mmap.mmap | None = None
_buffer_lock = threading.Lock()


def write_file(path: str | Path, data: bytes | bytearray | memoryview, direct: bool = True) -> None:
    """Create (or truncate) ``path``, write ``data`` and ``fsync`` it.

    Args:
        path: File to write.
        data: The whole content (not modified).
        direct: Try ``O_DIRECT`` for data of at least :data:`DIRECT_MIN_BYTES`; ``False`` always
            writes buffered.

    Raises:
        OSError: From the file system (disk full, permission denied, ...).
    """
    view = memoryview(data).cast("B")
    if direct and view.nbytes >= DIRECT_MIN_BYTES and _write_direct(Path(path), view):
        return
    with open(path, "wb") as fh:
        fh.write(view)
        fh.flush()
        os.fsync(fh.fileno())


def _aligned_buffer(nbytes: int) -> mmap.mmap:
    """This process's page-aligned scratch buffer of at least ``nbytes`` (kept for the next call)."""
    global _buffer
    if _buffer is None or len(_buffer) < nbytes:
        if _buffer is not None:
            _buffer.close()
        # an eighth more, in whole MiB, so that the next shard, a little larger, does not map (and
        # fault in) a new buffer; private, so the pages are ordinary process memory, not shmem
        size = -(-(nbytes + nbytes // 8) // (1 << 20)) << 20
        _buffer = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return _buffer


def _write_direct(path: Path, view: memoryview) -> bool:
    """Write ``view`` to ``path`` with ``O_DIRECT``; ``False`` (nothing written) where it is refused."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flag, 0o644)
    except OSError as error:
        if error.errno in _NOT_SUPPORTED:
            logger.debug("%s: O_DIRECT refused at open (%s), writing buffered", path, error)
            return False
        raise
    try:
        size = view.nbytes
        padded = -(-size // _ALIGN) * _ALIGN
        with _buffer_lock:
            buffer = _aligned_buffer(padded)
            buffer[:size] = view
            buffer[size:padded] = bytes(padded - size)
            whole = memoryview(buffer)[:padded]
            try:
                done = 0
                while done < padded:
                    written = os.write(fd, whole[done:])
                    if written <= 0 or written % _ALIGN:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    done += written
            except OSError as error:
                if error.errno in _NOT_SUPPORTED and done == 0:
                    logger.debug("%s: O_DIRECT refused at write (%s), writing buffered", path, error)
                    return False
                raise
            finally:
                whole.release()
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True
