"""Reproduce the denoiser model card (docs/model_card_denoiser.md) end to end.

1. Training content: a folder of 26 images (:func:`build_training_folder`): the 12 photographs of
   ``../shared/data/mate-backgrounds-photos`` (GPL-2+, read from ``../shared``, never copied into
   the repository) reduced 2x with a box filter (as Brooks et al. reduced MIRFlickr, to soften
   JPEG artefacts and the photos' own noise), scikit-image's four public-domain/CC0 colour photos
   (astronaut, coffee, chelsea, rocket) and ten 768x768 dead-leaves images (seed 123).
2. Training store (``pipelines.run.generate``, UPI engine, 256 px patches, seed 1): 12 000 pairs
   for the two wide-range training cameras ``wide-range`` and ``wide-range-offset`` (Poisson-Gaussian
   noise, shot 1e-4 to 2e-2, read noise around and above Brooks et al.'s line; black level 0 with
   clipping, and 1024 with values below black kept).
3. Training in two stages: ``configs/train-denoiser-cpu.yaml`` (``denoiser-tiny``, conditioned, 5 000
   steps of 16 random 64x64 packed crops) into ``OUT/run``, then ``configs/train-denoiser-finetune.yaml``
   from that checkpoint (``train.init``; 4 000 steps of 4 whole 128x128 packed crops) into
   ``OUT/finetune``, whose model is the one scored and installed (``--no-finetune``: stage 1 only).
4. Scores on synthetic held-out data: the held-out shards of the training store and three stores of
   a phone not used in training (``sidd-g4``): dead leaves, the built-in sample photos (the same
   four photos are among the training images) and the ``vibrant`` corpus (not used in training).
5. Real noise: ``/work/shared/data/aisp-vivo-x90/x90_3_4.npy`` (vivo X90 night scene, 12-bit,
   RGGB, black 0, white 4095) through :func:`denoise.denoise_file` with a blind noise estimate;
   the blind estimate of the output against the input's (variance at the image's mean level),
   the correlation of the removed residual with the output, and a before/after preview.
6. The checkpoint is copied to ``raw_synth/data/checkpoints/denoiser-tiny.safetensors`` with
   ``--install``.

Real camera RAW content with known noise is scored by ``benchmarks/denoiser_real_content.py``.

    OMP_NUM_THREADS=1 python benchmarks/denoiser_card.py --out runs/card --install  # ~2.5 h, 1 core
    python benchmarks/denoiser_card.py --out runs/card --skip-train                   # re-score a run
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
X90 = DATA / "aisp-vivo-x90" / "x90_3_4.npy"
PHOTOS = DATA / "mate-backgrounds-photos"
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
TRAIN_CAMERAS = "wide-range,wide-range-offset"
UNSEEN = "sidd-g4"
BLIND_QUANTILE = 0.999


def _recipe_val_fraction(recipe: Path) -> float:
    """``datasets.val_fraction`` of a training recipe (the held-out shards of the training store)."""
    import yaml

    return float(yaml.safe_load(recipe.read_text())["datasets"]["val_fraction"])


def build_training_folder(out: Path, deadleaves: int = 10, deadleaves_size: int = 768,
                          deadleaves_seed: int = 123) -> Path:
    """Write the training images (see the module docstring) into ``out`` as PNG; returns ``out``."""
    import skimage.data
    from PIL import Image

    from raw_synth.corpora import load_corpus_image

    photos = sorted(PHOTOS.glob("*.jpg"))
    if not photos:
        raise SystemExit(f"{PHOTOS}: no photographs found; the training recipe needs ../shared/data")
    out.mkdir(parents=True, exist_ok=True)
    for photo in photos:
        target = out / f"mate_{photo.stem}.png"
        if not target.exists():
            Image.open(photo).convert("RGB").reduce(2).save(target)
    for name in SKIMAGE_PHOTOS:
        target = out / f"skimage_{name}.png"
        if not target.exists():
            Image.fromarray(getattr(skimage.data, name)()).save(target)
    for i in range(deadleaves):
        target = out / f"deadleaves_{i:03d}.png"
        if not target.exists():
            image = load_corpus_image("deadleaves", i, size=(deadleaves_size, deadleaves_size), seed=deadleaves_seed)
            Image.fromarray(np.round(image * 255).astype(np.uint8)).save(target)
    return out


def generate_store(out: Path, n: int, src: str, cameras: str, patch: int, seed: int, workers: int,
                   shard_size: int) -> Path:
    from pipelines.config import GenerateConfig
    from pipelines.run import generate

    began = time.time()
    summary = generate(GenerateConfig(n=n, out=str(out), src=src, engine="upi", cameras=cameras, patch=patch,
                                      shard_size=shard_size,
                                      workers=workers, seed=seed), progress=False)
    logging.info("store %s: %d pairs in %.0f s", out, summary.n_samples, time.time() - began)
    return out


def score_store(model: torch.nn.Module, path: Path, split: str, val_fraction: float = 0.1) -> dict[str, float]:
    from denoise.dataset import ShardDataset
    from denoise.train import evaluate

    ds = ShardDataset(path, split, val_fraction=val_fraction, crop=None, augment=False)
    return evaluate(model, ds, batch_size=8)


def real_noise_check(model_path: Path, out: Path, preview: Path) -> dict[str, object]:
    """Denoise the vivo X90 night crop; compare blind noise estimates and residual statistics."""
    from denoise.denoise_file import denoise_file
    from raw_synth.calibrate import estimate_blind
    from raw_synth.errors import RawSynthError
    from raw_synth.io import read_mosaic, read_raw

    result = denoise_file(X90, model_path, out, cfa="RGGB", black=0, white=4095, preview=preview)
    noisy = read_mosaic(X90, "RGGB", 0, 4095).packed
    denoised = read_raw(out).packed
    level = noisy.reshape(4, -1).mean(axis=1)
    # The same estimator settings on both images. The texture test's quantile is 0.999 rather than the
    # default 0.99: a denoised night image has so little noise left that, at 0.99, the residual
    # structure of the scene fails the test in almost every block of a plane and no fit is possible.
    before = estimate_blind(noisy, quantile=BLIND_QUANTILE)
    var_before = before.shot * level + before.read
    try:
        after = estimate_blind(denoised, quantile=BLIND_QUANTILE)
        var_after = after.shot * level + after.read
    except RawSynthError as error:
        # Too little noise left for the blind estimator to find weak-texture blocks: the MAD figures
        # below still measure the output's fine-scale noise.
        logging.warning("blind estimate of the denoised X90 failed (%s); MAD figures only", error)
        after, var_after = None, np.full(4, np.nan)
    mad_before, mad_after = mad_noise_std(noisy), mad_noise_std(denoised)
    residual = (noisy - denoised).astype(np.float64)
    flat_r = residual.reshape(-1) - residual.mean()
    flat_o = denoised.reshape(-1).astype(np.float64) - denoised.mean()
    corr = float(flat_r @ flat_o / np.sqrt((flat_r @ flat_r) * (flat_o @ flat_o)))
    per_plane = []
    for c in range(4):
        r = residual[c].reshape(-1) - residual[c].mean()
        o = denoised[c].reshape(-1).astype(np.float64) - denoised[c].mean()
        per_plane.append(float(r @ o / np.sqrt((r @ r) * (o @ o))))
    # the residual should be white: lag-1 autocorrelation per plane (horizontal, vertical)
    lag = []
    for c in range(4):
        r = residual[c] - residual[c].mean()
        lag.append([float((r[:, 1:] * r[:, :-1]).mean() / (r * r).mean()),
                    float((r[1:] * r[:-1]).mean() / (r * r).mean())])
    return {
        "noise_source": result.noise_source,
        "shot_used": result.shot,
        "read_used": result.read,
        "mean_level": level.tolist(),
        "blind_before": {"shot": before.shot.tolist(), "read": before.read.tolist()},
        "blind_after": None if after is None else {"shot": after.shot.tolist(), "read": after.read.tolist()},
        "mad_noise_std_before": mad_before.tolist(),
        "mad_noise_std_after": mad_after.tolist(),
        "mad_variance_ratio": (mad_before**2 / np.maximum(mad_after**2, 1e-20)).tolist(),
        "variance_before": var_before.tolist(),
        "variance_after": var_after.tolist(),
        "variance_ratio": (var_before / np.maximum(var_after, 1e-20)).tolist(),
        "variance_ratio_mean": float(var_before.mean() / max(var_after.mean(), 1e-20)) if after is not None else None,
        "residual_std": float(residual.std()),
        "residual_output_correlation": corr,
        "residual_output_correlation_per_plane": per_plane,
        "residual_lag1_autocorrelation": lag,
        "seconds": result.seconds,
        "preview": str(preview),
    }


def mad_noise_std(packed: np.ndarray) -> np.ndarray:
    """Per-plane noise std from the finest diagonal Haar detail: ``median(|HH|) / 0.6745`` (Donoho).

    Args:
        packed: ``(4, h, w)`` packed RAW.

    Returns:
        float64 ``(4,)``; robust to edges and texture, which fill few HH coefficients.
    """
    x = np.asarray(packed, dtype=np.float64)
    h, w = (x.shape[1] // 2) * 2, (x.shape[2] // 2) * 2
    x = x[:, :h, :w]
    hh = (x[:, 0::2, 0::2] - x[:, 0::2, 1::2] - x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) / 2.0
    return np.median(np.abs(hh).reshape(4, -1), axis=1) / 0.6745


def zoom_pair(preview: Path, out: Path, box: tuple[int, int, int] = (600, 380, 200), scale: int = 2) -> Path:
    """Cut the same ``(y, x, size)`` square from both panels of a before/after preview, enlarged."""
    from PIL import Image

    image = Image.open(preview).convert("RGB")
    width = (image.width - 8) // 2
    y, x, size = box
    panels = [image.crop((left + x, y, left + x + size, y + size)).resize((size * scale, size * scale), Image.NEAREST)
              for left in (0, width + 8)]
    canvas = Image.new("RGB", (2 * size * scale + 8, size * scale), "white")
    canvas.paste(panels[0], (0, 0))
    canvas.paste(panels[1], (size * scale + 8, 0))
    canvas.save(out)
    return out


def half_size(source: Path, target: Path) -> Path:
    """Save ``source`` at half its width and height (box filter) as ``target``."""
    from PIL import Image

    image = Image.open(source).convert("RGB")
    image.resize((image.width // 2, image.height // 2), Image.BOX).save(target, optimize=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "denoiser-card")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "train-denoiser-cpu.yaml")
    parser.add_argument("--train-samples", type=int, default=12000)
    parser.add_argument("--test-samples", type=int, default=64)
    parser.add_argument("--patch", type=int, default=192, help="patch of the test stores")
    parser.add_argument("--train-patch", type=int, default=256, help="patch of the training store")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=None, help="override train.max_steps (stage 1)")
    parser.add_argument("--finetune-config", type=Path, default=REPO / "configs" / "train-denoiser-finetune.yaml",
                        help="stage 2 recipe; its train.init is set to the stage-1 checkpoint")
    parser.add_argument("--no-finetune", action="store_true", help="stage 1 only")
    parser.add_argument("--skip-train", action="store_true", help="score the finished run in --out")
    parser.add_argument("--install", action="store_true",
                        help="copy the trained model to raw_synth/data/checkpoints/denoiser-tiny.safetensors")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--preview", type=Path, default=None,
                        help="before/after picture (default: OUT/x90_before_after.png). The X90 crop carries no "
                             "licence: keep pictures of it out of the repository")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)

    from denoise.inference import load_denoiser
    from denoise.train import train_denoiser

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.preview is None:
        args.preview = out / "x90_before_after.png"
    stores = {
        "train": (out / "train-store", args.train_samples, str(build_training_folder(out / "train-images")),
                  TRAIN_CAMERAS, 1, 256),
        "g4-deadleaves": (out / "g4-deadleaves", args.test_samples, "deadleaves", UNSEEN, 1, 32),
        "g4-photos": (out / "g4-photos", args.test_samples, "samples", UNSEEN, 2, 32),
        "g4-vibrant": (out / "g4-vibrant", args.test_samples, "vibrant", UNSEEN, 3, 32),
    }
    timings: dict[str, float] = {}
    for name, (path, n, src, cameras, seed, shard) in stores.items():
        if name == "train" and args.skip_train and (path / "manifest.json").is_file():
            continue  # scoring a finished run: its store is only read (its held-out shards)
        began = time.time()
        patch = args.train_patch if name == "train" else args.patch
        generate_store(path, n, src, cameras, patch, seed, args.workers, shard)  # resumes when complete
        timings[f"generate_{name}_s"] = time.time() - began

    run = out / "run"
    if not args.skip_train:
        resume = (run / "train_state.safetensors").exists()
        began = time.time()
        summary = train_denoiser(args.config if not resume else None, stores["train"][0], run,
                                 max_steps=args.max_steps, resume=resume)
        timings["train_s"] = time.time() - began
        logging.info("trained %d steps in %.0f s", summary.steps, timings["train_s"])
    checkpoint = run / "model.safetensors"
    if not args.no_finetune:
        stage2 = out / "finetune"
        if not args.skip_train:
            import yaml

            recipe = yaml.safe_load(args.finetune_config.read_text())
            recipe.setdefault("train", {})["init"] = str(checkpoint)
            resume = (stage2 / "train_state.safetensors").exists()
            began = time.time()
            summary = train_denoiser(None if resume else recipe, stores["train"][0], stage2, resume=resume)
            timings["finetune_s"] = time.time() - began
            logging.info("fine-tuned %d steps in %.0f s", summary.steps, timings["finetune_s"])
        checkpoint = stage2 / "model.safetensors"
    model, meta = load_denoiser(checkpoint)

    scores = {
        "training cameras, held-out shards": score_store(model, stores["train"][0], "val",
                                                         val_fraction=_recipe_val_fraction(args.config)),
        "unseen sidd-g4, dead leaves": score_store(model, stores["g4-deadleaves"][0], "all"),
        "unseen sidd-g4, sample photos (also in the training images)":
            score_store(model, stores["g4-photos"][0], "all"),
        "unseen sidd-g4, vibrant (content not used in training)": score_store(model, stores["g4-vibrant"][0], "all"),
    }
    full_preview = out / "x90_preview.png"
    real = real_noise_check(checkpoint, out / "x90_denoised.dng", full_preview)
    real["zoom"] = str(zoom_pair(full_preview, args.preview.with_name(args.preview.stem + "_zoom.png")))
    real["preview"] = str(half_size(full_preview, args.preview))
    card = {
        "checkpoint": str(checkpoint),
        "checkpoint_bytes": checkpoint.stat().st_size,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "config": meta["config"],
        "train_step": meta["extra"].get("step"),
        "scores": scores,
        "real_noise_x90": real,
        "timings_s": timings,
        "torch_threads": torch.get_num_threads(),
    }
    (out / "card.json").write_text(json.dumps(card, indent=2))
    print("| test set | n | PSNR noisy | PSNR denoised | SSIM noisy | SSIM denoised |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, s in scores.items():
        print(f"| {name} | {s['n']} | {s['psnr_noisy']:.2f} | {s['psnr']:.2f} | "
              f"{s['ssim_noisy']:.4f} | {s['ssim']:.4f} |")
    print(f"x90: noise source {real['noise_source']}, blind variance ratio (in/out) {real['variance_ratio_mean']}, "
          f"MAD variance ratio per plane {np.round(real['mad_variance_ratio'], 1).tolist()}, residual/output "
          f"correlation {real['residual_output_correlation']:+.4f}")
    if args.install:
        from raw_synth.bundled_checkpoints import DENOISER_CHECKPOINT, bundled_checkpoint_path

        target = bundled_checkpoint_path(DENOISER_CHECKPOINT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(checkpoint, target)
        target.chmod(0o644)
        print(f"installed {target} ({target.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
