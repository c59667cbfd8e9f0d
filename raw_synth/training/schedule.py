"""Learning-rate and progressive-patch schedules of SSDNet training (facts 1.4).

* :class:`FlatCosineSchedule`: ``lr`` constant for ``flat_steps`` steps, then a half cosine down
  to ``eta_min`` over ``cosine_steps`` steps, then ``eta_min``. The released recipe (BasicSR
  ``CosineAnnealingRestartCyclicLR``, periods [92000, 208000], eta_mins [3e-4, 1e-6]) is
  ``FlatCosineSchedule(3e-4, 92000, 208000, 1e-6)``; the paper text ("cosine to 1e-6" at
  276k) is ``cosine_steps = 184000``.
* :func:`warmup_cosine`: the denoiser's learning-rate multiplier, a linear warm-up then a half
  cosine from 1 to ``min_ratio``.
* :class:`ProgressiveSchedule`: ``(until_step, patch, batch)`` stages; step ``s`` uses the
  first stage with ``s < until_step``.

Both cosines are :func:`cosine_anneal`.

Steps count from 0: step ``s`` is the ``(s+1)``-th optimiser update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from raw_synth.errors import RawSynthError

__all__ = ["FlatCosineSchedule", "ProgressiveSchedule", "cosine_anneal", "set_learning_rate", "warmup_cosine"]


def cosine_anneal(t: float, start: float, end: float) -> float:
    """Half cosine from ``start`` (``t = 0``) to ``end`` (``t = 1``)."""
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * t))


def warmup_cosine(step: int, max_steps: int, warmup: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine from 1 to ``min_ratio``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, max_steps - warmup)
    return cosine_anneal(min(1.0, max(0.0, (step - warmup) / span)), 1.0, min_ratio)


@dataclass(frozen=True)
class FlatCosineSchedule:
    """Flat learning rate, then cosine annealing.

    ``lr(s) = base_lr`` for ``s < flat_steps``; ``eta_min + (base_lr - eta_min) * (1 + cos(pi *
    t)) / 2`` with ``t = (s - flat_steps) / cosine_steps`` for ``t <= 1``; ``eta_min`` after.

    Attributes:
        base_lr: Learning rate of the flat part (> 0).
        flat_steps: Length of the flat part (>= 0).
        cosine_steps: Length of the cosine (>= 1).
        eta_min: Final learning rate (>= 0, <= base_lr).
    """

    base_lr: float
    flat_steps: int
    cosine_steps: int
    eta_min: float = 0.0

    def __post_init__(self) -> None:
        if not self.base_lr > 0 or not math.isfinite(self.base_lr):
            raise RawSynthError(f"base_lr must be positive, got {self.base_lr!r}")
        if not 0 <= self.eta_min <= self.base_lr:
            raise RawSynthError(f"eta_min must be in [0, base_lr={self.base_lr:g}], got {self.eta_min!r}")
        if self.flat_steps < 0 or self.cosine_steps < 1:
            raise RawSynthError(f"flat_steps must be >= 0 and cosine_steps >= 1, "
                                f"got {self.flat_steps}, {self.cosine_steps}")

    def __call__(self, step: int) -> float:
        """Learning rate of (0-based) step ``step``."""
        if step < self.flat_steps:
            return float(self.base_lr)
        t = min(1.0, (step - self.flat_steps) / self.cosine_steps)
        return float(cosine_anneal(t, self.base_lr, self.eta_min))

    def state_dict(self) -> dict[str, Any]:
        """JSON-able parameters (the schedule is stateless; the step lives in the training state)."""
        return {"base_lr": self.base_lr, "flat_steps": self.flat_steps, "cosine_steps": self.cosine_steps,
                "eta_min": self.eta_min}


@dataclass(frozen=True)
class ProgressiveSchedule:
    """Progressive training: patch size and batch size per step.

    Attributes:
        stages: ``(until_step, patch, batch)`` with increasing ``until_step``.
    """

    stages: tuple[tuple[int, int, int], ...]

    def __init__(self, stages: Sequence[Sequence[int]]) -> None:
        checked = tuple((int(u), int(p), int(b)) for u, p, b in stages)
        if not checked:
            raise RawSynthError("progressive schedule needs at least one (until_step, patch, batch) stage")
        if any(b < a for (a, _, _), (b, _, _) in zip(checked, checked[1:])) or any(
                min(stage) < 1 for stage in checked):
            raise RawSynthError(f"progressive stages must have increasing until_step and positive values, "
                                f"got {checked}")
        object.__setattr__(self, "stages", checked)

    def at(self, step: int) -> tuple[int, int]:
        """``(patch, batch)`` of step ``step`` (the last stage continues past its end)."""
        for until, patch, batch in self.stages:
            if step < until:
                return patch, batch
        return self.stages[-1][1], self.stages[-1][2]

    def stage_index(self, step: int) -> int:
        """Index of the stage that step ``step`` belongs to."""
        for index, (until, _, _) in enumerate(self.stages):
            if step < until:
                return index
        return len(self.stages) - 1


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set ``lr`` on every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
