"""What the store's integrity checks cost: on write, on read (``open_shards(verify=...)``) and on resume.

Writes one store with ``raw-synth generate`` (default dead-leaves source, ``upi`` engine), then measures

* **write**: the digests each shard now carries (per-column sha256 + per-sample CRC-32C), against
  the shard checksum alone that was computed before, per pair, on the store's own records;
* **read**: the median time of ``ds[i]`` in random order for each ``verify`` mode, with every shard
  already opened once (steady state of a training loader), and the time of the first read of each
  shard (where ``checksum`` checks the metadata digests);
* **resume**: :func:`raw_synth.store.verify.check_shard` on every shard at both levels, one thread
  and ``--workers`` threads, against the time the store took to generate.

Example:
    python benchmarks/store_integrity.py --n 1024 --patch 256 --workers 2 --format zarr
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from pipelines.config import GenerateConfig
from pipelines.run import generate
from raw_synth.store import Manifest, open_shards
from raw_synth.store.checksum import checksum_columns
from raw_synth.store.digests import shard_digests
from raw_synth.store.verify import check_shard


def _columns(shard_path: Path) -> dict[str, np.ndarray]:
    from raw_synth.store import open_shard_file

    shard = open_shard_file(shard_path)
    try:
        return {name: (np.asarray(shard.strings(name), dtype=object) if name in ("camera", "cfa", "source")
                       else np.asarray(col[...])) for name, col in shard.columns.items()}
    finally:
        shard.close()


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--format", default="zarr", choices=("zarr", "hdf5"))
    parser.add_argument("--reads", type=int, default=2000, help="random reads per verify mode")
    parser.add_argument("--out", help="store folder (default: a temporary one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or Path(tmp) / "store")
        config = GenerateConfig(n=args.n, out=str(out), patch=args.patch, shard_size=args.shard_size,
                                workers=args.workers, format=args.format, engine="upi")
        summary = generate(config, progress=False)
        gen_ms = 1e3 * summary.seconds / max(1, summary.n_written)
        manifest = Manifest.load(out)
        names = [name for name, _ in manifest.complete_shards()]
        result: dict[str, object] = {"n": args.n, "patch": args.patch, "format": args.format,
                                     "generate_ms_per_pair": gen_ms, "loadavg": os.getloadavg()[0]}

        # write: digests vs the checksum alone, per pair
        columns = _columns(out / names[0])
        count = len(columns["index"])
        result["write_checksum_ms_per_pair"] = _median_ms(lambda: checksum_columns(columns), 5) / count
        result["write_digests_ms_per_pair"] = _median_ms(lambda: shard_digests(columns), 5) / count

        # read: first open of each shard, then steady state; the modes take turns read by read so
        # that a change in the machine's load falls on all of them alike, each on its own random
        # order (reading the sample another mode has just read would find it in a cache)
        rng = np.random.default_rng(0)
        modes = ("none", "structure", "checksum")
        orders = {mode: rng.integers(0, args.n, size=args.reads) for mode in modes}
        stores = {mode: open_shards(out, verify=mode) for mode in modes}
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        for mode, ds in stores.items():
            began = time.perf_counter()
            for k in range(len(names)):
                ds[k * args.shard_size]
            result[f"read_first_open_ms_{mode}"] = 1e3 * (time.perf_counter() - began) / len(names)
        for k in range(args.reads):
            for mode, ds in stores.items():
                t0 = time.perf_counter()
                ds[int(orders[mode][k])]
                times[mode].append(time.perf_counter() - t0)
        for mode, ds in stores.items():
            result[f"read_ms_{mode}"] = 1e3 * statistics.median(times[mode])
            ds.close()

        # resume: check every shard at both levels
        for level in ("structure", "checksum"):
            for threads in sorted({1, args.workers}):
                began = time.perf_counter()
                with ThreadPoolExecutor(max_workers=threads) as pool:
                    problems = list(pool.map(
                        lambda name, lv=level: check_shard(out, name, manifest.shards[name], level=lv)[0], names))
                assert not any(problems), problems
                seconds = time.perf_counter() - began
                result[f"resume_{level}_{threads}t_ms_per_pair"] = 1e3 * seconds / args.n
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
