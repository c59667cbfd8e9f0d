"""Running a trained denoiser on packed RAW arrays: checkpoint loading and tiled inference.

:func:`denoise_packed` is the ``"crop"`` policy of the project's one tiler,
:func:`raw_synth.tiling.tiled_apply`: each core tile is run with context around it and only its
core is kept.

Example:
    >>> import numpy as np
    >>> from denoise.inference import denoise_packed
    >>> from denoise.models import create_denoiser
    >>> model = create_denoiser("denoiser-tiny", conditioned=True).eval()
    >>> noisy = np.random.default_rng(0).random((4, 40, 50), dtype=np.float32)
    >>> out = denoise_packed(model, noisy, shot=np.full(4, 1e-3), read=np.full(4, 1e-5), tile=32)
    >>> out.shape, out.dtype
    ((4, 40, 50), dtype('float32'))
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from denoise.ensemble import check_ensemble, geometric_ensemble
from raw_synth.errors import RawSynthError
from raw_synth.noise_level import NoiseLevel
from raw_synth.per_plane import per_plane
from raw_synth.tiling import tiled_apply

__all__ = ["load_denoiser", "noise_variance", "denoise_packed", "DEFAULT_TILE", "DEFAULT_OVERLAP"]

logger = logging.getLogger(__name__)

#: Default tile side in packed pixels (512x512 mosaic pixels).
DEFAULT_TILE = 256
#: Context added around every tile (packed pixels); only the tile's core is kept.
DEFAULT_OVERLAP = 16


def load_denoiser(path: str | Path, device: str | torch.device = "cpu") -> tuple[Any, dict[str, Any]]:
    """Load a denoiser checkpoint (``kind="denoiser"``).

    Args:
        path: ``.safetensors`` written by :func:`raw_synth.checkpoint.save_model`.
        device: Where to put the model.

    Returns:
        ``(model in eval mode, metadata)``.

    Raises:
        RawSynthError: Missing file, not a checkpoint, another kind of model, damaged weights.
    """
    from raw_synth.checkpoint import load_model

    return load_model(path, kind="denoiser", device=device)


def _per_plane(value: Any, name: str) -> np.ndarray:
    try:
        arr = per_plane(value)
    except (TypeError, ValueError):
        raise RawSynthError(f"{name}: expected 1 or 4 numbers, got {value!r}") from None
    if arr is None or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise RawSynthError(f"{name}: expected 1 or 4 finite numbers >= 0, got {np.asarray(value).tolist()}")
    return arr


def noise_variance(noisy: np.ndarray, shot: Any, read: Any) -> np.ndarray:
    """Per-pixel noise variance ``max(shot * noisy + read, 0)`` of a packed image.

    Args:
        noisy: ``(4, h, w)`` normalised packed RAW.
        shot, read: 1 or 4 (per plane) numbers, normalised units.

    Returns:
        float32 ``(4, h, w)``.
    """
    return NoiseLevel(_per_plane(shot, "shot"), _per_plane(read, "read")).variance_map(noisy)


def _check_tile(tile: Any, overlap: Any) -> tuple[int, int]:
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 8:
        raise RawSynthError(f"tile: expected an integer >= 8 (packed pixels), got {tile!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, (int, np.integer)) or overlap < 0:
        raise RawSynthError(f"overlap: expected an integer >= 0, got {overlap!r}")
    return int(tile), int(overlap)


@torch.inference_mode()
def denoise_packed(
    model: Any,
    noisy: np.ndarray,
    shot: Any = None,
    read: Any = None,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    device: str | torch.device = "cpu",
    clamp: bool = True,
    tile_batch: int = 1,
    ensemble: int = 1,
) -> np.ndarray:
    """Denoise one packed RAW image tile by tile.

    The image is cut into ``tile x tile`` cores; each is run with ``overlap`` pixels of context
    on every side (cut at the image border) and only its core is kept, so the result has no seams
    for any ``overlap`` at least the network's receptive-field radius that matters in practice.

    Args:
        model: A denoiser (:class:`~denoise.models.SSDNetDenoiser`), used in eval mode.
        noisy: ``(4, h, w)`` float, normalised packed RGGB-phase RAW (R, Gr, Gb, B).
        shot: Per-plane (or one) shot coefficient; required by a conditioned model.
        read: Per-plane (or one) read variance; required by a conditioned model.
        tile: Core tile side in packed pixels (``>= 8``).
        overlap: Context per side in packed pixels.
        device: Where to run (tiles are moved there one call at a time; the result is on the CPU).
        clamp: Clamp the output to [0, 1].
        tile_batch: Tiles of one size run in one forward pass (border tiles differ in size).
        ensemble: Average over this many Bayer-preserving flips/turns of each tile (1, 2, 4 or 8;
            :func:`denoise.ensemble.geometric_ensemble`); costs that many forward passes.

    Returns:
        float32 ``(4, h, w)`` denoised RAW.

    Raises:
        RawSynthError: Wrong shapes or values, a conditioned model without a noise level.
    """
    arr = np.asarray(noisy)
    if arr.ndim != 3 or arr.shape[0] != 4 or arr.shape[1] < 1 or arr.shape[2] < 1:
        raise RawSynthError(f"noisy: expected packed RAW of shape (4, h, w), got {tuple(arr.shape)}")
    if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)):
        raise RawSynthError("noisy: expected finite floating-point values (normalised RAW)")
    tile, overlap = _check_tile(tile, overlap)
    check_ensemble(ensemble)
    conditioned = bool(getattr(getattr(model, "config", None), "conditioned", False))
    if conditioned and (shot is None or read is None):
        raise RawSynthError("shot/read: this denoiser is conditioned on the noise level; give both")
    variance = noise_variance(arr, shot, read) if conditioned else None
    was_training = model.training
    model.eval()
    source = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None]
    inputs = [source] if variance is None else [source, torch.from_numpy(variance)[None]]

    def run(part: torch.Tensor, var: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        pred = geometric_ensemble(model.predict, part, var, ensemble).float()
        return {"out": pred.clamp(0.0, 1.0) if clamp else pred}

    try:
        out = tiled_apply(run, inputs, tile, overlap, policy="crop", tile_batch=tile_batch, device=device)["out"]
    finally:
        model.train(was_training)
    return np.ascontiguousarray(out[0].numpy(), dtype=np.float32)
