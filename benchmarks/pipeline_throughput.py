"""Throughput and memory of ``raw-synth generate``: the pipeline against the engine alone.

For each N and worker count it measures

* **generate**: :func:`pipelines.run.generate` into a fresh store (workers = 1 runs in-process,
  more workers on a LocalCluster); pairs/s over the whole call and over the compute phase
  (first shard submitted to last finished, i.e. without source scan and cluster start-up);
* **engine alone**: the same per-sample work (source patch, engine, noise, DN conversion) in
  ``workers`` plain processes with no Dask, no store and no manifest, timed after a warm-up;
* **overhead** = ``1 - generate_compute / engine_alone`` (what sharding, writing, checksums and
  scheduling cost);
* **CPU ms per pair** of both (``getrusage`` of this process and its reaped children, so the
  cluster's workers count once the cluster has closed; the engine-alone processes report their
  own): less sensitive than pairs/s to other jobs sharing the cores;
* **peak RSS per worker** (:func:`pipelines.worker.peak_rss_bytes`, ``VmHWM`` of each worker
  process; for the in-process run this is the whole client process);
* the 1-minute **load average** (``/proc/loadavg``) before and after each row, since other jobs
  sharing the cores slow every figure down.

Prints a Markdown table. Example (the figures in RESULTS.md)::

    python benchmarks/pipeline_throughput.py --n 1000,10000 --workers 1,2 --patch 256

``--stages`` instead times the stages of one sample in this process (CPU milliseconds per sample,
median over ``--repeats`` passes over ``--stage-samples`` samples): source patch, engine, noise
and DN conversion, the shard write, and the whole sample (:func:`pipelines.worker.make_sample`)::

    python benchmarks/pipeline_throughput.py --stages --patch 256

Quick check::

    python benchmarks/pipeline_throughput.py --n 32 --patch 64 --shard-size 8
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _engine_alone_init() -> None:
    import torch

    torch.set_num_threads(1)


def _engine_alone_chunk(job, indices: list[int]) -> tuple[float, int, float]:
    """Make the samples of ``indices`` without storing them; return (seconds, peak RSS bytes, CPU seconds)."""
    from pipelines.worker import get_engine, make_sample, peak_rss_bytes

    engine = get_engine(job.config)
    began, cpu_began = time.perf_counter(), time.process_time()
    for index in indices:
        make_sample(job, index, engine)
    return time.perf_counter() - began, peak_rss_bytes(), time.process_time() - cpu_began


def engine_alone(job, n: int, workers: int) -> tuple[float, int, float]:
    """Pairs/s, the largest peak RSS and the CPU seconds of ``workers`` processes doing the per-sample work
    of ``n`` samples."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_engine_alone_init) as pool:
        # warm-up: start the processes, import everything, create the engines
        list(pool.map(_engine_alone_chunk, [job] * workers, [[n + k] for k in range(workers)]))
        began = time.perf_counter()
        results = list(pool.map(_engine_alone_chunk, [job] * workers,
                                [list(range(k, n, workers)) for k in range(workers)]))
        wall = time.perf_counter() - began
    return n / wall, max(rss for _, rss, _ in results), sum(cpu for _, _, cpu in results)


def _cpu_seconds() -> float:
    """CPU seconds of this process plus its finished, reaped children (cluster workers after close)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _job(args: argparse.Namespace, n: int, out: Path):
    from pipelines.config import GenerateConfig, resolve_cameras
    from pipelines.worker import ShardJob
    from raw_synth.sources import resolve_sources

    config = GenerateConfig(n=n, out=str(out), src=args.src, engine=args.engine, model=args.model,
                            cameras=args.cameras, patch=args.patch, format=args.format,
                            shard_size=args.shard_size, workers=1, seed=0, device=args.device)
    job = ShardJob(config=config, sources=resolve_sources(args.src, args.patch),
                   cameras=tuple(resolve_cameras(args.cameras)), out=str(out))
    return config, job


def _mib(value: float) -> str:
    return f"{value / 2**20:.0f}"


def _load() -> str:
    """1-minute load average, or ``?`` where ``/proc/loadavg`` does not exist."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def stages(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    """CPU ms per sample of each stage, in this process: ``[(stage, median, min)]``."""
    import statistics

    import numpy as np

    from pipelines.worker import get_engine, make_sample
    from raw_synth.noise import apply_noise, to_dn
    from raw_synth.noise.profiles import sample_camera_noise
    from raw_synth.seeding import sample_rng
    from raw_synth.store.writer import write_shard

    n = args.stage_samples
    scratch = Path(tempfile.mkdtemp(prefix="raw-synth-stages-"))
    try:
        config, job = _job(args, n, scratch / "store")
        engine = get_engine(config)  # also tunes the allocator, as in a worker
        indices = list(range(n))
        patches = [job.sources.load_patch(i, config.seed, config.patch, sample_rng(config.seed, i)) for i in indices]
        results = [engine.convert(p.rgb, sample_rng(config.seed, i)) for i, p in zip(indices, patches)]
        records = [make_sample(job, i, engine)[0] for i in indices]
        camera = job.cameras[0]

        def source() -> None:
            for i in indices:
                job.sources.load_patch(i, config.seed, config.patch, sample_rng(config.seed, i))

        def convert() -> None:
            for i, p in zip(indices, patches):
                engine.convert(p.rgb, sample_rng(config.seed, i))

        def noise() -> None:
            rng = np.random.default_rng(0)
            for result in results:
                draw = sample_camera_noise(camera, rng)
                noisy, _, _ = apply_noise(np.clip(result.packed, 0.0, 1.0), draw.params, rng)
                to_dn(noisy, camera.black_level, camera.white_level)

        def write() -> None:
            out = scratch / "shards"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            write_shard(out, 0, records, fmt=args.format, clean_dtype=config.clean_dtype)

        def whole() -> None:
            for i in indices:
                make_sample(job, i, engine)

        steps = [("source patch", source), (f"engine {args.engine}", convert), ("noise + DN", noise),
                 (f"shard write ({args.format})", write), ("make_sample (source + engine + noise)", whole)]
        times: dict[str, list[float]] = {name: [] for name, _ in steps}
        for _ in range(args.repeats):
            for name, fn in steps:
                began = time.process_time()
                fn()
                times[name].append((time.process_time() - began) / n * 1e3)
        return [(name, statistics.median(v), min(v)) for name, v in times.items()]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="1000,10000", help="comma list of sample counts (default 1000,10000)")
    parser.add_argument("--workers", default="1,2", help="comma list of worker counts (default 1,2)")
    parser.add_argument("--engine", default="upi", help="inverse ISP engine (default upi)")
    parser.add_argument("--model", default=None, help="SSDNet checkpoint for --engine ssdnet")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--src", default="deadleaves")
    parser.add_argument("--cameras", default="sidd")
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--format", default="zarr", choices=("zarr", "hdf5"))
    parser.add_argument("--skip-engine-alone", action="store_true", help="only time generate")
    parser.add_argument("--out", default=None, help="scratch folder for the stores (default: a temp folder)")
    parser.add_argument("--stages", action="store_true", help="time the stages of one sample instead")
    parser.add_argument("--stage-samples", type=int, default=64, help="samples per --stages pass (default 64)")
    parser.add_argument("--repeats", type=int, default=5, help="--stages passes (default 5)")
    args = parser.parse_args(argv)

    if args.stages:
        load_before = _load()
        rows = stages(args)
        print(f"\nraw-synth generate stages: engine {args.engine}, src {args.src}, cameras {args.cameras}, "
              f"patch {args.patch}; {args.stage_samples} samples x {args.repeats} passes, one process; "
              f"load average {load_before} -> {_load()}\n")
        print("| stage | CPU ms / sample (median) | min |")
        print("|---|---:|---:|")
        for name, median, low in rows:
            print(f"| {name} | {median:.2f} | {low:.2f} |")
        return 0

    from pipelines.run import generate

    counts = [int(v) for v in args.n.split(",") if v.strip()]
    worker_counts = [int(v) for v in args.workers.split(",") if v.strip()]
    scratch = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="raw-synth-bench-"))
    rows = []
    try:
        for n in counts:
            for workers in worker_counts:
                out = scratch / f"n{n}-w{workers}"
                shutil.rmtree(out, ignore_errors=True)
                load_before = _load()
                config, job = _job(args, n, out)
                cpu_began = _cpu_seconds()
                summary = generate(replace(config, workers=workers), progress=False)
                gen_cpu = (_cpu_seconds() - cpu_began) / summary.n_written * 1e3
                gen_total = summary.n_written / summary.seconds
                gen_compute = summary.n_written / summary.compute_seconds
                if args.skip_engine_alone:
                    alone, alone_rss, alone_cpu = float("nan"), 0, float("nan")
                else:
                    alone, alone_rss, alone_cpu = engine_alone(job, n, workers)
                    alone_cpu = alone_cpu / n * 1e3
                nbytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
                rows.append(dict(
                    n=n, workers=workers, mode=summary.scheduler, gen_total=gen_total, gen_compute=gen_compute,
                    alone=alone, overhead=1.0 - gen_compute / alone if alone == alone else float("nan"),
                    rss=max(summary.peak_rss.values()) if summary.peak_rss else 0, alone_rss=alone_rss,
                    seconds=summary.seconds, store_mib=nbytes / 2**20, load=f"{load_before} -> {_load()}",
                    gen_cpu=gen_cpu, alone_cpu=alone_cpu,
                ))
                shutil.rmtree(out, ignore_errors=True)
    finally:
        if not args.out:
            shutil.rmtree(scratch, ignore_errors=True)

    print(f"\nraw-synth generate throughput: engine {args.engine}, src {args.src}, cameras {args.cameras}, "
          f"patch {args.patch}, shard size {args.shard_size}, format {args.format}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n")
    print("| N | workers | run | generate pairs/s (total) | generate pairs/s (compute) | engine alone pairs/s "
          "| overhead | generate CPU ms/pair | engine-alone CPU ms/pair | peak RSS / worker (MiB) "
          "| engine-alone RSS (MiB) | wall (s) | store (MiB) | load |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['n']} | {r['workers']} | {r['mode']} | {r['gen_total']:.1f} | {r['gen_compute']:.1f} "
              f"| {r['alone']:.1f} | {r['overhead'] * 100:.1f}% | {r['gen_cpu']:.1f} | {r['alone_cpu']:.1f} "
              f"| {_mib(r['rss'])} | {_mib(r['alone_rss'])} "
              f"| {r['seconds']:.1f} | {r['store_mib']:.1f} | {r['load']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
