"""Where the checkpoints shipped with the package live (``raw_synth/data/checkpoints``).

Example:
    >>> bundled_checkpoint_path(ISP_CHECKPOINT).name
    'ssdnet-tiny-isp.safetensors'
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUNDLED_CHECKPOINT_DIR", "ISP_CHECKPOINT", "DENOISER_CHECKPOINT", "bundled_checkpoint_path",
           "find_checkpoint"]

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


def find_checkpoint(spec: str | Path) -> Path | None:
    """A checkpoint file given by path or by the name of a bundled model.

    Args:
        spec: An existing file, or a bundled model's name without folder or suffix
            (``denoiser-tiny`` for :data:`DENOISER_CHECKPOINT`).

    Returns:
        The file, or ``None`` when ``spec`` is neither an existing file nor a bundled model.
    """
    path = Path(spec)
    if path.is_file():
        return path
    if path.name != str(spec):  # a path that does not exist, not a bare name
        return None
    bundled = bundled_checkpoint_path(f"{spec}.safetensors")
    return bundled if bundled.is_file() else None
