"""Readers and writers: sRGB images, camera RAW files, bare mosaics and DNG.

* :func:`read_image` / :func:`write_image`: sRGB photos as float32 ``(H, W, 3)`` in [0, 1].
* :class:`RawImage`: a packed ``(4, H/2, W/2)`` normalised Bayer image with its metadata.
* :func:`read_raw`: any Bayer RAW that LibRaw opens (DNG, CR2, NEF, ...).
* :func:`read_mosaic`: bare mosaics (``.npy``, 16-bit PNG/TIFF, headerless ``.raw``).
* :func:`write_dng`: a DNG that LibRaw/rawpy and DNG readers open.
"""

from __future__ import annotations

from raw_synth.io.dng import write_dng
from raw_synth.io.images import read_image, write_image
from raw_synth.io.mosaic_files import read_mosaic
from raw_synth.io.raw import RawImage, read_raw

__all__ = ["read_image", "write_image", "RawImage", "read_raw", "read_mosaic", "write_dng"]
