"""Camera RAW files as :class:`RawImage`: a packed, normalised Bayer image plus its metadata.

:func:`read_raw` opens any Bayer RAW that LibRaw reads (through ``rawpy``): DNG, CR2, NEF,
ARW, KDC, ... It returns the *visible* sensor area, packed into four planes in R, Gr, Gb, B
order with :func:`raw_synth.cfa.pack` (whatever the native phase; the phase travels as
``cfa``), normalised per plane as ``(DN - black) / (white - black)``.

Two choices worth knowing:

* **Odd sizes are cropped.** A visible area with an odd height or width loses its last row
  or column, so that the mosaic packs into whole 2x2 tiles. The top-left tile, and with it the
  CFA phase, is kept.
* **No clipping.** Normalised values are kept as they are: pixels below the black level are
  negative and pixels above the white level exceed 1, so noise statistics near black are
  unbiased and a file written back holds the same DNs.

For DNG files some tags are read with ``tifffile`` as well, since rawpy does not expose them:
NoiseProfile (51041), AsShotNeutral, ColorMatrix1/2 and the ISO. For other TIFF-based RAW
files (CR2, NEF, KDC, ...) the Make and Model tags name the camera.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rawpy
import tifffile

from raw_synth.cfa import cfa_from_raw_pattern, check_cfa, pack, site_offsets, unpack
from raw_synth.errors import RawSynthError

__all__ = ["RawImage", "read_raw", "dng_tag_values"]

logger = logging.getLogger(__name__)

Levels = tuple[float, float, float, float]
NoiseProfile = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]

#: CalibrationIlluminant value of CIE D65 (DNG / EXIF LightSource).
D65 = 21

_TAG_MAKE, _TAG_MODEL, _TAG_ISO, _TAG_EXIF = 271, 272, 34855, 34665
_TAG_DNG_VERSION = 50706
_TAG_CFA_PLANE_COLOR = 50710
_TAG_COLOR_MATRIX = (50721, 50722)
_TAG_ILLUMINANT = (50778, 50779)
_TAG_AS_SHOT_NEUTRAL = 50728
_TAG_NOISE_PROFILE = 51041


@dataclasses.dataclass(frozen=True, eq=False)
class RawImage:
    """A Bayer RAW image, packed and normalised, with the metadata needed to process it.

    The constructor checks and normalises every field: ``packed`` becomes ``float32``,
    ``black_level`` may be given as one number for all planes, ``noise_profile`` as a single
    ``(shot, read)`` pair for all planes, and the matrix becomes a read-only ``float64`` copy.

    Attributes:
        packed: ``float32`` array ``(4, h, w)``, planes R, Gr, Gb, B, normalised as
            ``(DN - black) / (white - black)`` per plane; not clipped (may be < 0 or > 1).
        cfa: Native Bayer pattern of the sensor (``RGGB``, ``GRBG``, ``GBRG`` or ``BGGR``).
        black_level: Black level in DN per plane, in R, Gr, Gb, B order.
        white_level: Saturation level in DN (one value for all planes).
        wb: As-shot white-balance gains per plane (R, Gr, Gb, B), normalised so that the
            Gr gain is 1; ``None`` when the file has none.
        xyz_to_cam: ``(3, 3)`` matrix from CIE XYZ to camera RGB (the DNG ColorMatrix,
            rawpy's ``rgb_xyz_matrix[:3]``), or ``None``.
        noise_profile: ``(shot, read)`` per plane (R, Gr, Gb, B) with
            ``variance(x) = shot * x + read`` in normalised units (DNG NoiseProfile), or ``None``.
        source: File the image came from, or ``None``.
        iso: ISO speed, or ``None`` when unknown.
        camera: Camera name (make and model), or ``None``.
    """

    packed: np.ndarray
    cfa: str
    black_level: Levels
    white_level: float
    wb: Levels | None = None
    xyz_to_cam: np.ndarray | None = None
    noise_profile: NoiseProfile | None = None
    source: str | None = None
    iso: float | None = None
    camera: str | None = None

    def __post_init__(self) -> None:
        packed = np.asarray(self.packed)
        if packed.ndim != 3 or packed.shape[0] != 4 or packed.shape[1] < 1 or packed.shape[2] < 1:
            raise RawSynthError(f"packed RAW must have shape (4, h, w), got {packed.shape}")
        if not np.issubdtype(packed.dtype, np.number) or np.issubdtype(packed.dtype, np.complexfloating):
            raise RawSynthError(f"packed RAW must hold real numbers, got dtype {packed.dtype}")
        set_ = object.__setattr__
        set_(self, "packed", packed.astype(np.float32, copy=False))
        set_(self, "cfa", check_cfa(self.cfa))
        black = _four_floats(self.black_level, "black_level")
        set_(self, "black_level", black)
        white = _finite_float(self.white_level, "white_level")
        if white <= max(black):
            raise RawSynthError(f"white_level {white:g} must be greater than every black level {_fmt(black)}")
        set_(self, "white_level", white)
        if self.wb is not None:
            wb = _four_floats(self.wb, "wb")
            if min(wb) <= 0:
                raise RawSynthError(f"wb gains must be positive, got {_fmt(wb)}")
            set_(self, "wb", wb)
        if self.xyz_to_cam is not None:
            matrix = np.array(self.xyz_to_cam, dtype=np.float64)
            if matrix.shape != (3, 3) or not np.isfinite(matrix).all():
                raise RawSynthError(f"xyz_to_cam must be a finite 3x3 matrix, got shape {matrix.shape}")
            matrix.setflags(write=False)
            set_(self, "xyz_to_cam", matrix)
        if self.noise_profile is not None:
            set_(self, "noise_profile", _noise_profile(self.noise_profile))
        if self.source is not None:
            set_(self, "source", str(self.source))
        if self.iso is not None:
            iso = _finite_float(self.iso, "iso")
            if iso <= 0:
                raise RawSynthError(f"iso must be positive, got {iso:g}")
            set_(self, "iso", iso)
        if self.camera is not None:
            set_(self, "camera", str(self.camera))

    @classmethod
    def from_mosaic(
        cls,
        mosaic_dn: np.ndarray,
        cfa: str,
        black_level: float | Sequence[float],
        white_level: float,
        **metadata: Any,
    ) -> "RawImage":
        """Build a RawImage from a Bayer mosaic in DN.

        Args:
            mosaic_dn: ``(H, W)`` mosaic in raw digital numbers (any real dtype), even sizes.
            cfa: Its Bayer pattern.
            black_level: Black level in DN, one value or four (R, Gr, Gb, B order).
            white_level: Saturation level in DN.
            **metadata: Other :class:`RawImage` fields (``wb``, ``xyz_to_cam``,
                ``noise_profile``, ``source``, ``iso``, ``camera``).

        Returns:
            The RawImage, ``packed`` normalised per plane, not clipped.

        Raises:
            RawSynthError: On a wrong ndim, odd sizes, or levels with white <= black.
        """
        mosaic = np.asarray(mosaic_dn)
        if mosaic.ndim != 2:
            raise RawSynthError(f"mosaic must be 2-D (H, W), got shape {mosaic.shape}")
        black = _four_floats(black_level, "black_level")
        white = _finite_float(white_level, "white_level")
        if white <= max(black):
            raise RawSynthError(f"white_level {white:g} must be greater than every black level {_fmt(black)}")
        packed = pack(mosaic, check_cfa(cfa)).astype(np.float32)
        return cls(packed=normalise_planes(packed, black, white), cfa=cfa, black_level=black,
                   white_level=white, **metadata)

    @property
    def height(self) -> int:
        """Mosaic height in pixels (twice the packed height)."""
        return 2 * int(self.packed.shape[1])

    @property
    def width(self) -> int:
        """Mosaic width in pixels (twice the packed width)."""
        return 2 * int(self.packed.shape[2])

    def mosaic_dn(self) -> np.ndarray:
        """Return the native-phase mosaic in DN as ``uint16`` ``(H, W)``.

        ``DN = round(packed * (white - black) + black)`` per plane, clipped to [0, 65535].
        """
        scale = np.array([self.white_level - b for b in self.black_level], dtype=np.float64)[:, None, None]
        offset = np.array(self.black_level, dtype=np.float64)[:, None, None]
        dn = np.clip(np.round(self.packed.astype(np.float64) * scale + offset), 0, 65535).astype(np.uint16)
        return unpack(dn, self.cfa)


def normalise_planes(packed_dn: np.ndarray, black_level: Levels, white_level: float) -> np.ndarray:
    """``(DN - black) / (white - black)`` per plane of a packed ``(4, h, w)`` array, float32."""
    black = np.asarray(black_level, dtype=np.float32)[:, None, None]
    span = (np.float32(white_level) - black).astype(np.float32)
    return ((np.asarray(packed_dn, dtype=np.float32) - black) / span).astype(np.float32)


def read_raw(path: str | Path) -> RawImage:
    """Read a Bayer camera RAW file (anything LibRaw opens) as a :class:`RawImage`.

    Args:
        path: RAW file (DNG, CR2, NEF, ARW, KDC, ...).

    Returns:
        The visible area, cropped to even height and width, packed and normalised (not
        clipped), with the native CFA, per-plane black level, white level, as-shot white
        balance, XYZ-to-camera matrix, NoiseProfile (DNG only), ISO and camera name where
        the file has them.

    Raises:
        RawSynthError: If the file is missing, is not a RAW file LibRaw reads, is truncated,
            or is not a Bayer sensor (X-Trans, Foveon, four-colour CFA).
    """
    name = str(path)
    file = Path(path)
    if not file.exists():
        raise RawSynthError(f"{name}: file not found")
    if not file.is_file():
        raise RawSynthError(f"{name}: not a file")
    try:
        with rawpy.imread(str(file)) as raw:
            fields = _rawpy_fields(raw, name)
    except rawpy.LibRawFileUnsupportedError:
        raise RawSynthError(f"{name}: not a RAW file LibRaw can read (unsupported file format)") from None
    except rawpy.LibRawError as exc:
        raise RawSynthError(f"{name}: cannot read RAW file, truncated or corrupt ({_libraw_message(exc)})") from None
    extra = _tiff_fields(file, fields["cfa"])
    if fields["iso"] is not None:
        extra.pop("iso", None)
    fields.update(extra)
    mosaic = fields.pop("mosaic")
    return RawImage.from_mosaic(mosaic, source=name, **fields)


def _rawpy_fields(raw: "rawpy.RawPy", name: str) -> dict[str, Any]:
    if raw.raw_type != rawpy.RawType.Flat or raw.num_colors != 3:
        raise RawSynthError(f"{name}: not a Bayer mosaic (raw type {raw.raw_type.name}, {raw.num_colors} colours)")
    pattern = raw.raw_pattern
    colours = raw.raw_colors_visible
    if pattern is None or np.asarray(pattern).shape != (2, 2):
        raise RawSynthError(f"{name}: not a Bayer mosaic (CFA repeat pattern {np.shape(pattern)})")
    tile = np.asarray(colours[:2, :2])
    desc = raw.color_desc.decode("ascii", "replace")
    try:
        cfa = cfa_from_raw_pattern(tile, desc)
    except RawSynthError as exc:
        raise RawSynthError(f"{name}: {exc}") from None
    mosaic = np.array(raw.raw_image_visible, dtype=np.uint16, copy=True)
    height, width = mosaic.shape[0] - mosaic.shape[0] % 2, mosaic.shape[1] - mosaic.shape[1] % 2
    if height < 2 or width < 2:
        raise RawSynthError(f"{name}: visible area {mosaic.shape[0]}x{mosaic.shape[1]} is too small")
    if (height, width) != mosaic.shape:
        logger.info("%s: visible area %dx%d cropped to even %dx%d", name, *mosaic.shape, height, width)
    mosaic = mosaic[:height, :width]
    index = [int(tile[dy, dx]) for dy, dx in site_offsets(cfa)]  # colour index of R, Gr, Gb, B
    black_per_colour = list(raw.black_level_per_channel)
    black = tuple(float(black_per_colour[i]) for i in index)
    fields: dict[str, Any] = {
        "mosaic": mosaic,
        "cfa": cfa,
        "black_level": black,
        "white_level": float(raw.white_level),
        "wb": _wb_from_gains(list(raw.camera_whitebalance), index),
        "xyz_to_cam": None,
        "iso": None,
        "camera": None,
    }
    matrix = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3]
    if np.any(matrix != 0) and np.isfinite(matrix).all():
        fields["xyz_to_cam"] = matrix
    iso = float(raw.other.iso_speed)
    if np.isfinite(iso) and iso > 0:
        fields["iso"] = iso
    return fields


def _wb_from_gains(gains: list[float], index: list[int]) -> Levels | None:
    """rawpy's camera_whitebalance (per colour index; a 0 fourth entry means 'as the first G')."""
    if len(gains) < 3:
        return None
    values = [float(g) for g in gains] + [0.0] * (4 - len(gains))
    if values[3] == 0:
        values[3] = values[1]
    per_plane = [values[i] for i in index]
    if min(per_plane) <= 0 or not np.isfinite(per_plane).all():
        return None
    green = per_plane[1]
    return tuple(v / green for v in per_plane)  # type: ignore[return-value]


def _libraw_message(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else type(exc).__name__
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return " ".join(text.split()) or type(exc).__name__


# --------------------------------------------------------------------------------------------
# TIFF/DNG tags
# --------------------------------------------------------------------------------------------


def dng_tag_values(value: Any) -> list[float]:
    """Flatten a tifffile tag value to floats; RATIONAL/SRATIONAL pairs become quotients.

    tifffile returns rational tags as a flat tuple ``(num1, den1, num2, den2, ...)``.
    """
    if isinstance(value, (bytes, bytearray)):
        return [float(v) for v in value]
    if isinstance(value, (int, float)):
        return [float(value)]
    return [float(v) for v in value]


def _rationals(tag: "tifffile.TiffTag") -> list[float]:
    values = dng_tag_values(tag.value)
    if int(tag.dtype) in (5, 10):  # RATIONAL, SRATIONAL
        return [n / d if d else float("nan") for n, d in zip(values[0::2], values[1::2])]
    return values


def _tiff_fields(file: Path, cfa: str) -> dict[str, Any]:
    """Metadata rawpy does not expose, from the TIFF structure of TIFF-based RAW files."""
    try:
        with tifffile.TiffFile(file) as tif:
            ifd0 = tif.pages[0]
            tags = {tag.code: tag for tag in ifd0.tags.values()}
            raw_ifds = list(ifd0.pages) if ifd0.subifds else []
            raw_tags = [{tag.code: tag for tag in page.tags.values()} for page in raw_ifds]
            return _fields_from_tags(tags, raw_tags, cfa, file)
    except Exception as exc:  # not a TIFF container (CRW, RAF, ...) or unusual structure
        logger.debug("%s: no TIFF metadata read (%s)", file, exc)
        return {}


def _ascii(tag: "tifffile.TiffTag | None") -> str | None:
    if tag is None:
        return None
    value = tag.value.decode("latin-1") if isinstance(tag.value, bytes) else str(tag.value)
    value = value.replace("\x00", " ").strip()
    return value or None


def _fields_from_tags(tags: dict, raw_tags: list[dict], cfa: str, file: Path) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    make, model = _ascii(tags.get(_TAG_MAKE)), _ascii(tags.get(_TAG_MODEL))
    if model and make and not model.lower().startswith(make.split()[0].lower()):
        fields["camera"] = f"{make} {model}"
    elif model or make:
        fields["camera"] = model or make
    iso = _iso(tags)
    if iso is not None:
        fields["iso"] = iso
    if _TAG_DNG_VERSION not in tags:
        return fields
    # DNG: colour and noise tags live in IFD 0; NoiseProfile may also sit in the raw IFD.
    plane_colour = [0, 1, 2]
    for candidate in [tags, *raw_tags]:
        if _TAG_CFA_PLANE_COLOR in candidate:
            plane_colour = [int(v) for v in dng_tag_values(candidate[_TAG_CFA_PLANE_COLOR].value)]
            break
    neutral_tag = tags.get(_TAG_AS_SHOT_NEUTRAL)
    if neutral_tag is not None:
        neutral = _rationals(neutral_tag)
        if len(neutral) == len(plane_colour) == 3 and sorted(plane_colour) == [0, 1, 2] and min(neutral) > 0:
            by_colour = dict(zip(plane_colour, neutral))
            green = by_colour[1]
            fields["wb"] = (green / by_colour[0], 1.0, 1.0, green / by_colour[2])
    matrix = _colour_matrix(tags)
    if matrix is not None:
        fields["xyz_to_cam"] = matrix
    for candidate in [*raw_tags, tags]:
        if _TAG_NOISE_PROFILE in candidate:
            profile = _noise_from_tag(dng_tag_values(candidate[_TAG_NOISE_PROFILE].value), plane_colour, file)
            if profile is not None:
                fields["noise_profile"] = profile
            break
    return fields


def _iso(tags: dict) -> float | None:
    """ISOSpeedRatings (34855): from the Exif IFD (where EXIF puts it and raw-synth's DNG
    writer does), else from IFD 0 (TIFF/EP; older raw-synth DNGs)."""
    candidates: list[Any] = []
    exif = tags.get(_TAG_EXIF)
    if exif is not None and isinstance(exif.value, dict):
        candidates.append(exif.value.get("ISOSpeedRatings", exif.value.get("PhotographicSensitivity")))
    if _TAG_ISO in tags:
        candidates.append(tags[_TAG_ISO].value)
    for value in candidates:
        if isinstance(value, (tuple, list)):
            value = value[0] if value else None
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    return None


def _colour_matrix(tags: dict) -> np.ndarray | None:
    """ColorMatrix1, or ColorMatrix2 when only that one is calibrated for D65."""
    matrices = []
    for matrix_code, illuminant_code in zip(_TAG_COLOR_MATRIX, _TAG_ILLUMINANT):
        tag = tags.get(matrix_code)
        if tag is None:
            continue
        values = _rationals(tag)
        if len(values) != 9 or not np.isfinite(values).all():
            continue
        illuminant = tags.get(illuminant_code)
        matrices.append((int(illuminant.value) if illuminant is not None else 0, np.reshape(values, (3, 3))))
    if not matrices:
        return None
    for illuminant, matrix in matrices:
        if illuminant == D65:
            return matrix
    return matrices[0][1]


def _noise_from_tag(values: list[float], plane_colour: list[int], file: Path) -> NoiseProfile | None:
    """DNG NoiseProfile: one (S, O) pair for all planes, or one per CFA plane colour."""
    if len(values) == 2:
        pair = (values[0], values[1])
        return (pair, pair, pair, pair)
    if len(values) == 2 * len(plane_colour) and sorted(plane_colour) == [0, 1, 2]:
        by_colour = {colour: (values[2 * i], values[2 * i + 1]) for i, colour in enumerate(plane_colour)}
        return (by_colour[0], by_colour[1], by_colour[1], by_colour[2])
    logger.warning("%s: NoiseProfile with %d values ignored (expected 2 or 6)", file, len(values))
    return None


# --------------------------------------------------------------------------------------------
# field checks
# --------------------------------------------------------------------------------------------


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _finite_float(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RawSynthError(f"{what} must be a number, got {value!r}") from None
    if not np.isfinite(number):
        raise RawSynthError(f"{what} must be finite, got {number}")
    return number


def _four_floats(value: Any, what: str) -> Levels:
    array = np.asarray(value, dtype=object)
    if array.ndim == 0:
        number = _finite_float(value, what)
        return (number, number, number, number)
    flat = array.reshape(-1)
    if flat.size != 4:
        raise RawSynthError(f"{what} must be one value or four (R, Gr, Gb, B), got {flat.size}")
    return tuple(_finite_float(v, what) for v in flat)  # type: ignore[return-value]


def _noise_profile(value: Any) -> NoiseProfile:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise RawSynthError(f"noise_profile must be (shot, read) pairs, got {value!r}") from None
    if array.shape == (2,):
        array = np.tile(array, (4, 1))
    if array.shape != (4, 2):
        raise RawSynthError(f"noise_profile must be one (shot, read) pair or four, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise RawSynthError("noise_profile must be finite")
    return tuple((float(s), float(r)) for s, r in array)  # type: ignore[return-value]
