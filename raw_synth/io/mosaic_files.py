"""Bare Bayer mosaics without camera metadata, read as :class:`~raw_synth.io.raw.RawImage`.

Accepted files:

* ``.npy`` (never unpickled): a 2-D mosaic ``(H, W)`` in the given ``cfa``, or an image that
  is already packed in R, Gr, Gb, B plane order, either ``(4, h, w)`` or ``(h, w, 4)`` (a
  leading axis of length 4 is taken as the planes). For a packed file ``cfa`` only records
  the sensor's native pattern.
* 2-D (single-channel) 8- or 16-bit PNG and TIFF mosaics (``.png``, ``.tif``, ``.tiff``).
* Headerless files (``.raw``, ``.bin`` or any name) when ``shape=(H, W)`` is given: ``H * W``
  samples of ``dtype`` (default little-endian uint16, ``'<u2'``), row by row. Giving
  ``shape`` always reads the file as headerless, whatever its suffix.

All values are digital numbers (DN); the result is normalised per plane with the given
black and white level, like :func:`~raw_synth.io.raw.read_raw`, and not clipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from raw_synth.cfa import check_cfa
from raw_synth.errors import RawSynthError
from raw_synth.io.raw import RawImage, _finite_float, _fmt, _four_floats, normalise_planes

__all__ = ["read_mosaic"]

_HEADERLESS = (".raw", ".bin")
_IMAGES = (".png", ".tif", ".tiff")


def read_mosaic(
    path: str | Path,
    cfa: str,
    black_level: float | Sequence[float],
    white_level: float,
    shape: tuple[int, int] | None = None,
    dtype: str | np.dtype = "<u2",
) -> RawImage:
    """Read a bare Bayer mosaic file.

    Args:
        path: ``.npy``, 2-D ``.png``/``.tif``/``.tiff``, or a headerless file with ``shape``.
        cfa: The mosaic's Bayer pattern (``RGGB``, ``GRBG``, ``GBRG``, ``BGGR``).
        black_level: Black level in DN: one value, or four in R, Gr, Gb, B order.
        white_level: Saturation level in DN.
        shape: ``(H, W)`` of a headerless file; when given the file is read as headerless.
        dtype: Sample type of a headerless file (numpy dtype string, default ``'<u2'``).

    Returns:
        RawImage with ``packed`` ``float32`` ``(4, H/2, W/2)`` normalised per plane (not
        clipped), ``source`` set to ``path``; ``wb``, ``xyz_to_cam``, ``noise_profile``,
        ``iso`` and ``camera`` are ``None``.

    Raises:
        RawSynthError: On a missing or unreadable file, an unsupported suffix, a wrong number
            of dimensions, odd height or width, a headerless file whose size does not match
            ``shape`` and ``dtype``, or levels with white <= black.
    """
    name = str(path)
    file = Path(path)
    try:
        pattern = check_cfa(cfa)
        black = _four_floats(black_level, "black_level")
        white = _finite_float(white_level, "white_level")
    except RawSynthError as exc:
        raise RawSynthError(f"{name}: {exc}") from None
    if white <= max(black):
        raise RawSynthError(f"{name}: white_level {white:g} must be greater than every black level {_fmt(black)}")
    if not file.exists():
        raise RawSynthError(f"{name}: file not found")
    if not file.is_file():
        raise RawSynthError(f"{name}: not a file")
    suffix = file.suffix.lower()
    if shape is not None:
        data = _read_headerless(file, name, shape, dtype)
    elif suffix == ".npy":
        data = _read_npy(file, name)
    elif suffix in _IMAGES:
        data = _read_image_mosaic(file, name, suffix)
    elif suffix in _HEADERLESS:
        raise RawSynthError(f"{name}: a headerless mosaic needs shape=(H, W) (and dtype, default '<u2')")
    else:
        raise RawSynthError(f"{name}: unsupported mosaic file type {file.suffix!r}: "
                            f"expected .npy, .png, .tif, .tiff or shape=(H, W)")
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise RawSynthError(f"{name}: mosaic must hold integers or floats, got dtype {data.dtype}")
    if data.ndim == 2:
        height, width = data.shape
        if height % 2 or width % 2:
            raise RawSynthError(f"{name}: mosaic height and width must be even, got {height}x{width}")
        return RawImage.from_mosaic(data, pattern, black, white, source=name)
    if data.ndim == 3 and (data.shape[0] == 4 or data.shape[-1] == 4):
        planes = data if data.shape[0] == 4 else np.moveaxis(data, -1, 0)
        return RawImage(normalise_planes(planes, black, white), pattern, black, white, source=name)
    raise RawSynthError(
        f"{name}: expected a 2-D mosaic (H, W) or a packed (4, h, w) / (h, w, 4) array, got shape {data.shape}"
    )


def _read_headerless(file: Path, name: str, shape: tuple[int, int], dtype: str | np.dtype) -> np.ndarray:
    try:
        sample = np.dtype(dtype)
    except TypeError:
        raise RawSynthError(f"{name}: unknown dtype {dtype!r}") from None
    if not (np.issubdtype(sample, np.integer) or np.issubdtype(sample, np.floating)):
        raise RawSynthError(f"{name}: dtype must be an integer or float type, got {sample}")
    try:
        height, width = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise RawSynthError(f"{name}: shape must be (H, W), got {shape!r}") from None
    if height < 1 or width < 1:
        raise RawSynthError(f"{name}: shape must be positive, got ({height}, {width})")
    expected = height * width * sample.itemsize
    size = file.stat().st_size
    if size != expected:
        raise RawSynthError(
            f"{name}: file has {size} bytes, expected {expected} for shape ({height}, {width}) and dtype {sample.str}"
        )
    return np.fromfile(file, dtype=sample).reshape(height, width)


def _read_npy(file: Path, name: str) -> np.ndarray:
    try:
        return np.load(file, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise RawSynthError(f"{name}: .npy holds Python objects (refusing to unpickle)") from None
        raise RawSynthError(f"{name}: not a valid .npy file ({' '.join(str(exc).split())})") from None
    except (OSError, EOFError) as exc:
        raise RawSynthError(f"{name}: not a valid .npy file ({' '.join(str(exc).split())})") from None


def _read_image_mosaic(file: Path, name: str, suffix: str) -> np.ndarray:
    if suffix in (".tif", ".tiff"):
        try:
            return np.asarray(tifffile.imread(file, key=0))
        except (tifffile.TiffFileError, OSError, ValueError) as exc:
            raise RawSynthError(f"{name}: not a readable TIFF file ({' '.join(str(exc).split())})") from None
    try:
        with Image.open(file) as image:
            image.load()
            if image.mode not in ("L", "I", "I;16", "I;16L", "I;16B", "I;16N"):
                raise RawSynthError(f"{name}: expected a single-channel mosaic image, got mode {image.mode}")
            data = np.asarray(image)
    except UnidentifiedImageError:
        raise RawSynthError(f"{name}: not an image file (cannot identify image format)") from None
    except (OSError, SyntaxError) as exc:
        raise RawSynthError(f"{name}: truncated or corrupt image ({' '.join(str(exc).split())})") from None
    if data.dtype == np.int32 and data.size and (data.min() < 0 or data.max() > 65535):
        raise RawSynthError(f"{name}: 32-bit image values outside 0..65535")
    return data.astype(np.uint16) if data.dtype == np.int32 else data
