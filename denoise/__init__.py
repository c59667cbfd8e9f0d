"""The companion RAW denoiser: a 4-channel SSDNet trained on raw-synth shards and scored on SIDD.

The network itself is a :mod:`raw_synth.models` model (the SSDNet body with a RAW head, presets
``denoiser-tiny`` and ``denoiser-paper`` in the one model registry), so
``raw_synth.checkpoint.load_model(path, kind="denoiser")`` rebuilds saved denoisers without
importing this package.

* :mod:`denoise.models` - the denoiser names: :class:`SSDNetDenoiser`, :class:`DenoiserConfig`,
  presets, :func:`create_denoiser` (aliases of the registry's).
* :mod:`denoise.dataset` - :class:`ShardDataset` (Bayer-safe augmentation, split by shard), :func:`make_sampler`.
* :mod:`denoise.config` / :mod:`denoise.train` - YAML recipes and :func:`train_denoiser`.
* :mod:`denoise.inference` - :func:`load_denoiser`, :func:`denoise_packed` (tiled).
* :mod:`denoise.denoise_file` - :func:`denoise_file`: a RAW file in, a denoised DNG out.
* :mod:`denoise.evaluate` / :mod:`denoise.report` / :mod:`denoise.eval_sidd` - SIDD scoring, its
  report, and :func:`run_eval_sidd` (the ``eval-sidd`` command) above both.
"""

from __future__ import annotations

from denoise.config import TrainConfig, load_train_config
from denoise.dataset import ShardDataset, dihedral_packed, make_sampler
from denoise.denoise_file import DenoiseResult, bundled_denoiser, denoise_file
from denoise.inference import denoise_packed, load_denoiser, noise_variance
from denoise.models import (
    ARCHITECTURE,
    DENOISER_PRESETS,
    DenoiserConfig,
    SSDNetDenoiser,
    create_denoiser,
    get_denoiser_config,
    list_denoisers,
)
from denoise.train import TrainSummary, evaluate, train_denoiser

__all__ = [
    "ARCHITECTURE",
    "DENOISER_PRESETS",
    "DenoiserConfig",
    "SSDNetDenoiser",
    "create_denoiser",
    "get_denoiser_config",
    "list_denoisers",
    "ShardDataset",
    "dihedral_packed",
    "make_sampler",
    "TrainConfig",
    "load_train_config",
    "TrainSummary",
    "train_denoiser",
    "evaluate",
    "load_denoiser",
    "noise_variance",
    "denoise_packed",
    "DenoiseResult",
    "bundled_denoiser",
    "denoise_file",
]
