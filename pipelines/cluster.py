"""Dask clusters for the pipeline: a quiet local cluster, or a client of an existing scheduler.

One machine: :func:`start_local_cluster` starts ``n`` worker processes with one thread each (torch
and the BLAS libraries get one thread per worker from Dask's nanny environment), no dashboard and
its HTTP endpoint on a free local port, so several runs never fight over port 8787. More
machines: :func:`connect` attaches to a running scheduler (``dask scheduler`` plus
``dask worker`` on each machine, GPU workers included), which must see the same ``--out``
folder and have raw-synth installed.
"""

from __future__ import annotations

import logging

from raw_synth.errors import RawSynthError

__all__ = ["QUIET_WORKERS", "start_local_cluster", "connect"]

#: Dask settings of the local workers: no statistical profiler (it samples every task thread every
#: 10 ms) and no GIL monitor, which only serve the dashboard we do not start.
QUIET_WORKERS: dict[str, object] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
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
