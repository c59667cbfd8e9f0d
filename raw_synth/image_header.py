"""What an image file's header claims, read before any decoder sees the file, and the pixel limit.

:func:`header_size` reads a PNG's IHDR or a TIFF's first IFD with plain ``struct`` reads, so a
crafted header that claims 100000 x 100000 pixels costs nothing. The source scan
(:mod:`raw_synth.sources`) and the decoders (:mod:`raw_synth.io.images`) both refuse an image over
``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS`) with :func:`too_large_reason`, before
allocating anything. :func:`raise_pillow_threshold` keeps Pillow's own, process-wide and
warning-based, decompression-bomb check out of the way for images within the limit, so that a scan
on many threads gives the same answer every time (``warnings.catch_warnings`` is not thread-safe).
"""

from __future__ import annotations

import struct
import threading
from pathlib import Path

__all__ = ["DEFAULT_MAX_PIXELS", "PNG_SIGNATURE", "TIFF_MAGIC", "header_size", "png_header", "raise_pillow_threshold",
           "too_large_reason"]

#: Default ``--max-pixels``: the largest image (stored height x width) a source may hold, 16384 x
#: 16384; also the default of :mod:`raw_synth.io.images`'s readers.
DEFAULT_MAX_PIXELS = 2**28
#: Guards the raise of Pillow's decompression-bomb threshold (scanning threads, decoders).
_PILLOW_LIMIT_LOCK = threading.Lock()
#: The first bytes of every PNG file, and of the four kinds of TIFF (classic and Big, both byte orders).
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")


def too_large_reason(max_pixels: int, size: tuple[int, int] | None = None) -> str:
    """Why an image over the pixel limit is refused (the scan's skip reason, the decoders' message).

    Args:
        max_pixels: The limit.
        size: ``(height, width)`` the header claims; ``None`` when only Pillow's decompression-bomb
            check saw it.

    Returns:
        E.g. ``"image too large (100000x100000 = 10000000000 pixels > limit 268435456; raise
        --max-pixels)"``.
    """
    if size is None:
        return f"image too large (more than {int(max_pixels)} pixels; raise --max-pixels)"
    height, width = int(size[0]), int(size[1])
    return f"image too large ({height}x{width} = {height * width} pixels > limit {int(max_pixels)}; raise --max-pixels)"


def raise_pillow_threshold(max_pixels: int) -> None:
    """Keep Pillow's own decompression-bomb check quiet for images within ``max_pixels``.

    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` and raises above twice that, from process-wide
    state and through warnings; the explicit check against ``max_pixels`` is the guard here. So
    the threshold is raised to ``max_pixels`` when lower, under a lock; it is never lowered
    (``None``, Pillow's "no check", stays), which leaves other Pillow users of the process at
    least as much room as before.

    Args:
        max_pixels: The limit the caller checks itself.
    """
    from PIL import Image

    with _PILLOW_LIMIT_LOCK:
        current = Image.MAX_IMAGE_PIXELS
        if current is not None and current < max_pixels:
            Image.MAX_IMAGE_PIXELS = int(max_pixels)


def png_header(head: bytes) -> dict[str, int] | None:
    """The IHDR of a PNG from its first 33 bytes: ``width``, ``height``, ``bit_depth``,
    ``colour_type``, ``interlace``; ``None`` when ``head`` is not the start of a PNG."""
    if len(head) < 33 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    width, height, bit_depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return {"width": width, "height": height, "bit_depth": bit_depth, "colour_type": colour_type,
            "interlace": interlace}


def header_size(path: str | Path) -> tuple[int, int] | None:
    """``(height, width)`` that a PNG's IHDR or a TIFF's first IFD claims, read without decoding anything.

    Neither Pillow nor tifffile sees the file, so a crafted header costs nothing and prints
    nothing; for other formats, and headers this cannot read, the answer is ``None``.

    Args:
        path: The file (a regular file: it is opened).

    Returns:
        ``(height, width)`` as stored (before any EXIF turn), or ``None``.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(33)
            if head.startswith(PNG_SIGNATURE):
                png = png_header(head)
                return None if png is None else (int(png["height"]), int(png["width"]))
            if head[:4] not in TIFF_MAGIC:
                return None
            return _tiff_ifd_size(handle, "<" if head[:2] == b"II" else ">", head)
    except (OSError, struct.error):  # the decoder that reads the file next reports it
        return None


def _tiff_ifd_size(handle, order: str, head: bytes) -> tuple[int, int] | None:
    """ImageLength and ImageWidth of the first IFD of a classic or Big TIFF (``head``: its first bytes)."""
    if head[2:4] in (b"*\0", b"\0*"):  # classic: 2-byte entry count, 12-byte entries, value at 8
        offset, count_format, entry_size, value_at = struct.unpack(order + "I", head[4:8])[0], "H", 12, 8
    else:  # BigTIFF: 8-byte entry count, 20-byte entries, value at 12
        offset, count_format, entry_size, value_at = struct.unpack(order + "Q", head[8:16])[0], "Q", 20, 12
    handle.seek(offset)
    (count,) = struct.unpack(order + count_format, handle.read(struct.calcsize(count_format)))
    entries = handle.read(min(int(count), 4096) * entry_size)
    values: dict[int, int] = {}
    for start in range(0, len(entries) - entry_size + 1, entry_size):
        tag, kind = struct.unpack(order + "HH", entries[start : start + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT, LONG or LONG8, stored in the entry
            value_format = {3: "H", 4: "I", 16: "Q"}.get(kind)
            if value_format is None:
                return None
            at = start + value_at
            values[tag] = struct.unpack(order + value_format, entries[at : at + struct.calcsize(value_format)])[0]
    if 256 not in values or 257 not in values:
        return None
    return int(values[257]), int(values[256])
