"""One Dask task: make the samples of one shard and write it.

:func:`make_shard` runs inside a worker process (or in the client for a one-worker run). For
each global index it derives the sample's generator ``sample_rng(seed, index)`` and draws, in
this order and only from it: the camera (uniform over the camera mix), the crop of the source
image, the engine's random camera (inside ``engine.convert``), the noise parameters and the noise
itself. The output therefore depends only on ``(config, index)``, never on the worker count or
on which shards ran before. The engine is created once per worker process
(:func:`get_engine`) and torch uses one thread per worker.

The task returns a small summary dict; nothing bulky goes back to the client.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pipelines.config import GenerateConfig
from raw_synth.camera import CameraProfile
from raw_synth.cpu_tuning import set_torch_threads, tune_cpu_allocator
from raw_synth.engine import EngineResult, InverseISP, create_engine, engine_uses_torch
from raw_synth.errors import RawSynthError
from raw_synth.seeding import sample_rng
from raw_synth.sources import Skipped, Sources

__all__ = ["ShardJob", "get_engine", "make_sample", "make_shard", "clear_engine_cache", "peak_rss_bytes"]

logger = logging.getLogger(__name__)

#: Engines of this process, keyed by ``(engine, checkpoint, device)``.
_ENGINES: dict[tuple[str, str | None, str], InverseISP] = {}
#: Samples handed to an engine's ``convert_batch`` at once.
BATCH = 16


@dataclass(frozen=True)
class ShardJob:
    """What every shard task shares: the configuration and the resolved inputs.

    Attributes:
        config: The run configuration.
        sources: The usable inputs (see :func:`raw_synth.sources.resolve_sources`).
        cameras: The camera mix, in order; each sample picks one uniformly.
        out: Absolute store folder.
    """

    config: GenerateConfig
    sources: Sources
    cameras: tuple[CameraProfile, ...]
    out: str


def engine_options(config: GenerateConfig) -> dict[str, Any]:
    """Keyword options of :func:`raw_synth.engine.create_engine` for a configuration."""
    if config.engine == "upi":
        return {}
    checkpoint = None if config.model is None else str(config.model)  # None: the bundled checkpoint
    return {"checkpoint": checkpoint, "device": config.device}


def get_engine(config: GenerateConfig) -> InverseISP:
    """The engine of this worker process, created on first use and cached.

    The first call in a process also raises glibc malloc's thresholds
    (:func:`raw_synth.inference.tune_cpu_allocator`). Every sample allocates and frees the same
    few large arrays; by default each is a fresh ``mmap`` that page-faults again, which on the
    2-core development VM costs about a sixth of the CPU time of a 256-pixel sample (33 -> 27 ms,
    default deadleaves source and ``upi`` engine). With the thresholds raised the freed blocks
    are reused and memory stays flat.

    Args:
        config: Supplies ``engine``, ``model`` and ``device``.
    """
    key = (config.engine, None if config.model is None else str(config.model), config.device)
    engine = _ENGINES.get(key)
    if engine is None:
        tune_cpu_allocator()
        engine = create_engine(config.engine, **engine_options(config))
        _ENGINES[key] = engine
        logger.info("created engine %s in process", key)
    return engine


def clear_engine_cache() -> None:
    """Forget the cached engines of this process (tests, benchmarks)."""
    _ENGINES.clear()


def peak_rss_bytes() -> int:
    """Peak resident memory of this process in bytes.

    On Linux the ``VmHWM`` line of ``/proc/self/status``: the high-water mark of this process
    image alone. ``getrusage``'s ``ru_maxrss`` (used elsewhere) also keeps what a spawned process
    held before its ``exec``, i.e. a copy of its parent's peak, which would make every worker look
    as large as the client.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _in_dask_worker() -> bool:
    if "distributed" not in sys.modules:  # a Dask worker has imported it; an in-process run need not
        return False
    try:
        from distributed import get_worker

        get_worker()
        return True
    except (ImportError, ValueError):
        return False


def _uncertainty(result: EngineResult) -> np.ndarray | None:
    value = getattr(result, "uncertainty", None)
    if value is None:
        value = result.params.get("uncertainty") if isinstance(result.params, dict) else None
    return None if value is None else np.asarray(value, dtype=np.float32)


def _prepare(job: ShardJob, index: int) -> tuple[np.random.Generator, CameraProfile, Any]:
    """Sample generator, camera and source patch of one index (the draws before the engine)."""
    rng = sample_rng(job.config.seed, index)
    camera = job.cameras[int(rng.integers(len(job.cameras)))]
    patch = job.sources.load_patch(index, job.config.seed, job.config.patch, rng)
    return rng, camera, patch


def _finish(job: ShardJob, index: int, rng: np.random.Generator, camera: CameraProfile, patch: Any,
            result: EngineResult):
    """Noise, DN conversion and the record of one sample (the draws after the engine)."""
    from raw_synth.noise import apply_noise, to_dn
    from raw_synth.noise.profiles import sample_camera_noise
    from raw_synth.store.records import SampleRecord

    clean = np.clip(np.asarray(result.packed, dtype=np.float32), 0.0, 1.0)
    expected = (4, job.config.patch // 2, job.config.patch // 2)
    if clean.shape != expected:
        raise RawSynthError(f"engine {job.config.engine!r}: returned shape {clean.shape} for sample {index}, "
                            f"expected {expected}")
    draw = sample_camera_noise(camera, rng)
    noisy, shot, read = apply_noise(clean, draw.params, rng)
    black = np.asarray(camera.black_level, dtype=np.float64)
    white = np.asarray(camera.white_level, dtype=np.float64)
    uncertainty = None
    if job.config.uncertainty:
        uncertainty = _uncertainty(result)
        if uncertainty is None:
            raise RawSynthError(f"--uncertainty: engine {job.config.engine!r} returned no uncertainty")
    return SampleRecord(
        index=int(index),
        noisy_dn=to_dn(noisy, black, white),
        clean=clean,
        camera=camera.name,
        cfa=camera.cfa,
        iso=draw.iso,
        gain=draw.gain,
        shot=np.asarray(shot, dtype=np.float64),
        read=np.asarray(read, dtype=np.float64),
        black_level=black,
        white_level=white,
        wb_gains=np.asarray(result.wb_gains, dtype=np.float64),
        xyz_to_cam=np.asarray(result.xyz_to_cam, dtype=np.float64),
        source=patch.source,
        crop=(int(patch.crop[0]), int(patch.crop[1])),
        uncertainty=uncertainty,
    )


def make_sample(job: ShardJob, index: int, engine: InverseISP | None = None):
    """Make the :class:`~raw_synth.store.SampleRecord` of one global index (no batching).

    Args:
        job: Configuration, sources and cameras.
        index: Global sample index.
        engine: The engine; the process's cached one when ``None``.

    Returns:
        ``(record, failed)``: the record and the inputs that failed to decode on the way.
    """
    engine = engine if engine is not None else get_engine(job.config)
    rng, camera, patch = _prepare(job, index)
    result = engine.convert(patch.rgb, rng)
    return _finish(job, index, rng, camera, patch, result), list(patch.failed)


def _make_records(job: ShardJob, indices: Sequence[int]) -> tuple[list[Any], list[Skipped]]:
    engine = get_engine(job.config)
    records: list[Any] = []
    failed: list[Skipped] = []
    batch_fn = getattr(engine, "convert_batch", None)
    if batch_fn is None:
        for index in indices:
            record, bad = make_sample(job, index, engine)
            records.append(record)
            failed.extend(bad)
        return records, failed
    for first in range(0, len(indices), BATCH):
        chunk = list(indices[first : first + BATCH])
        prepared = [_prepare(job, index) for index in chunk]
        results = batch_fn([p.rgb for _, _, p in prepared], [rng for rng, _, _ in prepared])
        for index, (rng, camera, patch), result in zip(chunk, prepared, results):
            records.append(_finish(job, index, rng, camera, patch, result))
            failed.extend(patch.failed)
    return records, failed


def make_shard(shard_index: int, start: int, stop: int, job: ShardJob) -> dict[str, Any]:
    """Make samples ``[start, stop)`` and write them as shard ``shard_index``.

    Args:
        shard_index: Shard number (names the shard, ``shard-000012.zarr``).
        start: First global sample index.
        stop: One past the last.
        job: Configuration, sources and cameras (:class:`ShardJob`).

    Returns:
        A small dict: ``shard`` (index), ``name``, ``start``, ``stop``, ``count``, ``checksum``,
        ``nbytes`` (from :class:`~raw_synth.store.ShardInfo`), ``failed`` (list of
        ``{source, reason}`` inputs that failed to decode here), ``seconds`` (task wall time),
        ``cpu_seconds`` (CPU time of this process during the task),
        ``peak_rss`` (bytes, this worker process so far) and ``pid`` (the worker process).

    Raises:
        RawSynthError: A sample cannot be made (e.g. every input failed) or the shard cannot be written.
    """
    from raw_synth.store.writer import write_shard

    began, cpu_began = time.perf_counter(), time.process_time()
    if _in_dask_worker() and engine_uses_torch(job.config.engine):
        set_torch_threads(1)
    records, failed = _make_records(job, range(int(start), int(stop)))
    info = write_shard(Path(job.out), int(shard_index), records, fmt=job.config.format,
                       clean_dtype=job.config.clean_dtype)
    del records
    summary = dict(info.to_dict())
    summary.update(
        shard=int(shard_index),
        failed=[f.to_dict() for f in failed],
        seconds=time.perf_counter() - began,
        cpu_seconds=time.process_time() - cpu_began,
        peak_rss=peak_rss_bytes(),
        pid=os.getpid(),
    )
    return summary
