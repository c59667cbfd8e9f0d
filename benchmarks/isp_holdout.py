"""Held-out RAW accuracy of the bundled SSDNet inverse ISP against Unprocessing (UPI).

Reproduces the table in ``docs/model_card_isp.md`` and ``benchmarks/RESULTS.md`` with one command::

    python benchmarks/isp_holdout.py [--shared ../shared/data] [--model CKPT] [--json OUT.json]

What it does:

1. builds the training folder from ``../shared/data`` (``make_isp_training_data.build``: the
   Canon 550D DNG, the openISP 10-bit frame and the Nokia N900 mosaic as DNGs) in a temporary
   folder and renders each with rawpy exactly as training does (16-bit, camera WB,
   ``adjust_maximum_thr=0``, AHD, RGGB-unified);
2. takes each image's held-out region, the right-most 25 % of its columns (``split.json``),
   which no training crop touched;
3. predicts the packed RAW of that region from its sRGB with
   * ``ssdnet``: the checkpoint (default: the bundled ``ssdnet-tiny-isp.safetensors``), mean head;
   * ``upi``: the ``upi`` engine as the pipeline uses it (a random camera from Brooks et al.'s
     distribution, ``np.random.default_rng(seed + image index)``, seed 0);
   * ``upi-oracle``: Unprocessing with the image's true white balance and colour matrix
     (``rgb2cam`` from the file's ColorMatrix, red / blue gains from AsShotNeutral,
     ``rgb_gain = 1`` as LibRaw applies no exposure gain with ``no_auto_bright``);
4. scores RAW PSNR and SSIM (``raw_synth.metrics``: AIM 2022 convention, packed planes, data
   range 1) against the real RAW clipped to [0, 1], per image and as the mean over images.

Prints a Markdown table. Exits 0 with a message when the shared data are absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(REPO / "benchmarks") not in sys.path:
    sys.path.insert(0, str(REPO / "benchmarks"))

import make_isp_training_data  # noqa: E402

from raw_synth.bundled_checkpoints import ISP_CHECKPOINT, bundled_checkpoint_path  # noqa: E402
from raw_synth.metrics import psnr, ssim  # noqa: E402

logger = logging.getLogger("isp_holdout")

BUNDLED = bundled_checkpoint_path(ISP_CHECKPOINT)
METHODS = ("ssdnet", "upi", "upi-oracle")


def holdout_pairs(data_dir: Path, cache_dir: Path) -> list[dict[str, Any]]:
    """Held-out regions of every image of a data folder: ``{name, rgb, raw, camera}``."""
    from raw_synth.training.config import DataConfig, ValConfig
    from raw_synth.training.datasets import prepare_data, validation_crops

    data = prepare_data(data_dir, DataConfig(), ValConfig(holdout="split-file", patch=None), cache_dir, seed=0)
    cameras = {s.name: s.camera for s in data.sources}
    return [{"name": name, "rgb": rgb, "raw": raw, "camera": cameras[name]}
            for name, rgb, raw in validation_crops(data, ValConfig(holdout="split-file", patch=None), 0)]


def predict_ssdnet(model: Any, rgb: np.ndarray) -> np.ndarray:
    """Packed RAW ``(4, h, w)`` from SSDNet's mean head, on the input the engine gives it (lifted to
    :data:`raw_synth.engine.SRGB_FLOOR`)."""
    import torch

    from raw_synth.engine import SRGB_FLOOR

    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(np.maximum(rgb, SRGB_FLOOR).transpose(2, 0, 1)))[None]
        return model.predict(x)["mu"][0].numpy()


def predict_upi(rgb: np.ndarray, seed: int) -> np.ndarray:
    """The ``upi`` engine with a seeded random camera."""
    from raw_synth.engine import UPIEngine

    return UPIEngine().convert(rgb, np.random.default_rng(seed)).packed


def predict_upi_oracle(rgb: np.ndarray, camera: dict[str, Any]) -> np.ndarray:
    """Unprocessing with the image's true white balance and colour matrix."""
    from raw_synth.isp.color import rgb_to_cam_from_xyz_to_cam
    from raw_synth.isp.unprocess import UnprocessParams, unprocess

    rgb2cam = rgb_to_cam_from_xyz_to_cam(np.asarray(camera["xyz_to_cam"], dtype=np.float64))
    gains = camera["wb_gains"]
    params = UnprocessParams.from_rgb2cam(rgb2cam, rgb_gain=1.0, red_gain=gains[0], blue_gain=gains[3])
    packed, _ = unprocess(rgb, None, params=params)
    return packed


def evaluate(shared: Path, model_path: Path, seed: int = 0) -> dict[str, Any]:
    """Score the three methods on the held-out regions; returns rows and means."""
    from raw_synth.checkpoint import load_model, read_checkpoint_metadata

    model, _ = load_model(model_path, kind="ssdnet-isp")
    meta = read_checkpoint_metadata(model_path)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        make_isp_training_data.build(shared, data_dir)
        pairs = holdout_pairs(data_dir, Path(tmp) / "cache")
    for index, pair in enumerate(pairs):
        target = pair["raw"]
        predictions = {}
        start = time.perf_counter()
        predictions["ssdnet"] = predict_ssdnet(model, pair["rgb"])
        ssdnet_s = time.perf_counter() - start
        predictions["upi"] = predict_upi(pair["rgb"], seed + index)
        if pair["camera"] is not None:
            predictions["upi-oracle"] = predict_upi_oracle(pair["rgb"], pair["camera"])
        row: dict[str, Any] = {"image": pair["name"], "size": list(pair["rgb"].shape[:2]),
                               "ssdnet_seconds": round(ssdnet_s, 3)}
        for method, pred in predictions.items():
            row[method] = {"psnr": psnr(pred, target), "ssim": ssim(pred, target, channel_axis=0)}
        rows.append(row)
    means = {}
    for method in METHODS:
        scored = [r[method] for r in rows if method in r]
        if scored:
            means[method] = {"psnr": float(np.mean([s["psnr"] for s in scored])),
                             "ssim": float(np.mean([s["ssim"] for s in scored]))}
    return {"model": str(model_path), "training": meta["extra"].get("training", {}), "rows": rows, "mean": means,
            "seed": seed}


def markdown(result: dict[str, Any]) -> str:
    """The result as a Markdown table (PSNR dB / SSIM per image and mean)."""
    head = ("| image (held-out region, RGB px) | SSDNet tiny (bundled) | UPI engine (random camera) "
            "| UPI oracle (true WB + CCM) |")
    lines = [head, "| --- | --- | --- | --- |"]

    def cell(entry: dict[str, float] | None) -> str:
        return "n/a" if entry is None else f"{entry['psnr']:.2f} / {entry['ssim']:.4f}"

    for row in result["rows"]:
        size = f"{row['size'][0]}x{row['size'][1]}"
        lines.append(f"| {row['image']} ({size}) | " + " | ".join(cell(row.get(m)) for m in METHODS) + " |")
    lines.append("| **mean** | " + " | ".join(f"**{cell(result['mean'].get(m))}**" for m in METHODS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Held-out RAW PSNR/SSIM: SSDNet checkpoint vs Unprocessing")
    parser.add_argument("--shared", type=Path, default=make_isp_training_data.DEFAULT_SHARED)
    parser.add_argument("--model", type=Path, default=BUNDLED, help="ssdnet-isp checkpoint (default: bundled)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the upi engine's random cameras")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    missing = [rel for rel in make_isp_training_data.FILES.values() if not (args.shared / rel).is_file()]
    if not args.shared.is_dir() or missing:
        print(f"skipped: shared data not found in {args.shared}"
              + (f" (missing {', '.join(missing)})" if missing else ""))
        return 0
    if not args.model.is_file():
        print(f"skipped: checkpoint {args.model} not found")
        return 0
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    result = evaluate(args.shared, args.model, args.seed)
    print(markdown(result))
    training = result["training"]
    if training:
        print(f"\nmodel: {training.get('preset')} preset, {training.get('steps')} steps, "
              f"{training.get('wall_time_s')} s training; PSNR in dB / SSIM, RAW domain, data range 1")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
