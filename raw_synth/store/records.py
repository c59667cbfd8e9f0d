"""What the generation pipeline hands to the store: :class:`SampleRecord` and :class:`ShardInfo`.

A :class:`SampleRecord` is one noisy/clean pair with the metadata a trainer or an evaluator needs
(camera, CFA, noise level, black/white level, white balance, colour matrix, provenance).
:func:`records_to_columns` checks a list of records and turns it into the column arrays that a
shard stores, in their stored dtypes; both shard formats store exactly these columns.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from raw_synth.cfa import check_cfa
from raw_synth.errors import RawSynthError

__all__ = [
    "SampleRecord",
    "ShardInfo",
    "CLEAN_DTYPES",
    "IMAGE_FIELDS",
    "META_FIELDS",
    "STRING_FIELDS",
    "check_record",
    "records_to_columns",
]

#: Stored dtypes accepted for the clean image.
CLEAN_DTYPES: tuple[str, ...] = ("float16", "float32")

#: Image columns, ``(n, 4, h, w)``, stored with one chunk per sample, in checksum order.
IMAGE_FIELDS: tuple[str, ...] = ("noisy", "clean", "uncertainty")

#: Numeric per-sample metadata columns: name -> (stored dtype, per-sample shape), in checksum order.
META_FIELDS: dict[str, tuple[str, tuple[int, ...]]] = {
    "index": ("int64", ()),
    "iso": ("float64", ()),
    "gain": ("float64", ()),
    "shot": ("float64", (4,)),
    "read": ("float64", (4,)),
    "black_level": ("float64", (4,)),
    "white_level": ("float64", (4,)),
    "wb_gains": ("float64", (4,)),
    "xyz_to_cam": ("float64", (3, 3)),
    "crop": ("int64", (2,)),
}

#: String per-sample metadata columns, in checksum order.
STRING_FIELDS: tuple[str, ...] = ("camera", "cfa", "source")


@dataclass(frozen=True)
class SampleRecord:
    """One noisy/clean pair as the pipeline hands it to the store.

    Attributes:
        index: Global sample index (``0 .. N-1``).
        noisy_dn: ``uint16`` ``(4, h, w)`` noisy RAW in DN, black level included, packed R, Gr, Gb, B.
        clean: ``float32`` ``(4, h, w)`` clean RAW, normalised ``(DN - black) / (white - black)``,
            nominally in [0, 1] (stored as float16 by default).
        camera: Camera profile name.
        cfa: Native CFA of that camera (``RGGB``, ``GRBG``, ``GBRG`` or ``BGGR``).
        iso: ISO the noise draw chose, or ``None`` (stored as NaN).
        gain: Sensor gain the noise draw chose, or ``None`` (stored as NaN).
        shot: ``(4,)`` shot-noise coefficient per plane (normalised ``variance = shot * x + read``).
        read: ``(4,)`` read-noise variance per plane (normalised units).
        black_level: ``(4,)`` black level per plane in DN.
        white_level: ``(4,)`` white level per plane in DN.
        wb_gains: ``(4,)`` R, Gr, Gb, B white-balance gains of the forward ISP.
        xyz_to_cam: ``(3, 3)`` XYZ -> camera matrix.
        source: Input id, e.g. ``"photos/a.jpg"``, ``"deadleaves#17"`` or ``"samples/coffee#3"``.
        crop: ``(y, x)`` of the crop in the source image (full-resolution pixels).
        uncertainty: Optional ``(4, h, w)`` float per-pixel standard deviation (stored float16).
    """

    index: int
    noisy_dn: np.ndarray
    clean: np.ndarray
    camera: str
    cfa: str
    iso: float | None
    gain: float | None
    shot: np.ndarray
    read: np.ndarray
    black_level: np.ndarray
    white_level: np.ndarray
    wb_gains: np.ndarray
    xyz_to_cam: np.ndarray
    source: str
    crop: tuple[int, int]
    uncertainty: np.ndarray | None = None


@dataclass(frozen=True)
class ShardInfo:
    """What :func:`~raw_synth.store.write_shard` wrote.

    Attributes:
        name: Shard file or directory name, e.g. ``"shard-000012.zarr"``.
        start: Global index of the first sample.
        stop: One past the global index of the last sample.
        count: Number of samples (``stop - start``).
        checksum: Hex sha256 over the stored columns (see :mod:`raw_synth.store.checksum`).
        nbytes: Bytes the shard occupies on disk.
    """

    name: str
    start: int
    stop: int
    count: int
    checksum: str
    nbytes: int

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict."""
        return asdict(self)


def _where(record: SampleRecord, position: int) -> str:
    return f"record {position} (index {record.index}, {record.source!r})"


def _vector(value: Any, shape: tuple[int, ...], name: str, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise RawSynthError(f"{where}: {name}: expected numbers of shape {shape}, got {value!r}") from None
    if arr.shape != shape:
        raise RawSynthError(f"{where}: {name}: expected shape {shape}, got {tuple(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise RawSynthError(f"{where}: {name}: holds non-finite values")
    return arr


def _optional_float(value: Any, name: str, where: str) -> float:
    if value is None:
        return math.nan
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise RawSynthError(f"{where}: {name}: expected a number or None, got {value!r}") from None
    if not math.isfinite(out):
        raise RawSynthError(f"{where}: {name}: expected a finite number or None, got {out}")
    return out


def _image(value: Any, name: str, where: str, shape: tuple[int, ...] | None) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 3 or arr.shape[0] != 4 or arr.shape[1] < 1 or arr.shape[2] < 1:
        raise RawSynthError(f"{where}: {name}: expected shape (4, h, w), got {tuple(arr.shape)}")
    if shape is not None and arr.shape != shape:
        raise RawSynthError(f"{where}: {name}: shape {tuple(arr.shape)} differs from the shard's {shape}")
    return arr


def check_record(record: SampleRecord, position: int = 0, shape: tuple[int, ...] | None = None) -> None:
    """Validate one record; raise a one-line :class:`RawSynthError` naming it on any problem.

    Args:
        record: The record to check (not modified).
        position: Its position in the shard, used in messages.
        shape: Required ``(4, h, w)`` image shape, or ``None`` to accept any.

    Raises:
        RawSynthError: Wrong type, shape or dtype, non-finite values, noisy DN above the white
            level, white level not above the black level, unknown CFA.
    """
    if not isinstance(record, SampleRecord):
        raise RawSynthError(f"record {position}: expected a SampleRecord, got {type(record).__name__}")
    where = _where(record, position)
    if isinstance(record.index, bool) or not isinstance(record.index, (int, np.integer)) or record.index < 0:
        raise RawSynthError(f"{where}: index: expected a non-negative integer, got {record.index!r}")
    noisy = _image(record.noisy_dn, "noisy_dn", where, shape)
    if noisy.dtype != np.uint16:
        raise RawSynthError(f"{where}: noisy_dn: expected dtype uint16, got {noisy.dtype}")
    clean = _image(record.clean, "clean", where, noisy.shape)
    if not np.issubdtype(clean.dtype, np.floating):
        raise RawSynthError(f"{where}: clean: expected a floating-point array, got dtype {clean.dtype}")
    if not np.all(np.isfinite(clean)):
        raise RawSynthError(f"{where}: clean: holds non-finite values")
    if record.uncertainty is not None:
        unc = _image(record.uncertainty, "uncertainty", where, noisy.shape)
        if not np.issubdtype(unc.dtype, np.floating) or not np.all(np.isfinite(unc)):
            raise RawSynthError(f"{where}: uncertainty: expected finite floating-point values")
    for name in ("camera", "source"):
        value = getattr(record, name)
        if not isinstance(value, str) or not value:
            raise RawSynthError(f"{where}: {name}: expected a non-empty string, got {value!r}")
    try:
        cfa = check_cfa(record.cfa)
    except RawSynthError as exc:
        raise RawSynthError(f"{where}: cfa: {exc}") from None
    if cfa != record.cfa:
        raise RawSynthError(f"{where}: cfa: expected upper case {cfa!r}, got {record.cfa!r}")
    _optional_float(record.iso, "iso", where)
    _optional_float(record.gain, "gain", where)
    for name in ("shot", "read", "wb_gains"):
        _vector(getattr(record, name), (4,), name, where)
    _vector(record.xyz_to_cam, (3, 3), "xyz_to_cam", where)
    black = _vector(record.black_level, (4,), "black_level", where)
    white = _vector(record.white_level, (4,), "white_level", where)
    if np.any(white <= black):
        raise RawSynthError(f"{where}: white_level {white.tolist()} must exceed black_level {black.tolist()}")
    if np.any(white > 65535) or np.any(black < 0):
        raise RawSynthError(f"{where}: black/white level outside the uint16 range [0, 65535]")
    over = noisy.reshape(4, -1).max(axis=1) > white
    if np.any(over):
        raise RawSynthError(f"{where}: noisy_dn exceeds the white level {white.tolist()}")
    crop = record.crop
    if (
        not isinstance(crop, (tuple, list))
        or len(crop) != 2
        or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c >= 0 for c in crop)
    ):
        raise RawSynthError(f"{where}: crop: expected (y, x) non-negative integers, got {crop!r}")


def records_to_columns(records: Sequence[SampleRecord], clean_dtype: str = "float16") -> dict[str, np.ndarray]:
    """Check ``records`` and stack them into the columns a shard stores.

    Args:
        records: At least one record, with consecutive indices ``start, start+1, ...``, one image
            shape and either all or none with an ``uncertainty``.
        clean_dtype: ``"float16"`` (default) or ``"float32"``.

    Returns:
        Dict of numpy arrays: ``noisy`` uint16 ``(n, 4, h, w)``, ``clean`` ``clean_dtype``
        ``(n, 4, h, w)``, optionally ``uncertainty`` float16 ``(n, 4, h, w)``, the
        :data:`META_FIELDS` in their dtypes and shapes ``(n, ...)``, and the
        :data:`STRING_FIELDS` as ``(n,)`` arrays of ``str`` (object dtype). NaN stands for a
        missing ``iso`` or ``gain``.

    Raises:
        RawSynthError: Any record problem (see :func:`check_record`), non-consecutive indices,
            mixed shapes or mixed presence of ``uncertainty``, values that overflow ``clean_dtype``.
    """
    if clean_dtype not in CLEAN_DTYPES:
        raise RawSynthError(f"clean_dtype: expected one of {', '.join(CLEAN_DTYPES)}, got {clean_dtype!r}")
    if isinstance(records, (str, bytes)) or len(records) == 0:
        raise RawSynthError("records: expected at least one SampleRecord")
    first = records[0]
    check_record(first, 0)
    shape = tuple(np.shape(first.noisy_dn))
    has_unc = first.uncertainty is not None
    start = int(first.index)
    for k, rec in enumerate(records):
        if k:
            check_record(rec, k, shape)
        if int(rec.index) != start + k:
            raise RawSynthError(
                f"{_where(rec, k)}: indices must be consecutive from {start}, expected {start + k}"
            )
        if (rec.uncertainty is not None) != has_unc:
            raise RawSynthError(f"{_where(rec, k)}: uncertainty must be given for all records of a shard or none")
    n = len(records)
    cols: dict[str, np.ndarray] = {
        "noisy": np.stack([np.asarray(r.noisy_dn) for r in records]).astype(np.uint16, copy=False),
    }
    clean = np.stack([np.asarray(r.clean, dtype=clean_dtype) for r in records])
    if not np.all(np.isfinite(clean)):
        raise RawSynthError(f"records: clean values overflow {clean_dtype}")
    cols["clean"] = clean
    if has_unc:
        unc = np.stack([np.asarray(r.uncertainty, dtype=np.float16) for r in records])
        if not np.all(np.isfinite(unc)):
            raise RawSynthError("records: uncertainty values overflow float16")
        cols["uncertainty"] = unc
    for name, (dtype, sub) in META_FIELDS.items():
        values: list[Any]
        if name in ("iso", "gain"):
            values = [_optional_float(getattr(r, name), name, "") for r in records]
        elif name == "index":
            values = [int(r.index) for r in records]
        elif name == "crop":
            values = [[int(c) for c in r.crop] for r in records]
        else:
            values = [np.asarray(getattr(r, name), dtype=np.float64) for r in records]
        cols[name] = np.asarray(values, dtype=dtype).reshape((n, *sub))
    for name in STRING_FIELDS:
        column = np.empty(n, dtype=object)
        column[:] = [str(getattr(r, name)) for r in records]
        cols[name] = column
    return cols
