"""Reading a store: :func:`open_shards` gives a lazy, fork-safe random-access sequence of samples.

Only the shards the manifest marks complete are visible, in the order of their sample ranges;
``ds[i]`` finds its shard by binary search over the cumulative counts. Shard handles are opened on
first use and belong to the process that opened them: after ``fork`` (e.g. in DataLoader workers)
each process reopens its own, and pickling drops them, so one store object can serve many workers.
"""

from __future__ import annotations

import bisect
import math
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from raw_synth.errors import RawSynthError, one_line
from raw_synth.store.digests import DIGESTS_KEY, metadata_problems, sample_problem
from raw_synth.store.manifest import Manifest
from raw_synth.store.opener import open_shard_file
from raw_synth.store.records import META_FIELDS, STRING_FIELDS
from raw_synth.store.shard_file import ShardFile, shard_path
from raw_synth.store.verify import check_shard, structure_problems

#: What :func:`open_shards` checks as it reads (see there).
VERIFY_MODES: tuple[str, ...] = ("checksum", "structure", "none")

__all__ = ["ShardStore", "open_shards", "normalise_dn", "VERIFY_MODES"]


def normalise_dn(dn: np.ndarray, black: np.ndarray, white: np.ndarray) -> np.ndarray:
    """``(DN - black) / (white - black)`` per plane.

    Args:
        dn: ``(..., 4, h, w)`` integer DN.
        black: ``(..., 4)`` black level per plane.
        white: ``(..., 4)`` white level per plane.

    Returns:
        float32 array of ``dn``'s shape; below-black values stay negative (not clipped).
    """
    b = np.asarray(black, dtype=np.float32)[..., None, None]
    w = np.asarray(white, dtype=np.float32)[..., None, None]
    return ((np.asarray(dn, dtype=np.float32) - b) / (w - b)).astype(np.float32, copy=False)


class _OpenShard:
    """One opened shard with its small metadata columns read into memory, checked per ``verify``."""

    def __init__(self, path: Path, entry: dict[str, Any], verify: str) -> None:
        self.path, self.verify = path, verify
        self.start = int(entry["start"])
        self.file: ShardFile = open_shard_file(path)
        try:
            self._open(entry)
        except BaseException:
            self.file.close()
            raise

    def _fail(self, message: str) -> RawSynthError:
        return RawSynthError(f"{self.path}: {message}; run raw-synth verify on the store, then raw-synth generate "
                             f"again with the same options to rewrite the shard")

    def _open(self, entry: dict[str, Any]) -> None:
        attrs = self.file.attrs
        count = int(entry["count"])
        if not attrs.get("complete"):
            raise RawSynthError(f"{self.path}: shard is incomplete (no completion mark)")
        if self.verify != "none":
            problems, _ = structure_problems(self.file, entry)
            if problems:
                raise self._fail(problems[0])
        try:
            self.images = {k: self.file.columns[k] for k in ("noisy", "clean")}
            if "uncertainty" in self.file.columns:
                self.images["uncertainty"] = self.file.columns["uncertainty"]
            self.meta = {k: np.asarray(self.file.columns[k][...]) for k in META_FIELDS}
            self.strings = {k: self.file.strings(k) for k in STRING_FIELDS}
        except KeyError as exc:
            raise RawSynthError(f"{self.path}: shard lacks the column {exc.args[0]!r}") from None
        except Exception as exc:  # noqa: BLE001 - a damaged metadata chunk: one line
            raise self._fail(f"cannot read the metadata columns ({one_line(exc)})") from None
        if int(self.images["noisy"].shape[0]) != count or int(attrs.get("count", -1)) != count:
            raise RawSynthError(f"{self.path}: shard holds {self.images['noisy'].shape[0]} samples, "
                                f"manifest says {count}")
        self.digests: dict[str, Any] | None = None
        if self.verify == "checksum":
            digests = attrs.get(DIGESTS_KEY)
            if digests is None:  # a format-1 shard: no per-sample digests, check it whole once
                problems, _ = check_shard(self.path.parent, self.path.name, entry, level="checksum",
                                          clean_range=(-np.inf, np.inf))
                if problems:
                    raise self._fail(problems[0].split(": ", 1)[-1])
            else:
                self.digests = digests
                problems = metadata_problems(self.meta, self.strings, digests, self.start)
                if problems:
                    raise self._fail(problems[0])

    def _image(self, column: str, j: int) -> np.ndarray:
        try:
            block = np.asarray(self.images[column][j])
        except Exception as exc:  # noqa: BLE001 - a damaged chunk that does not decompress
            raise self._fail(f"sample {self.start + j} column {column}: cannot read ({one_line(exc)})") from None
        problem = None if self.digests is None else sample_problem(self.digests, column, j, block, self.start)
        if problem is not None:
            raise self._fail(problem)
        return block

    def sample(self, j: int) -> dict[str, Any]:
        m = self.meta
        black, white = m["black_level"][j], m["white_level"][j]
        out: dict[str, Any] = {
            "index": int(m["index"][j]),
            "noisy": normalise_dn(self._image("noisy", j), black, white),
            "clean": self._image("clean", j).astype(np.float32),
        }
        if "uncertainty" in self.images:
            out["uncertainty"] = self._image("uncertainty", j).astype(np.float32)
        for name in ("shot", "read", "black_level", "white_level", "wb_gains", "xyz_to_cam"):
            out[name] = np.array(m[name][j], dtype=np.float64)
        for name in ("iso", "gain"):
            value = float(m[name][j])
            out[name] = None if math.isnan(value) else value
        out["crop"] = (int(m["crop"][j][0]), int(m["crop"][j][1]))
        for name in STRING_FIELDS:
            out[name] = self.strings[name][j]
        return out

    def close(self) -> None:
        self.file.close()


class ShardStore(Sequence):
    """Random access over the complete shards of a store (see :func:`open_shards`).

    ``len(ds)`` is the number of samples in complete shards; ``ds[i]`` (``0 <= i < len``, negative
    allowed) is the ``i``-th of them in global-index order (equal to the global index when the
    store is complete). Use it as a context manager or call :meth:`close` to release handles.
    """

    def __init__(self, path: str | Path, verify: str = "checksum") -> None:
        if verify not in VERIFY_MODES:
            raise RawSynthError(f"verify: expected one of {', '.join(VERIFY_MODES)}, got {verify!r}")
        self.path = Path(path)
        self.verify = verify
        self.manifest = Manifest.load(self.path)
        shards = self.manifest.complete_shards()
        self.shard_names: list[str] = [name for name, _ in shards]
        self._entries = [entry for _, entry in shards]
        self._name_pos = {name: k for k, name in enumerate(self.shard_names)}
        offsets = [0]
        for entry in self._entries:
            offsets.append(offsets[-1] + int(entry["count"]))
        self._offsets = offsets
        self._handles: dict[int, _OpenShard] = {}
        self._pid = os.getpid()

    @property
    def format(self) -> str:
        """``"zarr"`` or ``"hdf5"``."""
        return self.manifest.format

    def __len__(self) -> int:
        return self._offsets[-1]

    def locate(self, i: int) -> tuple[str, int]:
        """``(shard name, position inside the shard)`` of item ``i``.

        Raises:
            IndexError: ``i`` out of range.
        """
        n = len(self)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"store indices must be integers, not {type(i).__name__}")
        k = int(i) + n if i < 0 else int(i)
        if not 0 <= k < n:
            raise IndexError(f"sample {i} out of range for a store of {n} samples")
        pos = bisect.bisect_right(self._offsets, k) - 1
        return self.shard_names[pos], k - self._offsets[pos]

    def _shard(self, name: str) -> _OpenShard:
        pid = os.getpid()
        if pid != self._pid:
            # handles inherited over fork belong to the parent: forget them without closing
            self._handles = {}
            self._pid = pid
        pos = self._name_pos[name]
        handle = self._handles.get(pos)
        if handle is None:
            handle = _OpenShard(shard_path(self.path, name), self._entries[pos], self.verify)
            self._handles[pos] = handle
        return handle

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
        """Sample ``i`` as a dict.

        Returns:
            ``noisy`` float32 ``(4, h, w)`` normalised ``(DN - black) / (white - black)``,
            ``clean`` float32 ``(4, h, w)``, ``uncertainty`` float32 ``(4, h, w)`` when stored;
            ``shot``, ``read``, ``black_level``, ``white_level``, ``wb_gains`` float64 ``(4,)``,
            ``xyz_to_cam`` float64 ``(3, 3)``; ``iso`` and ``gain`` float or None; ``camera``,
            ``cfa``, ``source`` str; ``crop`` ``(y, x)``; ``index`` the global sample index.

        Raises:
            IndexError: Out of range. RawSynthError: The shard is missing or unreadable.
        """
        name, j = self.locate(i)
        return self._shard(name).sample(j)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]

    def close(self) -> None:
        """Close the handles this process opened."""
        if os.getpid() == self._pid:
            for handle in self._handles.values():
                handle.close()
        self._handles = {}

    def __enter__(self) -> "ShardStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return (
            f"ShardStore({str(self.path)!r}, format={self.format!r}, samples={len(self)}, "
            f"shards={len(self.shard_names)})"
        )


def open_shards(path: str | Path, verify: str = "checksum") -> ShardStore:
    """Open the store in folder ``path`` for reading (lazily; nothing is read but the manifest).

    Every value handed out is checked unless told otherwise (``verify``):

    * ``"checksum"`` (default): when a shard is first opened, its structure (below) and its
      metadata columns against the sha256 digests the writer stored; each image then against its
      per-sample CRC-32C as it is read. The cost is a CRC per read chunk, a few microseconds
      against about a millisecond to decompress it (benchmarks/RESULTS.md). A shard written
      before per-sample digests existed (format 1) is checked whole, once, when first opened.
    * ``"structure"``: when a shard is first opened, its completion mark, that its start, stop,
      count and checksum equal the manifest's, and its columns, dtypes, row counts and shapes.
    * ``"none"``: the completion mark and the sample count only.

    Args:
        path: Store folder holding ``manifest.json``.
        verify: ``"checksum"``, ``"structure"`` or ``"none"``.

    Returns:
        A :class:`ShardStore` sequence of sample dicts.

    Raises:
        RawSynthError: No or a malformed manifest (shard names that are not the writer's, fields of
            the wrong type, counts disagreeing with the configuration), or an unknown ``verify``.
            Reading a damaged shard raises a one-line ``RawSynthError`` naming the shard, and for
            damaged values the sample and the column.
    """
    return ShardStore(path, verify=verify)
