"""Training the denoiser on raw-synth shards: ``train_denoiser(config, data, out)``.

One run writes into its folder ``OUT``:

* ``config.yaml`` - the resolved recipe (see :mod:`denoise.config`);
* ``model.safetensors`` - the latest weights, ``best.safetensors`` - the best validation PSNR
  (both :func:`raw_synth.checkpoint.save_model` kind ``"denoiser"``, loadable with
  :func:`denoise.load_denoiser`);
* ``train_state.safetensors`` - optimizer, scheduler, AMP scaler, RNG and loop position
  (:mod:`raw_synth.training.state`, shared with the ISP trainer); ``resume=True`` continues from it exactly
  (on CPU the resumed run's weights are bit-identical to an uninterrupted run's);
* ``metrics.jsonl`` - one JSON object per log line (``kind: "train"``: step, loss, lr, samples/s;
  ``kind: "val"``: step, PSNR/SSIM of the output and of the noisy input on the held-out shards);
* ``curves.png`` - training loss and validation PSNR against the step.

Loss: L1 on the packed RAW, plus optionally ``srgb_loss_weight`` times the L1 of both images
rendered to sRGB by :func:`raw_synth.isp.process_raw` with each sample's stored white balance and
``cam_to_rgb`` (from its ``xyz_to_cam``). Optimiser AdamW, linear warm-up then cosine decay to
``min_lr`` over ``max_steps``; bf16/fp16 autocast on CUDA. Data order and augmentation are pure
functions of ``(seed, epoch, sample index)``.

Multi-GPU: start with ``torchrun --nproc_per_node=N``; when ``WORLD_SIZE`` is set the process
group is initialised (NCCL on CUDA, Gloo on CPU), the model is wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel`, every rank reads its share of each epoch
(``DistributedSampler``), and only rank 0 validates, logs and writes files. ``batch_size`` is per
rank.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from denoise.config import TrainConfig, load_train_config
from denoise.dataset import ShardDataset, make_sampler
from denoise.models import ARCHITECTURE, SSDNetDenoiser, create_denoiser
from raw_synth.config_fields import first_difference, identity_view
from raw_synth.errors import RawSynthError

__all__ = ["TrainSummary", "train_denoiser", "evaluate", "cosine_schedule", "CONFIG_NAME", "STATE_NAME",
           "MODEL_NAME", "BEST_NAME", "METRICS_NAME", "PLOT_NAME"]

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.yaml"
STATE_NAME = "train_state.safetensors"
MODEL_NAME = "model.safetensors"
BEST_NAME = "best.safetensors"
METRICS_NAME = "metrics.jsonl"
PLOT_NAME = "curves.png"

#: Least wall time between two redraws of curves.png during training.
_PLOT_INTERVAL_S = 30.0



@dataclass
class TrainSummary:
    """What a training run did.

    Attributes:
        out: Run folder.
        steps: Global step reached.
        epochs: Epochs started (``epoch index + 1`` of the last step).
        final_loss: Mean training loss over the last logging interval.
        val: Latest validation (``psnr``, ``ssim``, ``psnr_noisy``, ``ssim_noisy``, ``n``, ``step``) or ``None``.
        best_psnr: Best validation PSNR (dB), or ``None``.
        best_step: Step of the best validation.
        model_path: Latest weights; best_path: best weights (or ``None``); state_path, metrics_path, plot_path.
        resumed_from: Step the run resumed from, or ``None``.
        seconds: Wall time of this call.
        n_train, n_val: Samples in the splits.
        parameters: Model parameter count.
    """

    out: Path
    steps: int
    epochs: int
    final_loss: float | None
    val: dict[str, Any] | None
    best_psnr: float | None
    best_step: int | None
    model_path: Path
    best_path: Path | None
    state_path: Path
    metrics_path: Path
    plot_path: Path | None
    resumed_from: int | None
    seconds: float
    n_train: int
    n_val: int
    parameters: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (paths as strings)."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


def cosine_schedule(step: int, max_steps: int, warmup: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine from 1 to ``min_ratio``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, max_steps - warmup)
    progress = min(1.0, max(0.0, (step - warmup) / span))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


# ----------------------------------------------------------------------------- distributed set-up


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device_name: str) -> _Dist:
    import torch.distributed as dist

    if "WORLD_SIZE" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) < 1:
        return _Dist()
    world = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world == 1 and not dist.is_initialized():
        return _Dist()
    here = False
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device_name != "cpu"
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        here = True
    return _Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank, initialised_here=here)


def _pick_device(name: str, dist_info: _Dist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RawSynthError(f"train.device: {name!r} requested but CUDA is not available")
        if name == "cuda":
            return torch.device("cuda", dist_info.local_rank if dist_info.world > 1 else torch.cuda.current_device())
    return torch.device(name)


def _amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or mode == "off":
        return None
    if mode == "fp16":
        return torch.float16
    if mode == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


# ----------------------------------------------------------------------------- files


def _write_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash
    return rows


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop records written after ``step`` (a crash after the last checkpoint)."""
    rows = [r for r in _read_jsonl(path) if int(r.get("step", 0)) <= step]
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    temporary.replace(path)


def plot_curves(metrics_path: Path, png: Path) -> Path | None:
    """Plot the training loss and validation PSNR of a ``metrics.jsonl`` into ``png``."""
    rows = _read_jsonl(metrics_path)
    train = [r for r in rows if r.get("kind") == "train"]
    val = [r for r in rows if r.get("kind") == "val"]
    if not train and not val:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    if train:
        axes[0].plot([r["step"] for r in train], [r["loss"] for r in train], lw=1)
        axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("training L1 loss")
    axes[0].grid(alpha=0.3)
    if val:
        steps = [r["step"] for r in val]
        axes[1].plot(steps, [r["psnr"] for r in val], "o-", label="denoised")
        axes[1].plot(steps, [r["psnr_noisy"] for r in val], "--", color="gray", label="noisy input")
        axes[1].legend()
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("validation PSNR (dB)")
    axes[1].grid(alpha=0.3)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.15, top=0.95, wspace=0.3)
    temporary = png.with_name(png.stem + ".tmp.png")
    fig.savefig(temporary, dpi=100)
    plt.close(fig)
    temporary.replace(png)
    return png


# ----------------------------------------------------------------------------- evaluation


@torch.inference_mode()
def evaluate(
    model: SSDNetDenoiser,
    dataset: Any,
    batch_size: int = 4,
    max_samples: int | None = None,
    device: str | torch.device = "cpu",
    amp_dtype: torch.dtype | None = None,
) -> dict[str, Any]:
    """PSNR/SSIM (mean over samples) of the clamped output and of the noisy input against clean.

    Args:
        model: The denoiser (switched to eval mode for the call and restored).
        dataset: Items with ``noisy``, ``clean``, ``variance`` (e.g. a validation :class:`ShardDataset`).
        batch_size: Items per forward pass.
        max_samples: Score only the first items.
        device: Where to run.
        amp_dtype: Autocast dtype on CUDA, or ``None``.

    Returns:
        ``{"psnr", "ssim", "psnr_noisy", "ssim_noisy", "n"}``.
    """
    from raw_synth.metrics import psnr, ssim

    was_training = model.training
    model.eval()
    n = len(dataset) if max_samples is None else min(len(dataset), max_samples)
    sums = {"psnr": 0.0, "ssim": 0.0, "psnr_noisy": 0.0, "ssim_noisy": 0.0}
    device = torch.device(device)
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(n, start + batch_size))]
        noisy = torch.stack([it["noisy"] for it in items]).to(device)
        clean = torch.stack([it["clean"] for it in items]).to(device)
        variance = torch.stack([it["variance"] for it in items]).to(device)
        context = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
        with context:
            out = model.predict(noisy, variance)
        out = out.float().clamp(0.0, 1.0)
        noisy_c = noisy.clamp(0.0, 1.0)
        sums["psnr"] += float(psnr(out, clean).sum())
        sums["psnr_noisy"] += float(psnr(noisy_c, clean).sum())
        if min(clean.shape[-2:]) >= 11:
            sums["ssim"] += float(ssim(out, clean).sum())
            sums["ssim_noisy"] += float(ssim(noisy_c, clean).sum())
    model.train(was_training)
    return {k: v / max(n, 1) for k, v in sums.items()} | {"n": n}


# ----------------------------------------------------------------------------- the loop


def _check_resume_config(stored: TrainConfig, given: TrainConfig, out: Path) -> None:
    """Refuse to resume with a recipe whose identity fields differ (the run-only ones may change)."""
    diff = first_difference(identity_view(stored), identity_view(given))
    if diff is not None:
        name, a, b = diff
        raise RawSynthError(f"{out}: cannot resume with a different recipe ({name}: {a!r} != {b!r}); use another --out")


def _batches(order: list[int], batch_size: int) -> list[list[int]]:
    return [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]


def _srgb_l1(pred: torch.Tensor, clean: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    from raw_synth.isp import process_raw

    wb = batch["wb_gains"].to(pred.device, torch.float32)
    ccm = batch["cam_to_rgb"].to(pred.device, torch.float32)
    rgb_pred = process_raw(pred.float().clamp(0.0, 1.0), wb, ccm)
    rgb_clean = process_raw(clean.float().clamp(0.0, 1.0), wb, ccm)
    return F.l1_loss(rgb_pred, rgb_clean)


def train_denoiser(
    config: "str | Path | Mapping[str, Any] | TrainConfig | None",
    data: str | Path | None,
    out: str | Path,
    max_steps: int | None = None,
    resume: bool = False,
    *,
    stop_after: int | None = None,
    restart: bool = False,
) -> TrainSummary:
    """Train (or continue training) a denoiser on a raw-synth store.

    Args:
        config: Recipe: YAML path, mapping, :class:`~denoise.config.TrainConfig` or ``None``
            (defaults; on resume: the run's stored ``config.yaml``).
        data: Store folder; overrides ``datasets.path`` (one of them is required).
        out: Run folder (created). A folder holding a run needs ``resume=True``.
        max_steps: Overrides ``train.max_steps`` (the total, which also sets the cosine horizon).
        resume: Continue the run in ``out`` from its training state.
        stop_after: Stop after this global step as if interrupted (a resumable state is written);
            for time-boxed jobs and tests (the command's ``--max-steps``).
        restart: Discard the training state of a run in ``out`` and start from step 0.

    Returns:
        A :class:`TrainSummary`.

    Raises:
        RawSynthError: Bad recipe, missing store or split, a run folder in the way, a resume
            without state or with a different recipe.
    """
    started = time.time()
    out = Path(out)
    state_path = out / STATE_NAME
    stored_config_path = out / CONFIG_NAME
    if resume and restart:
        raise RawSynthError("--resume and --restart exclude each other")
    if restart and state_path.exists():
        state_path.unlink()
        logger.info("%s: training state removed (--restart)", out)
    if resume:
        if not state_path.is_file():
            raise RawSynthError(f"{out}: no training state to resume ({STATE_NAME} is missing)")
        stored = load_train_config(stored_config_path) if stored_config_path.is_file() else None
        cfg = load_train_config(config) if config is not None else stored
        if cfg is None:
            raise RawSynthError(f"{out}: {CONFIG_NAME} is missing; pass the recipe to resume")
        if stored is not None and config is not None:
            _check_resume_config(stored, cfg, out)
    else:
        if state_path.exists():
            raise RawSynthError(f"{out}: holds a training run; use --resume to continue it or choose another --out")
        cfg = load_train_config(config)
    if data is not None:
        cfg.datasets.path = str(data)
    if cfg.datasets.path is None:
        raise RawSynthError("--data: no shard store given (set datasets.path in the recipe or pass --data)")
    if max_steps is not None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise RawSynthError(f"--max-steps: expected a positive integer, got {max_steps!r}")
        cfg.train.max_steps = max_steps
    if stop_after is not None and (not isinstance(stop_after, int) or stop_after < 0):
        raise RawSynthError(f"stop_after: expected a non-negative integer, got {stop_after!r}")

    tc = cfg.train
    dist_info = _setup_distributed(tc.device)
    try:
        return _run(cfg, out, resume, stop_after, dist_info, started)
    finally:
        if dist_info.initialised_here:
            import torch.distributed as dist

            dist.destroy_process_group()


def _run(cfg: TrainConfig, out: Path, resume: bool, stop_after: int | None, dist_info: _Dist,
         started: float) -> TrainSummary:
    tc, dc, vc, lc = cfg.train, cfg.datasets, cfg.val, cfg.logger
    device = _pick_device(tc.device, dist_info)
    amp_dtype = _amp_dtype(tc.amp, device)
    main = dist_info.main
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_NAME).write_text(cfg.to_yaml(), encoding="utf-8")

    crop = tuple(dc.crop) if isinstance(dc.crop, list) else dc.crop
    train_set = ShardDataset(dc.path, "train", dc.val_fraction, dc.val_shards, crop=crop, augment=dc.augment,
                             seed=tc.seed)
    val_set = None
    if dc.val_fraction > 0 or dc.val_shards:
        val_crop = tuple(vc.crop) if isinstance(vc.crop, list) else vc.crop
        val_set = _CentreCrop(ShardDataset(train_set.store, "val", dc.val_fraction, dc.val_shards, crop=None,
                                           augment=False, seed=tc.seed), val_crop)
    per_epoch = len(train_set) // (tc.batch_size * dist_info.world)
    if per_epoch < 1:
        raise RawSynthError(
            f"train.batch_size: {tc.batch_size} (x {dist_info.world} ranks) "
            f"exceeds the {len(train_set)} training samples"
        )

    torch.manual_seed(tc.seed)
    model = create_denoiser(cfg.network.name, **cfg.network.overrides).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, betas=tuple(tc.betas),  # type: ignore[arg-type]
                                  weight_decay=tc.weight_decay)
    min_ratio = tc.min_lr / tc.lr
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: cosine_schedule(s, tc.max_steps, tc.warmup_steps, min_ratio))
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None

    progress: dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_psnr": None, "best_step": None}
    resumed_from = None
    metrics_path = out / METRICS_NAME
    if resume:
        from raw_synth.training.state import load_training_state

        meta = load_training_state(out / STATE_NAME, model=model, optimizer=optimizer)
        scheduler.load_state_dict(meta["scheduler"])
        if scaler is not None and meta["extra"].get("scaler"):
            scaler.load_state_dict(meta["extra"]["scaler"])
        progress = dict(meta["extra"]["progress"])
        resumed_from = int(meta["step"])
        if main:
            _truncate_metrics(metrics_path, resumed_from)
        logger.info("resumed %s at step %d", out, resumed_from)
    elif main and metrics_path.exists():
        metrics_path.unlink()

    net: nn.Module = model
    if dist_info.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    sampler = make_sampler(train_set, shuffle=True, seed=tc.seed, drop_last=True)
    if main:
        logger.info("training %s (%d parameters) on %d samples (%d val), %d steps/epoch, device %s%s",
                    cfg.network.name, model.num_parameters(), len(train_set), len(val_set) if val_set else 0,
                    per_epoch, device, f", amp {amp_dtype}" if amp_dtype else "")

    step = int(progress["step"])
    epoch = int(progress["epoch"])
    batch_in_epoch = int(progress["batch_in_epoch"])
    last_val: dict[str, Any] | None = None
    plotted_step, plotted_at = -1, time.time()
    window_loss, window_n, window_t = 0.0, 0, time.time()
    final_loss = None
    target = tc.max_steps if stop_after is None else min(tc.max_steps, stop_after)

    def save_all() -> None:
        if not main:
            return
        extra = {"network": cfg.network.to_dict(), "step": step, "data": str(dc.path),
                 "best_psnr": progress.get("best_psnr"), "val": last_val}
        from raw_synth.checkpoint import save_model

        save_model(out / MODEL_NAME, model, kind="denoiser", architecture=ARCHITECTURE, extra=extra)
        from raw_synth.training.state import save_training_state

        progress.update(step=step, epoch=epoch, batch_in_epoch=batch_in_epoch)
        save_training_state(out / STATE_NAME, model=model, optimizer=optimizer, step=step,
                            scheduler=scheduler.state_dict(),
                            extra={"progress": progress, "scaler": scaler.state_dict() if scaler is not None else None})

    def validate() -> None:
        nonlocal last_val, plotted_step, plotted_at
        if val_set is None or not main:
            return
        scores = evaluate(model, val_set, vc.batch_size, vc.max_samples, device, amp_dtype)
        last_val = {"kind": "val", "step": step, **scores}
        _write_jsonl(metrics_path, last_val)
        logger.info("step %d: val PSNR %.2f dB (noisy %.2f), SSIM %.4f", step, scores["psnr"],
                    scores["psnr_noisy"], scores["ssim"])
        best = progress.get("best_psnr")
        if best is None or scores["psnr"] > best:
            progress["best_psnr"], progress["best_step"] = scores["psnr"], step
            from raw_synth.checkpoint import save_model

            save_model(out / BEST_NAME, model, kind="denoiser", architecture=ARCHITECTURE,
                       extra={"network": cfg.network.to_dict(), "step": step, "data": str(dc.path), "val": last_val})
        if lc.plot and time.time() - plotted_at >= _PLOT_INTERVAL_S:  # redrawn at most every 30 s, and at the end
            plot_curves(metrics_path, out / PLOT_NAME)
            plotted_step, plotted_at = step, time.time()

    from tqdm import tqdm

    bar = tqdm(total=tc.max_steps, initial=step, disable=not (lc.progress and main), desc="train-denoiser",
               unit="step", dynamic_ncols=True)
    model.train()
    interrupted = False
    try:
        while step < target:
            sampler.set_epoch(epoch)  # type: ignore[attr-defined]
            train_set.set_epoch(epoch)
            batches = _batches(list(iter(sampler)), tc.batch_size)
            if batch_in_epoch >= len(batches):
                epoch, batch_in_epoch = epoch + 1, 0
                continue
            loader = torch.utils.data.DataLoader(
                train_set, batch_sampler=batches[batch_in_epoch:], num_workers=dc.num_workers,
                pin_memory=device.type == "cuda")
            for batch in loader:
                noisy = batch["noisy"].to(device, non_blocking=True)
                clean = batch["clean"].to(device, non_blocking=True)
                variance = batch["variance"].to(device, non_blocking=True)
                context = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
                with context:
                    pred = net(noisy, variance)
                    loss = F.l1_loss(pred.float(), clean)
                    if tc.srgb_loss_weight > 0:
                        loss = loss + tc.srgb_loss_weight * _srgb_l1(pred, clean, batch)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    if tc.grad_clip > 0:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    if tc.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                    optimizer.step()
                scheduler.step()
                step += 1
                batch_in_epoch += 1
                if batch_in_epoch >= len(batches):
                    epoch, batch_in_epoch = epoch + 1, 0
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise RawSynthError(f"{out}: training diverged at step {step} (loss {value}); lower train.lr")
                window_loss += value
                window_n += 1
                bar.update(1)
                if main and (step % lc.log_every == 0 or step == target):
                    elapsed = max(time.time() - window_t, 1e-9)
                    final_loss = window_loss / window_n
                    record = {"kind": "train", "step": step, "epoch": epoch, "loss": final_loss,
                              "lr": scheduler.get_last_lr()[0],
                              "samples_per_s": window_n * tc.batch_size * dist_info.world / elapsed}
                    _write_jsonl(metrics_path, record)
                    bar.set_postfix(loss=f"{final_loss:.4g}")
                    window_loss, window_n, window_t = 0.0, 0, time.time()
                if vc.every and step % vc.every == 0 and step < tc.max_steps:
                    validate()
                if tc.checkpoint_every and step % tc.checkpoint_every == 0:
                    save_all()
                if dist_info.world > 1:
                    torch.distributed.barrier()
                if step >= target:
                    break
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("interrupted at step %d: saving a resumable state", step)
        save_all()
        raise
    finally:
        bar.close()
        if not interrupted and main and step >= target:
            if step >= tc.max_steps and (last_val is None or last_val["step"] != step):
                validate()
            save_all()
            if lc.plot and plotted_step != step:
                plot_curves(metrics_path, out / PLOT_NAME)
        if dist_info.world > 1:
            torch.distributed.barrier()

    return TrainSummary(
        out=out,
        steps=step,
        epochs=epoch + (1 if batch_in_epoch else 0),
        final_loss=final_loss,
        val=last_val,
        best_psnr=progress.get("best_psnr"),
        best_step=progress.get("best_step"),
        model_path=out / MODEL_NAME,
        best_path=(out / BEST_NAME) if (out / BEST_NAME).exists() else None,
        state_path=out / STATE_NAME,
        metrics_path=metrics_path,
        plot_path=(out / PLOT_NAME) if (out / PLOT_NAME).exists() else None,
        resumed_from=resumed_from,
        seconds=time.time() - started,
        n_train=len(train_set),
        n_val=len(val_set) if val_set is not None else 0,
        parameters=model.num_parameters(),
    )


class _CentreCrop(torch.utils.data.Dataset):
    """A validation view: centre crop (packed pixels, even offsets kept) of every item."""

    def __init__(self, base: ShardDataset, crop: int | tuple[int, int] | None) -> None:
        self.base = base
        self.crop = (crop, crop) if isinstance(crop, int) else crop

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = self.base[i]
        if self.crop is None:
            return item
        ch, cw = self.crop
        h, w = item["noisy"].shape[-2:]
        ch, cw = min(ch, h), min(cw, w)
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        return {k: (v[..., y0 : y0 + ch, x0 : x0 + cw] if v.ndim == 3 and v.shape[0] == 4 else v)
                for k, v in item.items()}
