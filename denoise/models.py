"""The RAW denoiser's names in :mod:`denoise`: aliases of the registry's ``denoiser`` models.

The network (:class:`~raw_synth.models.denoiser.SSDNetDenoiser`), its config
(:class:`~raw_synth.models.config.DenoiserConfig`) and presets (``denoiser-tiny``,
``denoiser-paper``) live in :mod:`raw_synth.models` beside the inverse ISP, over the same SSDNet
body; ``raw_synth.create_model("denoiser-tiny")`` builds one, and checkpoints of architecture
``ssdnet-denoiser`` load without importing this module.

Example:
    >>> import torch
    >>> from denoise.models import create_denoiser
    >>> model = create_denoiser("denoiser-tiny", conditioned=True).eval()
    >>> noisy = torch.rand(1, 4, 20, 30)
    >>> with torch.inference_mode():
    ...     out = model.predict(noisy, 1e-3 * noisy + 1e-5)
    >>> tuple(out.shape)
    (1, 4, 20, 30)
"""

from __future__ import annotations

from typing import Any, cast

from raw_synth.models.body import NETWORK_STRIDE
from raw_synth.models.config import DenoiserConfig
from raw_synth.models.denoiser import DENOISER_PRESETS, SSDNetDenoiser
from raw_synth.models.registry import create_model, get_config, list_models

__all__ = [
    "ARCHITECTURE",
    "NETWORK_STRIDE",
    "DenoiserConfig",
    "SSDNetDenoiser",
    "DENOISER_PRESETS",
    "list_denoisers",
    "get_denoiser_config",
    "create_denoiser",
    "build_from_config",
]

#: Architecture name under which checkpoints are saved and rebuilt.
ARCHITECTURE = SSDNetDenoiser.architecture


def list_denoisers() -> list[str]:
    """The denoiser preset names, sorted (``list_models(kind="denoiser")``)."""
    return list_models(kind=SSDNetDenoiser.kind)


def get_denoiser_config(name: str, **overrides: Any) -> DenoiserConfig:
    """A denoiser preset's config with fields replaced by ``overrides``.

    Raises:
        RawSynthError: Unknown preset (the message lists them), unknown field or invalid value.
    """
    return cast(DenoiserConfig, get_config(name, kind=SSDNetDenoiser.kind, **overrides))


def create_denoiser(name: str = "denoiser-tiny", **overrides: Any) -> SSDNetDenoiser:
    """Build a freshly initialised denoiser from a preset (``create_model(name, kind="denoiser")``).

    Args:
        name: ``"denoiser-tiny"`` or ``"denoiser-paper"``.
        **overrides: :class:`DenoiserConfig` fields, e.g. ``conditioned=True``.

    Raises:
        RawSynthError: See :func:`get_denoiser_config`.
    """
    return cast(SSDNetDenoiser, create_model(name, kind=SSDNetDenoiser.kind, **overrides))


#: Checkpoint builder: a model from the config dict stored in a checkpoint.
build_from_config = SSDNetDenoiser.from_config
