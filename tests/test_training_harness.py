"""Tests of raw_synth.training.harness: the shared loop on a toy task (cadence, exact resume, stop
step, interrupts, divergence), the metrics log, the plot, devices and AMP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from raw_synth.errors import RawSynthError
from raw_synth.training.harness import (
    CurveSpec,
    LoopSettings,
    MetricsLog,
    RunFiles,
    StepInfo,
    TaskAdapter,
    amp_dtype,
    distributed,
    grad_scaler,
    optimiser_step,
    plot_curves,
    resolve_device,
    run_training,
)
from raw_synth.training.state import read_state_metadata

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CURVES = CurveSpec(kind_key="event")


class ToyTask(TaskAdapter):
    """Linear regression: the batch of step s is a function of s; the loss adds noise from a task generator."""

    measure_grad_norm = True

    def __init__(self, nan_at: int | None = None, interrupt_at: int | None = None) -> None:
        torch.manual_seed(0)
        self.device = torch.device("cpu")
        self.model = nn.Linear(4, 1)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=0.05)
        noise = torch.Generator()
        noise.manual_seed(1)
        self.generators = {"noise": noise}
        self.grad_clip = 1.0
        self.nan_at, self.interrupt_at = nan_at, interrupt_at
        self.checkpoints: list[int] = []
        self.lr = 0.0

    def batches(self, start: int, stop: int) -> Any:
        for step in range(start, stop + 1):
            generator = torch.Generator()
            generator.manual_seed(step)
            x = torch.randn(8, 4, generator=generator)
            yield x, x.sum(dim=1, keepdim=True)

    def begin_step(self, step: int) -> None:
        self.lr = 0.05 / (1 + step)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def loss(self, net: nn.Module, step: int, batch: Any) -> torch.Tensor:
        if step == self.interrupt_at:
            raise KeyboardInterrupt
        x, y = batch
        loss = ((net(x) - y) ** 2).mean() + 1e-3 * torch.rand((), generator=self.generators["noise"])
        return loss * float("nan") if step == self.nan_at else loss

    def train_record(self, info: StepInfo) -> dict[str, Any]:
        return {"event": "train", "step": info.step, "loss": info.window.mean(), "lr": self.lr,
                "grad_norm": info.grad_norm, "n": info.window.count, "time_s": info.wall_s}

    def validate(self, step: int) -> dict[str, Any] | None:
        with torch.no_grad():
            error = float((self.model(torch.ones(1, 4)) - 4.0).abs())
        return {"event": "val", "step": step, "psnr": -error}

    def on_checkpoint(self, step: int, last_val: dict[str, Any] | None) -> None:
        self.checkpoints.append(step)

    def scheduler_state(self) -> dict[str, Any]:
        return {"kind": "toy"}

    def state_extra(self, step: int, wall_s: float) -> dict[str, Any]:
        return {"wall_time_s": wall_s, "at": step}


def _files(run: Path) -> RunFiles:
    run.mkdir(parents=True, exist_ok=True)
    return RunFiles(run, run / "state.safetensors", MetricsLog(run / "metrics.jsonl", "event"), run / "curves.png",
                    CURVES)


def _settings(stop: int = 7, **changes: Any) -> LoopSettings:
    values: dict[str, Any] = dict(total=7, stop=stop, log_every=2, val_every=3, checkpoint_every=2, progress=False,
                                  desc="toy", plot=False)
    values.update(changes)
    return LoopSettings(**values)


def _rows(run: Path) -> list[dict[str, Any]]:
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_metrics_log_appends_truncates_and_finds(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "m.jsonl", "kind")
    assert log.read() == [] and log.last("val") is None
    for step in (1, 2, 3):
        log.append({"kind": "train", "step": step, "loss": 1.0 / step})
        log.append({"kind": "val", "step": step, "psnr": float(step)})
    with open(log.path, "a", encoding="utf-8") as handle:
        handle.write('{"kind": "train", "st')  # a line cut by a crash
    assert len(log.read()) == 6 and log.last("val") == {"kind": "val", "step": 3, "psnr": 3.0}
    log.truncate(2)
    assert [r["step"] for r in log.read()] == [1, 1, 2, 2] and log.last("train") == {"kind": "train", "step": 2,
                                                                                     "loss": 0.5}
    log.reset()
    assert log.path.read_text() == "" and log.read() == []


def test_loop_cadence_and_exact_resume(tmp_path: Path) -> None:
    full_task = ToyTask()
    full = run_training(full_task, _files(tmp_path / "full"), _settings(plot=True, plot_interval_s=0.0),
                        resume=False)
    assert (full.start, full.steps, full.resumed_from) == (0, 7, None)
    rows = _rows(tmp_path / "full")
    assert [(r["event"], r["step"]) for r in rows] == [
        ("train", 2), ("val", 3), ("train", 4), ("train", 6), ("val", 6), ("train", 7), ("val", 7)]
    assert [r["n"] for r in rows if r["event"] == "train"] == [2, 2, 2, 1]
    assert full_task.checkpoints == [2, 4, 6, 7]
    assert full.last_loss == rows[-2]["loss"] and full.last_val == rows[-1]
    assert (tmp_path / "full" / "curves.png").is_file()

    part_task = ToyTask()
    part = run_training(part_task, _files(tmp_path / "part"), _settings(stop=4), resume=False)
    assert part.steps == 4 and part_task.checkpoints == [2, 4]
    assert read_state_metadata(tmp_path / "part" / "state.safetensors")["extra"]["at"] == 4
    # a crash after the state was saved leaves records the resumed call must drop
    MetricsLog(tmp_path / "part" / "metrics.jsonl", "event").append({"event": "train", "step": 5, "loss": 9.0})
    resumed_task = ToyTask()
    resumed = run_training(resumed_task, _files(tmp_path / "part"), _settings(), resume=True)
    assert (resumed.start, resumed.steps, resumed.resumed_from) == (4, 7, 4)
    assert resumed_task.checkpoints == [6, 7]
    assert all(torch.equal(a, b) for a, b in zip(full_task.model.parameters(), resumed_task.model.parameters()))
    a = load_file(str(tmp_path / "full" / "state.safetensors"))
    b = load_file(str(tmp_path / "part" / "state.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith(("model/", "optim/", "rng/gen/")))
    assert _rows(tmp_path / "part") == rows and resumed.last_loss == full.last_loss


def test_a_call_that_runs_no_step_still_leaves_a_state(tmp_path: Path) -> None:
    task = ToyTask()
    result = run_training(task, _files(tmp_path / "run"), _settings(stop=0, plot=True), resume=False)
    assert result.steps == 0 and task.checkpoints == [0] and result.last_loss is None
    assert read_state_metadata(tmp_path / "run" / "state.safetensors")["step"] == 0
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == ""
    assert not (tmp_path / "run" / "curves.png").exists()  # nothing to plot
    again = ToyTask()
    run_training(again, _files(tmp_path / "run"), _settings(stop=0), resume=True)
    assert again.checkpoints == []  # the state is there: nothing to rewrite


def test_divergence_and_interrupts(tmp_path: Path) -> None:
    with pytest.raises(RawSynthError, match=r"^.*run: training diverged at step 3 \(loss nan\); lower train.lr$"):
        run_training(ToyTask(nan_at=2), _files(tmp_path / "run"), _settings(), resume=False)
    assert read_state_metadata(tmp_path / "run" / "state.safetensors")["step"] == 2  # the last checkpoint
    task = ToyTask(interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        run_training(task, _files(tmp_path / "kept"), _settings(), resume=False)
    assert task.checkpoints == [2]
    task = ToyTask(interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        run_training(task, _files(tmp_path / "saved"), _settings(save_on_interrupt=True), resume=False)
    assert task.checkpoints == [2, 3] and read_state_metadata(tmp_path / "saved" / "state.safetensors")["step"] == 3
    resumed = ToyTask()
    run_training(resumed, _files(tmp_path / "saved"), _settings(), resume=True)
    full = ToyTask()
    run_training(full, _files(tmp_path / "full"), _settings(), resume=False)
    assert all(torch.equal(a, b) for a, b in zip(full.model.parameters(), resumed.model.parameters()))


def _gradients(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def test_optimiser_step_clips_and_measures() -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    loss = (model(torch.full((2, 3), 100.0)) ** 2).mean()
    norm = optimiser_step(loss, optimizer, model, grad_clip=None, measure_norm=True)
    expected = float(torch.linalg.vector_norm(_gradients(model)))
    assert norm is not None and norm == pytest.approx(expected, rel=1e-5) and norm > 1.0
    loss = (model(torch.full((2, 3), 100.0)) ** 2).mean()
    assert optimiser_step(loss, optimizer, model, grad_clip=1.0) is None
    assert float(torch.linalg.vector_norm(_gradients(model))) == pytest.approx(1.0, rel=1e-4)


def test_devices_amp_and_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(RawSynthError, match=r"^train.device must be one of auto, cpu, cuda, mps \(or cuda:N\), "
                                             r"got 'gpu'$"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(RawSynthError, match=r"^train.device 'cuda': CUDA is not available on this machine"):
            resolve_device("cuda")
    assert amp_dtype("auto", torch.device("cpu")) is None and amp_dtype("fp16", torch.device("cpu")) is None
    assert grad_scaler(None) is None and grad_scaler(torch.bfloat16) is None
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with distributed("cpu") as ranks:
        assert (ranks.rank, ranks.world, ranks.main, ranks.initialised_here) == (0, 1, True, False)
        model = nn.Linear(2, 2)
        assert ranks.wrap(model, torch.device("cpu")) is model
        ranks.barrier()
    monkeypatch.setenv("WORLD_SIZE", "1")
    with distributed("cpu") as ranks:
        assert ranks.world == 1 and not torch.distributed.is_initialized()


def test_plot_curves(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "m.jsonl", "kind")
    spec = CurveSpec(kind_key="kind", val_series=(("psnr", "denoised"), ("psnr_noisy", "noisy input")))
    assert plot_curves(log.path, tmp_path / "c.png", spec) is None
    log.append({"kind": "train", "step": 1, "loss": 0.5})
    log.append({"kind": "val", "step": 1, "psnr": 30.0, "psnr_noisy": 20.0})
    assert plot_curves(log.path, tmp_path / "c.png", spec) == tmp_path / "c.png"
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "c.tmp.png").exists()
