"""CPU process settings in one place: torch's thread count and glibc malloc's thresholds.

* :func:`torch_threads` sets torch's intra-op thread count for a block and restores it after;
  :func:`set_torch_threads` sets it for good (only when it differs).
* :func:`set_malloc` calls glibc's ``mallopt`` for the mmap/trim thresholds (and optionally the
  arena count); :func:`tune_cpu_allocator` raises both thresholds to 1 GiB, once per process;
  :func:`tune_process_allocator` also keeps the process (and what it forks) to one arena.

Without raised thresholds every large intermediate tensor is a fresh ``mmap`` whose pages fault
in on first touch, which made CPU inference several times slower on the 2-core VM of
``benchmarks/isp_speed.py``.

Example:
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import platform
from typing import Iterator

__all__ = ["ALLOCATOR_THRESHOLD", "set_torch_threads", "torch_threads", "set_malloc", "tune_cpu_allocator",
           "tune_process_allocator"]

logger = logging.getLogger(__name__)

#: glibc ``mallopt`` parameter numbers (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
#: Threshold set by :func:`tune_cpu_allocator`: 1 GiB.
ALLOCATOR_THRESHOLD = 1 << 30

_ALLOCATOR_TUNED: bool | None = None


def set_torch_threads(count: int) -> int:
    """Set torch's intra-op thread count (nothing is called when it already is ``count``).

    Args:
        count: Threads, >= 1.

    Returns:
        The count before.
    """
    import torch

    before = torch.get_num_threads()
    if count != before:
        torch.set_num_threads(count)
    return before


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Torch's intra-op thread count set to ``count`` inside the block, restored after it.

    Args:
        count: Threads, >= 1; ``None`` or 0 leaves the count as it is.
    """
    if not count:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def set_malloc(threshold: int, arena_max: int | None = None) -> bool:
    """glibc: set malloc's mmap and trim thresholds (and the arena count when given).

    The same effect as ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` (and
    ``MALLOC_ARENA_MAX``) in the environment of a starting process.

    Args:
        threshold: Bytes for both thresholds.
        arena_max: Most malloc arenas, or ``None`` to leave it.

    Returns:
        True when glibc accepted every setting; False elsewhere (macOS, Windows, musl: nothing done).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = ([] if arena_max is None else [(_M_ARENA_MAX, arena_max)]) + [
        (_M_MMAP_THRESHOLD, threshold), (_M_TRIM_THRESHOLD, threshold)]
    return all([bool(mallopt(param, value)) for param, value in settings])


def tune_process_allocator() -> bool:
    """One glibc malloc arena and 1 GiB thresholds, for this process and every process it forks.

    Call it first thing in a process that forks workers whose tasks run in a thread, before the
    process starts any thread of its own (``raw-synth generate`` does, on CPU). A thread's blocks
    come from its arena; an arena other than the main one is an ``mmap``-ed heap of at most 64 MiB
    that hands larger blocks to ``mmap`` and back on every free, so a task that allocates and frees
    the same large arrays page-faults them in again each time. A forked child inherits its parent's
    arenas, and its first new thread takes one of the parent's spare arenas, whatever ``M_ARENA_MAX``
    the child sets later: only a parent that never made a second arena gives its children's task
    threads the main one. Measured with ``raw-synth generate`` (2 forked Dask workers, 3 000 photo
    pairs of 256 px, HDF5; ``perf stat``): page faults 490 000 -> 203 000, system CPU 3.2-5.6 ->
    2.8-4.0 s (benchmarks/RESULTS.md, "raw-synth against the peer script").

    Returns:
        True when glibc accepted the settings; False elsewhere (nothing done).
    """
    global _ALLOCATOR_TUNED
    _ALLOCATOR_TUNED = set_malloc(ALLOCATOR_THRESHOLD, arena_max=1)
    return _ALLOCATOR_TUNED


def tune_cpu_allocator() -> bool:
    """Raise glibc malloc's mmap and trim thresholds to 1 GiB, once per process.

    SSDNet's CPU inference allocates many large short-lived tensors. By default glibc serves each
    of them with a fresh ``mmap`` and returns it on free, so every forward pass page-faults its
    whole working set again; with the thresholds raised the freed memory is reused. The same
    effect as ``MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824`` in the
    environment. The price is that the process keeps its peak heap instead of returning it.

    Returns:
        True when the thresholds are set (now or by an earlier call), False where the C library
        is not glibc (macOS, Windows, musl) - then nothing is done.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED is None:
        _ALLOCATOR_TUNED = set_malloc(ALLOCATOR_THRESHOLD)
        logger.debug("tune_cpu_allocator: mallopt thresholds %s", "set" if _ALLOCATOR_TUNED else "not set")
    return _ALLOCATOR_TUNED
