"""What writing a shard costs: the deflate of HDF5 chunks, and the file write itself.

Two measurements, on data shaped like a ``generate --patch 256`` shard (256 pairs of packed
``(4, 128, 128)`` images, noisy uint16 DN and clean float16, from the built-in ``deadleaves``
corpus through the ``upi`` engine and the default cameras):

1. **Deflate per pair**: HDF5's shuffle + gzip level 1 of one pair's two chunks, with the standard
   library's zlib (what HDF5 itself runs) and with ISA-L (``isal``, what
   :mod:`raw_synth.store.deflate` picks when installed); compression ratio beside it.
2. **Whole-file writes**: ``--files`` files of one HDF5 shard's size, written and fsynced, buffered
   (``open``/``write``/``fsync``) against :func:`raw_synth.store.file_write.write_file`
   (``O_DIRECT`` from a reused aligned buffer). With ``--drop-caches`` (root only) the page cache
   is emptied and the script waits 4 s before each run, as after a previous run's output was
   deleted; on a VM whose hypervisor reclaims freed guest memory, fresh page-cache pages are what
   buffered writes pay for.

Usage::

    python benchmarks/write_costs.py --out results.md [--drop-caches] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _shard_columns(n: int) -> dict[str, np.ndarray]:
    """The stored ``noisy`` (uint16 DN) and ``clean`` (float16) columns of ``n`` generated pairs (256 px)."""
    import h5py

    from pipelines.config import GenerateConfig
    from pipelines.run import generate

    with tempfile.TemporaryDirectory() as tmp:
        generate(GenerateConfig(n=n, out=tmp, engine="upi", patch=256, workers=1, shard_size=n, format="hdf5"),
                 progress=False)
        with h5py.File(Path(tmp) / "shard-000000.h5", "r") as f:
            return {"noisy": f["noisy"][...], "clean": f["clean"][...]}


def deflate_table(columns: dict[str, np.ndarray], repeats: int) -> list[str]:
    from raw_synth.store.deflate import shuffle

    chunks = [shuffle(columns[name][i]).tobytes() for i in range(len(columns["noisy"])) for name in ("noisy", "clean")]
    raw = sum(len(c) for c in chunks)
    pairs = len(columns["noisy"])
    backends = [("zlib (HDF5's own)", lambda b: zlib.compress(b, 1))]
    try:
        from isal import isal_zlib

        backends.append(("isal (ISA-L)", lambda b: isal_zlib.compress(b, 1)))
    except ImportError:
        pass
    lines = ["| deflate | ms per pair (median) | MB/s | compressed / raw |", "| --- | ---: | ---: | ---: |"]
    for name, compress in backends:
        times, out = [], []
        for _ in range(repeats):
            began = time.perf_counter()
            out = [compress(c) for c in chunks]
            times.append(time.perf_counter() - began)
        assert all(zlib.decompress(o) == c for o, c in zip(out, chunks))
        t = statistics.median(times)
        lines.append(f"| {name} | {t / pairs * 1e3:.2f} | {raw / t / 1e6:.0f} | {sum(map(len, out)) / raw:.3f} |")
    return lines


def _drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")
    time.sleep(4.0)


def _write_run(folder: Path, payload: bytes, files: int, direct: bool) -> tuple[float, float]:
    from raw_synth.store.file_write import write_file

    before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    for i in range(files):
        write_file(folder / f"f{i}.bin", payload, direct=direct)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    for i in range(files):
        (folder / f"f{i}.bin").unlink()
    return wall, after.ru_stime - before.ru_stime


def write_table(size: int, files: int, repeats: int, drop: bool, folder: Path) -> list[str]:
    payload = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()
    results: dict[str, list[tuple[float, float]]] = {"buffered": [], "O_DIRECT (write_file)": []}
    for _ in range(repeats):
        for name in results:
            if drop:
                _drop_caches()
            results[name].append(_write_run(folder, payload, files, direct=name != "buffered"))
    lines = ["| write + fsync | wall s (median) | system CPU s (median) | runs (wall s) |",
             "| --- | ---: | ---: | --- |"]
    for name, runs in results.items():
        lines.append(f"| {name} | {statistics.median(w for w, _ in runs):.3f} | "
                     f"{statistics.median(s for _, s in runs):.3f} | {', '.join(f'{w:.2f}' for w, _ in runs)} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=256, help="pairs of the sample shard")
    parser.add_argument("--files", type=int, default=10, help="files per write run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--drop-caches", action="store_true", help="empty the page cache before each run (root)")
    parser.add_argument("--dir", default=None, help="folder to write in (default: a temporary one under the repo)")
    parser.add_argument("--out", default=None, help="also write the Markdown here")
    args = parser.parse_args(argv)

    columns = _shard_columns(args.pairs)
    from raw_synth.store.hdf5_shard import write_hdf5

    with tempfile.TemporaryDirectory(dir=args.dir or REPO) as tmp:
        probe = Path(tmp) / "probe.h5"
        write_hdf5(probe, columns, {})
        size = probe.stat().st_size
        probe.unlink()
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True).stdout.strip()
        lines = [f"Commit {commit}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
                 f"{args.pairs} pairs of 256 px; medians of {args.repeats}.", ""]
        lines += deflate_table(columns, args.repeats)
        lines += ["", f"{args.files} files of {size / 1e6:.1f} MB (one HDF5 shard of these pairs) in {tmp}"
                  f"{', page cache dropped before each run' if args.drop_caches else ''}:", ""]
        lines += write_table(size, args.files, args.repeats, args.drop_caches, Path(tmp))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
