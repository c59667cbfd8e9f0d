"""The training loop both trainers share, with the task (what a batch is, the loss, validation) as an adapter.

:func:`run_training` drives a :class:`TaskAdapter` through one call of a run: it restores the full
training state for exact resume (model, optimiser, schedule, random generators and the task's own
position in its data) or starts afresh, runs the optimiser steps up to a stop step (time-boxed calls
end early and resume later), and on the way keeps the metrics log, the progress bar, periodic
validation, the throttled curve plot and periodic checkpoints of the full state
(:mod:`raw_synth.training.state`). The inverse ISP (:mod:`raw_synth.training.trainer`) and the RAW
denoiser (:mod:`denoise.train`) are its two adapters.

One step of the loop, for step ``s`` (0-based) and ``done = s + 1``::

    adapter.begin_step(s)                     # e.g. set the learning rate of step s
    with autocast(device, adapter.amp_dtype):
        loss = adapter.loss(net, s, batch)    # net: the model, DDP-wrapped on several ranks
    optimiser_step(loss, ...)                 # zero_grad, backward (AMP scaler), clip, step
    adapter.end_step(done)                    # e.g. scheduler.step(), advance the data position
    log every logger.log_every steps and at the stop step (adapter.train_record)
    validate every val_every steps and at the last step of the recipe (adapter.validate)
    checkpoint every checkpoint_every steps and at the stop step (adapter.on_checkpoint, then the state)

Also here: device and AMP resolution, the distributed (``torchrun``) set-up, the metrics log
(``metrics.jsonl``, truncated to the resumed step), the curve plot and a summary base class.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from raw_synth.errors import RawSynthError
from raw_synth.training.state import load_training_state, save_training_state

__all__ = [
    "Distributed", "distributed", "resolve_device", "amp_dtype", "autocast", "grad_scaler", "seed_everything",
    "optimiser_step", "check_stop_step", "MetricsLog", "CurveSpec", "plot_curves", "LossWindow", "StepInfo",
    "LoopSettings", "RunFiles", "LoopResult", "TaskAdapter", "run_training", "RunSummary",
]

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- devices, AMP, ranks


@dataclass(frozen=True)
class Distributed:
    """Where this process stands in a ``torchrun`` job (one process: rank 0 of 1).

    Attributes:
        rank: Global rank.
        world: Number of processes.
        local_rank: Rank on this machine (the CUDA device index).
        initialised_here: Whether :func:`distributed` created the process group (and destroys it).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def main(self) -> bool:
        """Rank 0: the process that validates, logs and writes files."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (nothing to wait for in a single process)."""
        if self.world > 1:
            torch.distributed.barrier()

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The module the loop runs forward: ``DistributedDataParallel`` on several ranks, else ``model``."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


@contextmanager
def distributed(device_name: str) -> Iterator[Distributed]:
    """Join the ``torchrun`` process group when ``WORLD_SIZE`` is set (NCCL on CUDA, Gloo on CPU).

    Args:
        device_name: The recipe's device (``cpu`` keeps Gloo even where CUDA exists).

    Yields:
        This process's :class:`Distributed`; a group created here is destroyed on exit.
    """
    import torch.distributed as dist

    info = Distributed()
    if "WORLD_SIZE" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) >= 1:
        world = int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if world > 1 or dist.is_initialized():
            here = False
            if not dist.is_initialized():
                use_cuda = torch.cuda.is_available() and device_name != "cpu"
                if use_cuda:
                    torch.cuda.set_device(local_rank)
                dist.init_process_group(backend="nccl" if use_cuda else "gloo")
                here = True
            info = Distributed(dist.get_rank(), dist.get_world_size(), local_rank, here)
    try:
        yield info
    finally:
        if info.initialised_here:
            dist.destroy_process_group()


def resolve_device(name: str, ranks: Distributed | None = None) -> torch.device:
    """The training device: :func:`raw_synth.inference.resolve_device`, except that ``auto`` never picks MPS.

    Args:
        name: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:1``, ``mps``.
        ranks: Given, a bare ``cuda`` becomes this rank's device (``local_rank`` on several ranks,
            else the current one).

    Raises:
        RawSynthError: For an unknown device or one this machine does not have (``"train.device ..."``).
    """
    from raw_synth.inference import resolve_device as resolve_any

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = resolve_any(name)
    except RawSynthError as error:
        raise RawSynthError(f"train.{error}") from None
    if ranks is not None and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", ranks.local_rank if ranks.world > 1 else torch.cuda.current_device())
    return device


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``mode`` (``auto``, ``bf16``, ``fp16``, ``off``): None off CUDA or when off.

    ``auto`` takes bf16 where the GPU supports it, else fp16.
    """
    if device.type != "cuda" or mode == "off":
        return None
    if mode == "fp16":
        return torch.float16
    if mode == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager[Any]:
    """``torch.autocast`` in ``dtype``, or a no-op context when ``dtype`` is None."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def grad_scaler(dtype: torch.dtype | None) -> torch.amp.GradScaler | None:
    """The loss scaler fp16 autocast needs (None for bf16 and full precision)."""
    return torch.amp.GradScaler("cuda") if dtype == torch.float16 else None


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def optimiser_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, model: nn.Module, *,
                   grad_clip: float | None = None, scaler: torch.amp.GradScaler | None = None,
                   measure_norm: bool = False) -> float | None:
    """One optimiser update from ``loss``: zero the gradients, backward, clip, step.

    Args:
        loss: The step's loss.
        optimizer: The optimiser over ``model``'s parameters.
        model: The (unwrapped) model whose gradients are clipped or measured.
        grad_clip: ``clip_grad_norm_`` to this norm; None (or <= 0) does not clip.
        scaler: The fp16 loss scaler (gradients are unscaled before clipping), or None.
        measure_norm: Return the gradient norm (before clipping); without clipping it is
            measured for the purpose.

    Returns:
        The total gradient norm when ``measure_norm``, else None.
    """
    optimizer.zero_grad(set_to_none=True)
    clip = grad_clip if grad_clip is not None and grad_clip > 0 else None
    if scaler is not None:
        scaler.scale(loss).backward()
        if clip is not None or measure_norm:
            scaler.unscale_(optimizer)
    else:
        loss.backward()
    norm = None
    if clip is not None:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    elif measure_norm:
        norm = _grad_norm(model)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return float(norm) if measure_norm and norm is not None else None


def _grad_norm(model: nn.Module) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack([p.grad.detach().norm() for p in model.parameters()
                                                 if p.grad is not None]))


def check_stop_step(value: int | None, name: str) -> None:
    """Refuse a stop step that is not None or a non-negative integer.

    Raises:
        RawSynthError: ``"<name>: expected a non-negative integer, got <value>"``.
    """
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise RawSynthError(f"{name}: expected a non-negative integer, got {value!r}")


# ----------------------------------------------------------------------------- metrics log and plot


class MetricsLog:
    """``metrics.jsonl``: one JSON object per line, each with ``step`` and a kind field.

    Args:
        path: The file.
        kind_key: The field that says what a record is (``"train"``, ``"val"``): ``event`` for the
            inverse ISP, ``kind`` for the denoiser.
    """

    def __init__(self, path: Path, kind_key: str) -> None:
        self.path = Path(path)
        self.kind_key = kind_key

    def append(self, record: dict[str, Any]) -> None:
        """Append one record (the file is closed after each, so a crash loses at most a partial line)."""
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """Every readable record (a line cut by a crash is skipped); [] without a file."""
        if not self.path.is_file():
            return []
        rows = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by a crash
                    continue
        return rows

    def last(self, kind: str) -> dict[str, Any] | None:
        """The last record of a kind, or None."""
        rows = [r for r in self.read() if r.get(self.kind_key) == kind]
        return rows[-1] if rows else None

    def truncate(self, step: int) -> None:
        """Drop records after ``step`` (written after the last saved state, before a crash)."""
        rows = [r for r in self.read() if int(r.get("step", 0)) <= step]
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        os.replace(temporary, self.path)

    def reset(self) -> None:
        """Empty the file (a fresh start)."""
        self.path.write_text("", encoding="utf-8")


@dataclass(frozen=True)
class CurveSpec:
    """What ``curves.png`` shows: training loss (log scale) and validation scores against the step.

    Attributes:
        kind_key: The metrics log's kind field.
        loss_label: Y label of the loss panel.
        val_label: Y label of the validation panel.
        val_series: ``(field, legend label)`` of the validation records to draw; the first as a
            line with markers, the others dashed grey (a legend when labels are given).
        titles: Titles of the two panels (None: none).
    """

    kind_key: str
    loss_label: str = "training loss"
    val_label: str = "validation PSNR (dB)"
    val_series: tuple[tuple[str, str | None], ...] = (("psnr", None),)
    titles: tuple[str | None, str | None] = (None, None)


def plot_curves(metrics_path: str | Path, png_path: str | Path, spec: CurveSpec) -> Path | None:
    """Plot a ``metrics.jsonl`` into ``png_path`` (written atomically); returns it, or None without records."""
    rows = MetricsLog(Path(metrics_path), spec.kind_key).read()
    train = [(r["step"], r["loss"]) for r in rows if r.get(spec.kind_key) == "train"]
    val_rows = [r for r in rows if r.get(spec.kind_key) == "val"]
    series = [(label, [(r["step"], r[key]) for r in val_rows if r.get(key) is not None])
              for key, label in spec.val_series]
    if not train and not any(points for _, points in series):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    if train:
        axes[0].plot(*zip(*train), lw=1)
        axes[0].set_yscale("log")
    axes[0].set(xlabel="step", ylabel=spec.loss_label)
    for index, (label, points) in enumerate(series):
        if points:
            style: dict[str, Any] = {"marker": "o", "lw": 1} if index == 0 else {"ls": "--", "color": "gray"}
            axes[1].plot(*zip(*points), label=label, **style)
    if any(label for label, points in series if points):
        axes[1].legend()
    axes[1].set(xlabel="step", ylabel=spec.val_label)
    for ax, title in zip(axes, spec.titles):
        ax.grid(alpha=0.3)
        if title:
            ax.set_title(title)
    fig.tight_layout()
    png_path = Path(png_path)
    temporary = png_path.with_name(png_path.stem + ".tmp.png")
    fig.savefig(temporary, dpi=100)
    plt.close(fig)
    os.replace(temporary, png_path)
    return png_path


# ----------------------------------------------------------------------------- the loop


class LossWindow:
    """The training losses since the last metrics record, and how long they took."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.total = 0.0
        self.started = time.perf_counter()

    def add(self, value: float) -> None:
        """One step's loss."""
        self.values.append(value)
        self.total += value

    @property
    def count(self) -> int:
        """Steps in the window."""
        return len(self.values)

    def mean(self) -> float:
        """Mean loss, summed in step order."""
        return self.total / max(self.count, 1)

    def seconds(self) -> float:
        """Wall time since the window opened (at least 1 ns)."""
        return max(time.perf_counter() - self.started, 1e-9)


@dataclass(frozen=True)
class StepInfo:
    """What the loop knows when it writes a training record.

    Attributes:
        step: Completed steps.
        window: The losses since the last record.
        grad_norm: The last step's gradient norm (when the adapter asks for it), else None.
        wall_s: Training wall time of the run over all calls (seconds).
    """

    step: int
    window: LossWindow
    grad_norm: float | None
    wall_s: float


@dataclass(frozen=True)
class LoopSettings:
    """How one call runs.

    Attributes:
        total: Steps of the whole recipe (the last one is always validated).
        stop: This call ends after this step (``<= total``; earlier for time-boxed calls).
        log_every: Steps between training records (and one at ``stop``).
        val_every: Steps between validations (0: only at ``total``).
        checkpoint_every: Steps between saved states (0: only at ``stop``).
        progress: Show a tqdm bar (rank 0).
        desc: The bar's label.
        plot: Draw ``curves.png`` after validations (at most every ``plot_interval_s``) and at the end.
        plot_interval_s: Least wall time between two redraws during training.
        save_on_interrupt: Save the state (and call ``on_checkpoint``) on Ctrl-C before re-raising.
    """

    total: int
    stop: int
    log_every: int
    val_every: int
    checkpoint_every: int
    progress: bool
    desc: str
    plot: bool
    plot_interval_s: float = 30.0
    save_on_interrupt: bool = False


@dataclass(frozen=True)
class RunFiles:
    """The files of a run the harness writes.

    Attributes:
        run: The run folder.
        state: The training state (``.safetensors``).
        metrics: The metrics log.
        plot: ``curves.png``.
        curves: What the plot shows.
    """

    run: Path
    state: Path
    metrics: MetricsLog
    plot: Path
    curves: CurveSpec


@dataclass(frozen=True)
class LoopResult:
    """What a call of :func:`run_training` did.

    Attributes:
        start: The step the call began at.
        steps: Completed steps of the run after the call.
        resumed_from: ``start`` when the call resumed a state, else None.
        last_loss: Loss of the last training record (of this call, else of the log), or None.
        last_val: The last validation record (of this call, else of the log), or None.
        wall_s: Training wall time of the run over all calls (seconds).
    """

    start: int
    steps: int
    resumed_from: int | None
    last_loss: float | None
    last_val: dict[str, Any] | None
    wall_s: float


class TaskAdapter(ABC):
    """A training task as the loop sees it.

    A subclass sets the attributes in its constructor (model built, on its device, seeded) and
    implements the abstract hooks; the others default to nothing.

    Attributes:
        model: The model being trained (unwrapped).
        optimizer: Its optimiser.
        device: Where it trains.
        generators: The task's own torch generators, saved and restored by name.
        amp_dtype: Autocast dtype of the forward pass, or None.
        scaler: The fp16 loss scaler, or None.
        grad_clip: Gradient clipping norm, or None / <= 0 for none.
        measure_grad_norm: Measure every step's gradient norm (for :attr:`StepInfo.grad_norm`).
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    generators: Mapping[str, torch.Generator] = {}
    amp_dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None
    grad_clip: float | None = None
    measure_grad_norm: bool = False

    @abstractmethod
    def batches(self, start: int, stop: int) -> Iterable[Any]:
        """The batches of steps ``start``, ``start + 1``, ... (at least up to ``stop``)."""

    def begin_step(self, step: int) -> None:
        """Before the forward pass of (0-based) ``step``."""
        return None

    @abstractmethod
    def loss(self, net: nn.Module, step: int, batch: Any) -> torch.Tensor:
        """The loss of ``batch`` through ``net`` (the model, or its DDP wrapper), under autocast."""

    def end_step(self, done: int) -> None:
        """After the optimiser update; ``done`` steps are complete."""
        return None

    @abstractmethod
    def train_record(self, info: StepInfo) -> dict[str, Any]:
        """The metrics record of a logging point (with ``step`` and ``loss``)."""

    def validate(self, step: int) -> dict[str, Any] | None:
        """Validate after ``step`` steps (rank 0): the metrics record, or None without validation data."""
        return None

    def on_checkpoint(self, step: int, last_val: dict[str, Any] | None) -> None:
        """Before the state of ``step`` is saved (rank 0): write anything else that goes with it."""
        return None

    @abstractmethod
    def scheduler_state(self) -> dict[str, Any]:
        """JSON-able learning-rate schedule state for the state file."""

    @abstractmethod
    def state_extra(self, step: int, wall_s: float) -> dict[str, Any]:
        """JSON-able facts for the state file's ``extra`` (config, data position, ...)."""

    def load_state(self, meta: dict[str, Any]) -> None:
        """Restore the task's part of a loaded state (schedule, scaler, data position) from its metadata."""
        return None


def run_training(task: TaskAdapter, files: RunFiles, settings: LoopSettings, *, resume: bool,
                 ranks: Distributed | None = None) -> LoopResult:
    """Run one call of a training run: resume or start, train to ``settings.stop``, checkpoint.

    Args:
        task: The task.
        files: Where the state, log and plot go (the folder exists).
        settings: Steps, logging, validation, checkpoint and plot cadence.
        resume: Load ``files.state`` (which must exist) and continue from it; False starts from
            step 0, removing an old state and log.
        ranks: The distributed set-up (None: one process).

    Returns:
        A :class:`LoopResult`. Only a call that ends normally saves at its end (an exception
        leaves the last checkpoint; Ctrl-C saves when ``settings.save_on_interrupt``).

    Raises:
        RawSynthError: For a state that does not fit, or a loss that is not finite.
    """
    ranks = ranks or Distributed()
    main = ranks.main
    clock_before, start, resumed_from = 0.0, 0, None
    if resume:
        meta = load_training_state(files.state, model=task.model, optimizer=task.optimizer,
                                   generators=task.generators)
        task.load_state(meta)
        start = resumed_from = int(meta["step"])
        clock_before = float(meta["extra"].get("wall_time_s", 0.0))
        if main:
            files.metrics.truncate(start)
        logger.info("%s: resuming at step %d", files.run, start)
    elif main:
        files.metrics.reset()
        if files.state.exists():
            files.state.unlink()
    net = ranks.wrap(task.model, task.device)
    loop = _Loop(task, files, settings, ranks, start, clock_before)
    loop.run(net)
    return LoopResult(start=start, steps=loop.step, resumed_from=resumed_from, last_loss=loop.last_loss,
                      last_val=loop.last_val, wall_s=loop.wall())


class _Loop:
    """The state of one :func:`run_training` call."""

    def __init__(self, task: TaskAdapter, files: RunFiles, settings: LoopSettings, ranks: Distributed,
                 start: int, clock_before: float) -> None:
        self.task, self.files, self.settings, self.ranks = task, files, settings, ranks
        self.start = self.step = start
        self.clock_before = clock_before
        self.started = time.perf_counter()
        self.plotted_step, self.plotted_at = -1, time.perf_counter()
        self.last_loss: float | None = None
        self.last_val = files.metrics.last("val") if ranks.main else None

    def wall(self) -> float:
        return self.clock_before + time.perf_counter() - self.started

    def run(self, net: nn.Module) -> None:
        task, settings, main = self.task, self.settings, self.ranks.main
        bar = None
        if settings.progress and main and settings.stop > self.start:
            from tqdm.auto import tqdm

            bar = tqdm(total=settings.stop, initial=self.start, desc=settings.desc, unit="step", dynamic_ncols=True)
        window = LossWindow()
        completed = False
        try:
            for step, batch in zip(range(self.start, settings.stop), task.batches(self.start, settings.stop)):
                task.begin_step(step)
                with autocast(task.device, task.amp_dtype):
                    loss = task.loss(net, step, batch)
                grad_norm = optimiser_step(loss, task.optimizer, task.model, grad_clip=task.grad_clip,
                                           scaler=task.scaler, measure_norm=task.measure_grad_norm)
                done = step + 1
                task.end_step(done)
                self.step = done
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise RawSynthError(f"{self.files.run}: training diverged at step {done} (loss {value}); "
                                        "lower train.lr")
                window.add(value)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{value:.4g}", lr=f"{task.optimizer.param_groups[0]['lr']:.2e}",
                                    refresh=False)
                if done % settings.log_every == 0 or done == settings.stop:
                    if main:
                        record = task.train_record(StepInfo(done, window, grad_norm, self.wall()))
                        self.files.metrics.append(record)
                        self.last_loss = float(record["loss"])
                    window = LossWindow()
                if main and ((settings.val_every and done % settings.val_every == 0) or done == settings.total):
                    self._validate(done)
                if (settings.checkpoint_every and done % settings.checkpoint_every == 0) or done == settings.stop:
                    self._checkpoint(done)
                self.ranks.barrier()
            completed = True
        except KeyboardInterrupt:
            if settings.save_on_interrupt:
                logger.warning("interrupted at step %d: saving a resumable state", self.step)
                self._checkpoint(self.step)
            raise
        finally:
            if bar is not None:
                bar.close()
            if completed and main:
                self._finish()
            self.ranks.barrier()

    def _finish(self) -> None:
        """End of a call on rank 0: a state even when no step ran, the last loss, the plot."""
        if self.step == self.start and not self.files.state.is_file():  # a fresh run that ran no step
            self._checkpoint(self.step)
        if self.last_loss is None:
            last = self.files.metrics.last("train")
            self.last_loss = None if last is None else float(last["loss"])
        if self.settings.plot and self.plotted_step != self.step:
            plot_curves(self.files.metrics.path, self.files.plot, self.files.curves)

    def _validate(self, step: int) -> None:
        record = self.task.validate(step)
        if record is None:
            return
        self.files.metrics.append(record)
        self.last_val = record
        if self.settings.plot and time.perf_counter() - self.plotted_at >= self.settings.plot_interval_s:
            plot_curves(self.files.metrics.path, self.files.plot, self.files.curves)
            self.plotted_step, self.plotted_at = step, time.perf_counter()

    def _checkpoint(self, step: int) -> None:
        if not self.ranks.main:
            return
        task = self.task
        task.on_checkpoint(step, self.last_val)
        save_training_state(self.files.state, model=task.model, optimizer=task.optimizer, step=step,
                            generators=task.generators, scheduler=task.scheduler_state(),
                            extra=task.state_extra(step, self.wall()))


# ----------------------------------------------------------------------------- summaries


class RunSummary:
    """Base of the trainers' summary dataclasses: their JSON form."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict, in field order (paths as strings)."""
        return {k: (str(v) if isinstance(v, Path) else v)
                for k, v in dataclasses.asdict(self).items()}  # type: ignore[call-overload]

