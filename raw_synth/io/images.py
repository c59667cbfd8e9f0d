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

Pillow decodes 16-bit colour PNGs to 8 bits, so those are decoded here (a small PNG reader for
non-interlaced 16-bit files; an interlaced one falls back to Pillow's 8-bit decode with a
warning). 16-bit TIFFs are decoded with ``tifffile``.

:func:`write_image` writes 8-bit PNG or JPEG, or 16-bit PNG or TIFF.

Every problem with a file raises :class:`~raw_synth.errors.RawSynthError` with one line that
names the path, e.g. ``"photo.jpg: not an image file (cannot identify image format)"``.
"""

from __future__ import annotations

import logging
import struct
import warnings
import zlib
from pathlib import Path
from typing import Literal

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from raw_synth.errors import RawSynthError

__all__ = ["read_image", "write_image", "apply_orientation"]

logger = logging.getLogger(__name__)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_ORIENTATION = 0x0112
#: Channels per pixel of each PNG colour type that has no palette.
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}
_CORRUPT_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, struct.error, IndexError, KeyError)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def read_image(path: str | Path) -> np.ndarray:
    """Read an sRGB image file as a float32 RGB array.

    Args:
        path: Any image file Pillow can identify (PNG, JPEG, TIFF, BMP, GIF, WebP, ...).

    Returns:
        ``float32`` array of shape ``(H, W, 3)`` (channels-last), values in [0, 1], upright
        according to the file's EXIF Orientation. See the module docstring for how bit depth,
        grayscale, alpha, palette and CMYK are handled.

    Raises:
        RawSynthError: If the file is missing, is not an image, or is truncated or corrupt.
    """
    name = str(path)
    file = Path(path)
    if not file.exists():
        raise RawSynthError(f"{name}: file not found")
    if not file.is_file():
        raise RawSynthError(f"{name}: not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(file)
    except UnidentifiedImageError:
        if _is_tiff(file):  # e.g. floating-point RGB TIFF, which Pillow does not open
            try:
                data, orientation = _read_tiff_high_bit_depth(file)
            except _CORRUPT_ERRORS as exc:
                raise RawSynthError(f"{name}: truncated or corrupt image ({_one_line(exc)})") from None
            return np.ascontiguousarray(apply_orientation(data, orientation), dtype=np.float32)
        raise RawSynthError(f"{name}: not an image file (cannot identify image format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RawSynthError(f"{name}: image too large to read safely ({exc})") from None
    except _CORRUPT_ERRORS as exc:
        raise RawSynthError(f"{name}: cannot read image ({_one_line(exc)})") from None
    with image:
        try:
            orientation = _orientation(image)
            data = _decode(image, file)
        except RawSynthError:
            raise
        except _CORRUPT_ERRORS as exc:
            raise RawSynthError(f"{name}: truncated or corrupt image ({_one_line(exc)})") from None
    rgb = apply_orientation(data, orientation)
    return np.ascontiguousarray(rgb, dtype=np.float32)


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


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:  # a broken EXIF block must not make a readable image unreadable
        logger.debug("ignoring unreadable EXIF block in %s", image.filename, exc_info=True)
        return 1


def _decode(image: Image.Image, file: Path) -> np.ndarray:
    """Decode pixel data to float64 RGB ``(H, W, 3)`` in [0, 1], stored orientation."""
    if image.format == "PNG":
        header = _png_header(file)
        if header is not None and header["bit_depth"] == 16:
            if header["interlace"] == 0:
                return _to_rgb(_read_png16(file), 65535.0)
            logger.warning("%s: interlaced 16-bit PNG decoded at 8 bits per sample", file)
    if image.format == "TIFF" and _tiff_bits(image) > 8:
        return _read_tiff_high_bit_depth(file)[0]
    return _pillow_rgb(image)


def _pillow_rgb(image: Image.Image) -> np.ndarray:
    image.load()
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return _to_rgb(np.asarray(image).astype(np.uint16), 65535.0)
    if mode == "I":
        return _to_rgb(np.clip(np.asarray(image), 0, 65535), 65535.0)
    if mode == "F":
        return _to_rgb(np.clip(np.nan_to_num(np.asarray(image, dtype=np.float64)), 0.0, 1.0), 1.0)
    if mode in ("L", "LA", "La", "1"):
        return _to_rgb(np.asarray(image.convert("L")), 255.0)
    # RGB, RGBA, RGBX, RGBa, P, PA, CMYK, YCbCr, HSV, ...: Pillow's own conversion (alpha dropped).
    return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


def _to_rgb(values: np.ndarray, scale: float) -> np.ndarray:
    """Gray, gray+alpha, RGB or RGBA integer data to float RGB in [0, 1] (alpha dropped)."""
    data = np.asarray(values, dtype=np.float64) / scale
    if data.ndim == 2:
        data = data[..., None]
    channels = data.shape[-1]
    if channels in (1, 2):
        return np.repeat(data[..., :1], 3, axis=-1)
    return data[..., :3]


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
        return handle.read(4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _read_tiff_high_bit_depth(file: Path) -> tuple[np.ndarray, int]:
    """Decode the first TIFF page with tifffile: float RGB in [0, 1] and its Orientation."""
    try:
        with tifffile.TiffFile(file) as tif:
            page = tif.pages[0]
            data = page.asarray()
            orientation_tag = page.tags.get(274)
            orientation = int(orientation_tag.value) if orientation_tag is not None else 1
            photometric = int(page.photometric)
            extrasamples = len(page.extrasamples)
            separate_planes = int(page.planarconfig) == 2 and page.samplesperpixel > 1
    except tifffile.TiffFileError as exc:
        raise OSError(_one_line(exc)) from None
    data = np.asarray(data)
    if separate_planes and data.ndim == 3:
        data = np.moveaxis(data, 0, -1)
    if np.issubdtype(data.dtype, np.floating):
        scaled = np.clip(np.nan_to_num(data.astype(np.float64)), 0.0, 1.0)
    else:
        info = np.iinfo(data.dtype)
        scaled = np.clip(data.astype(np.float64), 0, info.max) / float(info.max)
    if photometric == 0:  # MINISWHITE
        scaled = 1.0 - scaled
    if photometric == 5:  # SEPARATED (CMYK): the same profile-free formula Pillow uses
        if scaled.ndim != 3 or scaled.shape[-1] < 4:
            raise ValueError("CMYK TIFF without four ink channels")
        ink, black = scaled[..., :3], scaled[..., 3:4]
        return (1.0 - ink) * (1.0 - black), orientation
    if scaled.ndim == 3 and scaled.shape[-1] - extrasamples not in (1, 3):
        raise ValueError(f"unsupported TIFF sample layout {scaled.shape}")
    return _to_rgb(scaled, 1.0), orientation


# --------------------------------------------------------------------------------------------
# 16-bit PNG (Pillow decodes 16-bit colour PNG to 8 bits only)
# --------------------------------------------------------------------------------------------


def _png_chunks(data: bytes):
    if not data.startswith(_PNG_SIGNATURE):
        raise SyntaxError("not a PNG file")
    pos = len(_PNG_SIGNATURE)
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
        head = handle.read(33)
    if len(head) < 33 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    width, height, bit_depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return {"width": width, "height": height, "bit_depth": bit_depth, "colour_type": colour_type, "interlace": interlace}


def _read_png16(file: Path) -> np.ndarray:
    """Decode a non-interlaced 16-bit PNG to uint16 ``(H, W, C)``."""
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
        paeth = np.where((dist_left <= dist_up) & (dist_left <= dist_ul), left, np.where(dist_up <= dist_ul, up, upleft))
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
        _PNG_SIGNATURE
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
        raise RawSynthError(f"{name}: cannot write image ({_one_line(exc)})") from None
    return out


def _quantise(array: np.ndarray, bits: int, name: str) -> np.ndarray:
    target = np.uint8 if bits == 8 else np.uint16
    if array.dtype == target:
        return np.ascontiguousarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        raise RawSynthError(
            f"{name}: image dtype {array.dtype} does not match bits={bits}: pass floats in [0, 1] or {np.dtype(target).name}"
        )
    if not np.isfinite(array).all():
        raise RawSynthError(f"{name}: image contains NaN or infinite values")
    top = float(2**bits - 1)
    return np.ascontiguousarray(np.round(np.clip(array.astype(np.float64), 0.0, 1.0) * top).astype(target))
