"""Score RAW denoisers on real camera RAW content with known Poisson-Gaussian noise.

The claim raw-synth exists for is that a denoiser trained only on its data works on real RAW.
This benchmark tests it on content no raw-synth store contains: real sensor mosaics from
``../shared/data`` (none of them is used to train the bundled denoiser):

=============  ======================================================================  =========
frame          file (black, white, CFA)                                                crops
=============  ======================================================================  =========
``550d``       ``tinydng-canon550d/colorchart.dng`` (2056, 15000, RGGB; Canon 550D)     3 x 192²
``openisp``    ``openisp-test-raw/test.RAW`` (0, 1023, RGGB; 1920x1080 headerless)     3 x 192²
``n900``       ``halide-nokia-n900/bayer_small.png`` (25, 1023, GRBG; Nokia N900)      1 x 128²
=============  ======================================================================  =========

Each frame is packed to planes R, Gr, Gb, B and normalised ``(DN - black) / (white - black)``;
the clean reference is that, clipped to [0, 1] (the frames' own noise is part of the "clean"
content). Crops are square windows of packed pixels at fixed fractions of each frame (the N900
frame is 128x172 packed, so its one crop is 128x128). Noise is added at three levels
``(shot, read)`` = ``8e-4/4e-6`` (low), ``3e-3/4e-5`` (mid), ``1.2e-2/6e-4`` (high):
``noisy = shot * Poisson(clean / shot) + N(0, read)``, not clipped, one seeded draw per
(frame, crop, level). Every method gets the true per-plane ``shot`` and ``read``.

PSNR is computed on the packed RAW (all 4 planes, data range 1) with the output clamped to
[0, 1]; the table lists the mean over the crops of each frame and level, and the mean of those
nine cells. Methods: ``noisy`` (the input), ``anscombe-nlm``, ``anscombe-bm3d`` (needs
``pip install "raw-synth[bm3d]"``; skipped with a note when absent) and any number of denoiser
checkpoints (the bundled ``denoiser-tiny`` by default), each also with the Bayer-preserving
self-ensemble when ``--ensemble 8`` is given.

With ``--shards STORE`` it also scores the same methods on the first ``--shard-samples``
samples of a raw-synth store (each with its own stored noise level): the synthetic check.

    python benchmarks/denoiser_real_content.py                       # bundled model vs baselines
    python benchmarks/denoiser_real_content.py --ensemble 1 --ensemble 8   # plain and self-ensembled rows
    python benchmarks/denoiser_real_content.py --model runs/x/model.safetensors --model denoiser-tiny \\
        --shards runs/card/g4-deadleaves --shards runs/card/g4-vibrant --json out.json --markdown out.md
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DATA = REPO.parent / "shared" / "data"

#: ``(label, shot, read)`` of the three noise levels.
LEVELS: tuple[tuple[str, float, float], ...] = (
    ("low", 8e-4, 4e-6),
    ("mid", 3e-3, 4e-5),
    ("high", 1.2e-2, 6e-4),
)
#: Crop positions as fractions of the free range ``(frame - crop)`` along (y, x).
CROP_FRACTIONS: tuple[tuple[float, float], ...] = ((0.25, 0.25), (0.5, 0.6), (0.8, 0.85))
CROP = 192

logger = logging.getLogger("denoiser_real_content")


@dataclass(frozen=True)
class Frame:
    """One real RAW frame: its label, packed clean planes ``(4, h, w)`` in [0, 1] and its source."""

    name: str
    packed: np.ndarray
    source: str


def load_frames(data: Path = DATA) -> list[Frame]:
    """The three held-out real frames (see the module docstring); missing files are skipped."""
    from raw_synth.io import read_raw
    from raw_synth.io.mosaic_files import read_mosaic

    specs = [
        ("550d", data / "tinydng-canon550d/colorchart.dng", lambda p: read_raw(p)),
        ("openisp", data / "openisp-test-raw/test.RAW",
         lambda p: read_mosaic(p, "RGGB", 0, 1023, shape=(1080, 1920))),
        ("n900", data / "halide-nokia-n900/bayer_small.png", lambda p: read_mosaic(p, "GRBG", 25, 1023)),
    ]
    frames = []
    for name, path, read in specs:
        if not path.is_file():
            logger.warning("%s: not found, frame %s skipped", path, name)
            continue
        raw = read(path)
        frames.append(Frame(name, np.clip(raw.packed, 0.0, 1.0).astype(np.float32), str(path)))
    return frames


def crops_of(frame: Frame, size: int = CROP) -> list[np.ndarray]:
    """Square ``(4, s, s)`` crops at :data:`CROP_FRACTIONS` (one crop when the frame is too small)."""
    _, height, width = frame.packed.shape
    side = min(size, height, width)
    fractions = CROP_FRACTIONS if side == size else CROP_FRACTIONS[1:2]
    out = []
    for fy, fx in fractions:
        y = int(round(fy * (height - side)))
        x = int(round(fx * (width - side)))
        out.append(frame.packed[:, y : y + side, x : x + side].copy())
    return out


def add_noise(clean: np.ndarray, shot: float, read: float, seed: int) -> np.ndarray:
    """``shot * Poisson(clean / shot) + N(0, read)``, float32, not clipped."""
    rng = np.random.default_rng(seed)
    photons = rng.poisson(np.maximum(clean, 0.0).astype(np.float64) / shot)
    noisy = shot * photons + rng.normal(0.0, np.sqrt(read), clean.shape)
    return noisy.astype(np.float32)


def psnr(pred: np.ndarray, gt: np.ndarray) -> float:
    """PSNR (data range 1) of ``pred`` clamped to [0, 1] against ``gt`` (:func:`raw_synth.metrics.psnr`)."""
    from raw_synth.metrics import psnr as metrics_psnr

    return metrics_psnr(np.clip(pred, 0.0, 1.0), gt)


def load_methods(specs: list[str], ensembles: list[int] | None = None) -> list:
    """``noisy``, the classical baselines that can run here, and the checkpoints in ``specs``.

    Each checkpoint gets one row per self-ensemble size in ``ensembles`` (default ``[1]``; a size
    above 1 names the row ``STEM-xN``, see :mod:`denoise.ensemble`).
    """
    from denoise.evaluate import load_method
    from raw_synth.errors import RawSynthError

    methods = [load_method("identity")]
    for baseline in ("anscombe-nlm", "anscombe-bm3d"):
        try:
            methods.append(load_method(baseline))
        except RawSynthError as error:
            logger.warning("%s skipped: %s", baseline, error)
    for spec in specs:
        path = _checkpoint_path(spec)
        methods.extend(load_method(str(path), ensemble=n) for n in ensembles or [1])
    return methods


def _checkpoint_path(spec: str) -> Path:
    from raw_synth.bundled_checkpoints import find_checkpoint

    path = find_checkpoint(spec)
    if path is None:
        raise SystemExit(f"--model {spec}: no such checkpoint file or bundled model")
    return path


def score_real(methods: list, frames: list[Frame], seed: int = 0) -> dict:
    """PSNR of every method on every (frame, level): ``{method: {frame: {level: mean PSNR}}}``."""
    results: dict = {m.name: {} for m in methods}
    timings: dict = {m.name: 0.0 for m in methods}
    for f_index, frame in enumerate(frames):
        crops = crops_of(frame)
        for l_index, (level, shot, read) in enumerate(LEVELS):
            shot4, read4 = np.full(4, shot), np.full(4, read)
            scores: dict[str, list[float]] = {m.name: [] for m in methods}
            for c_index, clean in enumerate(crops):
                noisy = add_noise(clean, shot, read, seed=seed * 1000 + f_index * 100 + l_index * 10 + c_index)
                for method in methods:
                    began = time.perf_counter()
                    out = method.denoise(noisy[None], shot4, read4)[0]
                    timings[method.name] += time.perf_counter() - began
                    scores[method.name].append(psnr(out, clean))
            for name, values in scores.items():
                results[name].setdefault(frame.name, {})[level] = float(np.mean(values))
            logger.info("%s %s: %s", frame.name, level,
                        ", ".join(f"{n} {np.mean(v):.2f}" for n, v in scores.items()))
    for name in results:
        cells = [v for per_frame in results[name].values() for v in per_frame.values()]
        results[name]["mean"] = float(np.mean(cells))
        results[name]["seconds"] = round(timings[name], 1)
    return results


def score_shards(methods: list, store: Path, n: int) -> dict:
    """Mean PSNR of every method on the first ``n`` samples of a raw-synth store."""
    from raw_synth.store import open_shards

    shards = open_shards(store)
    scores: dict[str, list[float]] = {m.name: [] for m in methods}
    for i in range(min(n, len(shards))):
        sample = shards[i]
        noisy = np.asarray(sample["noisy"], np.float32)
        clean = np.clip(np.asarray(sample["clean"], np.float32), 0.0, 1.0)
        shot, read = np.asarray(sample["shot"], np.float64), np.asarray(sample["read"], np.float64)
        for method in methods:
            scores[method.name].append(psnr(method.denoise(noisy[None], shot, read)[0], clean))
    return {name: {"mean": float(np.mean(v)), "samples": len(v)} for name, v in scores.items()}


def markdown(real: dict, frames: list[Frame], shards: dict[str, dict] | None = None) -> str:
    """The result tables as markdown."""
    names = list(real)
    lines = ["| frame | level | " + " | ".join(names) + " |", "| --- | --- |" + " ---: |" * len(names)]
    for frame in frames:
        for level, _, _ in LEVELS:
            row = [real[n][frame.name][level] for n in names]
            best = max(row[1:]) if len(row) > 1 else None
            cells = [f"**{v:.2f}**" if v == best else f"{v:.2f}" for v in row]
            lines.append(f"| {frame.name} | {level} | " + " | ".join(cells) + " |")
    lines.append("| **mean** | | " + " | ".join(f"**{real[n]['mean']:.2f}**" for n in names) + " |")
    lines.append("| seconds | | " + " | ".join(f"{real[n]['seconds']:.1f}" for n in names) + " |")
    if shards:
        lines += ["", "Synthetic held-out shards (mean PSNR over the first samples of each store):", "",
                  "| store | samples | " + " | ".join(names) + " |", "| --- | ---: |" + " ---: |" * len(names)]
        for store, scores in shards.items():
            row = [scores[n]["mean"] for n in names]
            best = max(row[1:]) if len(row) > 1 else None
            cells = [f"**{v:.2f}**" if v == best else f"{v:.2f}" for v in row]
            lines.append(f"| `{store}` | {scores[names[0]]['samples']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=None,
                        help="denoiser checkpoint (.safetensors) or bundled name; repeatable (default: denoiser-tiny)")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default: ../shared/data)")
    parser.add_argument("--shards", type=Path, action="append", default=None,
                        help="also score on this raw-synth store (repeatable)")
    parser.add_argument("--ensemble", type=int, action="append", default=None, choices=(1, 2, 4, 8),
                        help="self-ensemble sizes to score each checkpoint with (repeatable; default 1)")
    parser.add_argument("--shard-samples", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import torch

    torch.set_num_threads(args.threads)
    frames = load_frames(args.data)
    if not frames:
        print(f"no real frames found under {args.data}; nothing to score (skipped)")
        return 0
    methods = load_methods(args.model or ["denoiser-tiny"], args.ensemble)
    real = score_real(methods, frames, args.seed)
    shards = {str(store): score_shards(methods, store, args.shard_samples) for store in args.shards or []}
    table = markdown(real, frames, shards)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.json:
        args.json.write_text(json.dumps({"real": real, "shards": shards, "levels": LEVELS,
                                         "frames": {f.name: f.source for f in frames}}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
