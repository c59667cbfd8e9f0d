"""HDF5's shuffle + deflate filters, applied here so that a faster deflate can do the work.

An HDF5 shard stores each sample's image in its own chunk through the ``shuffle`` then ``deflate``
(gzip) filters, which every HDF5 reader understands. HDF5 runs deflate with the system zlib, which
at level 1 compresses a 256x256 pair's two images (256 KiB) in about 3.6 ms on the machine of
``benchmarks/RESULTS.md``: more than half of a pair's whole cost on the ``upi`` engine.
:func:`encode_chunk` produces the same filter output, a zlib stream of the byte-shuffled chunk,
with Intel's ISA-L (``isal``, a dependency on x86-64 and ARM64) where it is installed: 0.44 ms for
those 256 KiB, for files about 4 % larger (``benchmarks/write_costs.py``); any zlib inflates them,
so the shards read everywhere as before. Without ``isal``, or with ``RAW_SYNTH_DEFLATE=zlib`` in
the environment, the standard library's ``zlib`` is used: byte for byte what HDF5 itself writes.
"""

from __future__ import annotations

import os
import zlib
from types import ModuleType

import numpy as np

from raw_synth.errors import RawSynthError

__all__ = ["BACKEND", "BACKEND_ENV", "shuffle", "encode_chunk", "decode_chunk"]


#: Environment variable that forces a backend: ``zlib`` (HDF5's own bytes) or ``isal``.
BACKEND_ENV = "RAW_SYNTH_DEFLATE"


def _fast_zlib() -> tuple[str, ModuleType]:
    wanted = os.environ.get(BACKEND_ENV, "").strip().lower()
    if wanted not in ("", "isal", "zlib"):
        raise RawSynthError(f"{BACKEND_ENV}={wanted!r}: expected 'isal' or 'zlib'")
    if wanted == "zlib":
        return "zlib", zlib
    try:
        from isal import isal_zlib
    except ImportError:  # no wheel for this platform: the standard library
        if wanted == "isal":
            raise RawSynthError(f"{BACKEND_ENV}=isal: the isal package is not installed (pip install isal)") from None
        return "zlib", zlib
    return "isal", isal_zlib


#: Which deflate implementation :func:`encode_chunk` uses: ``"isal"`` or ``"zlib"``.
BACKEND, _DEFLATE = _fast_zlib()


def shuffle(chunk: np.ndarray) -> np.ndarray:
    """HDF5's shuffle filter: byte ``b`` of every element, for ``b`` = 0, 1, ... in turn.

    Args:
        chunk: Array of any shape and numeric dtype (not modified).

    Returns:
        1-D uint8 array of ``chunk.nbytes`` bytes.
    """
    flat = np.ascontiguousarray(chunk).reshape(-1)
    return np.ascontiguousarray(flat.view(np.uint8).reshape(flat.size, flat.dtype.itemsize).T).reshape(-1)


def encode_chunk(chunk: np.ndarray, level: int = 1) -> bytes:
    """One chunk as HDF5's ``shuffle`` + ``deflate`` filters store it (zlib format).

    Args:
        chunk: The chunk's values, in the dataset's dtype (not modified).
        level: Deflate level, 1-9 as HDF5's ``compression_opts`` (ISA-L has levels 0-3 and uses
            ``min(level, 3)``).

    Returns:
        The bytes to hand to ``write_direct_chunk``.
    """
    data = shuffle(chunk).data
    if BACKEND == "isal":
        return bytes(_DEFLATE.compress(data, min(int(level), 3)))
    return zlib.compress(data, int(level))


def decode_chunk(data: bytes, dtype: np.dtype | str, shape: tuple[int, ...]) -> np.ndarray:
    """Invert :func:`encode_chunk`: inflate, un-shuffle and shape (for tests and checks).

    Args:
        data: A zlib stream of a shuffled chunk.
        dtype: The chunk's dtype.
        shape: The chunk's shape.

    Returns:
        The chunk as a new array.
    """
    dt = np.dtype(dtype)
    count = int(np.prod(shape))
    planes = np.frombuffer(zlib.decompress(data), dtype=np.uint8).reshape(dt.itemsize, count)
    return np.ascontiguousarray(planes.T).view(dt).reshape(shape)
