"""Train SSDNet as an inverse ISP (sRGB -> packed RAW) with soft supervision.

:func:`train_isp` is what ``raw-synth train-isp --data DIR --out RUN`` runs. One run folder::

    RUN/config.yaml            the recipe used (a resumed run must use the same one)
    RUN/data.json              layout, images, held-out split, skipped files
    RUN/cache/*.npz            rendered camera-RAW pairs (camera-raw layout)
    RUN/state/last.safetensors full training state (exact resume)
    RUN/metrics.jsonl          one JSON object per log / validation event
    RUN/curves.png             training loss and held-out PSNR against the step
    RUN/model.safetensors      the exported model (kind "ssdnet-isp"), written when a call ends

Recipe (:class:`~raw_synth.training.config.TrainConfig`): AdamW; learning rate flat then cosine
(:class:`~raw_synth.training.schedule.FlatCosineSchedule`); ``clip_grad_norm_``; the
resampling loss (paper Eq. 4) or L1; progressive patch / batch sizes; validation PSNR / SSIM on
held-out RAW crops with :mod:`raw_synth.metrics`.

Exact resume: the batch of step ``s`` is drawn from ``default_rng([seed, 7, s, i])`` (see
:class:`~raw_synth.training.datasets.CropDataset`), the loss noise from a torch generator saved
with the state, and the state also holds the model, AdamW moments and the global generators.
On CPU a run stopped at step ``k`` and resumed gives bit-identical weights to an
uninterrupted run (tested). ``max_steps`` stops a call early at an absolute step; the schedule
always spans ``train.total_steps``, so stopping and resuming does not change the result.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from raw_synth.config_fields import first_difference, identity_view
from raw_synth.cpu_tuning import torch_threads
from raw_synth.errors import RawSynthError
from raw_synth.training.config import TrainConfig, load_config
from raw_synth.training.datasets import (
    CropDataset,
    StepBatchSampler,
    TrainingData,
    prepare_data,
    validation_crops,
)
from raw_synth.training.export import combined_camera
from raw_synth.training.schedule import FlatCosineSchedule, ProgressiveSchedule, set_learning_rate
from raw_synth.training.state import load_training_state, read_state_metadata, save_training_state

__all__ = ["TrainSummary", "train_isp", "evaluate_isp", "plot_metrics", "resolve_device"]

logger = logging.getLogger(__name__)

STATE_NAME = "state/last.safetensors"
MODEL_NAME = "model.safetensors"
METRICS_NAME = "metrics.jsonl"
PLOT_NAME = "curves.png"

@dataclass(frozen=True)
class TrainSummary:
    """What a :func:`train_isp` call did.

    Attributes:
        run_dir: The run folder.
        model_path: The exported ``ssdnet-isp`` checkpoint.
        steps: Completed optimiser steps (over all calls).
        total_steps: Steps of the whole recipe.
        complete: ``steps == total_steps``.
        resumed_from: Step the call resumed from, or None for a fresh start.
        wall_time_s: Training wall time over all calls (seconds).
        final_loss: Mean training loss over the last logging window, or None.
        val_psnr: Held-out RAW PSNR (dB) of the last validation, or None.
        val_ssim: Held-out RAW SSIM of the last validation, or None.
        layout: Data layout used.
        n_images: Number of pairs found.
    """

    run_dir: Path
    model_path: Path
    steps: int
    total_steps: int
    complete: bool
    resumed_from: int | None
    wall_time_s: float
    final_loss: float | None
    val_psnr: float | None
    val_ssim: float | None
    layout: str
    n_images: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        out = asdict(self)
        out["run_dir"], out["model_path"] = str(self.run_dir), str(self.model_path)
        return out


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available else cpu; anything else as given.

    Raises:
        RawSynthError: For an unknown device or CUDA requested where there is none.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise RawSynthError(f"train.device: unknown device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RawSynthError(f"train.device: {name!r} requested but CUDA is not available")
    return device


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _resume_view(config: TrainConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a recipe that decide the result: its identity fields (a resumed run must match them).

    A mapping is a view an earlier run stored in its state; it is returned as plain data.
    """
    if isinstance(config, TrainConfig):
        return identity_view(config)
    return json.loads(json.dumps(config))


@torch.inference_mode()
def evaluate_isp(model: torch.nn.Module, crops: list[tuple[str, np.ndarray, np.ndarray]],
                 device: torch.device | str = "cpu") -> dict[str, Any]:
    """RAW-domain PSNR / SSIM of a model on aligned crops.

    Args:
        model: An SSDNet (its ``predict`` pads to a multiple of 16 and crops back).
        crops: ``(name, rgb (h, w, 3), raw (4, h/2, w/2))`` triples (h, w even). SSIM needs a
            packed side of at least 11; smaller crops get ``ssim`` None and are left out of its mean.
        device: Where to run.

    Returns:
        ``{"psnr": mean dB, "ssim": mean, "per_crop": [{"name", "psnr", "ssim"}]}`` (means are
        over crops). The model's train/eval mode is restored afterwards.
    """
    from raw_synth.metrics import psnr, ssim

    was_training = model.training
    model.eval()
    rows = []
    try:
        for name, rgb, raw in crops:
            x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].to(device)
            target = torch.from_numpy(np.ascontiguousarray(raw))[None].to(device)
            mu = model.predict(x)["mu"]
            small = min(target.shape[-2:]) < 11  # SSIM's 11x11 window does not fit
            rows.append({"name": name, "psnr": float(psnr(mu, target)[0]),
                         "ssim": None if small else float(ssim(mu, target)[0])})
    finally:
        model.train(was_training)
    if not rows:
        return {"psnr": None, "ssim": None, "per_crop": []}
    ssims = [r["ssim"] for r in rows if r["ssim"] is not None]
    return {"psnr": float(np.mean([r["psnr"] for r in rows])), "ssim": float(np.mean(ssims)) if ssims else None,
            "per_crop": rows}


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a crash
                continue
    return rows


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop records after ``step`` (written after the last saved state, before a crash)."""
    rows = [r for r in _read_metrics(path) if int(r.get("step", 0)) <= step]
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    os.replace(temporary, path)


def plot_metrics(metrics_path: str | Path, png_path: str | Path) -> Path | None:
    """Plot training loss and held-out PSNR from a ``metrics.jsonl``; returns the PNG path or None."""
    rows = _read_metrics(Path(metrics_path))
    train = [(r["step"], r["loss"]) for r in rows if r.get("event") == "train"]
    val = [(r["step"], r["val_psnr"]) for r in rows if r.get("event") == "val" and r.get("val_psnr") is not None]
    if not train and not val:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    if train:
        axes[0].plot(*zip(*train), lw=1)
        axes[0].set_yscale("log")
    axes[0].set(xlabel="step", ylabel="training loss", title="loss")
    if val:
        axes[1].plot(*zip(*val), marker="o", lw=1)
    axes[1].set(xlabel="step", ylabel="RAW PSNR (dB)", title="held-out PSNR")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    png_path = Path(png_path)
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


def _camera_extra(config: TrainConfig, data: TrainingData, model: torch.nn.Module) -> dict[str, Any]:
    """The checkpoint's camera facts: ``export.camera``, the training cameras (weighted by crop
    share), or the model's own colour response measured on a virtual chart (``export.colour``)."""
    if config.export.camera is not None:
        return dict(config.export.camera)
    pixels = data.train_pixels()
    weights = [float(p) if config.data.sampling == "area" else float(p > 0) for p in pixels]
    camera = combined_camera([(s.camera, w) for s, w in zip(data.sources, weights)])
    mode = config.export.colour
    if mode == "auto":
        mode = "measured" if "cameras" in camera else "training"
    if mode == "training":
        return camera
    from raw_synth.training.colour import measure_colour, model_predictor

    fit = measure_colour(model_predictor(model))
    trained_on = camera.get("cameras") or [{key: camera[key] for key in ("name", "wb_gains", "xyz_to_cam")}]
    name = camera["name"] if camera["name"].startswith("mixed") else f"as learned from {camera['name']}"
    return fit.to_camera(f"{name} (colour measured)", cameras=trained_on)


def _export(path: Path, model: torch.nn.Module, config: TrainConfig, data: TrainingData, *, steps: int,
            wall_time: float, last_val: Mapping[str, Any] | None) -> Path:
    from raw_synth import __version__
    from raw_synth.checkpoint import save_model

    training = {
        "recipe": config.name,
        "preset": config.network.preset,
        "overrides": config.network.overrides,
        "steps": steps,
        "total_steps": config.train.total_steps,
        "complete": steps >= config.train.total_steps,
        "loss": config.train.loss,
        "wall_time_s": round(wall_time, 1),
        "layout": data.layout,
        "images": [s.name for s in data.sources],
        "cameras": sorted({s.camera["name"] for s in data.sources if s.camera}),
        "split": data.split.to_dict(),
        "render": asdict(config.data.render) if data.layout == "camera-raw" else None,
        "val_psnr": None if not last_val else last_val.get("val_psnr"),
        "val_ssim": None if not last_val else last_val.get("val_ssim"),
        "raw_synth_version": __version__,
    }
    extra = {"camera": _camera_extra(config, data, model), "training": training}
    return save_model(path, model, kind="ssdnet-isp", extra=extra)


def train_isp(
    config: "TrainConfig | Mapping[str, Any] | str | Path | None",
    data_dir: str | Path,
    out_dir: str | Path,
    resume: bool = True,
    max_steps: int | None = None,
) -> TrainSummary:
    """Train (or resume training) an SSDNet inverse ISP.

    Args:
        config: Recipe: a :class:`TrainConfig`, a mapping, a YAML path, ``"paper"``/``"cpu"``,
            or None (the ``cpu`` recipe).
        data_dir: Data folder (camera RAW files, AIM 2022 pairs or ``rgb/`` + ``raw/``; see
            :mod:`raw_synth.training.datasets`).
        out_dir: Run folder (created). It holds the state, logs, plot and exported model.
        resume: Continue from ``RUN/state/last.safetensors`` when present (the recipe must
            match); False starts again from step 0, replacing the old state and logs.
        max_steps: Stop this call once the run has completed this many steps in total (the
            schedule still spans ``train.total_steps``); None trains to the end.

    ``train.threads`` applies ``torch.set_num_threads`` for the call only (restored after).

    Returns:
        A :class:`TrainSummary`.

    Raises:
        RawSynthError: For a bad recipe or data folder, a run folder made with another recipe,
            or a loss the model cannot compute (resampling without a variance head).
    """
    cfg = load_config(config)
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0):
        raise RawSynthError(f"max_steps must be a non-negative integer, got {max_steps!r}")
    run = Path(out_dir)
    if run.exists() and not run.is_dir():
        raise RawSynthError(f"{run}: run folder path exists and is not a folder")
    run.mkdir(parents=True, exist_ok=True)
    state_path = run / STATE_NAME

    previous = None
    if resume and state_path.is_file():
        previous = read_state_metadata(state_path)
        saved_view = _resume_view(previous["extra"].get("config_resume_view") or {})
        if saved_view != _resume_view(cfg):
            diff = first_difference(saved_view or {}, _resume_view(cfg))
            field_name = diff[0] if diff is not None else "config"
            raise RawSynthError(f"{run}: holds a run made with a different recipe (first difference: {field_name}); "
                                "use another --out folder or start again without resume")

    device = resolve_device(cfg.train.device)
    with torch_threads(cfg.train.threads):
        return _train(cfg, data_dir, run, device, previous, max_steps)


def _train(cfg: TrainConfig, data_dir: str | Path, run: Path, device: torch.device,
           previous: dict[str, Any] | None, max_steps: int | None) -> TrainSummary:
    state_path, metrics_path = run / STATE_NAME, run / METRICS_NAME
    data = prepare_data(data_dir, cfg.data, cfg.val, run / "cache", cfg.seed)
    (run / "config.yaml").write_text(cfg.to_yaml(), encoding="utf-8")
    (run / "data.json").write_text(json.dumps(data.describe(), indent=1), encoding="utf-8")

    from raw_synth.models import create_model

    _seed_everything(cfg.seed)
    model = create_model(cfg.network.preset, kind="ssdnet-isp", **cfg.network.overrides).to(device)
    if cfg.train.loss == "resampling" and model.sigma_head is None:
        raise RawSynthError("train.loss: the resampling loss needs the variance head (network.overrides.sigma_head)")
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, betas=cfg.train.betas,
                                  weight_decay=cfg.train.weight_decay)
    cosine = cfg.train.cosine_steps or max(1, cfg.train.total_steps - cfg.train.flat_steps)
    schedule = FlatCosineSchedule(cfg.train.lr, cfg.train.flat_steps, cosine, cfg.train.eta_min)
    stages = ProgressiveSchedule(cfg.train.progressive)
    loss_generator = torch.Generator(device=device)
    loss_generator.manual_seed(cfg.seed)
    generators = {"loss": loss_generator}

    start, elapsed_before, resumed_from = 0, 0.0, None
    if previous is not None:
        meta = load_training_state(state_path, model=model, optimizer=optimizer, generators=generators)
        start = int(meta["step"])
        elapsed_before = float(meta["extra"].get("wall_time_s", 0.0))
        resumed_from = start
        _truncate_metrics(metrics_path, start)
        logger.info("%s: resuming at step %d", run, start)
    else:
        if metrics_path.exists():
            metrics_path.unlink()
        if state_path.exists():
            state_path.unlink()

    total = cfg.train.total_steps
    stop = total if max_steps is None else min(total, max_steps)
    val_crops = validation_crops(data, cfg.val, cfg.seed)
    last_val = _last_val(metrics_path)
    dataset = CropDataset(data, cfg.seed, cfg.data.augment)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=StepBatchSampler(stages, start, stop), num_workers=cfg.data.num_workers,
        pin_memory=device.type == "cuda", persistent_workers=False)

    def state_extra(wall: float) -> dict[str, Any]:
        return {"config_resume_view": _resume_view(cfg), "wall_time_s": wall, "config": cfg.to_dict()}

    progress = None
    if cfg.logger.progress and stop > start:
        from tqdm.auto import tqdm

        progress = tqdm(total=stop, initial=start, desc=f"train-isp {cfg.name}", unit="step", dynamic_ncols=True)
    t0 = time.perf_counter()
    window: list[float] = []
    last_loss: float | None = None
    step = start
    try:
        with open(metrics_path, "a", encoding="utf-8") as log:
            for step, (rgb, raw) in zip(range(start, stop), loader):
                rgb = rgb.to(device, non_blocking=True)
                raw = raw.to(device, non_blocking=True)
                lr = schedule(step)
                set_learning_rate(optimizer, lr)
                out = model(rgb, with_sigma=cfg.train.loss == "resampling")
                if cfg.train.loss == "resampling":
                    from raw_synth.models import resampling_loss

                    loss = resampling_loss(out["mu"], out["sigma"], raw, alpha=cfg.train.alpha,
                                           generator=loss_generator)
                else:
                    from raw_synth.models import l1_loss

                    loss = l1_loss(out["mu"], raw)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.train.grad_clip is not None:
                    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip))
                else:
                    grad_norm = float(torch.linalg.vector_norm(torch.stack(
                        [p.grad.detach().norm() for p in model.parameters() if p.grad is not None])))
                optimizer.step()
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise RawSynthError(f"training diverged at step {step + 1} (loss {value}); lower train.lr")
                window.append(value)
                done = step + 1
                if progress is not None:
                    progress.update(1)
                    progress.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.2e}")
                if done % cfg.logger.log_every == 0 or done == stop:
                    last_loss = float(np.mean(window))
                    patch, batch = stages.at(step)
                    _write(log, {"event": "train", "step": done, "loss": last_loss, "lr": lr, "grad_norm": grad_norm,
                                 "patch": patch, "batch": batch,
                                 "time_s": round(elapsed_before + time.perf_counter() - t0, 2)})
                    window = []
                if val_crops and ((cfg.val.every and done % cfg.val.every == 0) or done == total):
                    result = evaluate_isp(model, val_crops, device)
                    last_val = {"event": "val", "step": done, "val_psnr": result["psnr"], "val_ssim": result["ssim"],
                                "per_crop": result["per_crop"]}
                    _write(log, last_val)
                    logger.info("step %d: held-out RAW PSNR %.2f dB, SSIM %s", done, result["psnr"],
                                "n/a" if result["ssim"] is None else f"{result['ssim']:.4f}")
                if done % cfg.train.checkpoint_every == 0 or done == stop:
                    log.flush()
                    save_training_state(state_path, model=model, optimizer=optimizer, step=done, generators=generators,
                                        scheduler=schedule.state_dict(),
                                        extra=state_extra(elapsed_before + time.perf_counter() - t0))
                step = done
    finally:
        if progress is not None:
            progress.close()
    done = step
    wall = elapsed_before + time.perf_counter() - t0
    if not state_path.is_file():  # nothing ran in a fresh run (max_steps=0): still leave a resumable state
        save_training_state(state_path, model=model, optimizer=optimizer, step=done, generators=generators,
                            scheduler=schedule.state_dict(), extra=state_extra(wall))
    if last_loss is None:
        last_loss = _last_train_loss(metrics_path)
    model_path = _export(run / MODEL_NAME, model, cfg, data, steps=done, wall_time=wall, last_val=last_val)
    if cfg.logger.plot:
        plot_metrics(metrics_path, run / PLOT_NAME)
    summary = TrainSummary(
        run_dir=run, model_path=model_path, steps=done, total_steps=total, complete=done >= total,
        resumed_from=resumed_from, wall_time_s=round(wall, 2), final_loss=last_loss,
        val_psnr=None if not last_val else last_val.get("val_psnr"),
        val_ssim=None if not last_val else last_val.get("val_ssim"),
        layout=data.layout, n_images=len(data.sources))
    (run / "summary.json").write_text(json.dumps(summary.to_dict(), indent=1), encoding="utf-8")
    return summary


def _write(handle: Any, record: Mapping[str, Any]) -> None:
    handle.write(json.dumps(record) + "\n")
    handle.flush()


def _last_val(path: Path) -> dict[str, Any] | None:
    rows = [r for r in _read_metrics(path) if r.get("event") == "val"]
    return rows[-1] if rows else None


def _last_train_loss(path: Path) -> float | None:
    rows = [r for r in _read_metrics(path) if r.get("event") == "train"]
    return float(rows[-1]["loss"]) if rows else None
