"""Time ``write_shard`` on a 256-pair shard of random content, per format (median of repeated writes).

Random data barely compresses, so this is the worst case for the compressors and the copies.
``--tree DIR`` times another checkout of raw-synth instead of this one (e.g. a ``git worktree`` of an
older commit), to compare a change to the writer.

Example:
    git worktree add /tmp/before c9d3149
    python benchmarks/shard_write.py --tree /tmp/before && python benchmarks/shard_write.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", help="root of another raw-synth checkout to time instead of this one")
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--side", type=int, default=128, help="packed plane side (patch / 2)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if args.tree:
        sys.path.insert(0, args.tree)
    import numpy as np

    from raw_synth.store import write_shard
    from raw_synth.store.records import SampleRecord

    rng = np.random.default_rng(0)

    def record(i: int) -> SampleRecord:
        clean = rng.random((4, args.side, args.side), dtype=np.float32)
        return SampleRecord(index=i, noisy_dn=(clean * 900 + 64).astype(np.uint16), clean=clean, camera="c",
                            cfa="RGGB", iso=100.0, gain=1.0, shot=np.full(4, 1e-3), read=np.full(4, 1e-5),
                            black_level=np.full(4, 64.0), white_level=np.full(4, 1023.0), wb_gains=np.ones(4),
                            xyz_to_cam=np.eye(3), source="s", crop=(0, 0))

    records = [record(i) for i in range(args.pairs)]
    for fmt in ("zarr", "hdf5"):
        times = []
        with tempfile.TemporaryDirectory() as folder:
            for k in range(args.repeats):
                began = time.perf_counter()
                write_shard(folder, k, records, fmt=fmt)
                times.append(time.perf_counter() - began)
        print(f"{fmt}: {1e3 * statistics.median(times) / args.pairs:.3f} ms per pair "
              f"({sys.modules['raw_synth'].__file__})")


if __name__ == "__main__":
    main()
