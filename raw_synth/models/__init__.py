"""SSDNet inverse ISP: network, building blocks, presets and soft-supervision losses.

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
from raw_synth.models.losses import L1Loss, ResamplingLoss, l1_loss, resampling_loss
from raw_synth.models.registry import PRESETS, SSDNetConfig, create_model, get_config, list_models
from raw_synth.models.ssdnet import SSDNet, pad_to_multiple, self_ensemble_x8, test_resample

__all__ = [
    "ContextFusionAttention",
    "Downsample",
    "GatedFeedForward",
    "LayerNorm2d",
    "TransformerBlock",
    "Upsample",
    "layer_norm_2d",
    "L1Loss",
    "ResamplingLoss",
    "l1_loss",
    "resampling_loss",
    "PRESETS",
    "SSDNetConfig",
    "create_model",
    "get_config",
    "list_models",
    "SSDNet",
    "pad_to_multiple",
    "self_ensemble_x8",
    "test_resample",
]
