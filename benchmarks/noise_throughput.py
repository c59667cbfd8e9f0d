"""Noise-injection throughput of each noise model, next to a plain numpy copy (memory-bound limit).

Usage:
    python benchmarks/noise_throughput.py [--size 1024] [--repeats 7]

Prints a Markdown table: megapixels (of the full-resolution mosaic) per second, median of
``--repeats`` runs, for numpy and torch (CPU), and the ratio to ``np.copy`` of the same array.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from raw_synth.noise import GaussianParams, PhysicsParams, PoissonGaussianParams, apply_noise


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024, help="full-resolution side of the test mosaic")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)

    half = args.size // 2
    rng = np.random.default_rng(0)
    clean = rng.uniform(0.05, 0.9, size=(4, half, half)).astype(np.float32)
    clean_t = torch.from_numpy(clean)[None]
    megapixels = args.size * args.size / 1e6

    models = {
        "heteroscedastic Gaussian": GaussianParams(shot=2e-3, read=1e-5),
        "Poisson-Gaussian": PoissonGaussianParams.from_noise_level(2e-3, 1e-5, black=64, white=1023),
        "physics (Gaussian read, row, quantise)": PhysicsParams(gain=2.0, read_scale=3.0, black=512, white=16383,
                                                                row_scale=1.0),
        "physics (Tukey-lambda read, row, quantise)": PhysicsParams(gain=2.0, read_scale=3.0, black=512,
                                                                    white=16383, read_model="tukey",
                                                                    tukey_lambda=0.12, row_scale=1.0),
    }
    copy_s = _median_seconds(lambda: np.copy(clean), args.repeats)
    print(f"mosaic {args.size}x{args.size} ({megapixels:.2f} MP), 1 thread, median of {args.repeats}\n")
    print("| model | numpy MP/s | torch MP/s | numpy / copy |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| np.copy (memory-bound limit) | {megapixels / copy_s:,.0f} | - | 1 |")
    for name, params in models.items():
        gen = np.random.default_rng(1)
        np_s = _median_seconds(lambda p=params, g=gen: apply_noise(clean, p, g), args.repeats)
        tgen = torch.Generator().manual_seed(1)
        torch_s = _median_seconds(lambda p=params, g=tgen: apply_noise(clean_t, p, g), args.repeats)
        print(f"| {name} | {megapixels / np_s:,.1f} | {megapixels / torch_s:,.1f} | {copy_s / np_s:.4f} |")


if __name__ == "__main__":
    main()
