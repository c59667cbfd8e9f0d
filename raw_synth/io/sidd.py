"""SIDD (Smartphone Image Denoising Dataset) files: metadata, RAW images, blocks and submissions.

Formats (see the SIDD facts in the project reference):

* ``<id>_METADATA_RAW_0xx.MAT``: classic MATLAB v5, one struct ``metadata`` holding the DNG
  tags of the source file. Its ``UnknownTags`` struct array (fields ``ID``, ``Offset``,
  ``Value``) carries CFAPattern (tag 33422, colour indices 0 = R, 1 = G, 2 = B, row-major over
  the 2x2 tile) and NoiseProfile (tag 51041, ``(beta1, beta2)`` per colour plane with
  ``variance = beta1 * x + beta2``). Read with :func:`read_sidd_metadata`.
* ``<id>_NOISY_RAW_0xx.MAT`` / ``<id>_GT_RAW_0xx.MAT``: MATLAB v7.3 (HDF5), one variable ``x``,
  the full Bayer mosaic as float32 normalised to [0, 1], in the sensor's native CFA phase and
  orientation (the ``Orientation`` tag is *not* applied). HDF5 stores MATLAB arrays
  column-major, so h5py sees ``(W, H)``; :func:`read_sidd_image` returns ``(H, W)``. Classic v5
  files with the same variable are read too.
* SIDD-Medium scene folders ``<instance>_<scene>_<phone>_<ISO>_<shutter>_<illuminant>_<brightness>``
  (e.g. ``0001_001_S6_00100_00060_3200_L``) holding the ``_010`` and ``_011`` sets:
  :func:`iter_sidd_medium` yields :class:`SiddScene` objects that load lazily.
* Validation / benchmark blocks (``ValidationNoisyBlocksRaw.mat``, ``ValidationGtBlocksRaw.mat``,
  ``BenchmarkNoisyBlocksRaw.mat``; variable named after the file stem): ``(images, blocks, h, w)``,
  normally ``(40, 32, 256, 256)`` float32 in the native CFA phase: :func:`read_sidd_blocks`.
  Block positions (``BenchmarkBlocks32.mat``, 1-based ``[row, col, height, width]``):
  :func:`read_block_positions` (returns 0-based).
* Submissions: ``SubmitRaw.mat`` (variable ``SubmitRaw``, same shape and dtype as the input
  blocks) and the Kaggle ``SubmitRaw.csv`` (columns ``ID``, ``BLOCK``; ``BLOCK`` is the base64
  of the block's raw C-order bytes; ``ID = image * n_blocks + block``).

Every malformed file raises :class:`~raw_synth.errors.RawSynthError` naming the file; a
truncated, overwritten or bit-flipped one gives ``PATH: not a readable SIDD .mat file (reason)``.
Reading MATLAB v7.3 files needs ``h5py``; v5 files use ``scipy.io``, after their element tree
has been walked and checked (scipy trusts the tags, and one flipped bit can crash it), which
for a compressed variable includes its zlib checksum. A bit flip inside uncompressed numbers
cannot be seen by any reader; block values out of range are refused by the SIDD evaluation.

Example:
    >>> meta = read_sidd_metadata("0001_METADATA_RAW_010.MAT")        # doctest: +SKIP
    >>> meta.camera, meta.cfa, meta.iso                                # doctest: +SKIP
    ('S6', 'GRBG', 100)
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import scipy.io

from raw_synth.cfa import cfa_from_raw_pattern, pack, site_offsets
from raw_synth.errors import RawSynthError, one_line

__all__ = [
    "SiddMetadata",
    "SiddPair",
    "SiddScene",
    "SIDD_PHONES",
    "SCENE_NAME_PATTERN",
    "TAG_CFA_PATTERN",
    "TAG_NOISE_PROFILE",
    "read_sidd_metadata",
    "read_sidd_image",
    "read_sidd_pair",
    "parse_scene_name",
    "iter_sidd_medium",
    "read_sidd_blocks",
    "read_block_positions",
    "write_submit_raw_mat",
    "read_submit_raw_mat",
    "write_submit_raw_csv",
    "read_submit_raw_csv",
    "is_mat_v73",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

#: DNG tag numbers found in SIDD's ``metadata.UnknownTags``.
TAG_CFA_REPEAT = 33421
TAG_CFA_PATTERN = 33422
TAG_NOISE_PROFILE = 51041

#: SIDD phone codes and the cameras they stand for.
SIDD_PHONES: dict[str, str] = {
    "GP": "Google Pixel",
    "IP": "Apple iPhone 7",
    "S6": "Samsung Galaxy S6 Edge",
    "N6": "Motorola Nexus 6",
    "G4": "LG G4",
}

#: ``<instance>_<scene>_<phone>_<ISO>_<shutter>_<illuminant>_<brightness>``.
SCENE_NAME_PATTERN = re.compile(
    r"^(?P<instance>\d+)_(?P<scene>\d+)_(?P<phone>[A-Za-z0-9]+)_(?P<iso>\d+)_(?P<shutter>\d+)"
    r"_(?P<illuminant>\d+)_(?P<brightness>[A-Za-z]+)$"
)

_SCENE_IN_TEXT = re.compile(r"\d{4}_\d{3}_([A-Z0-9]{2})_\d{5}_\d{5}_\d{4}_[LNH]")

# (lower-case substring of the DNG Model tag, SIDD phone code), used when the metadata's
# Filename does not contain the scene folder name.
_MODEL_CODES = (("sm-g925", "S6"), ("pixel", "GP"), ("iphone", "IP"), ("nexus 6", "N6"), ("lg-h8", "G4"))

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MAT_V73_USERBLOCK = 512
# Deflate packs at most about 1032:1, so a dataset claiming more than this many times the file's
# size (at least 1 MiB) is a damaged header, not data.
_MAX_HDF5_EXPANSION = 1100

_SUBMIT_KEY = "SubmitRaw"


# ============================================================================ MAT-file plumbing


def is_mat_v73(path: PathLike) -> bool:
    """Tell whether a MAT file is MATLAB v7.3 (HDF5 after a 512-byte MATLAB header).

    Args:
        path: the file.

    Returns:
        True for v7.3 / plain HDF5 files, False otherwise (e.g. v5).

    Raises:
        RawSynthError: if the file cannot be opened.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            head = fh.read(_MAT_V73_USERBLOCK + len(_HDF5_SIGNATURE))
    except OSError as exc:
        raise RawSynthError(f"{p}: cannot read file ({exc.strerror or exc})") from None
    if head.startswith(_HDF5_SIGNATURE):
        return True
    return head[_MAT_V73_USERBLOCK:].startswith(_HDF5_SIGNATURE)


def _import_h5py(path: Path) -> Any:
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is installed in the project environment
        raise RawSynthError(f"{path}: MATLAB v7.3 (HDF5) file, reading it needs the 'h5py' package") from None
    return h5py


# MATLAB v5 data types and their item sizes (miMATRIX and miCOMPRESSED hold elements instead).
_MI_INT8, _MI_INT32, _MI_UINT32, _MI_MATRIX, _MI_COMPRESSED = 1, 5, 6, 14, 15
_MI_ITEM_SIZES = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4}
_MI_NUMERIC = frozenset({1, 2, 3, 4, 5, 6, 7, 9, 12, 13})
# MATLAB array classes: cell, struct, object, char, sparse, 10 numeric ones, function, opaque.
_MX_CELL, _MX_STRUCT, _MX_OBJECT, _MX_CHAR = 1, 2, 3, 4
_MX_NUMERIC = frozenset(range(6, 16))
_MX_KNOWN = frozenset(range(1, 18))
_MX_DIMENSIONED = frozenset(range(1, 16))
_MAT_V5_HEADER = 128
_MAX_NESTING = 64
_ZLIB_CHUNK = 1 << 20


class _BadMat(Exception):
    """A structural defect found by :func:`_check_v5_structure` (becomes one RawSynthError)."""


class _FileStream:
    """Sequential reads and skips within the first ``size`` bytes of an open file."""

    def __init__(self, handle: Any, size: int) -> None:
        self.handle, self.size, self.pos = handle, size, handle.tell()

    def read(self, n: int) -> bytes:
        data = self.handle.read(n) if self.pos + n <= self.size else b""
        if len(data) != n:
            raise _BadMat(f"truncated at byte {self.pos} (needs {n} more bytes)")
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if self.pos + n > self.size:
            raise _BadMat(f"truncated at byte {self.pos} (needs {n} more bytes)")
        self.handle.seek(n, 1)
        self.pos += n


class _ZlibStream:
    """Sequential reads and skips of the decompressed bytes of one miCOMPRESSED element."""

    def __init__(self, source: _FileStream, nbytes: int) -> None:
        import zlib

        self.source, self.left, self.buffer = source, nbytes, b""
        self.inflater = zlib.decompressobj()
        self.error = zlib.error

    def _more(self) -> None:
        if self.inflater.eof:
            raise _BadMat("compressed variable ends early")
        if self.inflater.unconsumed_tail:
            chunk = self.inflater.unconsumed_tail
        elif self.left > 0:
            take = min(self.left, _ZLIB_CHUNK)
            chunk, self.left = self.source.read(take), self.left - take
        else:
            chunk = b""  # all input given: zlib may still hold output
        try:
            out = self.inflater.decompress(chunk, _ZLIB_CHUNK)
        except self.error as exc:
            raise _BadMat(f"compressed variable is damaged ({exc})") from None
        if not out and not chunk:
            raise _BadMat("compressed variable ends early")
        self.buffer += out

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._more()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def skip(self, n: int) -> None:
        while n > 0:
            if not self.buffer:
                self._more()
            step = min(n, len(self.buffer))
            self.buffer, n = self.buffer[step:], n - step

    def finish(self) -> None:
        """Decompress to the end of the zlib stream, which verifies its checksum.

        Bytes after the stream inside the element are ignored, as scipy ignores them; more
        than a few decompressed bytes after the variable are refused (nothing reads them).
        """
        while len(self.buffer) <= 64:
            if self.inflater.eof:
                return
            self._more()
        raise _BadMat("compressed element holds data after its variable")


def _v5_element(stream: Any, order: str, room: int, top: bool = False) -> tuple[int, int, bytes | None]:
    """Read one data element's tag within ``room`` bytes, and its data when that is short.

    Args:
        stream: A :class:`_FileStream` or :class:`_ZlibStream` at the tag.
        order: ``"<"`` or ``">"``.
        room: Bytes left in the parent.
        top: A file-level element (the only place for miCOMPRESSED).

    Returns:
        ``(type, data byte count, data)``: the count is negative for a small data element (8
        bytes in all); the data is ``None`` for a matrix or compressed element (left unread)
        and for data longer than 1 KiB (skipped).
    """
    import struct

    if room < 8:
        raise _BadMat(f"element tag needs 8 bytes, {room} left in its parent")
    first, second = struct.unpack(order + "II", stream.read(8))
    if first >> 16:  # small data element: type and size in 4 bytes, data in the other 4
        mdtype, nbytes = first & 0xFFFF, first >> 16
        if mdtype not in _MI_ITEM_SIZES or nbytes > 4:
            raise _BadMat(f"bad small data element (type {mdtype}, {nbytes} bytes)")
        raw = struct.pack(order + "I", second)
        return mdtype, -nbytes, raw[:nbytes]  # negative size: the element took exactly 8 bytes
    mdtype, nbytes = first, second
    if mdtype not in _MI_ITEM_SIZES and mdtype != _MI_MATRIX and not (top and mdtype == _MI_COMPRESSED):
        raise _BadMat(f"unknown data type {mdtype}")
    if nbytes > room - 8:
        raise _BadMat(f"data element of {nbytes} bytes overruns its parent ({room - 8} bytes left)")
    if mdtype in (_MI_MATRIX, _MI_COMPRESSED):
        return mdtype, nbytes, None
    if nbytes <= 1024:
        return mdtype, nbytes, stream.read(nbytes)
    stream.skip(nbytes)
    return mdtype, nbytes, None


def _v5_children(stream: Any, order: str, length: int, depth: int) -> Iterator[tuple[int, int, bytes | None]]:
    """Walk the sub-elements of a matrix of ``length`` bytes, checking nested matrices."""
    used = 0
    while used < length:
        mdtype, nbytes, data = _v5_element(stream, order, length - used)
        if nbytes < 0:
            used += 8
        else:
            if mdtype == _MI_MATRIX:
                _v5_matrix(stream, order, nbytes, depth + 1)
            pad = min((-nbytes) % 8, length - used - 8 - nbytes)
            stream.skip(pad)
            used += 8 + nbytes + pad
        yield mdtype, abs(nbytes), data


def _v5_matrix(stream: Any, order: str, length: int, depth: int) -> None:
    """Check one miMATRIX element's content the way scipy will read it."""
    import struct

    if depth > _MAX_NESTING:
        raise _BadMat(f"variables nested more than {_MAX_NESTING} deep")
    if length == 0:  # an empty matrix
        return
    children = list(_v5_children(stream, order, length, depth))
    if not children or children[0][0] != _MI_UINT32 or children[0][1] != 8:
        raise _BadMat("matrix without array flags")
    flags = struct.unpack(order + "I", (children[0][2] or b"")[:4])[0]
    mclass, complex_ = flags & 0xFF, bool(flags & 0x800)
    if mclass not in _MX_KNOWN:
        raise _BadMat(f"unknown array class {mclass}")
    if mclass not in _MX_DIMENSIONED:
        return  # function handles and opaque objects: every element was checked, nothing more
    if len(children) < 3 or children[1][0] != _MI_INT32:
        raise _BadMat("matrix without dimensions and name")
    dims_raw = children[1][2] or b""
    if len(dims_raw) < 8 or len(dims_raw) % 4:
        raise _BadMat(f"dimensions of {len(dims_raw)} bytes")
    dims = struct.unpack(order + f"{len(dims_raw) // 4}i", dims_raw)
    if min(dims) < 0:
        raise _BadMat(f"negative dimension in {list(dims)}")
    count = int(np.prod(dims, dtype=object))
    rest = children[3:]
    if mclass in _MX_NUMERIC:
        want = 2 if complex_ else 1
        if len(rest) != want:
            raise _BadMat(f"numeric matrix with {len(rest)} data elements, expected {want}")
        for mdtype, nbytes, _ in rest:
            if mdtype not in _MI_NUMERIC or nbytes != count * _MI_ITEM_SIZES[mdtype]:
                raise _BadMat(f"numeric data of {nbytes} bytes (type {mdtype}) for dimensions {list(dims)}")
    elif mclass == _MX_CHAR:
        if len(rest) != 1 or rest[0][0] == _MI_MATRIX:
            raise _BadMat("char matrix without one data element")
    elif mclass == _MX_CELL:
        if len(rest) != count or any(mdtype != _MI_MATRIX for mdtype, _, _ in rest):
            raise _BadMat(f"cell array with {len(rest)} elements for dimensions {list(dims)}")
    elif mclass in (_MX_STRUCT, _MX_OBJECT):
        if mclass == _MX_OBJECT:
            rest = rest[1:]  # the class name
        if len(rest) < 2 or rest[0][0] != _MI_INT32 or rest[0][1] != 4 or rest[1][0] != _MI_INT8:
            raise _BadMat("struct without field names")
        name_length = struct.unpack(order + "i", rest[0][2] or b"\0\0\0\0")[0]
        if name_length < 1 or rest[1][1] % name_length:
            raise _BadMat(f"struct field names of {rest[1][1]} bytes in slots of {name_length}")
        fields = rest[1][1] // name_length
        values = rest[2:]
        if len(values) != count * fields or any(mdtype != _MI_MATRIX for mdtype, _, _ in values):
            raise _BadMat(f"struct with {len(values)} values for {count} records of {fields} fields")


def _check_v5_structure(path: Path) -> None:
    """Walk a MATLAB v5 file's element tree (no data loaded) before scipy reads it.

    scipy trusts the file's tags: a flipped bit can make it crash the interpreter, not only
    raise. Every element must have a known type, fit in its parent and, for the array classes
    SIDD files use, hold exactly the parts scipy reads; compressed variables are decompressed
    as a stream and their checksum verified.

    Raises:
        _BadMat: naming the first defect.
    """
    import struct

    size = path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(_MAT_V5_HEADER)
        if len(header) < _MAT_V5_HEADER:
            raise _BadMat(f"{size} bytes, shorter than the 128-byte MATLAB header")
        order = {b"IM": "<", b"MI": ">"}.get(header[126:128])
        if order is None:
            raise _BadMat("no MATLAB v5 header (byte-order mark missing)")
        if struct.unpack(order + "H", header[124:126])[0] != 0x0100:
            raise _BadMat("unknown MATLAB v5 header version")
        stream = _FileStream(handle, size)
        while stream.pos < size:
            mdtype, nbytes, _ = _v5_element(stream, order, size - stream.pos, top=True)
            if mdtype == _MI_COMPRESSED:
                inner = _ZlibStream(stream, nbytes)
                kind, length, _ = _v5_element(inner, order, 1 << 62)
                if kind != _MI_MATRIX:
                    raise _BadMat(f"compressed element holds type {kind}, expected a matrix")
                _v5_matrix(inner, order, length, 1)
                inner.finish()
            elif mdtype == _MI_MATRIX:
                _v5_matrix(stream, order, nbytes, 1)
            else:
                raise _BadMat(f"top-level element of type {mdtype}, expected a variable")


def _unreadable(path: Path, exc: BaseException) -> RawSynthError:
    reason = one_line(exc)
    if isinstance(exc, MemoryError):
        reason = "MemoryError: its sizes do not fit in memory"
    return RawSynthError(f"{path}: not a readable SIDD .mat file ({reason})")


def _load_v5(path: Path) -> dict[str, Any]:
    """All variables of a MATLAB v5 file, after :func:`_check_v5_structure`."""
    if not path.is_file():
        raise RawSynthError(f"{path}: file not found")
    try:
        _check_v5_structure(path)
        return scipy.io.loadmat(str(path))
    except FileNotFoundError:
        raise RawSynthError(f"{path}: file not found") from None
    except OSError as exc:
        raise RawSynthError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    except NotImplementedError as exc:  # v7.3 that is_mat_v73 did not recognise
        raise RawSynthError(f"{path}: unsupported MAT file version ({exc})") from None
    except RawSynthError:
        raise
    except Exception as exc:  # _BadMat, or any of the many types scipy raises on damaged files
        raise _unreadable(path, exc) from None


def _load_mat_variable(path: PathLike, key: str, expected: str) -> np.ndarray:
    """One variable of a v5 or v7.3 MAT file, as a numpy array in MATLAB's axis order.

    For v7.3 the HDF5 dataset (column-major, so axes reversed) is transposed back.
    """
    p = Path(path)
    if not p.is_file():
        raise RawSynthError(f"{p}: file not found")
    if is_mat_v73(p):
        h5py = _import_h5py(p)
        try:
            with h5py.File(p, "r") as fh:
                if key not in fh:
                    have = ", ".join(sorted(k for k in fh.keys() if not k.startswith("#"))) or "none"
                    raise RawSynthError(f"{p}: no variable {key!r} (expected {expected}; variables: {have})")
                node = fh[key]
                if not isinstance(node, h5py.Dataset):
                    raise RawSynthError(f"{p}: variable {key!r} is not a numeric array (expected {expected})")
                if node.dtype.kind not in "biuf":
                    raise RawSynthError(
                        f"{p}: variable {key!r} has dtype {node.dtype} (expected {expected})"
                    )
                claimed = int(np.prod(node.shape, dtype=object)) * node.dtype.itemsize
                if claimed > _MAX_HDF5_EXPANSION * max(p.stat().st_size, 1 << 20):
                    raise RawSynthError(f"{p}: not a readable SIDD .mat file (variable {key!r} claims "
                                        f"{claimed} bytes, more than the file could hold)")
                data = node[()]
        except RawSynthError:
            raise
        except Exception as exc:  # h5py raises OSError, RuntimeError, KeyError, ... on damaged files
            raise _unreadable(p, exc) from None
        return np.ascontiguousarray(np.asarray(data).T)
    mat = _load_v5(p)
    if key not in mat:
        have = ", ".join(sorted(k for k in mat if not k.startswith("__"))) or "none"
        raise RawSynthError(f"{p}: no variable {key!r} (expected {expected}; variables: {have})")
    return mat[key]


# ============================================================================ metadata


@dataclass(frozen=True, eq=False)
class SiddMetadata:
    """The DNG metadata of one SIDD image (``*_METADATA_RAW_0xx.MAT``).

    Attributes:
        camera: SIDD phone code (``GP``, ``IP``, ``S6``, ``N6``, ``G4``) from the scene folder
            name in ``Filename``, else from ``Model``; ``""`` when unknown.
        make: DNG ``Make``, e.g. ``"samsung"``.
        model: DNG ``Model``, e.g. ``"SM-G925I"``.
        iso: ``ISOSpeedRatings`` (0 when absent).
        exposure: ``ExposureTime`` in seconds (0.0 when absent).
        width: image width in pixels (``Width``).
        height: image height in pixels (``Height``).
        cfa: native Bayer pattern from CFAPattern (tag 33422), e.g. ``"GRBG"``.
        black_level: black level in DN per plane, R, Gr, Gb, B order (``BlackLevel`` is given
            per 2x2 tile position and reordered with the CFA).
        white_level: white level in DN (first ``WhiteLevel`` value).
        as_shot_neutral: ``AsShotNeutral``, float64 ``(3,)`` (R, G, B).
        color_matrix1: ``ColorMatrix1`` (XYZ to camera), float64 ``(3, 3)``, row-major.
        color_matrix2: ``ColorMatrix2``, float64 ``(3, 3)``.
        noise_profile: NoiseProfile (tag 51041) as float64 ``(n, 2)`` rows ``(beta1, beta2)``
            (``variance = beta1 * x + beta2``, normalised units), one row per colour plane
            (3 for SIDD). Raw values: zeros are kept (Noise Flow replaces them by 1e-6, see
            :meth:`nlf`). Shape ``(0, 2)`` when the tag is absent.
        orientation: TIFF ``Orientation`` (1 = as stored; SIDD S6 uses 3 = rotated 180 deg).
        source: the file it was read from.
    """

    camera: str
    make: str
    model: str
    iso: int
    exposure: float
    width: int
    height: int
    cfa: str
    black_level: tuple[float, float, float, float]
    white_level: float
    as_shot_neutral: np.ndarray
    color_matrix1: np.ndarray
    color_matrix2: np.ndarray
    noise_profile: np.ndarray
    orientation: int = 1
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("as_shot_neutral", "color_matrix1", "color_matrix2", "noise_profile"):
            arr = np.array(getattr(self, name), dtype=np.float64)  # a private copy
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)

    def nlf(self, floor: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Per-plane noise level from the NoiseProfile.

        Colour rows map to planes R, Gr, Gb, B as (R, G, G, B); a single row applies to all planes.

        Args:
            floor: values below it are raised to it (Noise Flow uses ``1e-6`` for zeros).

        Returns:
            ``(shot, read)``, float64 ``(4,)`` each, ``variance = shot * x + read``.

        Raises:
            RawSynthError: if the metadata has no NoiseProfile or an unexpected number of rows.
        """
        rows = self.noise_profile
        if rows.shape[0] == 1:
            per_plane = np.repeat(rows, 4, axis=0)
        elif rows.shape[0] == 3:
            per_plane = rows[[0, 1, 1, 2]]
        elif rows.shape[0] == 4:
            per_plane = rows  # already one row per plane (R, Gr, Gb, B)
        else:
            raise RawSynthError(
                f"{self.source or 'metadata'}: NoiseProfile has {rows.shape[0]} (beta1, beta2) pairs, "
                f"expected 1, 3 or 4"
            )
        per_plane = np.maximum(per_plane, floor)
        return per_plane[:, 0].copy(), per_plane[:, 1].copy()


def _unwrap(value: Any) -> Any:
    """Drill through the size-1 object/struct wrappers that scipy puts around MATLAB values."""
    while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, np.ndarray) and value.dtype.names is not None and value.size == 1:
        value = value.reshape(-1)[0]
    return value


def _get(struct: Any, name: str) -> Any:
    """Field ``name`` of a scipy struct (record or 1x1 struct array), or None."""
    struct = _unwrap(struct)
    names = getattr(getattr(struct, "dtype", None), "names", None)
    if not names or name not in names:
        return None
    return _unwrap(struct[name])


def _numbers(value: Any) -> np.ndarray:
    value = _unwrap(value)
    if value is None:
        return np.zeros(0)
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        return np.zeros(0)
    return arr.astype(np.float64).reshape(-1)


def _text(value: Any) -> str:
    value = _unwrap(value)
    if value is None:
        return ""
    if isinstance(value, (str, bytes)):
        return value.decode("latin-1") if isinstance(value, bytes) else value
    arr = np.asarray(value)
    if arr.dtype.kind in "US" and arr.size:
        return str(arr.reshape(-1)[0])
    return ""


def _records(value: Any) -> list[Any]:
    """Every struct record inside ``value`` (struct arrays, cells of structs, nested wrappers)."""
    value = _unwrap(value)
    if value is None:
        return []
    if isinstance(value, np.ndarray) and value.dtype == object:
        return [rec for item in value.reshape(-1) for rec in _records(item)]
    if getattr(getattr(value, "dtype", None), "names", None):
        return list(np.asarray(value).reshape(-1))
    return []


def _unknown_tags(struct: Any) -> dict[int, np.ndarray]:
    """``{tag id: values (float64, flat)}`` from ``UnknownTags`` (then from ``SubIFDs``' ones)."""
    tags: dict[int, np.ndarray] = {}
    for src in [struct, *_records(_get(struct, "SubIFDs"))]:
        for entry in _records(_get(src, "UnknownTags")):
            names = entry.dtype.names
            if "ID" not in names or "Value" not in names:
                continue
            ids = _numbers(entry["ID"])
            if ids.size == 1:
                tags.setdefault(int(ids[0]), _numbers(entry["Value"]))
    return tags


def _camera_code(filename: str, model: str) -> str:
    match = _SCENE_IN_TEXT.search(filename.replace("\\", "/"))
    if match and match.group(1) in SIDD_PHONES:
        return match.group(1)
    lowered = model.lower()
    for needle, code in _MODEL_CODES:
        if needle in lowered:
            return code
    return ""


def _matrix(values: np.ndarray, name: str, source: Path) -> np.ndarray:
    if values.size == 0:
        return np.full((3, 3), np.nan)
    if values.size != 9:
        raise RawSynthError(f"{source}: {name} has {values.size} values, expected 9 (3x3 row-major)")
    return values.reshape(3, 3)


def read_sidd_metadata(path: PathLike) -> SiddMetadata:
    """Read a SIDD ``*_METADATA_RAW_0xx.MAT`` file (MATLAB v5, struct ``metadata``).

    Args:
        path: the metadata file.

    Returns:
        :class:`SiddMetadata`. Missing optional fields get neutral values (``iso`` 0,
        colour matrices NaN, ``noise_profile`` of shape ``(0, 2)``).

    Raises:
        RawSynthError: if the file is not a v5 MAT file with a ``metadata`` struct, or it has
            no CFAPattern tag (33422) / an invalid one.
    """
    p = Path(path)
    if not p.is_file():
        raise RawSynthError(f"{p}: file not found")
    if is_mat_v73(p):
        raise RawSynthError(f"{p}: MATLAB v7.3 metadata is not supported, "
                            f"expected a v5 MAT file with struct 'metadata'")
    mat = _load_v5(p)
    try:
        return _parse_metadata(p, mat)
    except RawSynthError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError) as exc:
        raise _unreadable(p, exc) from None


def _parse_metadata(p: Path, mat: dict[str, Any]) -> SiddMetadata:
    """The :class:`SiddMetadata` of a loaded metadata file (a damaged value may raise anything)."""
    if "metadata" not in mat:
        raise RawSynthError(f"{p}: no variable 'metadata' (expected a SIDD metadata struct)")
    meta = _unwrap(mat["metadata"])
    if getattr(getattr(meta, "dtype", None), "names", None) is None:
        raise RawSynthError(f"{p}: variable 'metadata' is not a struct")

    tags = _unknown_tags(meta)
    tile = tags.get(TAG_CFA_PATTERN)
    if tile is None:
        raise RawSynthError(f"{p}: no CFAPattern (tag {TAG_CFA_PATTERN}) in metadata.UnknownTags")
    try:
        cfa = cfa_from_raw_pattern(tile.astype(int), "RGB")
    except (RawSynthError, IndexError):
        raise RawSynthError(f"{p}: CFAPattern (tag {TAG_CFA_PATTERN}) {tile.astype(int).tolist()} "
                            f"is not a Bayer tile") from None

    black = _numbers(_get(meta, "BlackLevel"))
    if black.size == 0:
        black_level = (0.0,) * 4
    elif black.size == 1:
        black_level = (float(black[0]),) * 4
    elif black.size == 4:
        # BlackLevel follows the 2x2 tile row by row; reorder to R, Gr, Gb, B.
        black_level = tuple(float(black[2 * dy + dx]) for dy, dx in site_offsets(cfa))
    else:
        raise RawSynthError(f"{p}: BlackLevel has {black.size} values, expected 1 or 4")
    white = _numbers(_get(meta, "WhiteLevel"))
    if white.size == 0:
        raise RawSynthError(f"{p}: no WhiteLevel in metadata")

    neutral = _numbers(_get(meta, "AsShotNeutral"))
    if neutral.size not in (0, 3):
        raise RawSynthError(f"{p}: AsShotNeutral has {neutral.size} values, expected 3")
    profile = tags.get(TAG_NOISE_PROFILE, np.zeros(0))
    if profile.size % 2:
        raise RawSynthError(f"{p}: NoiseProfile (tag {TAG_NOISE_PROFILE}) has an odd number of values ({profile.size})")

    model = _text(_get(meta, "Model"))
    iso = _numbers(_get(meta, "ISOSpeedRatings"))
    exposure = _numbers(_get(meta, "ExposureTime"))
    width = _numbers(_get(meta, "Width"))
    height = _numbers(_get(meta, "Height"))
    orientation = _numbers(_get(meta, "Orientation"))
    return SiddMetadata(
        camera=_camera_code(_text(_get(meta, "Filename")), model),
        make=_text(_get(meta, "Make")),
        model=model,
        iso=int(iso[0]) if iso.size else 0,
        exposure=float(exposure[0]) if exposure.size else 0.0,
        width=int(width[0]) if width.size else 0,
        height=int(height[0]) if height.size else 0,
        cfa=cfa,
        black_level=black_level,  # type: ignore[arg-type]
        white_level=float(white[0]),
        as_shot_neutral=neutral if neutral.size else np.full(3, np.nan),
        color_matrix1=_matrix(_numbers(_get(meta, "ColorMatrix1")), "ColorMatrix1", p),
        color_matrix2=_matrix(_numbers(_get(meta, "ColorMatrix2")), "ColorMatrix2", p),
        noise_profile=profile.reshape(-1, 2),
        orientation=int(orientation[0]) if orientation.size else 1,
        source=str(p),
    )


# ============================================================================ images


def read_sidd_image(path: PathLike) -> np.ndarray:
    """Read a SIDD ``*_NOISY_RAW_0xx.MAT`` / ``*_GT_RAW_0xx.MAT`` image (variable ``x``).

    Args:
        path: MATLAB v7.3 (HDF5) file, as SIDD ships them, or a classic v5 MAT file.

    Returns:
        The Bayer mosaic, float32 ``(H, W)``, normalised to [0, 1], native CFA phase, as stored
        (no orientation applied). For v7.3 the HDF5 ``(W, H)`` dataset is transposed.

    Raises:
        RawSynthError: naming the file, if ``x`` is missing, not 2-D or not floating point.
    """
    p = Path(path)
    x = _load_mat_variable(p, "x", "a 2-D float mosaic 'x'")
    if x.ndim != 2:
        raise RawSynthError(f"{p}: variable 'x' has shape {x.shape}, expected a 2-D (H, W) mosaic")
    if x.dtype.kind != "f":
        raise RawSynthError(f"{p}: variable 'x' has dtype {x.dtype}, expected float32/float64 normalised to [0, 1]")
    return np.ascontiguousarray(x, dtype=np.float32)


def read_sidd_pair(noisy_path: PathLike, gt_path: PathLike, cfa: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a noisy/ground-truth pair and pack both into R, Gr, Gb, B planes.

    Odd heights or widths lose their last row/column (the CFA phase is kept).

    Args:
        noisy_path: the ``*_NOISY_RAW_*.MAT`` file.
        gt_path: the matching ``*_GT_RAW_*.MAT`` file.
        cfa: the native Bayer pattern (from :class:`SiddMetadata`).

    Returns:
        ``(noisy, clean)``, float32 ``(4, H/2, W/2)`` each.

    Raises:
        RawSynthError: if the files are malformed or their shapes differ.
    """
    noisy = read_sidd_image(noisy_path)
    clean = read_sidd_image(gt_path)
    if noisy.shape != clean.shape:
        raise RawSynthError(f"{noisy_path}: shape {noisy.shape} differs from {Path(gt_path).name} {clean.shape}")
    h, w = noisy.shape[0] // 2 * 2, noisy.shape[1] // 2 * 2
    return pack(noisy[:h, :w], cfa), pack(clean[:h, :w], cfa)


# ============================================================================ SIDD-Medium folders


def _find_file(folder: Path, name: str) -> Optional[Path]:
    exact = folder / name
    if exact.is_file():
        return exact
    lowered = name.lower()
    for child in folder.iterdir():
        if child.name.lower() == lowered and child.is_file():
            return child
    return None


@dataclass(frozen=True)
class SiddPair:
    """One noisy/ground-truth set of a scene (``_010`` or ``_011``); files load on demand.

    Attributes:
        set_id: ``"010"`` or ``"011"``.
        noisy_path: ``<id>_NOISY_RAW_<set>.MAT``.
        gt_path: ``<id>_GT_RAW_<set>.MAT``.
        metadata_path: ``<id>_METADATA_RAW_<set>.MAT``.
    """

    set_id: str
    noisy_path: Path
    gt_path: Path
    metadata_path: Path

    def metadata(self) -> SiddMetadata:
        """Read the metadata (see :func:`read_sidd_metadata`)."""
        return read_sidd_metadata(self.metadata_path)

    def noisy(self) -> np.ndarray:
        """The noisy mosaic, float32 ``(H, W)`` in [0, 1]."""
        return read_sidd_image(self.noisy_path)

    def gt(self) -> np.ndarray:
        """The ground-truth mosaic, float32 ``(H, W)`` in [0, 1]."""
        return read_sidd_image(self.gt_path)

    def packed(self, cfa: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
        """``(noisy, clean)`` packed float32 ``(4, H/2, W/2)``; ``cfa`` defaults to the metadata's."""
        if cfa is None:
            cfa = self.metadata().cfa
        return read_sidd_pair(self.noisy_path, self.gt_path, cfa)


@dataclass(frozen=True)
class SiddScene:
    """A SIDD-Medium scene folder.

    Attributes:
        name: the folder name, e.g. ``0001_001_S6_00100_00060_3200_L``.
        folder: its path.
        instance: scene instance number as written (``"0001"``), also the file-name prefix.
        scene: scene number (``"001"``).
        phone: phone code (``"S6"``).
        iso: ISO (100).
        shutter: shutter-speed denominator (60 for 1/60 s).
        illuminant: illuminant colour temperature in K (3200).
        brightness: ``"L"``, ``"N"`` or ``"H"``.
        pairs: the sets present (``_010`` first, then ``_011``).
    """

    name: str
    folder: Path
    instance: str
    scene: str
    phone: str
    iso: int
    shutter: int
    illuminant: int
    brightness: str
    pairs: tuple[SiddPair, ...] = field(default_factory=tuple)

    def pair(self, set_id: str = "010") -> SiddPair:
        """The pair of one set.

        Raises:
            RawSynthError: if the folder has no complete set ``set_id``.
        """
        for pair in self.pairs:
            if pair.set_id == set_id:
                return pair
        raise RawSynthError(f"{self.folder}: no complete _{set_id} set (NOISY, GT and METADATA files)")


def parse_scene_name(name: str) -> dict[str, Any]:
    """Split a SIDD scene folder name into its fields.

    Args:
        name: e.g. ``0001_001_S6_00100_00060_3200_L``.

    Returns:
        ``{"instance": "0001", "scene": "001", "phone": "S6", "iso": 100, "shutter": 60,
        "illuminant": 3200, "brightness": "L"}``.

    Raises:
        RawSynthError: if the name does not have the seven SIDD fields.
    """
    match = SCENE_NAME_PATTERN.match(name)
    if not match:
        raise RawSynthError(
            f"{name}: not a SIDD scene folder name "
            "(expected <instance>_<scene>_<phone>_<ISO>_<shutter>_<illuminant>_<brightness>)"
        )
    g = match.groupdict()
    return {
        "instance": g["instance"],
        "scene": g["scene"],
        "phone": g["phone"].upper(),
        "iso": int(g["iso"]),
        "shutter": int(g["shutter"]),
        "illuminant": int(g["illuminant"]),
        "brightness": g["brightness"].upper(),
    }


def _scene_from_folder(folder: Path, sets: Sequence[str]) -> Optional[SiddScene]:
    try:
        fields = parse_scene_name(folder.name)
    except RawSynthError:
        return None
    prefix = fields["instance"]
    pairs = []
    for set_id in sets:
        files = [_find_file(folder, f"{prefix}_{kind}_RAW_{set_id}.MAT") for kind in ("NOISY", "GT", "METADATA")]
        if all(f is not None for f in files):
            pairs.append(SiddPair(set_id, files[0], files[1], files[2]))  # type: ignore[arg-type]
        elif any(f is not None for f in files):
            logger.warning("%s: incomplete _%s set (need NOISY, GT and METADATA), skipped", folder, set_id)
    return SiddScene(name=folder.name, folder=folder, pairs=tuple(pairs), **fields)


def iter_sidd_medium(root: PathLike, sets: Sequence[str] = ("010", "011")) -> Iterator[SiddScene]:
    """Iterate over the scene folders of a SIDD-Medium RAW copy, sorted by name.

    ``root`` may be the ``SIDD_Medium_Raw`` folder (with ``Data/`` inside), the ``Data`` folder
    itself, or a single scene folder. Folders whose names are not SIDD scene names are skipped;
    scenes without any complete set are skipped with a warning. Nothing is loaded until asked.

    Args:
        root: the dataset folder.
        sets: which sets to look for (``"010"``, ``"011"``).

    Yields:
        :class:`SiddScene` with at least one complete :class:`SiddPair`.

    Raises:
        RawSynthError: if ``root`` is not a folder.
    """
    base = Path(root)
    if not base.is_dir():
        raise RawSynthError(f"{base}: not a folder (expected a SIDD-Medium RAW folder with scene folders)")
    if SCENE_NAME_PATTERN.match(base.name):
        folders = [base]
    else:
        data = base / "Data"
        parent = data if data.is_dir() else base
        folders = sorted(child for child in parent.iterdir() if child.is_dir())
    for folder in folders:
        scene = _scene_from_folder(folder, sets)
        if scene is None:
            logger.debug("%s: not a SIDD scene folder name, skipped", folder)
            continue
        if not scene.pairs:
            logger.warning("%s: no complete NOISY/GT/METADATA set, skipped", folder)
            continue
        yield scene


# ============================================================================ blocks


def _blocks_array(value: np.ndarray, p: Path, key: str) -> np.ndarray:
    if value.dtype == object:  # a MATLAB cell array {images, blocks} of 2-D blocks
        cells = value
        if cells.ndim != 2:
            raise RawSynthError(f"{p}: cell array {key!r} has shape {cells.shape}, expected (images, blocks)")
        try:
            value = np.stack([np.stack([np.asarray(c) for c in row]) for row in cells])
        except ValueError:
            raise RawSynthError(f"{p}: cells of {key!r} are not equally sized 2-D blocks") from None
    if value.ndim != 4:
        raise RawSynthError(f"{p}: variable {key!r} has shape {value.shape}, "
                            f"expected 4-D (images, blocks, height, width)")
    if value.dtype.kind != "f":
        raise RawSynthError(f"{p}: variable {key!r} has dtype {value.dtype}, expected float RAW blocks in [0, 1]")
    return value


def read_sidd_blocks(path: PathLike, key: Optional[str] = None) -> np.ndarray:
    """Read SIDD validation/benchmark RAW blocks or a ``SubmitRaw.mat``.

    Args:
        path: e.g. ``ValidationNoisyBlocksRaw.mat`` (v5 via scipy, or v7.3 via h5py, transposed
            back to MATLAB's axis order).
        key: the variable; defaults to the file stem (``ValidationNoisyBlocksRaw``,
            ``ValidationGtBlocksRaw``, ``BenchmarkNoisyBlocksRaw``, ``SubmitRaw``).

    Returns:
        float32 ``(images, blocks, h, w)``, normally ``(40, 32, 256, 256)``, native CFA phase.

    Raises:
        RawSynthError: naming the file, if the variable is missing, not 4-D or not float.
    """
    p = Path(path)
    name = key if key is not None else p.stem
    value = _load_mat_variable(p, name, "(images, blocks, height, width) float RAW blocks")
    return np.ascontiguousarray(_blocks_array(value, p, name), dtype=np.float32)


def read_block_positions(path: PathLike, key: str = "BenchmarkBlocks32") -> np.ndarray:
    """Read SIDD block positions (``BenchmarkBlocks32.mat``).

    Args:
        path: the file; rows are 1-based ``[row, col, height, width]``.
        key: the variable name.

    Returns:
        int64 ``(n, 4)`` rows ``[row, col, height, width]`` with **0-based** row and column.

    Raises:
        RawSynthError: if the variable is missing, not ``(n, 4)``, or holds a start below 1 or
            a non-positive size.
    """
    p = Path(path)
    value = np.asarray(_load_mat_variable(p, key, "(n, 4) [row, col, height, width] 1-based"))
    if value.ndim != 2 or value.shape[1] != 4 or value.shape[0] == 0:
        raise RawSynthError(f"{p}: variable {key!r} has shape {value.shape}, "
                            f"expected (n, 4) rows [row, col, height, width]")
    if value.dtype.kind not in "biuf" or not np.all(np.isfinite(value)) or np.any(value != np.round(value)):
        raise RawSynthError(f"{p}: variable {key!r} must hold integer positions")
    out = value.astype(np.int64)
    if np.any(out[:, :2] < 1) or np.any(out[:, 2:] < 1):
        raise RawSynthError(f"{p}: variable {key!r} must hold 1-based starts >= 1 and sizes >= 1")
    out[:, :2] -= 1
    return out


# ============================================================================ submissions


def _check_submission(blocks: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(blocks, np.ndarray):
        raise RawSynthError(f"{name}: expected a numpy array of blocks, got {type(blocks).__name__}")
    if blocks.ndim != 4:
        raise RawSynthError(f"{name}: blocks have shape {blocks.shape}, expected (images, blocks, height, width)")
    if blocks.dtype.kind not in "biuf":
        raise RawSynthError(f"{name}: blocks have dtype {blocks.dtype}, expected a numeric dtype")
    return blocks


def write_submit_raw_mat(path: PathLike, blocks: np.ndarray) -> Path:
    """Write a SIDD RAW submission ``SubmitRaw.mat`` (MATLAB v5, variable ``SubmitRaw``).

    Args:
        path: output file.
        blocks: denoised blocks ``(images, blocks, h, w)``, normally ``(40, 32, 256, 256)``;
            the same shape and dtype as the input blocks (float32). Written as is.

    Returns:
        The path written.

    Raises:
        RawSynthError: on a wrongly shaped array or an unwritable path.
    """
    p = Path(path)
    _check_submission(blocks, str(p))
    try:
        scipy.io.savemat(str(p), {_SUBMIT_KEY: blocks})
    except OSError as exc:
        raise RawSynthError(f"{p}: cannot write ({exc.strerror or exc})") from None
    return p


def read_submit_raw_mat(path: PathLike) -> np.ndarray:
    """Read a ``SubmitRaw.mat`` (see :func:`write_submit_raw_mat`), keeping its dtype.

    Returns:
        ``(images, blocks, h, w)`` array as stored.
    """
    p = Path(path)
    value = _load_mat_variable(p, _SUBMIT_KEY, "(images, blocks, height, width) blocks")
    return _check_submission(np.asarray(value), str(p))


def write_submit_raw_csv(path: PathLike, blocks: np.ndarray) -> Path:
    """Write the Kaggle form of a SIDD RAW submission (``SubmitRaw.csv``).

    Columns ``ID`` and ``BLOCK``: one row per block, ``ID = image * n_blocks + block`` (0 ..
    images * n_blocks - 1, row-major over (image, block)); ``BLOCK`` is the base64 of the block's
    raw C-order bytes in the array's dtype (float32 for RAW blocks), little-endian.

    Args:
        path: output file.
        blocks: ``(images, blocks, h, w)``.

    Returns:
        The path written.
    """
    p = Path(path)
    arr = _check_submission(blocks, str(p))
    little = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    n_images, n_blocks = arr.shape[:2]
    try:
        with p.open("w", encoding="ascii", newline="") as fh:
            fh.write("ID,BLOCK\n")
            for i in range(n_images):
                for b in range(n_blocks):
                    payload = base64.b64encode(np.ascontiguousarray(little[i, b]).tobytes()).decode("ascii")
                    fh.write(f"{i * n_blocks + b},{payload}\n")
    except OSError as exc:
        raise RawSynthError(f"{p}: cannot write ({exc.strerror or exc})") from None
    return p


def read_submit_raw_csv(
    path: PathLike,
    block_shape: tuple[int, int] = (256, 256),
    dtype: Union[str, np.dtype] = "float32",
    n_blocks: int = 32,
) -> np.ndarray:
    """Read a ``SubmitRaw.csv`` (see :func:`write_submit_raw_csv`).

    The CSV stores neither shape nor dtype: they are arguments.

    Args:
        path: the CSV.
        block_shape: ``(h, w)`` of each block.
        dtype: the dtype the blocks were encoded in (little-endian).
        n_blocks: blocks per image.

    Returns:
        ``(images, n_blocks, h, w)`` array of ``dtype``.

    Raises:
        RawSynthError: on a bad header, missing or duplicate IDs, or blocks of the wrong size.
    """
    p = Path(path)
    dt = np.dtype(dtype).newbyteorder("<")
    nbytes = int(np.prod(block_shape)) * dt.itemsize
    rows: dict[int, np.ndarray] = {}
    try:
        with p.open("r", encoding="ascii") as fh:
            header = fh.readline().strip().replace('"', "")
            if header != "ID,BLOCK":
                raise RawSynthError(f"{p}: header is {header!r}, expected 'ID,BLOCK'")
            for line_no, line in enumerate(fh, start=2):
                line = line.strip()
                if not line:
                    continue
                ident, _, payload = line.partition(",")
                try:
                    key = int(ident)
                    raw = base64.b64decode(payload.strip('"'), validate=True)
                except ValueError:
                    raise RawSynthError(f"{p}: line {line_no} is not 'ID,base64'") from None
                if len(raw) != nbytes:
                    raise RawSynthError(
                        f"{p}: block ID {key} has {len(raw)} bytes, "
                        f"expected {nbytes} ({block_shape} {np.dtype(dtype).name})"
                    )
                if key in rows:
                    raise RawSynthError(f"{p}: duplicate block ID {key}")
                rows[key] = np.frombuffer(raw, dtype=dt).reshape(block_shape)
    except (OSError, UnicodeDecodeError) as exc:
        raise RawSynthError(f"{p}: cannot read CSV ({exc})") from None
    count = len(rows)
    if count == 0 or count % n_blocks or sorted(rows) != list(range(count)):
        raise RawSynthError(f"{p}: IDs must be 0..N-1 with N a multiple of {n_blocks}, got {count} rows")
    out = np.stack([rows[k] for k in range(count)]).astype(np.dtype(dtype), copy=False)
    return out.reshape(count // n_blocks, n_blocks, *block_shape)
