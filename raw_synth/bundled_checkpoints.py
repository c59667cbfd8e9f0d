"""Where the checkpoints shipped with the package live (``raw_synth/data/checkpoints``).

Example:
    >>> bundled_checkpoint_path(ISP_CHECKPOINT).name
    'ssdnet-tiny-isp.safetensors'
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUNDLED_CHECKPOINT_DIR", "ISP_CHECKPOINT", "DENOISER_CHECKPOINT", "bundled_checkpoint_path"]

#: The folder of the bundled checkpoints inside the installed package.
BUNDLED_CHECKPOINT_DIR = Path(__file__).resolve().parent / "data" / "checkpoints"
#: File name of the bundled SSDNet inverse ISP (trained on RAW/sRGB pairs of one camera).
ISP_CHECKPOINT = "ssdnet-tiny-isp.safetensors"
#: File name of the bundled RAW denoiser.
DENOISER_CHECKPOINT = "denoiser-tiny.safetensors"


def bundled_checkpoint_path(name: str) -> Path:
    """Path of a bundled checkpoint file, whether or not this install has it.

    Args:
        name: File name, e.g. :data:`ISP_CHECKPOINT` or :data:`DENOISER_CHECKPOINT`.

    Returns:
        ``raw_synth/data/checkpoints/<name>`` of the installed package.
    """
    return BUNDLED_CHECKPOINT_DIR / name
