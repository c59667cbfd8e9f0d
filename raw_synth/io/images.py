"""Read and write ordinary sRGB images as float32 ``(H, W, 3)`` arrays in [0, 1].

:func:`read_image` accepts what a photo collection holds in practice and always returns the
same thing, a channels-last ``float32`` RGB array in [0, 1]:

* 8-bit images are divided by 255, 16-bit PNG and TIFF by 65535 (full precision is kept);
  floating-point TIFFs are taken as already in [0, 1] and clipped to it;
* grayscale is replicated to three channels, palette images are expanded to their colours;
* an alpha channel is **dropped**, not composited: the colour values are returned as stored,
  whatever their opacity;
* CMYK JPEG and TIFF are converted to RGB by Pillow (its plain, profile-free formula);
* the EXIF Orientation tag is applied (the same result as Pillow's ``ImageOps.exif_transpose``),
  so the array is upright as a viewer shows it;
* embedded ICC profiles are ignored: pixel values are taken as sRGB;
* of a multi-frame file (GIF, multi-page TIFF) only the first frame is read.

:func:`decode_image` is the same reader without the float conversion: a :class:`CompactImage`
keeps the decoded codes (``uint8``, ``uint16``, or ``float32`` for the rare float and CMYK
TIFFs; grey as one channel), upright, optionally shrunk by an integer factor
(:func:`box_reduce`). Its :meth:`CompactImage.crop` converts only the pixels asked for, and gives
exactly the values :func:`read_image` gives for them: a code ``c`` of a ``b``-bit image becomes
``float32(c) / float32(2**b - 1)``, the correctly rounded quotient, which equals the float64
quotient rounded to float32 for every 8- and 16-bit code (a test checks all of them). A photo
cache holds 4 to 12 times more images this way, and a 256-pixel crop of a 4 MP JPEG converts
0.2 MP instead of 4.

Pillow decodes 16-bit colour PNGs to 8 bits, so those are decoded here (a small PNG reader for
non-interlaced 16-bit files; an interlaced one falls back to Pillow's 8-bit decode with a
warning). 16-bit TIFFs are decoded with ``tifffile``.

:func:`write_image` writes 8-bit PNG or JPEG, or 16-bit PNG or TIFF.

Every problem with a file raises :class:`~raw_synth.errors.RawSynthError` with one line that
names the path, e.g. ``"photo.jpg: not an image file (cannot identify image format)"``.

Bounded decoding: the readers refuse an image whose header claims more than ``max_pixels``
(height x width of the stored image; :data:`DEFAULT_MAX_PIXELS`, 2**28, unless given) before
any pixel is allocated: ``"x.tif: image too large (100000x100000 = 10000000000 pixels > limit
268435456; raise --max-pixels)"``. PNG and TIFF headers are read here (IHDR; the first TIFF page's
ImageLength and ImageWidth) before Pillow or tifffile sees the file, other formats are checked
on the size Pillow reads from the header. Pillow's own decompression-bomb check, which depends on
process-wide state and warnings, is not the guard: its threshold
(``PIL.Image.MAX_IMAGE_PIXELS``) is raised to ``max_pixels`` when lower, so it never fires for
an image within the limit, and if it fires for a larger one, that is reported as too large. A
``MemoryError`` while decoding becomes a one-line ``"out of memory while decoding"`` error.
"""

from __future__ import annotations

import logging
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from raw_synth.errors import RawSynthError, one_line
from raw_synth.image_header import (
    DEFAULT_MAX_PIXELS,
    PNG_SIGNATURE,
    TIFF_MAGIC,
    header_size,
    png_header,
    raise_pillow_threshold,
    too_large_reason,
)

__all__ = ["CompactImage", "DEFAULT_MAX_PIXELS", "DOWNSCALES", "box_reduce", "decode_image", "read_image",
           "write_image", "apply_orientation"]

logger = logging.getLogger(__name__)

_EXIF_ORIENTATION = 0x0112
#: Channels per pixel of each PNG colour type that has no palette.
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}
_CORRUPT_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, struct.error, IndexError, KeyError)
#: Shrink factors :func:`decode_image` accepts.
DOWNSCALES: tuple[int, ...] = (1, 2, 4)
#: The float value of an integer code is ``code / _FULL_SCALE[dtype]``.
_FULL_SCALE = {np.dtype(np.uint8): np.float32(255.0), np.dtype(np.uint16): np.float32(65535.0)}


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CompactImage:
    """A decoded image at its stored bit depth, upright; floats only for the pixels asked for.

    Attributes:
        pixels: ``(H, W, C)`` C-contiguous, ``C`` 1 (grey, read as three equal channels) or 3
            (RGB). ``uint8`` (value = code / 255), ``uint16`` (value = code / 65535) or
            ``float32`` (the value itself, in [0, 1]). Treat as read-only.
    """

    pixels: np.ndarray

    @property
    def height(self) -> int:
        """Rows of the upright image."""
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        """Columns of the upright image."""
        return int(self.pixels.shape[1])

    @property
    def nbytes(self) -> int:
        """Bytes the pixels take in memory."""
        return int(self.pixels.nbytes)

    def crop(self, y: int, x: int, height: int, width: int) -> np.ndarray:
        """A window as float32 RGB, the values :func:`read_image` gives for the same pixels.

        Args:
            y: Top row, ``0 <= y <= H - height``.
            x: Left column, ``0 <= x <= W - width``.
            height: Rows of the window.
            width: Columns of the window.

        Returns:
            A new ``float32`` array ``(height, width, 3)`` in [0, 1].

        Raises:
            ValueError: If the window does not lie inside the image.
        """
        if y < 0 or x < 0 or height < 0 or width < 0 or y + height > self.height or x + width > self.width:
            raise ValueError(f"window ({y}, {x}) + {height}x{width} outside a {self.height}x{self.width} image")
        return _to_float(self.pixels[y : y + height, x : x + width])

    def to_float(self) -> np.ndarray:
        """The whole image as float32 RGB ``(H, W, 3)`` in [0, 1] (what :func:`read_image` returns)."""
        return _to_float(self.pixels)


def _to_float(block: np.ndarray) -> np.ndarray:
    """Compact pixels ``(h, w, 1 | 3)`` to a new contiguous float32 RGB ``(h, w, 3)``."""
    scale = _FULL_SCALE.get(block.dtype)
    if scale is None:
        values = np.array(block, dtype=np.float32, copy=True)
    else:
        values = np.divide(block, scale, dtype=np.float32)
    if values.shape[-1] == 1:
        values = np.repeat(values, 3, axis=-1)
    return values


def box_reduce(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Shrink an image by an integer factor: each output pixel is the mean of a ``factor`` square.

    Rows and columns past the last whole block (bottom and right) are dropped. Integer images
    stay in their dtype, rounded half up: ``(sum + factor**2 // 2) // factor**2``, what Pillow's
    ``Image.reduce`` gives for factors 2 and 4. Float images are averaged in float64 and returned
    as float32. Integer arithmetic only for integer images, so the result is the same on every
    machine.

    Args:
        pixels: ``(H, W, C)`` uint8, uint16 or float32 (not modified).
        factor: Shrink factor, ``>= 1``.

    Returns:
        A new C-contiguous array ``(H // factor, W // factor, C)`` of the input's dtype.
    """
    if factor == 1:
        return np.array(pixels, copy=True, order="C")
    height, width = pixels.shape[0] // factor * factor, pixels.shape[1] // factor * factor
    integer = np.issubdtype(pixels.dtype, np.integer)
    wide = (np.uint16 if pixels.dtype == np.uint8 else np.uint32) if integer else np.float64
    rows = pixels[0:height:factor, :width].astype(wide)
    for dy in range(1, factor):
        rows += pixels[dy:height:factor, :width]
    total = np.ascontiguousarray(rows[:, 0::factor])
    for dx in range(1, factor):
        total += rows[:, dx::factor]
    area = factor * factor
    if integer:
        total += area // 2
        total //= area
        return total.astype(pixels.dtype)
    return (total / area).astype(np.float32)


def read_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an sRGB image file as a float32 RGB array.

    Args:
        path: Any image file Pillow can identify (PNG, JPEG, TIFF, BMP, GIF, WebP, ...).
        max_pixels: Refuse, before decoding, an image whose header claims more pixels
            (stored height x width).

    Returns:
        ``float32`` array of shape ``(H, W, 3)`` (channels-last), values in [0, 1], upright
        according to the file's EXIF Orientation. See the module docstring for how bit depth,
        grayscale, alpha, palette and CMYK are handled.

    Raises:
        RawSynthError: If the file is missing, is not an image, is truncated or corrupt, is larger
            than ``max_pixels``, or does not fit in memory.
    """
    image = decode_image(path, max_pixels=max_pixels)
    try:
        return image.to_float()
    except MemoryError:
        raise RawSynthError(f"{path}: out of memory while decoding (MemoryError)") from None


def decode_image(path: str | Path, downscale: int = 1, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> CompactImage:
    """Decode an image file without converting it to float (see :class:`CompactImage`).

    Args:
        path: Any image file :func:`read_image` reads.
        downscale: 1, 2 or 4: shrink the upright image by this factor with :func:`box_reduce`.
        max_pixels: Refuse, before decoding, an image whose header claims more pixels (stored
            height x width), e.g. ``"x.png: image too large (10000x10000 = 100000000 pixels >
            limit 1000000; raise --max-pixels)"``.

    Returns:
        The :class:`CompactImage`, upright, ``(H // downscale, W // downscale, C)``.

    Raises:
        RawSynthError: If the file is missing, is not an image, is truncated or corrupt, is larger
            than ``max_pixels``, does not fit in memory (``"out of memory while decoding
            (MemoryError)"``), or ``downscale`` is not one of :data:`DOWNSCALES`.
    """
    name = str(path)
    if isinstance(downscale, bool) or downscale not in DOWNSCALES:
        raise RawSynthError(f"{name}: downscale must be one of 1, 2, 4, got {downscale!r}")
    _check_max_pixels(name, max_pixels)
    file = Path(path)
    if not file.exists():
        raise RawSynthError(f"{name}: file not found")
    if not file.is_file():
        raise RawSynthError(f"{name}: not a file")
    try:
        size = header_size(file)  # PNG and TIFF: checked before Pillow or tifffile parses the file
        if size is not None:
            _check_size(size[0], size[1], max_pixels)
        raise_pillow_threshold(max_pixels)
        try:
            image = Image.open(file)
        except UnidentifiedImageError:
            if not _is_tiff(file):
                raise RawSynthError(f"{name}: not an image file (cannot identify image format)") from None
            try:  # e.g. floating-point RGB TIFF, which Pillow does not open
                pixels, orientation = _read_tiff_high_bit_depth(file, max_pixels)
            except _CORRUPT_ERRORS as exc:
                raise RawSynthError(f"{name}: truncated or corrupt image ({one_line(exc)})") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise RawSynthError(f"{name}: {too_large_reason(max_pixels)}") from None
        except _CORRUPT_ERRORS as exc:
            raise RawSynthError(f"{name}: cannot read image ({one_line(exc)})") from None
        else:
            with image:
                _check_size(image.height, image.width, max_pixels)
                try:
                    orientation = _orientation(image)
                    pixels = _decode(image, file, max_pixels)
                except RawSynthError:
                    raise
                except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                    raise RawSynthError(f"{name}: {too_large_reason(max_pixels)}") from None
                except _CORRUPT_ERRORS as exc:
                    raise RawSynthError(f"{name}: truncated or corrupt image ({one_line(exc)})") from None
        return CompactImage(box_reduce(apply_orientation(pixels, orientation), int(downscale)))
    except _TooLarge as exc:
        raise RawSynthError(f"{name}: {exc}") from None
    except MemoryError:
        raise RawSynthError(f"{name}: out of memory while decoding (MemoryError)") from None
    except RuntimeError as exc:  # a decoder's own failure (tifffile, its codecs)
        raise RawSynthError(f"{name}: cannot decode image ({type(exc).__name__}: {one_line(exc)})") from None


class _TooLarge(Exception):
    """An image's header claims more pixels than the limit; the message is the one-line reason."""


def _check_size(height: int, width: int, max_pixels: int) -> None:
    """Raise :class:`_TooLarge` when ``height * width`` exceeds ``max_pixels``."""
    if int(height) * int(width) > max_pixels:
        raise _TooLarge(too_large_reason(max_pixels, (height, width)))


def _check_max_pixels(name: str, max_pixels: int) -> None:
    """Refuse a pixel limit that is not a positive integer."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise RawSynthError(f"{name}: max_pixels must be an integer >= 1, got {max_pixels!r}")


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a stored image upright according to an EXIF Orientation value.

    Matches Pillow's ``ImageOps.exif_transpose``: 2 mirrors left-right, 3 rotates by 180
    degrees, 4 mirrors top-bottom, 5 transposes, 6 rotates 90 degrees clockwise, 7 transverses,
    8 rotates 90 degrees counter-clockwise. 1 and unknown values leave the image as is.

    Args:
        image: Array ``(H, W, ...)``.
        orientation: EXIF Orientation tag value (1..8).

    Returns:
        A view of ``image``, reoriented (``(W, H, ...)`` for values 5 to 8).
    """
    if orientation == 2:
        return image[:, ::-1]
    if orientation == 3:
        return image[::-1, ::-1]
    if orientation == 4:
        return image[::-1, :]
    if orientation == 5:
        return np.swapaxes(image, 0, 1)
    if orientation == 6:
        return np.swapaxes(image, 0, 1)[:, ::-1]
    if orientation == 7:
        return np.swapaxes(image, 0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.swapaxes(image, 0, 1)[::-1, :]
    return image


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:  # a broken EXIF block must not make a readable image unreadable
        logger.debug("ignoring unreadable EXIF block in %s", image.filename, exc_info=True)
        return 1


def _decode(image: Image.Image, file: Path, max_pixels: int) -> np.ndarray:
    """Decode pixel data to compact ``(H, W, 1 | 3)`` (see :class:`CompactImage`), stored orientation."""
    if image.format == "PNG":
        header = _png_header(file)
        if header is not None and header["bit_depth"] == 16:
            if header["interlace"] == 0:
                return _channels(_read_png16(file, max_pixels))
            logger.warning("%s: interlaced 16-bit PNG decoded at 8 bits per sample", file)
    if image.format == "TIFF" and _tiff_bits(image) > 8:
        return _read_tiff_high_bit_depth(file, max_pixels)[0]
    return _pillow_pixels(image)


def _pillow_pixels(image: Image.Image) -> np.ndarray:
    image.load()
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return _channels(np.asarray(image).astype(np.uint16))
    if mode == "I":
        return _channels(np.clip(np.asarray(image), 0, 65535).astype(np.uint16))
    if mode == "F":
        return _channels(np.clip(np.nan_to_num(np.asarray(image, dtype=np.float64)), 0.0, 1.0).astype(np.float32))
    if mode in ("L", "LA", "La", "1"):
        return _channels(np.asarray(image if mode == "L" else image.convert("L")))
    # RGB, RGBA, RGBX, RGBa, P, PA, CMYK, YCbCr, HSV, ...: Pillow's own conversion (alpha dropped).
    return np.asarray(image if mode == "RGB" else image.convert("RGB"))


def _channels(values: np.ndarray) -> np.ndarray:
    """Gray, gray+alpha, RGB or RGBA samples as ``(H, W, 1)`` or ``(H, W, 3)`` (alpha dropped; a view)."""
    if values.ndim == 2:
        return values[..., None]
    if values.shape[-1] in (1, 2):
        return values[..., :1]
    return values[..., :3]


# --------------------------------------------------------------------------------------------
# 16-bit TIFF
# --------------------------------------------------------------------------------------------


def _tiff_bits(image: Image.Image) -> int:
    bits = getattr(image, "tag_v2", {}).get(258, 8)
    if isinstance(bits, (tuple, list)):
        return max(int(b) for b in bits) if bits else 8
    return int(bits)


def _is_tiff(file: Path) -> bool:
    with open(file, "rb") as handle:
        return handle.read(4) in TIFF_MAGIC


def _read_tiff_high_bit_depth(file: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, int]:
    """Decode the first TIFF page with tifffile: compact pixels and the page's Orientation.

    ``uint8`` and ``uint16`` grey or RGB pages stay integer codes; other sample types, inverted
    grey (MINISWHITE) and CMYK become float32 in [0, 1], computed in float64 as before.

    Raises:
        _TooLarge: The page's header claims more than ``max_pixels`` (checked before any pixel
            is allocated).
    """
    try:
        with tifffile.TiffFile(file) as tif:
            page = tif.pages[0]
            _check_size(page.imagelength, page.imagewidth, max_pixels)
            data = page.asarray()
            orientation_tag = page.tags.get(274)
            orientation = int(orientation_tag.value) if orientation_tag is not None else 1
            photometric = int(page.photometric)
            extrasamples = len(page.extrasamples)
            separate_planes = int(page.planarconfig) == 2 and page.samplesperpixel > 1
    except tifffile.TiffFileError as exc:
        raise OSError(one_line(exc)) from None
    data = np.asarray(data)
    if separate_planes and data.ndim == 3:
        data = np.moveaxis(data, 0, -1)
    if photometric == 5:  # SEPARATED (CMYK): the same profile-free formula Pillow uses
        if data.ndim != 3 or data.shape[-1] < 4:
            raise ValueError("CMYK TIFF without four ink channels")
        scaled = _unit_float64(data)
        ink, black = scaled[..., :3], scaled[..., 3:4]
        return ((1.0 - ink) * (1.0 - black)).astype(np.float32), orientation
    if data.ndim == 3 and data.shape[-1] - extrasamples not in (1, 3):
        raise ValueError(f"unsupported TIFF sample layout {data.shape}")
    if data.dtype in (np.uint8, np.uint16) and photometric != 0:
        return _channels(data), orientation
    scaled = _unit_float64(data)
    if photometric == 0:  # MINISWHITE
        scaled = 1.0 - scaled
    return _channels(scaled).astype(np.float32), orientation


def _unit_float64(data: np.ndarray) -> np.ndarray:
    """TIFF samples to float64 in [0, 1]: floats clipped, integers divided by their dtype's maximum."""
    if np.issubdtype(data.dtype, np.floating):
        return np.clip(np.nan_to_num(data.astype(np.float64)), 0.0, 1.0)
    info = np.iinfo(data.dtype)
    return np.clip(data.astype(np.float64), 0, info.max) / float(info.max)


# --------------------------------------------------------------------------------------------
# 16-bit PNG (Pillow decodes 16-bit colour PNG to 8 bits only)
# --------------------------------------------------------------------------------------------


def _png_chunks(data: bytes):
    if not data.startswith(PNG_SIGNATURE):
        raise SyntaxError("not a PNG file")
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length:
            raise OSError("image file is truncated")
        yield kind, body
        if kind == b"IEND":
            return
        pos += 12 + length
    raise OSError("image file is truncated (no IEND chunk)")


def _png_header(file: Path) -> dict[str, int] | None:
    with open(file, "rb") as handle:
        return png_header(handle.read(33))


def _read_png16(file: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a non-interlaced 16-bit PNG to uint16 ``(H, W, C)``.

    Raises:
        _TooLarge: The IHDR claims more than ``max_pixels`` (checked before inflating).
    """
    data = file.read_bytes()
    header: dict[str, int] | None = None
    compressed = bytearray()
    for kind, body in _png_chunks(data):
        if kind == b"IHDR":
            width, height, bit_depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body[:13])
            header = {"width": width, "height": height, "colour_type": colour_type}
        elif kind == b"IDAT":
            compressed += body
    if header is None:
        raise SyntaxError("PNG without IHDR chunk")
    channels = _PNG_CHANNELS.get(header["colour_type"])
    if channels is None:
        raise SyntaxError(f"bad PNG colour type {header['colour_type']} for 16 bits")
    height, width = header["height"], header["width"]
    _check_size(height, width, max_pixels)
    bpp = 2 * channels
    stride = width * bpp + 1
    raw = zlib.decompressobj().decompress(bytes(compressed), height * stride)
    if len(raw) < height * stride:
        raise OSError("image file is truncated")
    rows = np.frombuffer(raw, dtype=np.uint8, count=height * stride).reshape(height, stride)
    filters = rows[:, 0]
    if filters.max(initial=0) > 4:
        raise SyntaxError("broken PNG file (unknown filter type)")
    pixels = _png_unfilter(rows[:, 1:].reshape(height, width, bpp), filters)
    return pixels.view(">u2").reshape(height, width, channels).astype(np.uint16)


def _png_unfilter(filtered: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Undo PNG row filters (PNG spec section 9) on ``(H, W, bpp)`` bytes.

    Each byte depends on its left, upper and upper-left neighbours, so the pixels of one
    anti-diagonal are independent of each other: the loop runs over the ``H + W - 1``
    anti-diagonals, vectorised along each.
    """
    height, width, bpp = filtered.shape
    recon = np.zeros((height + 1, width + 1, bpp), dtype=np.int16)  # zero row/column = outside
    ftype = filters.astype(np.int64)
    for diag in range(height + width - 1):
        r = np.arange(max(0, diag - width + 1), min(diag, height - 1) + 1)
        c = diag - r
        left = recon[r + 1, c]
        up = recon[r, c + 1]
        upleft = recon[r, c]
        kind = ftype[r][:, None]
        estimate = left + up - upleft
        dist_left, dist_up, dist_ul = np.abs(estimate - left), np.abs(estimate - up), np.abs(estimate - upleft)
        paeth = np.where((dist_left <= dist_up) & (dist_left <= dist_ul), left,
                         np.where(dist_up <= dist_ul, up, upleft))
        predictor = np.select(
            [kind == 1, kind == 2, kind == 3, kind == 4],
            [left, up, (left + up) >> 1, paeth],
            default=0,
        )
        recon[r + 1, c + 1] = (filtered[r, c].astype(np.int16) + predictor) & 0xFF
    return recon[1:, 1:].astype(np.uint8)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _encode_png16(rgb16: np.ndarray) -> bytes:
    """Encode uint16 ``(H, W, 3)`` as a 16-bit RGB PNG (Paeth filter on every row)."""
    height, width, channels = rgb16.shape
    data = rgb16.astype(">u2").view(np.uint8).reshape(height, width, 2 * channels).astype(np.int16)
    left = np.zeros_like(data)
    left[:, 1:] = data[:, :-1]
    up = np.zeros_like(data)
    up[1:] = data[:-1]
    upleft = np.zeros_like(data)
    upleft[1:, 1:] = data[:-1, :-1]
    estimate = left + up - upleft
    dist_left, dist_up, dist_ul = np.abs(estimate - left), np.abs(estimate - up), np.abs(estimate - upleft)
    paeth = np.where((dist_left <= dist_up) & (dist_left <= dist_ul), left, np.where(dist_up <= dist_ul, up, upleft))
    filtered = ((data - paeth) & 0xFF).astype(np.uint8).reshape(height, -1)
    rows = np.concatenate([np.full((height, 1), 4, dtype=np.uint8), filtered], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _png_chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------

_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}


def write_image(path: str | Path, rgb: np.ndarray, bits: Literal[8, 16] = 8, quality: int = 95) -> Path:
    """Write an RGB image as PNG, JPEG or TIFF.

    Args:
        path: Output file; the suffix picks the format: ``.png``, ``.jpg``/``.jpeg`` (8-bit
            only), ``.tif``/``.tiff``. The folder must exist.
        rgb: ``(H, W, 3)`` channels-last. Floating-point values are taken as [0, 1] (values
            outside are clipped) and rounded to the nearest code; a ``uint8`` array (for
            ``bits=8``) or ``uint16`` array (for ``bits=16``) is written unchanged.
        bits: 8 or 16 bits per sample.
        quality: JPEG quality (1..95); ignored for other formats.

    Returns:
        The path written.

    Raises:
        RawSynthError: On a wrong shape, non-finite values, an integer dtype that does not
            match ``bits``, an unknown suffix, 16-bit JPEG, or a write failure.
    """
    name = str(path)
    out = Path(path)
    fmt = _FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise RawSynthError(f"{name}: unknown image format {out.suffix!r}: expected .png, .jpg, .jpeg, .tif or .tiff")
    if bits not in (8, 16):
        raise RawSynthError(f"{name}: bits must be 8 or 16, got {bits!r}")
    if fmt == "JPEG" and bits != 8:
        raise RawSynthError(f"{name}: JPEG supports 8 bits only, got bits={bits}")
    array = np.asarray(rgb)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise RawSynthError(f"{name}: image must have shape (H, W, 3), got {array.shape}")
    codes = _quantise(array, bits, name)
    try:
        if fmt == "TIFF":
            tifffile.imwrite(out, codes, photometric="rgb", metadata=None)
        elif fmt == "PNG" and bits == 16:
            out.write_bytes(_encode_png16(codes))
        elif fmt == "JPEG":
            Image.fromarray(codes, mode=None).save(out, format="JPEG", quality=int(quality))
        else:
            Image.fromarray(codes).save(out, format="PNG")
    except OSError as exc:
        raise RawSynthError(f"{name}: cannot write image ({one_line(exc)})") from None
    return out


def _quantise(array: np.ndarray, bits: int, name: str) -> np.ndarray:
    target = np.uint8 if bits == 8 else np.uint16
    if array.dtype == target:
        return np.ascontiguousarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        raise RawSynthError(
            f"{name}: image dtype {array.dtype} does not match bits={bits}: "
            f"pass floats in [0, 1] or {np.dtype(target).name}"
        )
    if not np.isfinite(array).all():
        raise RawSynthError(f"{name}: image contains NaN or infinite values")
    top = float(2**bits - 1)
    return np.ascontiguousarray(np.round(np.clip(array.astype(np.float64), 0.0, 1.0) * top).astype(target))
