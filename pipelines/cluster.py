"""Dask clusters for the pipeline: a quiet local cluster, or a client of an existing scheduler.

One machine: :func:`start_local_cluster` starts ``n`` worker processes with one thread each (torch
and the BLAS libraries get one thread per worker, and glibc one malloc arena that keeps freed memory:
:data:`WORKER_ENVIRON`), no dashboard and
its HTTP endpoint on a free local port, so several runs never fight over port 8787. More
machines: :func:`connect` attaches to a running scheduler (``dask scheduler`` plus
``dask worker`` on each machine, GPU workers included), which must see the same ``--out``
folder and have raw-synth installed; start those workers with the same environment for the same
speed (``MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_MMAP_THRESHOLD_=1073741824``).

Start-up: by default Dask *spawns* each worker, a fresh interpreter that imports distributed, torch,
the engines, the store writer and the image decoder again: about 2.5 s of CPU per worker, paid
while the client does the same, which on 2 cores delays the first shard of a short run by several
seconds. With ``fork=True`` (what ``raw-synth generate`` uses for CPU runs) the workers are forked
from the client once it has loaded all of that, and start in a fraction of a second; the settings
that a spawned worker takes from its environment at start-up (one malloc arena and 1 GiB
thresholds, one BLAS thread) are applied in the forked worker by :class:`LocalWorkerSetup`; the
arena count only holds there if the parent itself never made a second arena, which is why the
``generate`` command calls :func:`raw_synth.cpu_tuning.tune_process_allocator` before anything else. CUDA
does not survive a fork, so GPU runs keep spawning. Either way a local worker ends without
finalising the interpreter once it has closed.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from raw_synth.cpu_tuning import set_malloc
from raw_synth.errors import RawSynthError, one_line

__all__ = ["QUIET_WORKERS", "WORKER_ENVIRON", "LocalWorkerSetup", "start_local_cluster", "connect"]

logger = logging.getLogger(__name__)

#: Environment of the local worker processes, set before they start. Dask's own default sets
#: ``MALLOC_TRIM_THRESHOLD_=65536`` and one BLAS/OpenMP thread. We keep the threads and replace the
#: allocator settings: tasks run in a worker *thread*, whose glibc arena is an ``mmap``-ed heap of
#: at most 64 MiB that hands larger blocks to ``mmap`` and back on every free, so each batch
#: page-faults its working set again (what :func:`raw_synth.inference.tune_cpu_allocator` prevents
#: for the main arena). One arena and 1 GiB thresholds keep freed memory for reuse: 20.3 -> 23.9 and
#: 26.1 pairs/s with the SSDNet engine, 49.7 -> 54.7 with upi (2 workers, 1024 pairs of 256 px).
WORKER_ENVIRON: dict[str, object] = {
    "MALLOC_ARENA_MAX": 1,
    "MALLOC_TRIM_THRESHOLD_": 1 << 30,
    "MALLOC_MMAP_THRESHOLD_": 1 << 30,
    "OMP_NUM_THREADS": 1,
    "MKL_NUM_THREADS": 1,
    "OPENBLAS_NUM_THREADS": 1,
}

#: Dask settings of the local cluster: no statistical profiler (it samples every task thread every
#: 10 ms) and no GIL monitor, which only serve the dashboard we do not start; the event-loop watchdog,
#: the system monitor and the memory monitor wake every 1 / 2 / 1 s instead of 20 / 500 / 100 ms (a
#: shard task takes seconds): an idle 2-worker cluster then burns 1.9 % of a core instead of 9.6 %;
#: the environment above.
QUIET_WORKERS: dict[str, object] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.nanny.pre-spawn-environ": WORKER_ENVIRON,
}


def start_local_cluster(n_workers: int, fork: bool = False):
    """A :class:`distributed.LocalCluster` of ``n_workers`` processes, one thread each, no dashboard.

    Args:
        n_workers: Worker processes (``>= 1``).
        fork: Fork the workers from this process instead of spawning fresh interpreters (see the
            module docstring). Only where this process has not initialised CUDA, and while no
            other thread of it is busy.

    Returns:
        The cluster; close it (or use it as a context manager) when done. Its workers carry
        :class:`LocalWorkerSetup`.
    """
    import dask
    from distributed import LocalCluster

    settings = {**QUIET_WORKERS, "distributed.worker.multiprocessing-method": "fork" if fork else "spawn"}
    with dask.config.set(settings):  # the nannies pass this configuration on to the workers
        cluster = LocalCluster(
            n_workers=int(n_workers),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.ERROR,
            plugins={LocalWorkerSetup()},
        )
    return cluster


def connect(address: str, timeout: str = "20s"):
    """A :class:`distributed.Client` of the scheduler at ``address``.

    Raises:
        RawSynthError: ``"--scheduler ADDR: cannot connect (...)"`` when it cannot be reached.
    """
    from distributed import Client

    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as error:
        raise RawSynthError(f"--scheduler {address}: cannot connect ({one_line(error)})") from None



# ------------------------------------------------------------------------------------ local worker setup

class LocalWorkerSetup(WorkerPlugin):
    """Worker plugin of the local cluster: the start-up environment in a forked worker, a fast exit.

    ``setup`` gives the worker what :data:`WORKER_ENVIRON` gives a spawned one, which reads it when
    its process starts (a forked worker has started long before): one BLAS thread
    (:func:`limit_blas_threads`) and glibc's single arena with 1 GiB mmap and trim thresholds
    (:func:`tune_malloc`). In a spawned worker both are no-ops in effect.

    ``teardown`` runs when the worker closes gracefully. A local worker has nothing left to flush
    then (every shard is written and closed inside its task), but a spawned worker's interpreter
    would spend 0.5 to 1 s finalising torch, numba and LLVM, which closing the cluster waits for;
    the handler registered here (``atexit`` runs it first) ends the process with ``os._exit(0)``.
    A crashing worker exits as usual.
    """

    name = "raw-synth-local-worker"

    def setup(self, worker: Any) -> None:
        """One BLAS thread and the malloc settings, in this worker process."""
        limit_blas_threads()
        tune_malloc()

    def teardown(self, worker: Any) -> None:
        """Arm the fast exit (the worker has closed)."""
        import atexit

        atexit.register(os._exit, 0)


def limit_blas_threads() -> int:
    """Set every OpenBLAS loaded in this process to one thread.

    Returns:
        How many OpenBLAS libraries were set (0 where none is loaded or none exports a setter).
    """
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            libraries = sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", maps.read())))
    except OSError:
        return 0
    count = 0
    for library in libraries:
        try:
            handle = ctypes.CDLL(library)
        except OSError:
            continue
        for symbol in ("openblas_set_num_threads", "openblas_set_num_threads64_",
                       "scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads"):
            setter = getattr(handle, symbol, None)
            if setter is not None:
                setter.argtypes = [ctypes.c_int]
                setter(1)
                count += 1
                break
    return count


def tune_malloc() -> bool:
    """glibc: one malloc arena, 1 GiB mmap and trim thresholds (``MALLOC_ARENA_MAX=1`` and friends).

    Returns:
        True when glibc accepted the settings; False elsewhere (nothing done).
    """
    return set_malloc(int(WORKER_ENVIRON["MALLOC_MMAP_THRESHOLD_"]), arena_max=int(WORKER_ENVIRON["MALLOC_ARENA_MAX"]))
