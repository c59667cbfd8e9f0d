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

The loop, AMP, DDP, logging, checkpoints and resume are :mod:`raw_synth.training.harness`;
:class:`_DenoiserTask` is this task's adapter (the batch, the loss, validation, the best model).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
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
from raw_synth.training import harness
from raw_synth.training.schedule import warmup_cosine as cosine_schedule

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

#: What curves.png shows.
CURVES = harness.CurveSpec(kind_key="kind", loss_label="training L1 loss", val_label="validation PSNR (dB)",
                   val_series=(("psnr", "denoised"), ("psnr_noisy", "noisy input")))



@dataclass
class TrainSummary(harness.RunSummary):
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
        with harness.autocast(device, amp_dtype):
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
        raise RawSynthError(f"{out}: cannot resume with a different recipe ({name}: {a!r} != {b!r}); "
                           "use --restart to start over, or another --out")


def _initial_weights(spec: str, model: SSDNetDenoiser) -> dict[str, torch.Tensor]:
    """The weights ``train.init`` names, checked to fit ``model`` (fine-tuning starts from them).

    Args:
        spec: A denoiser ``.safetensors`` file, or the name of a bundled model (``denoiser-tiny``).
        model: The network the recipe builds.

    Returns:
        A state dict for ``model``.

    Raises:
        RawSynthError: ``"train.init SPEC: ..."`` if there is no such file or bundled model, or its
            network differs from the recipe's.
    """
    from raw_synth.bundled_checkpoints import find_checkpoint
    from raw_synth.checkpoint import load_model

    path = find_checkpoint(spec)
    if path is None:
        raise RawSynthError(f"train.init {spec}: no such checkpoint file or bundled model")
    source, _ = load_model(path, kind="denoiser")
    difference = first_difference(source.config.to_dict(), model.config.to_dict())
    if difference is not None:
        field, theirs, ours = difference
        raise RawSynthError(f"train.init {spec}: its network differs from the recipe's ({field}: "
                            f"{theirs!r} in the checkpoint, {ours!r} in the recipe)")
    return source.state_dict()


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
    harness.check_stop_step(stop_after, "stop_after")
    with harness.distributed(cfg.train.device) as ranks:
        return _run(cfg, out, resume, stop_after, ranks, started)


class _DenoiserTask(harness.TaskAdapter):
    """The denoiser as a task of the harness: epoch-ordered shard batches, L1 (+ sRGB L1), val PSNR, best model."""

    def __init__(self, cfg: TrainConfig, out: Path, train_set: ShardDataset, val_set: "_CentreCrop | None",
                 device: torch.device, ranks: harness.Distributed, resume: bool = False) -> None:
        tc = cfg.train
        self.cfg, self.out, self.device, self.ranks = cfg, out, device, ranks
        self.train_set, self.val_set = train_set, val_set
        self.amp_dtype = harness.amp_dtype(tc.amp, device)
        torch.manual_seed(tc.seed)
        self.model: SSDNetDenoiser = create_denoiser(cfg.network.name, **cfg.network.overrides).to(device)
        if tc.init is not None and not resume:  # a resumed run takes its weights from its own state
            self.model.load_state_dict(_initial_weights(tc.init, self.model))
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=tc.lr,
                                           betas=tuple(tc.betas),  # type: ignore[arg-type]
                                           weight_decay=tc.weight_decay)
        min_ratio = tc.min_lr / tc.lr
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: cosine_schedule(s, tc.max_steps, tc.warmup_steps, min_ratio))
        self.scaler = harness.grad_scaler(self.amp_dtype)
        self.grad_clip = tc.grad_clip
        self.progress: dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_psnr": None,
                                         "best_step": None}
        self.epoch = self.batch_in_epoch = self.epoch_batches = 0
        self.sampler = make_sampler(train_set, shuffle=True, seed=tc.seed, drop_last=True)
        self.model.train()

    def load_state(self, meta: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(meta["scheduler"])
        if self.scaler is not None and meta["extra"].get("scaler"):
            self.scaler.load_state_dict(meta["extra"]["scaler"])
        self.progress = dict(meta["extra"]["progress"])
        self.epoch, self.batch_in_epoch = int(self.progress["epoch"]), int(self.progress["batch_in_epoch"])

    def batches(self, start: int, stop: int) -> Iterator[dict[str, torch.Tensor]]:
        batch_size, workers = self.cfg.train.batch_size, self.cfg.datasets.num_workers
        while True:
            self.sampler.set_epoch(self.epoch)  # type: ignore[attr-defined]
            self.train_set.set_epoch(self.epoch)
            batches = _batches(list(iter(self.sampler)), batch_size)
            self.epoch_batches = len(batches)
            if self.batch_in_epoch >= len(batches):
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                continue
            yield from torch.utils.data.DataLoader(self.train_set, batch_sampler=batches[self.batch_in_epoch:],
                                                   num_workers=workers, pin_memory=self.device.type == "cuda")

    def loss(self, net: nn.Module, step: int, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        noisy = batch["noisy"].to(self.device, non_blocking=True)
        clean = batch["clean"].to(self.device, non_blocking=True)
        variance = batch["variance"].to(self.device, non_blocking=True)
        pred = net(noisy, variance)
        loss = F.l1_loss(pred.float(), clean)
        if self.cfg.train.srgb_loss_weight > 0:
            loss = loss + self.cfg.train.srgb_loss_weight * _srgb_l1(pred, clean, batch)
        return loss

    def end_step(self, done: int) -> None:
        self.scheduler.step()
        self.batch_in_epoch += 1
        if self.batch_in_epoch >= self.epoch_batches:
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0

    def train_record(self, info: harness.StepInfo) -> dict[str, Any]:
        window = info.window
        return {"kind": "train", "step": info.step, "epoch": self.epoch, "loss": window.mean(),
                "lr": self.scheduler.get_last_lr()[0],
                "samples_per_s": window.count * self.cfg.train.batch_size * self.ranks.world / window.seconds()}

    def validate(self, step: int) -> dict[str, Any] | None:
        if self.val_set is None:
            return None
        vc = self.cfg.val
        scores = evaluate(self.model, self.val_set, vc.batch_size, vc.max_samples, self.device, self.amp_dtype)
        record = {"kind": "val", "step": step, **scores}
        logger.info("step %d: val PSNR %.2f dB (noisy %.2f), SSIM %.4f", step, scores["psnr"],
                    scores["psnr_noisy"], scores["ssim"])
        best = self.progress.get("best_psnr")
        if best is None or scores["psnr"] > best:
            self.progress["best_psnr"], self.progress["best_step"] = scores["psnr"], step
            self._save_model(BEST_NAME, step, {"val": record})
        return record

    def on_checkpoint(self, step: int, last_val: dict[str, Any] | None) -> None:
        self._save_model(MODEL_NAME, step, {"best_psnr": self.progress.get("best_psnr"), "val": last_val})

    def _save_model(self, name: str, step: int, facts: dict[str, Any]) -> None:
        from raw_synth.checkpoint import save_model

        extra = {"network": self.cfg.network.to_dict(), "step": step, "data": str(self.cfg.datasets.path), **facts}
        if self.cfg.train.init is not None:
            extra["init"] = self.cfg.train.init  # where a fine-tuned model started
        save_model(self.out / name, self.model, kind="denoiser", architecture=ARCHITECTURE, extra=extra)

    def scheduler_state(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def state_extra(self, step: int, wall_s: float) -> dict[str, Any]:
        self.progress.update(step=step, epoch=self.epoch, batch_in_epoch=self.batch_in_epoch)
        return {"progress": self.progress, "scaler": self.scaler.state_dict() if self.scaler is not None else None}


def _run(cfg: TrainConfig, out: Path, resume: bool, stop_after: int | None, ranks: harness.Distributed,
         started: float) -> TrainSummary:
    tc, dc, vc, lc = cfg.train, cfg.datasets, cfg.val, cfg.logger
    device = harness.resolve_device(tc.device, ranks)
    if ranks.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_NAME).write_text(cfg.to_yaml(), encoding="utf-8")

    crop = tuple(dc.crop) if isinstance(dc.crop, list) else dc.crop
    train_set = ShardDataset(dc.path, "train", dc.val_fraction, dc.val_shards, crop=crop, augment=dc.augment,
                             seed=tc.seed, exposure=dc.exposure)
    val_set = None
    if dc.val_fraction > 0 or dc.val_shards:
        val_crop = tuple(vc.crop) if isinstance(vc.crop, list) else vc.crop
        val_set = _CentreCrop(ShardDataset(train_set.store, "val", dc.val_fraction, dc.val_shards, crop=None,
                                           augment=False, seed=tc.seed), val_crop)
    per_epoch = len(train_set) // (tc.batch_size * ranks.world)
    if per_epoch < 1:
        raise RawSynthError(
            f"train.batch_size: {tc.batch_size} (x {ranks.world} ranks) exceeds the {len(train_set)} training samples"
        )

    task = _DenoiserTask(cfg, out, train_set, val_set, device, ranks, resume=resume)
    if ranks.main:
        logger.info("training %s (%d parameters) on %d samples (%d val), %d steps/epoch, device %s%s",
                    cfg.network.name, task.model.num_parameters(), len(train_set), len(val_set) if val_set else 0,
                    per_epoch, device, f", amp {task.amp_dtype}" if task.amp_dtype else "")
    metrics = harness.MetricsLog(out / METRICS_NAME, "kind")
    files = harness.RunFiles(out, out / STATE_NAME, metrics, out / PLOT_NAME, CURVES)
    settings = harness.LoopSettings(
        total=tc.max_steps, stop=tc.max_steps if stop_after is None else min(tc.max_steps, stop_after),
        log_every=lc.log_every, val_every=vc.every, checkpoint_every=tc.checkpoint_every, progress=lc.progress,
        desc="train-denoiser", plot=lc.plot, plot_interval_s=_PLOT_INTERVAL_S, save_on_interrupt=True)
    result = harness.run_training(task, files, settings, resume=resume, ranks=ranks)
    progress = task.progress
    return TrainSummary(
        out=out,
        steps=result.steps,
        epochs=task.epoch + (1 if task.batch_in_epoch else 0),
        final_loss=result.last_loss,
        val=result.last_val,
        best_psnr=progress.get("best_psnr"),
        best_step=progress.get("best_step"),
        model_path=out / MODEL_NAME,
        best_path=(out / BEST_NAME) if (out / BEST_NAME).exists() else None,
        state_path=out / STATE_NAME,
        metrics_path=files.metrics.path,
        plot_path=(out / PLOT_NAME) if (out / PLOT_NAME).exists() else None,
        resumed_from=result.resumed_from,
        seconds=time.time() - started,
        n_train=len(train_set),
        n_val=len(val_set) if val_set is not None else 0,
        parameters=task.model.num_parameters(),
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
