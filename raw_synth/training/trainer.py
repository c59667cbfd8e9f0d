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

The loop, its logging, checkpoints and resume are :mod:`raw_synth.training.harness`;
:class:`_IspTask` is this task's adapter (the batch, the loss, validation).
"""

from __future__ import annotations

import json
import logging
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
from raw_synth.training.harness import (
    CurveSpec,
    LoopSettings,
    MetricsLog,
    RunFiles,
    RunSummary,
    StepInfo,
    TaskAdapter,
    check_stop_step,
    plot_curves,
    resolve_device,
    run_training,
    seed_everything,
)
from raw_synth.training.schedule import FlatCosineSchedule, ProgressiveSchedule, set_learning_rate
from raw_synth.training.state import read_state_metadata

__all__ = ["TrainSummary", "train_isp", "evaluate_isp", "plot_metrics", "resolve_device"]

logger = logging.getLogger(__name__)

STATE_NAME = "state/last.safetensors"
MODEL_NAME = "model.safetensors"
METRICS_NAME = "metrics.jsonl"
PLOT_NAME = "curves.png"

#: What curves.png shows.
CURVES = CurveSpec(kind_key="event", val_label="RAW PSNR (dB)", val_series=(("val_psnr", None),),
                   titles=("loss", "held-out PSNR"))


@dataclass(frozen=True)
class TrainSummary(RunSummary):
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


def plot_metrics(metrics_path: str | Path, png_path: str | Path) -> Path | None:
    """Plot training loss and held-out PSNR from a ``metrics.jsonl``; returns the PNG path or None."""
    return plot_curves(metrics_path, png_path, CURVES)


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
    check_stop_step(max_steps, "max_steps")
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
                                "use --restart to start over, or another --out folder")

    device = resolve_device(cfg.train.device)
    with torch_threads(cfg.train.threads):
        return _train(cfg, data_dir, run, device, previous is not None, max_steps)


class _IspTask(TaskAdapter):
    """The inverse ISP as a task of the harness: step-keyed crops, resampling or L1 loss, RAW PSNR."""

    measure_grad_norm = True

    def __init__(self, cfg: TrainConfig, data: TrainingData, device: torch.device) -> None:
        from raw_synth.models import create_model

        self.cfg, self.data, self.device = cfg, data, device
        seed_everything(cfg.seed)
        self.model = create_model(cfg.network.preset, kind="ssdnet-isp", **cfg.network.overrides).to(device)
        if cfg.train.loss == "resampling" and self.model.sigma_head is None:
            raise RawSynthError(
                "train.loss: the resampling loss needs the variance head (network.overrides.sigma_head)")
        self.model.train()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.train.lr, betas=cfg.train.betas,
                                           weight_decay=cfg.train.weight_decay)
        cosine = cfg.train.cosine_steps or max(1, cfg.train.total_steps - cfg.train.flat_steps)
        self.schedule = FlatCosineSchedule(cfg.train.lr, cfg.train.flat_steps, cosine, cfg.train.eta_min)
        self.stages = ProgressiveSchedule(cfg.train.progressive)
        loss_generator = torch.Generator(device=device)
        loss_generator.manual_seed(cfg.seed)
        self.generators = {"loss": loss_generator}
        self.grad_clip = cfg.train.grad_clip
        self.val_crops = validation_crops(data, cfg.val, cfg.seed)
        self.lr = cfg.train.lr

    def batches(self, start: int, stop: int) -> Any:
        dataset = CropDataset(self.data, self.cfg.seed, self.cfg.data.augment)
        return torch.utils.data.DataLoader(
            dataset, batch_sampler=StepBatchSampler(self.stages, start, stop),
            num_workers=self.cfg.data.num_workers, pin_memory=self.device.type == "cuda", persistent_workers=False)

    def begin_step(self, step: int) -> None:
        self.lr = self.schedule(step)
        set_learning_rate(self.optimizer, self.lr)

    def loss(self, net: torch.nn.Module, step: int, batch: Any) -> torch.Tensor:
        rgb, raw = (t.to(self.device, non_blocking=True) for t in batch)
        resampling = self.cfg.train.loss == "resampling"
        out = net(rgb, with_sigma=resampling)
        if resampling:
            from raw_synth.models import resampling_loss

            return resampling_loss(out["mu"], out["sigma"], raw, alpha=self.cfg.train.alpha,
                                   generator=self.generators["loss"])
        from raw_synth.models import l1_loss

        return l1_loss(out["mu"], raw)

    def train_record(self, info: StepInfo) -> dict[str, Any]:
        patch, batch = self.stages.at(info.step - 1)
        return {"event": "train", "step": info.step, "loss": float(np.mean(info.window.values)), "lr": self.lr,
                "grad_norm": info.grad_norm, "patch": patch, "batch": batch, "time_s": round(info.wall_s, 2)}

    def validate(self, step: int) -> dict[str, Any] | None:
        if not self.val_crops:
            return None
        result = evaluate_isp(self.model, self.val_crops, self.device)
        logger.info("step %d: held-out RAW PSNR %.2f dB, SSIM %s", step, result["psnr"],
                    "n/a" if result["ssim"] is None else f"{result['ssim']:.4f}")
        return {"event": "val", "step": step, "val_psnr": result["psnr"], "val_ssim": result["ssim"],
                "per_crop": result["per_crop"]}

    def scheduler_state(self) -> dict[str, Any]:
        return self.schedule.state_dict()

    def state_extra(self, step: int, wall_s: float) -> dict[str, Any]:
        return {"config_resume_view": _resume_view(self.cfg), "wall_time_s": wall_s, "config": self.cfg.to_dict()}


def _train(cfg: TrainConfig, data_dir: str | Path, run: Path, device: torch.device, resume: bool,
           max_steps: int | None) -> TrainSummary:
    data = prepare_data(data_dir, cfg.data, cfg.val, run / "cache", cfg.seed)
    (run / "config.yaml").write_text(cfg.to_yaml(), encoding="utf-8")
    (run / "data.json").write_text(json.dumps(data.describe(), indent=1), encoding="utf-8")
    task = _IspTask(cfg, data, device)
    total = cfg.train.total_steps
    files = RunFiles(run, run / STATE_NAME, MetricsLog(run / METRICS_NAME, "event"), run / PLOT_NAME, CURVES)
    settings = LoopSettings(
        total=total, stop=total if max_steps is None else min(total, max_steps), log_every=cfg.logger.log_every,
        val_every=cfg.val.every, checkpoint_every=cfg.train.checkpoint_every, progress=cfg.logger.progress,
        desc=f"train-isp {cfg.name}", plot=cfg.logger.plot)
    result = run_training(task, files, settings, resume=resume)
    done, last_val = result.steps, result.last_val
    model_path = _export(run / MODEL_NAME, task.model, cfg, data, steps=done, wall_time=result.wall_s,
                         last_val=last_val)
    summary = TrainSummary(
        run_dir=run, model_path=model_path, steps=done, total_steps=total, complete=done >= total,
        resumed_from=result.resumed_from, wall_time_s=round(result.wall_s, 2), final_loss=result.last_loss,
        val_psnr=None if not last_val else last_val.get("val_psnr"),
        val_ssim=None if not last_val else last_val.get("val_ssim"),
        layout=data.layout, n_images=len(data.sources))
    (run / "summary.json").write_text(json.dumps(summary.to_dict(), indent=1), encoding="utf-8")
    return summary
