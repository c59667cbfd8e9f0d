"""Write a :class:`~raw_synth.io.raw.RawImage` as a DNG file that LibRaw/rawpy opens.

The file is a single-IFD, uncompressed, little-endian DNG 1.4 holding the native-phase CFA
mosaic as 16-bit integers, ``DN = round(packed * (white - black) + black)`` per plane,
clipped to [0, 65535]. Tags written (DNG specification 1.4):

* TIFF: NewSubfileType 0, ImageWidth/Length, BitsPerSample 16, Compression 1,
  PhotometricInterpretation 32803 (CFA), SamplesPerPixel 1, one strip, Software, and Model
  when known;
* EXIF: when the ISO is known, an Exif IFD (pointer tag 34665 in IFD 0) holding ExifVersion
  ``0231`` and ISOSpeedRatings (34855, PhotographicSensitivity). The ISO sits only there, where
  EXIF readers look for it (LibRaw reads it there too; ``exiftool -validate`` flags it in IFD 0);
* CFA: CFARepeatPatternDim (2, 2), CFAPattern (0 = R, 1 = G, 2 = B), CFAPlaneColor (R, G, B),
  CFALayout 1 (rectangular);
* levels: BlackLevelRepeatDim (2, 2) with BlackLevel for each site of the 2x2 tile, so every
  plane keeps its own black level, and WhiteLevel;
* colour: ColorMatrix1 (XYZ to camera) with CalibrationIlluminant1 21 (D65); AsShotNeutral
  (``1 / wb`` normalised to green) when ``wb`` is set;
* DNGVersion 1.4.0.0, DNGBackwardVersion 1.1.0.0, UniqueCameraModel, and NoiseProfile when
  ``noise_profile`` is set.

Limits that follow from the format (and from what LibRaw reports):

* black and white levels must be whole DNs in [0, 65535] (LibRaw truncates fractional ones);
* a RawImage without ``xyz_to_cam`` gets the XYZ(D65)-to-linear-sRGB matrix as ColorMatrix1
  (a DNG with colour needs one), so reading the file back gives that matrix;
* DNG has one white-balance value and one NoiseProfile pair per *colour* (R, G, B), not per
  green plane: when Gr and Gb differ, their mean is written (with a warning);
* the ISO is written as a whole number.
"""

from __future__ import annotations

import logging
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import tifffile

from raw_synth import __version__
from raw_synth.cfa import site_offsets
from raw_synth.errors import RawSynthError
from raw_synth.io.raw import D65, RawImage

__all__ = ["write_dng", "SRGB_XYZ_TO_CAM"]

logger = logging.getLogger(__name__)

#: Linear sRGB (D65) to CIE XYZ, IEC 61966-2-1.
_SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
#: ColorMatrix1 written when a RawImage has no ``xyz_to_cam``: a camera with sRGB primaries.
SRGB_XYZ_TO_CAM: np.ndarray = np.linalg.inv(_SRGB_TO_XYZ)
SRGB_XYZ_TO_CAM.setflags(write=False)

_COLOUR_INDEX = {"R": 0, "G": 1, "B": 2}
_INT32_MAX = 2**31 - 1
_TAG_EXIF_IFD = 34665
_TAG_EXIF_PLACEHOLDER = _TAG_EXIF_IFD - 1  # no TIFF, EXIF or DNG tag has this code
_TAG_ISO = 34855
_TAG_EXIF_VERSION = 36864
_EXIF_VERSION = b"0231"
_SHORT, _LONG, _UNDEFINED = 3, 4, 7  # TIFF field types
_UINT32_MAX = 2**32 - 1


def write_dng(path: str | Path, raw: RawImage) -> Path:
    """Write a RawImage as an uncompressed DNG.

    To write a bare packed array, build the RawImage first, e.g.
    ``write_dng("x.dng", RawImage(packed, "GRBG", black_level=64, white_level=1023))``.

    Args:
        path: Output file (conventionally ``.dng``); its folder must exist.
        raw: The image: ``packed`` ``(4, h, w)`` normalised, native ``cfa``, levels and the
            optional metadata (``wb``, ``xyz_to_cam``, ``noise_profile``, ``iso``, ``camera``).

    Returns:
        The path written.

    Raises:
        RawSynthError: If ``raw`` is not a RawImage, a level is not a whole DN in
            [0, 65535], or the file cannot be written.
    """
    name = str(path)
    if not isinstance(raw, RawImage):
        raise RawSynthError(f"{name}: write_dng needs a RawImage, got {type(raw).__name__}")
    black = [_whole_dn(v, "black_level", name) for v in raw.black_level]
    white = _whole_dn(raw.white_level, "white_level", name)
    mosaic = raw.mosaic_dn()
    height, width = mosaic.shape

    black_tile = np.zeros((2, 2), dtype=np.int64)
    for plane, (dy, dx) in enumerate(site_offsets(raw.cfa)):
        black_tile[dy, dx] = black[plane]
    camera = raw.camera.strip() if raw.camera and raw.camera.strip() else None
    xyz_to_cam = raw.xyz_to_cam if raw.xyz_to_cam is not None else SRGB_XYZ_TO_CAM

    tags: list[tuple[int, str, int, object, bool]] = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, bytes(_COLOUR_INDEX[c] for c in raw.cfa), True),  # CFAPattern
        (50706, "B", 4, bytes((1, 4, 0, 0)), True),  # DNGVersion
        (50707, "B", 4, bytes((1, 1, 0, 0)), True),  # DNGBackwardVersion
        (50708, "s", 0, camera or "raw-synth", True),  # UniqueCameraModel
        (50710, "B", 3, bytes((0, 1, 2)), True),  # CFAPlaneColor
        (50711, "H", 1, 1, True),  # CFALayout: rectangular
        (50713, "H", 2, (2, 2), True),  # BlackLevelRepeatDim
        (50714, "I", 4, tuple(int(v) for v in black_tile.reshape(-1)), True),  # BlackLevel
        (50717, "I", 1, white, True),  # WhiteLevel
        (50721, "2i", 9, _rationals(xyz_to_cam.reshape(-1), signed=True, name=name), True),  # ColorMatrix1
        (50778, "H", 1, D65, True),  # CalibrationIlluminant1
    ]
    if camera:
        tags.append((272, "s", 0, camera, True))  # Model
    iso = None if raw.iso is None else int(min(65535, max(1, round(raw.iso))))
    if iso is not None:
        # tifffile does not write tag 34665 itself: a LONG under the unused code just below it
        # (so IFD 0 stays sorted) becomes the ExifIFD pointer after writing
        tags.append((_TAG_EXIF_PLACEHOLDER, "I", 1, 0, True))
    if raw.wb is not None:
        red, green, blue = _per_colour(raw.wb, "wb", name)
        neutral = (green / red, 1.0, green / blue)
        tags.append((50728, "2I", 3, _rationals(neutral, signed=False, name=name), True))  # AsShotNeutral
    if raw.noise_profile is not None:
        pairs = raw.noise_profile
        if all(pair == pairs[0] for pair in pairs):
            values = tuple(pairs[0])
        else:
            shot = _per_colour([p[0] for p in pairs], "noise_profile shot", name)
            read = _per_colour([p[1] for p in pairs], "noise_profile read", name)
            values = tuple(v for pair in zip(shot, read) for v in pair)
        tags.append((51041, "d", len(values), values, True))  # NoiseProfile

    out = Path(path)
    try:
        tifffile.imwrite(
            out,
            mosaic,
            byteorder="<",
            photometric=32803,
            subfiletype=0,
            rowsperstrip=height,
            compression=None,
            software=f"raw-synth {__version__}",
            metadata=None,
            extratags=sorted(tags, key=lambda tag: tag[0]),
        )
        if iso is not None:
            _append_exif_ifd(out, iso)
    except OSError as exc:
        raise RawSynthError(f"{name}: cannot write DNG ({' '.join(str(exc).split())})") from None
    logger.debug("wrote %s: %dx%d %s DNG", name, width, height, raw.cfa)
    return out


def _append_exif_ifd(path: Path, iso: int) -> None:
    """Append an Exif IFD holding ExifVersion and ISOSpeedRatings; point IFD 0's tag 34665 at it.

    The file is a little-endian classic TIFF as tifffile wrote it, with a placeholder LONG
    entry (code 34664) in IFD 0 that becomes the 34665 pointer. The new IFD starts on a word
    boundary at the end of the file; both values fit in their entries, so it is
    2 + 2 * 12 + 4 bytes.
    """
    with open(path, "r+b") as file:
        header = file.read(8)
        if header[:4] != b"II*\x00":
            raise OSError(f"unexpected TIFF header {header[:4]!r}")
        (ifd0,) = struct.unpack("<I", header[4:8])
        file.seek(ifd0)
        (count,) = struct.unpack("<H", file.read(2))
        entries = file.read(12 * count)
        pointer = None
        for index in range(count):
            code, kind, n = struct.unpack_from("<HHI", entries, 12 * index)
            if code == _TAG_EXIF_PLACEHOLDER and kind == _LONG and n == 1:
                pointer = ifd0 + 2 + 12 * index
                break
        if pointer is None:
            raise OSError("ExifIFD placeholder tag missing from IFD 0")
        end = file.seek(0, 2)
        if end % 2:
            file.write(b"\x00")
            end += 1
        exif = struct.pack("<H", 2)
        exif += struct.pack("<HHIHH", _TAG_ISO, _SHORT, 1, iso, 0)
        exif += struct.pack("<HHI4s", _TAG_EXIF_VERSION, _UNDEFINED, 4, _EXIF_VERSION)
        exif += struct.pack("<I", 0)  # no next IFD
        file.write(exif)
        file.seek(pointer)
        file.write(struct.pack("<HHII", _TAG_EXIF_IFD, _LONG, 1, end))


def _whole_dn(value: float, what: str, name: str) -> int:
    rounded = round(value)
    if abs(value - rounded) > 1e-6 or not 0 <= rounded <= 65535:
        raise RawSynthError(f"{name}: DNG {what} must be a whole DN in [0, 65535], got {value:g}")
    return int(rounded)


def _per_colour(values: "tuple[float, ...] | list[float]", what: str, name: str) -> tuple[float, float, float]:
    """(R, Gr, Gb, B) to (R, G, B); the greens are averaged when they differ."""
    red, green_r, green_b, blue = (float(v) for v in values)
    if green_r != green_b:
        logger.warning("%s: %s differs between Gr and Gb (%g, %g); DNG stores their mean", name, what, green_r, green_b)
    return red, (green_r + green_b) / 2.0, blue


def _rationals(values: "np.ndarray | tuple[float, ...]", signed: bool, name: str) -> tuple[int, ...]:
    """Floats to flat (numerator, denominator) pairs for RATIONAL/SRATIONAL tags."""
    limit = _INT32_MAX if signed else _UINT32_MAX
    out: list[int] = []
    for value in values:
        value = float(value)
        if not np.isfinite(value) or abs(value) >= limit or (not signed and value < 0):
            raise RawSynthError(f"{name}: value {value:g} cannot be stored as a DNG rational")
        max_den = max(1, min(limit, int((limit - 1) // max(1.0, abs(value) + 1.0))))
        fraction = Fraction(value).limit_denominator(max_den)
        out += [fraction.numerator, fraction.denominator]
    return tuple(out)
