"""SSDNet networks: one shared body, task heads (inverse ISP, RAW denoiser), presets and losses.

* :mod:`~raw_synth.models.blocks` - context-fusion blocks, down/up-samplers.
* :mod:`~raw_synth.models.config` - the config family: :class:`SSDNetBodyConfig`,
  :class:`SSDNetConfig` (inverse ISP), :class:`DenoiserConfig` (denoiser).
* :mod:`~raw_synth.models.body` - :class:`SSDNetBody`, the U-Net the task models subclass.
* :mod:`~raw_synth.models.ssdnet` - :class:`SSDNet` (sRGB -> packed RAW, mean/variance heads) and
  its test-time helpers; :mod:`~raw_synth.models.denoiser` - :class:`SSDNetDenoiser`.
* :mod:`~raw_synth.models.registry` - :func:`create_model`, :func:`list_models`, :func:`register_model`.

Importing the package registers every preset and architecture.

Example:
    >>> import torch
    >>> from raw_synth.models import create_model
    >>> model = create_model("tiny").eval()
    >>> with torch.inference_mode():
    ...     out = model.predict(torch.rand(1, 3, 32, 48))
    >>> tuple(out["mu"].shape)
    (1, 4, 16, 24)
"""

from __future__ import annotations

from raw_synth.models.blocks import (
    ContextFusionAttention,
    Downsample,
    GatedFeedForward,
    LayerNorm2d,
    TransformerBlock,
    Upsample,
    layer_norm_2d,
)
from raw_synth.models.body import SSDNetBody, pad_to_multiple
from raw_synth.models.config import DenoiserConfig, SSDNetBodyConfig, SSDNetConfig
from raw_synth.models.denoiser import DENOISER_PRESETS, SSDNetDenoiser
from raw_synth.models.losses import L1Loss, ResamplingLoss, l1_loss, resampling_loss
from raw_synth.models.registry import (
    ModelEntry,
    build_model,
    create_model,
    get_config,
    list_architectures,
    list_models,
    model_entry,
    register_architecture,
    register_model,
)
from raw_synth.models.ssdnet import PRESETS, SSDNet, self_ensemble_x8, test_resample

__all__ = [
    "ContextFusionAttention",
    "Downsample",
    "GatedFeedForward",
    "LayerNorm2d",
    "TransformerBlock",
    "Upsample",
    "layer_norm_2d",
    "SSDNetBody",
    "pad_to_multiple",
    "SSDNetBodyConfig",
    "SSDNetConfig",
    "DenoiserConfig",
    "SSDNet",
    "SSDNetDenoiser",
    "PRESETS",
    "DENOISER_PRESETS",
    "L1Loss",
    "ResamplingLoss",
    "l1_loss",
    "resampling_loss",
    "ModelEntry",
    "build_model",
    "create_model",
    "get_config",
    "list_architectures",
    "list_models",
    "model_entry",
    "register_architecture",
    "register_model",
    "self_ensemble_x8",
    "test_resample",
]
