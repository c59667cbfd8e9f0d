"""``raw-synth generate``: plan the shards, run them as a Dask graph, keep the manifest, resume.

:func:`generate` is the whole command as a library call:

1. check the configuration, resolve the cameras and the input sources (file headers are read
   once, here on the client; unusable inputs are skipped with their reason);
2. create the store's manifest, or compare it with an existing one: the same configuration
   resumes (shards complete in the manifest *and* present on disk are kept, temporary entries of
   interrupted writes are removed), a different one is refused unless ``overwrite`` is set, which
   clears the store first;
3. run one task per missing shard: on a :class:`distributed.LocalCluster` of ``workers``
   processes with one thread each, on an existing cluster when ``scheduler`` is given, or in this
   process when ``workers == 1`` (same arrays, no cluster start-up). For a CPU run the local
   workers are forked from this process once it has loaded the engines and the store writer, so
   they start in well under a second instead of importing everything again
   (:func:`pipelines.cluster.start_local_cluster`);
4. record every finished shard in the manifest (atomic save) as it completes, so killing the run
   at any moment loses at most the shards in flight.

Example:
    >>> summary = generate(GenerateConfig(n=8, out="/tmp/pairs", patch=64, shard_size=4, workers=1),
    ...                    progress=False)  # doctest: +SKIP
    >>> summary.n_samples, summary.n_written
    (8, 8)
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pipelines.config import (
    LEGACY_DEFAULTS,
    RUN_ONLY_FIELDS,
    GenerateConfig,
    check_config,
    profile_digest,
    resolve_cameras,
)
from pipelines.plan import ShardPlan, plan_shards
from raw_synth.cpu_tuning import torch_threads
from raw_synth.errors import RawSynthError, one_line
from raw_synth.file_hash import file_sha256

if TYPE_CHECKING:  # both import torch; plain imports would load it before the options are checked
    from pipelines.worker import ShardJob
    from raw_synth.sources import Sources

__all__ = ["GenerateConfig", "GenerateSummary", "generate", "prepare_store", "manifest_config", "RUN_ONLY_FIELDS"]

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class GenerateSummary:
    """What a :func:`generate` run did.

    Attributes:
        out: The store folder (absolute).
        n_samples: Samples the store holds now (the configured ``n``).
        n_written: Samples written by this run.
        n_resumed: Samples already complete before this run (kept).
        shards_written: Shards written by this run.
        shards_resumed: Shards kept from an earlier run.
        seconds: Wall time of the whole call (including source scan and cluster start-up).
        compute_seconds: Wall time from the first shard submitted (cluster up) to the last finished.
        pairs_per_second: ``n_written / seconds``.
        skipped: Inputs skipped (scan and workers), ``[{source, reason}]``.
        peak_rss: Peak resident memory in bytes per worker process id.
        scheduler: ``"in-process"``, ``"local"`` or the scheduler address.
        shards_rewritten: Kept shards that failed their resume check and were written again.
    """

    out: str
    n_samples: int
    n_written: int
    n_resumed: int
    shards_written: int
    shards_resumed: int
    seconds: float
    compute_seconds: float
    pairs_per_second: float
    skipped: list[dict[str, str]] = field(default_factory=list)
    peak_rss: dict[int, int] = field(default_factory=dict)
    scheduler: str = "in-process"
    shards_rewritten: int = 0


# ------------------------------------------------------------------------------------ manifest


def manifest_config(config: GenerateConfig, sources: Sources, cameras: list,
                    model_sha256: str | None) -> dict[str, Any]:
    """The configuration dict the manifest stores: the options plus what they resolved to.

    The extra keys (``camera_profiles``: name -> content sha256, ``sources``: kind, item count
    and fingerprint, ``model_sha256``) make a resume refuse a changed profile file, a changed
    photo collection or a different checkpoint behind the same path.
    """
    data = config.to_dict()
    data["camera_profiles"] = {p.name: profile_digest(p) for p in cameras}
    data["sources"] = {"kind": sources.kind, "n_items": sources.n_items, "fingerprint": sources.fingerprint()}
    data["model_sha256"] = model_sha256
    return data


def _is_store_entry(path: Path) -> bool:
    from raw_synth.store.manifest import MANIFEST_NAME
    from raw_synth.store.writer import PARTIAL_PREFIX

    name = path.name
    return (name == MANIFEST_NAME or name.startswith(PARTIAL_PREFIX)
            or (name.startswith("shard-") and name.endswith((".zarr", ".h5"))))


def _clear_store(out: Path) -> None:
    """Remove the manifest, the shards and temporary entries of a store (nothing else; not the lock)."""
    from raw_synth.store.lock import LOCK_NAME

    for entry in sorted(out.iterdir()):
        if entry.name == LOCK_NAME:
            continue
        if not _is_store_entry(entry):
            logger.warning("%s: not a store entry, left in place", entry)
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    logger.info("%s: cleared (--overwrite)", out)


def _check_kept_shards(out: Path, manifest: Any, names: list[str], level: str, threads: int) -> list[tuple[str, str]]:
    """``(name, first problem)`` of each listed shard that fails :func:`raw_synth.store.verify.check_shard`."""
    from concurrent.futures import ThreadPoolExecutor

    from raw_synth.store.verify import check_shard

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = list(pool.map(lambda name: check_shard(out, name, manifest.shards[name], level=level), names))
    bad = [(name, problems[0].split(": ", 1)[-1]) for name, (problems, _) in zip(names, results) if problems]
    samples = sum(checked for _, checked in results)
    logger.info("%s: checked %d kept shards (%s, %d samples read) in %.2f s; %d to write again", out, len(names),
                level, samples, time.perf_counter() - began, len(bad))
    return bad


def prepare_store(config: GenerateConfig, out: Path, wanted: dict[str, Any], engine: dict[str, Any],
                  skipped: list[dict[str, str]]):
    """Create, resume or refuse the store in ``out``; return ``(manifest, done, rewritten)``.

    ``done`` holds the names of the shards kept, ``rewritten`` those that failed their check and
    will be written again.

    Call it holding the store's lock (:class:`raw_synth.store.lock.StoreLock`), so with the folder
    made (:func:`_make_folder`): it removes the temporary entries of interrupted writes. On resume
    every shard the manifest lists as complete is checked (``config.resume_check``); one that fails
    is dropped from the manifest, noted in its ``rewritten`` list with the reason, and written again.

    Raises:
        RawSynthError: The store holds a different configuration (or is not a raw-synth store) and
            ``overwrite`` is not set.
    """
    from raw_synth.store.lock import LOCK_NAME
    from raw_synth.store.manifest import MANIFEST_NAME, Manifest
    from raw_synth.store.writer import PARTIAL_PREFIX, cleanup_partial

    manifest = None
    if (out / MANIFEST_NAME).exists():
        try:
            manifest = Manifest.load(out)
        except RawSynthError as error:
            if not config.overwrite:
                raise RawSynthError(f"{error}; use --overwrite to replace it") from None
        if manifest is not None and not config.overwrite:
            for name, value in LEGACY_DEFAULTS.items():  # a store written before the field existed
                manifest.config.setdefault(name, value)
            manifest.check_compatible(wanted, where=out, ignore=RUN_ONLY_FIELDS)
        if config.overwrite:
            _clear_store(out)
            manifest = None
    else:
        entries = [p for p in out.iterdir() if not p.name.startswith(PARTIAL_PREFIX) and p.name != LOCK_NAME]
        if entries:
            if not config.overwrite:
                raise RawSynthError(
                    f"{out}: folder is not empty and holds no {MANIFEST_NAME} (not a raw-synth store); "
                    f"use --overwrite to replace it, or choose another --out"
                )
            _clear_store(out)
    cleanup_partial(out)

    if manifest is None:
        manifest = Manifest(config=wanted, n_samples=int(config.n), shard_size=int(config.shard_size),
                            format=config.format, engine=engine, skipped=list(skipped))
        manifest.save(out)
        return manifest, set(), []

    known = {(s.get("source"), s.get("reason")) for s in manifest.skipped}
    for entry in skipped:
        if (entry["source"], entry["reason"]) not in known:
            manifest.add_skipped(entry["source"], entry["reason"])
    kept = []
    for name, entry in list(manifest.shards.items()):
        if entry.get("state") == "complete" and (out / name).exists():
            kept.append(name)
        else:
            logger.warning("%s: shard %s listed but missing or incomplete; it will be written again", out, name)
            del manifest.shards[name]
    rewritten = []
    for name, problem in _check_kept_shards(out, manifest, kept, config.resume_check, int(config.workers)):
        logger.warning("%s: shard %s failed its check (%s); it will be written again", out, name, problem)
        manifest.note_rewritten(name, problem)
        del manifest.shards[name]
        kept.remove(name)
        rewritten.append(name)
    manifest.save(out)
    return manifest, set(kept), rewritten


def _make_folder(out: Path) -> None:
    """Create the store folder ``out`` (one-line errors for a file in the way or a read-only place)."""
    if out.exists() and not out.is_dir():
        raise RawSynthError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RawSynthError(f"--out {out}: cannot create the folder ({exc.strerror or exc})") from None


# ------------------------------------------------------------------------------------ running


def make_shard(shard_index: int, start: int, stop: int, job: ShardJob) -> dict[str, Any]:
    """:func:`pipelines.worker.make_shard` (imported on first use: it loads torch), never raising.

    Any failure (a sample that cannot be made, a full disk, a library error, running out of
    memory) comes back as ``{"error": one line naming the shard}``, so that a Dask worker logs no
    "Compute Failed" traceback and the client can report it as one :class:`RawSynthError` line.
    """
    try:
        from pipelines import worker

        return worker.make_shard(shard_index, start, stop, job)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line for the client
        from raw_synth.store.writer import shard_name

        logger.debug("shard %d failed", shard_index, exc_info=True)
        return {"error": _failure_line(exc, f"shard {shard_name(int(shard_index), job.config.format)}")}


def _failure_line(exc: BaseException, what: str) -> str:
    """``exc`` as one line; ``what: `` in front unless it already names a path (a RawSynthError)."""
    if isinstance(exc, RawSynthError):
        return one_line(exc)
    if isinstance(exc, MemoryError):
        return f"{what}: out of memory (MemoryError); try fewer --workers or a smaller --shard-size"
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{what}: {where}{exc.strerror}"
    return f"{what}: {type(exc).__name__}: {' '.join(str(exc).split())}"


def _run_in_process(shards: list[ShardPlan], job: ShardJob, on_done: Callable[[dict[str, Any]], None]) -> float:
    """Run the shards one after the other in this process; return the time the first started.

    torch runs on one thread meanwhile, when the engine uses torch (a ``upi`` run never imports it).
    """
    from raw_synth.engine import engine_uses_torch

    started = time.perf_counter()
    with torch_threads(1 if engine_uses_torch(job.config.engine) else None):
        for shard in shards:
            on_done(make_shard(shard.index, shard.start, shard.stop, job))
    return started


def _preload_shard_modules() -> None:
    """Import what a shard task uses, so that workers forked from this process have it loaded."""
    import pipelines.worker  # noqa: F401  (engines, noise, sources)
    import raw_synth.io.images  # noqa: F401
    import raw_synth.store.writer  # noqa: F401


def _client(config: GenerateConfig):
    """``(client, cluster)``: a client of the given scheduler or of a new local cluster.

    A local cluster for a CPU run forks its workers from this process (see
    :func:`pipelines.cluster.start_local_cluster`); other devices spawn them (CUDA does not survive
    a fork).
    """
    from distributed import Client

    from pipelines.cluster import connect, start_local_cluster

    if config.scheduler is not None:
        return connect(config.scheduler), None
    fork = str(config.device).strip().lower() == "cpu"
    if fork:
        _preload_shard_modules()
    began = time.perf_counter()
    cluster = start_local_cluster(int(config.workers), fork=fork)
    try:
        client = Client(cluster)
    except BaseException:
        cluster.close()
        raise
    logger.info("local cluster of %d %s workers up in %.1f s", int(config.workers), "forked" if fork else "spawned",
                time.perf_counter() - began)
    return client, cluster


def _run_dask(shards: list[ShardPlan], job: ShardJob, client: Any,
              on_done: Callable[[dict[str, Any]], None]) -> float:
    """Run the shards as Dask tasks on ``client``; return the time the first was submitted."""
    from distributed import as_completed

    started = time.perf_counter()
    shared = client.scatter(job, broadcast=True, hash=False)
    token = uuid.uuid4().hex[:8]
    pending = {
        s.index: client.submit(make_shard, s.index, s.start, s.stop, shared,
                               key=f"raw-synth-shard-{s.index:06d}-{token}", pure=False, priority=-s.index)
        for s in shards
    }
    index_of = {future.key: index for index, future in pending.items()}
    try:
        for future in as_completed(list(pending.values())):
            index = index_of[future.key]
            try:
                summary = future.result()
            except Exception as exc:  # noqa: BLE001 - a worker died, the cluster went away, ...
                raise RawSynthError(_failure_line(exc, f"shard {index}: worker failed")) from None
            # forget the finished task at once: its result is recorded, so a worker lost later
            # must not make the scheduler compute it again
            del pending[index]
            future.release()
            on_done(summary)
    except BaseException:
        client.cancel(list(pending.values()))
        raise
    return started


def generate(config: GenerateConfig, progress: bool = True) -> GenerateSummary:
    """Write ``config.n`` noisy/clean pairs into the store ``config.out`` (or finish an interrupted run).

    Args:
        config: The run configuration (see :class:`GenerateConfig`).
        progress: Show a progress bar on stderr (only when stderr is a terminal).

    Returns:
        A :class:`GenerateSummary`.

    Raises:
        RawSynthError: Invalid options, unknown cameras, no usable input image, a store holding a
            different configuration without ``overwrite``, an unreachable scheduler, or a sample
            that cannot be made. Shards finished before the error stay recorded.
    """
    began = time.perf_counter()
    check_config(config)
    out = Path(config.out).expanduser().resolve()
    model = config.model
    if model is None and config.engine == "ssdnet":
        from raw_synth.engine import bundled_checkpoint

        model = bundled_checkpoint()
    config = GenerateConfig(**{**config.__dict__, "out": str(out),
                               "model": None if model is None else str(Path(model).resolve())})
    with contextlib.ExitStack() as stack:
        return _generate(config, out, progress, began, stack)


def _generate(config: GenerateConfig, out: Path, progress: bool, began: float,
              stack: contextlib.ExitStack) -> GenerateSummary:
    """The rest of :func:`generate`: resolve the inputs, then take the store's lock (kept on ``stack``)."""
    from tqdm import tqdm

    from pipelines.worker import ShardJob
    from raw_synth.sources import resolve_sources
    from raw_synth.store.lock import StoreLock
    from raw_synth.store.records import ShardInfo
    from raw_synth.store.writer import cleanup_partial, shard_name

    cameras = resolve_cameras(config.cameras)
    sources = resolve_sources(config.src, int(config.patch), downscale=int(config.downscale),
                              crops_per_image=int(config.crops_per_image), cache_bytes=int(config.cache_mb) << 20,
                              max_pixels=int(config.max_pixels))
    model_sha = file_sha256(Path(config.model)) if config.model is not None else None
    wanted = manifest_config(config, sources, cameras, model_sha)
    engine = {"name": config.engine, "checkpoint_sha256": model_sha}
    _make_folder(out)
    stack.enter_context(StoreLock(out))
    manifest, done, rewritten = prepare_store(config, out, wanted, engine, [s.to_dict() for s in sources.skipped])

    plan = plan_shards(int(config.n), int(config.shard_size))
    missing = [s for s in plan if shard_name(s.index, config.format) not in done]
    n_resumed = sum(s.count for s in plan if shard_name(s.index, config.format) in done)
    if done:
        logger.info("%s: resuming, %d of %d shards already complete", out, len(done), len(plan))
    job = ShardJob(config=config, sources=sources, cameras=tuple(cameras), out=str(out))
    logger.info("%s: %d shards to write, ready after %.1f s (options, cameras, sources, store)", out, len(missing),
                time.perf_counter() - began)
    peak: dict[int, int] = {}
    written = {"samples": 0, "shards": 0}
    known = {(s["source"], s["reason"]) for s in manifest.skipped}
    in_process = not missing or (config.scheduler is None and int(config.workers) == 1)
    mode = "in-process" if in_process else config.scheduler or "local"
    # the cluster first: forked workers must not copy the progress bar's monitor thread mid-lock
    client, cluster = (None, None) if in_process else _client(config)

    bar = tqdm(total=int(config.n), initial=n_resumed, unit="pair", desc="generate", file=sys.stderr,
               disable=None if progress else True, dynamic_ncols=True)

    def on_done(summary: dict[str, Any]) -> None:
        if "error" in summary:
            raise RawSynthError(summary["error"])
        info = ShardInfo(**{k: summary[k] for k in ("name", "start", "stop", "count", "checksum", "nbytes")})
        manifest.record_shard(info)
        for entry in summary.get("failed", []):
            if (entry["source"], entry["reason"]) not in known:
                known.add((entry["source"], entry["reason"]))
                manifest.add_skipped(entry["source"], entry["reason"])
                logger.warning("skipped %s: %s", entry["source"], entry["reason"])
        manifest.save(out)
        peak[int(summary.get("pid", 0))] = max(peak.get(int(summary.get("pid", 0)), 0), int(summary.get("peak_rss", 0)))
        written["samples"] += int(info.count)
        written["shards"] += 1
        bar.update(int(info.count))

    compute_began = time.perf_counter()
    try:
        if client is None:
            if missing:
                compute_began = _run_in_process(missing, job, on_done)
        else:
            compute_began = _run_dask(missing, job, client, on_done)
    finally:
        bar.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        if config.scheduler is None:  # every writer has stopped: remove what killed or failed ones left
            cleanup_partial(out)
    compute_seconds = time.perf_counter() - compute_began
    seconds = time.perf_counter() - began
    summary = GenerateSummary(
        out=str(out),
        n_samples=int(config.n),
        n_written=written["samples"],
        n_resumed=n_resumed,
        shards_written=written["shards"],
        shards_resumed=len(plan) - len(missing),
        seconds=seconds,
        compute_seconds=compute_seconds,
        pairs_per_second=written["samples"] / seconds if seconds > 0 else 0.0,
        skipped=list(manifest.skipped),
        peak_rss=peak,
        scheduler=mode,
        shards_rewritten=len(rewritten),
    )
    logger.info("%s: %d pairs written, %d resumed, %.1f pairs/s, %.1f s", out, summary.n_written,
                summary.n_resumed, summary.pairs_per_second, summary.seconds)
    return summary
