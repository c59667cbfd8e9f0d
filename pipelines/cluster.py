"""Dask clusters for the pipeline: a quiet local cluster, or a client of an existing scheduler.

One machine: :func:`start_local_cluster` starts ``n`` worker processes with one thread each (torch
and the BLAS libraries get one thread per worker, and glibc one malloc arena that keeps freed memory:
:data:`WORKER_ENVIRON`), no dashboard and
its HTTP endpoint on a free local port, so several runs never fight over port 8787. More
machines: :func:`connect` attaches to a running scheduler (``dask scheduler`` plus
``dask worker`` on each machine, GPU workers included), which must see the same ``--out``
folder and have raw-synth installed; start those workers with the same environment for the same
speed (``MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_MMAP_THRESHOLD_=1073741824``).

:class:`BackgroundCluster` starts a local cluster on a thread of its own and warms its workers up
(imports, compiled kernels) while the client still reads the sources and prepares the store, so a
short run does not pay the start-up after that work. Its workers skip the interpreter's
finalisation when they close (:class:`FastExit`).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from distributed.diagnostics.plugin import WorkerPlugin

from raw_synth.errors import RawSynthError

__all__ = ["QUIET_WORKERS", "WORKER_ENVIRON", "BackgroundCluster", "FastExit", "start_local_cluster", "connect"]

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


def start_local_cluster(n_workers: int):
    """A :class:`distributed.LocalCluster` of ``n_workers`` processes, one thread each, no dashboard.

    Args:
        n_workers: Worker processes (``>= 1``).

    Returns:
        The cluster; close it (or use it as a context manager) when done.
    """
    import dask
    from distributed import LocalCluster

    with dask.config.set(QUIET_WORKERS):  # the nannies pass this configuration on to the workers
        return LocalCluster(
            n_workers=int(n_workers),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.ERROR,
        )


def connect(address: str, timeout: str = "20s"):
    """A :class:`distributed.Client` of the scheduler at ``address``.

    Raises:
        RawSynthError: ``"--scheduler ADDR: cannot connect (...)"`` when it cannot be reached.
    """
    from distributed import Client

    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as error:
        text = " ".join(str(error).split()) or type(error).__name__
        raise RawSynthError(f"--scheduler {address}: cannot connect ({text})") from None


class FastExit(WorkerPlugin):
    """Dask worker plugin: once the worker has closed, end its process without finalising Python.

    A local worker has nothing left to flush when it closes (every shard is written and closed
    inside its task), but finalising the interpreter - torch, numba and LLVM tear-down - takes
    0.5 to 1 s per process, and closing the cluster waits for it at the end of every run. The
    plugin's ``teardown`` runs only on a graceful close, and registers an ``atexit`` handler (it
    runs first, being registered last) that calls ``os._exit(0)``. A crashing worker exits as
    usual. Only the local cluster's workers get it, never those of a ``--scheduler``.
    """

    name = "raw-synth-fast-exit"

    def setup(self, worker: Any) -> None:
        """Nothing to do when the worker starts."""

    def teardown(self, worker: Any) -> None:
        """Arm the fast exit (the worker has closed)."""
        import atexit

        atexit.register(os._exit, 0)


class BackgroundCluster:
    """A local cluster started on a background thread, its client connected, its workers warmed up.

    Example:
        >>> starting = BackgroundCluster(2, warm_up=my_imports)  # doctest: +SKIP
        >>> ...                                                    # the client's own work
        >>> client = starting.client()                             # waits for the start
        >>> starting.close()
    """

    def __init__(self, n_workers: int, warm_up: Callable[[], Any] | None = None) -> None:
        """Start ``n_workers`` worker processes; run ``warm_up()`` once in each when they are up.

        Args:
            n_workers: Worker processes (``>= 1``).
            warm_up: A picklable function without arguments, run on every worker (e.g. imports).
        """
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raw-synth-cluster")
        self._future: Future = self._executor.submit(self._start, int(n_workers), warm_up)

    @staticmethod
    def _start(n_workers: int, warm_up: Callable[[], Any] | None):
        import time

        from distributed import Client

        began = time.perf_counter()
        cluster = start_local_cluster(n_workers)
        try:
            client = Client(cluster)
            client.register_plugin(FastExit(), name=FastExit.name)
            up = time.perf_counter()
            if warm_up is not None:
                client.run(warm_up)
        except BaseException:
            cluster.close()
            raise
        logger.info("local cluster of %d workers up in %.1f s, warm %.1f s later", n_workers, up - began,
                    time.perf_counter() - up)
        return client, cluster

    def client(self):
        """The :class:`distributed.Client`, once the cluster is up and warm (waits for it)."""
        return self._future.result()[0]

    def close(self) -> None:
        """Close the client and the cluster (waits for the start to finish first); again: no-op."""
        if self._closed:
            return
        self._closed = True
        try:
            client, cluster = self._future.result()
        except BaseException:  # the start failed: nothing to close, the error surfaced in client()
            logger.debug("local cluster failed to start", exc_info=True)
            client = cluster = None
        finally:
            self._executor.shutdown(wait=True)
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
