"""sRGB photo to camera RAW file: the library side of ``raw-synth convert``.

:func:`convert_image` runs an inverse-ISP engine on one photo and writes the clean RAW as a DNG
in the camera profile's Bayer pattern, bit depth and black/white levels, with the engine's
as-shot white balance and colour matrix, so any RAW developer (LibRaw, darktable, Lightroom)
renders it back to a photo.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from raw_synth.camera import CameraProfile
from raw_synth.engine import EngineResult, InverseISP
from raw_synth.errors import RawSynthError
from raw_synth.seeding import sample_rng

__all__ = ["convert_image", "crop_to_even", "to_raw_image", "render_preview"]

logger = logging.getLogger(__name__)


def crop_to_even(rgb: np.ndarray) -> np.ndarray:
    """Drop the last row and/or column of an ``(H, W, 3)`` image so both sides are even."""
    height, width = rgb.shape[0] - rgb.shape[0] % 2, rgb.shape[1] - rgb.shape[1] % 2
    return rgb[:height, :width]


def to_raw_image(result: EngineResult, profile: CameraProfile, source: str = ""):
    """Describe an engine result as a :class:`~raw_synth.io.RawImage` of the profile's camera."""
    from raw_synth.io import RawImage

    return RawImage(
        packed=result.packed,
        cfa=profile.cfa,
        black_level=profile.black_level,
        white_level=float(profile.white_level[0]),
        wb=result.wb_gains,
        xyz_to_cam=np.asarray(result.xyz_to_cam, dtype=np.float64),
        noise_profile=None,
        source=source,
        iso=None,
        camera=profile.name,
    )


def render_preview(result: EngineResult) -> np.ndarray:
    """Render an engine result back to sRGB ``(H, W, 3)`` with the forward ISP (for a quick look)."""
    from raw_synth.isp import cam_to_rgb_from_xyz_to_cam, render

    cam_to_rgb = cam_to_rgb_from_xyz_to_cam(result.xyz_to_cam)
    return render(result.packed, np.asarray(result.wb_gains, dtype=np.float32), cam_to_rgb)


def convert_image(
    rgb: np.ndarray,
    engine: InverseISP,
    profile: CameraProfile,
    path: str | Path,
    seed: int = 0,
    index: int = 0,
    preview: bool = False,
) -> Path:
    """Convert one sRGB image to a DNG file.

    Args:
        rgb: float32 ``(H, W, 3)`` in ``[0, 1]``; an odd last row/column is dropped.
        engine: The inverse ISP (see :func:`raw_synth.engine.create_engine`).
        profile: Camera whose CFA, bit depth and levels the file gets.
        path: Output ``.dng`` path.
        seed: Run seed; with ``index`` it fixes the engine's random draws.
        index: Index of this image in the run.
        preview: Also write ``<path>.png``, the RAW rendered back through the forward ISP.

    Returns:
        The DNG path.

    Raises:
        RawSynthError: The conversion runs out of memory, e.g. ``"out.dng: out of memory converting a
            12000x16000 image (MemoryError)"`` (the input's size is bounded when it is read:
            :func:`raw_synth.io.read_image`'s ``max_pixels``), or the writer fails.
    """
    from raw_synth.io import write_dng, write_image

    path = Path(path)
    even = crop_to_even(np.asarray(rgb, dtype=np.float32))
    if even.shape != rgb.shape:
        logger.info("%s: cropped %s to even size %s", path.name, rgb.shape[:2], even.shape[:2])
    try:
        result = engine.convert(even, sample_rng(seed, index))
        written = write_dng(path, to_raw_image(result, profile, source=str(path)))
        if preview:
            write_image(path.with_suffix(".png"), render_preview(result))
    except MemoryError:
        raise RawSynthError(f"{path}: out of memory converting a {even.shape[0]}x{even.shape[1]} image "
                            f"(MemoryError)") from None
    logger.info("wrote %s (%dx%d, %s)", written, even.shape[1], even.shape[0], profile.cfa)
    return Path(written)
