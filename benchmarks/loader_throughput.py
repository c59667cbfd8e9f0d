"""Is the data loader fast enough to feed denoiser training? ShardDataset samples/s vs training steps/s.

Measures, on one store:

* the loader alone: ``DataLoader(ShardDataset(..., crop, augment=True))`` with 0, 1, 2 ... workers,
  samples per second (zarr read + normalise + crop + Bayer-safe augmentation + collation);
* one training step (forward, L1, backward, AdamW) of a preset on batches already in memory,
  steps per second and the samples per second that implies.

The loader keeps up when its samples/s exceeds ``steps/s x batch size``. Without ``--data`` a small
store is generated first (``pipelines.run.generate``, dead leaves, SIDD cameras).

    python benchmarks/loader_throughput.py                      # ~1 minute on 2 cores
    python benchmarks/loader_throughput.py --data SHARDS --workers 0 2 4 --model denoiser-paper
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def make_store(out: Path, n: int, patch: int) -> Path:
    """Generate ``n`` dead-leaves pairs for the SIDD cameras into ``out``."""
    from pipelines.config import GenerateConfig
    from pipelines.run import generate

    generate(GenerateConfig(n=n, out=str(out), src="deadleaves", engine="upi", cameras="sidd", patch=patch,
                            shard_size=max(1, n // 4), workers=1, seed=0), progress=False)
    return out


def loader_rate(data: Path, crop: int, batch: int, workers: int, batches: int) -> float:
    """Samples per second drawn through a DataLoader (after one warm-up batch)."""
    from denoise.dataset import ShardDataset, make_sampler

    ds = ShardDataset(data, "all", crop=crop, augment=True, seed=0)
    sampler = make_sampler(ds, shuffle=True, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=workers,
                                         drop_last=True, persistent_workers=workers > 0)
    count, began = 0, None
    while count < batches:
        for _ in loader:
            if began is None:  # the first batch pays for worker start-up and store opening
                began = time.perf_counter()
                continue
            count += 1
            if count >= batches:
                break
    return batches * batch / (time.perf_counter() - began)


def step_rate(model_name: str, crop: int, batch: int, steps: int) -> float:
    """Training steps per second of ``model_name`` on in-memory batches."""
    from denoise.models import create_denoiser

    torch.manual_seed(0)
    model = create_denoiser(model_name, conditioned=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    noisy = torch.rand(batch, 4, crop, crop)
    clean = noisy.clone()
    var = noisy * 1e-3 + 1e-5
    for i in range(steps + 2):
        if i == 2:
            began = time.perf_counter()
        loss = torch.nn.functional.l1_loss(model(noisy, var), clean)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="store folder (default: generate a small one)")
    parser.add_argument("--n", type=int, default=64, help="pairs to generate without --data")
    parser.add_argument("--patch", type=int, default=192, help="sRGB patch of the generated store")
    parser.add_argument("--crop", type=int, default=48, help="training crop, packed pixels")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--model", default="denoiser-tiny")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the training step")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = args.data or make_store(Path(tempfile.mkdtemp()) / "store", args.n, args.patch)
    results = {"data": str(data), "crop": args.crop, "batch": args.batch, "torch_threads": torch.get_num_threads(),
               "loader_samples_per_s": {}, "model": args.model}
    for workers in args.workers:
        rate = loader_rate(data, args.crop, args.batch, workers, args.batches)
        results["loader_samples_per_s"][workers] = rate
        print(f"loader, {workers} worker(s): {rate:8.1f} samples/s")
    steps = step_rate(args.model, args.crop, args.batch, args.steps)
    results["train_steps_per_s"] = steps
    results["train_samples_per_s"] = steps * args.batch
    print(f"training {args.model}, batch {args.batch} x {args.crop}x{args.crop}: {steps:.2f} steps/s "
          f"= {steps * args.batch:.1f} samples/s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
