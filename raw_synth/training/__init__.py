"""Training the SSDNet inverse ISP: recipes, data, augmentation, schedules, exact-resume state.

The entry point is :func:`train_isp` (``raw-synth train-isp``)::

    from raw_synth.training import train_isp
    summary = train_isp("configs/train-isp-cpu.yaml", "pairs/", "runs/isp")
    summary.model_path        # runs/isp/model.safetensors, kind "ssdnet-isp"

Modules: :mod:`~raw_synth.training.config` (typed YAML recipe), :mod:`~raw_synth.training.datasets`
(camera RAW / AIM 2022 / paired folders, held-out split, crops), :mod:`~raw_synth.training.augment`
(Bayer-phase-safe flips and rotations), :mod:`~raw_synth.training.schedule` (learning rate and
progressive patches), :mod:`~raw_synth.training.state` (safetensors training state),
:mod:`~raw_synth.training.harness` (the training loop shared with the denoiser: resume, metrics log,
plot, progress, checkpoints, AMP, DDP) and :mod:`~raw_synth.training.trainer` (the inverse ISP as a
task of that loop).
"""

from __future__ import annotations

from raw_synth.training.augment import augment_pair, crop_pair, dihedral, transformed_cfa
from raw_synth.training.config import TrainConfig, builtin_config, load_config
from raw_synth.training.datasets import (
    PairImage,
    PairSource,
    Split,
    TrainingData,
    detect_layout,
    find_sources,
    prepare_data,
    render_camera_raw,
)
from raw_synth.training.schedule import FlatCosineSchedule, ProgressiveSchedule
from raw_synth.training.state import load_training_state, save_training_state
from raw_synth.training.trainer import TrainSummary, evaluate_isp, train_isp

__all__ = [
    "TrainConfig",
    "load_config",
    "builtin_config",
    "PairImage",
    "PairSource",
    "Split",
    "TrainingData",
    "detect_layout",
    "find_sources",
    "prepare_data",
    "render_camera_raw",
    "augment_pair",
    "crop_pair",
    "dihedral",
    "transformed_cfa",
    "FlatCosineSchedule",
    "ProgressiveSchedule",
    "save_training_state",
    "load_training_state",
    "TrainSummary",
    "train_isp",
    "evaluate_isp",
]
