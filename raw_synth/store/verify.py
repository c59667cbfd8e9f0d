"""Checking a store end to end: :func:`verify_store` -> :class:`VerifyReport`.

Checks that every shard the manifest lists exists, is complete (state and completion mark),
matches its recorded range and checksum (recomputed from the decoded data), and holds sane
values: noisy uint16 DN not above the white level, clean finite within a tolerance of [0, 1],
finite metadata with white above black, indices equal to the recorded range; and that the
complete shards cover ``0 .. n_samples-1`` exactly once. Every problem is one line that starts
with the shard name (or ``manifest.json`` / ``store``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from raw_synth.cfa import CFA_PATTERNS
from raw_synth.errors import RawSynthError, one_line
from raw_synth.store.checksum import ShardHasher
from raw_synth.store.digests import DIGESTS_KEY, metadata_problems, sample_problem
from raw_synth.store.lock import LOCK_NAME, lock_holder
from raw_synth.store.manifest import MANIFEST_NAME, Manifest
from raw_synth.store.opener import open_shard_file
from raw_synth.store.records import CLEAN_DTYPES, IMAGE_FIELDS, META_FIELDS, STRING_FIELDS
from raw_synth.store.shard_file import SUFFIXES, ShardFile, shard_path
from raw_synth.store.writer import PARTIAL_PREFIX

__all__ = ["VerifyReport", "verify_store", "check_shard", "structure_problems", "CLEAN_RANGE",
           "CHECK_LEVELS"]

logger = logging.getLogger(__name__)

#: Accepted range of clean values (normalised; a little slack around [0, 1]).
CLEAN_RANGE: tuple[float, float] = (-0.05, 1.05)

_BLOCK = 64

#: How thoroughly a shard is checked: headers only, or every value.
CHECK_LEVELS: tuple[str, ...] = ("structure", "checksum")


@dataclass
class VerifyReport:
    """Result of :func:`verify_store`.

    Attributes:
        ok: True when no problem was found.
        problems: One line per problem, starting with the shard name.
        n_checked: Samples whose data was read and checked.
        n_shards: Shards the manifest lists.
        warnings: Harmless findings (leftover temporary entries, shards not in the manifest).
    """

    ok: bool
    problems: list[str]
    n_checked: int
    n_shards: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "ok": self.ok,
            "problems": list(self.problems),
            "n_checked": self.n_checked,
            "n_shards": self.n_shards,
            "warnings": list(self.warnings),
        }


def _first(mask: np.ndarray, index: np.ndarray) -> int:
    return int(index[int(np.argmax(mask.reshape(mask.shape[0], -1).any(axis=1)))])


def _digests(attrs: dict[str, Any], n: int) -> dict[str, Any] | None:
    """The shard's per-column and per-sample digests when present and well formed, else ``None``."""
    digests = attrs.get(DIGESTS_KEY)
    if not isinstance(digests, dict):
        return None
    columns, samples = digests.get("columns"), digests.get("samples")
    if not isinstance(columns, dict) or not isinstance(samples, dict):
        return None
    if any(not isinstance(v, list) or len(v) != n for v in samples.values()):
        return None
    return digests


def structure_problems(shard: ShardFile, entry: dict[str, Any]) -> tuple[list[str], bool]:
    """What is wrong with a shard's structure, judged from its attributes and array headers alone.

    Checks the completion mark; that start, stop, count and checksum in the shard equal its
    manifest entry; that every column is present with its stored dtype, the right number of rows
    and per-sample shape; and that a format-2 shard carries well-formed digests. No data is read.

    Args:
        shard: The opened shard.
        entry: Its manifest entry (``start``, ``stop``, ``count``, ``checksum``).

    Returns:
        ``(problems, fatal)``: one line per problem (without the shard name); ``fatal`` when the
        data cannot be checked further (no completion mark, missing columns, wrong row counts).
    """
    attrs = shard.attrs
    start, stop, count = int(entry["start"]), int(entry["stop"]), int(entry["count"])
    problems: list[str] = []
    if stop - start != count:
        problems.append(f"manifest range {start}..{stop} does not match its count {count}")
    if not attrs.get("complete"):
        return problems + ["incomplete (no completion mark in the shard)"], True
    for key in ("start", "stop", "count", "checksum"):
        if attrs.get(key) != entry.get(key):
            problems.append(f"{key} in the shard ({attrs.get(key)!r}) differs from manifest.json ({entry.get(key)!r})")
    cols = shard.columns
    missing = [c for c in ("noisy", "clean", *META_FIELDS, *STRING_FIELDS) if c not in cols]
    if missing:
        return problems + [f"missing columns {', '.join(missing)}"], True
    n = int(cols["noisy"].shape[0])
    if n != count:
        problems.append(f"holds {n} samples, manifest.json says {count}")
    for c in (*IMAGE_FIELDS, *META_FIELDS, *STRING_FIELDS):
        if c in cols and int(cols[c].shape[0]) != n:
            return problems + [f"column {c} holds {cols[c].shape[0]} rows, noisy holds {n}"], True
    if cols["noisy"].dtype != np.uint16:
        problems.append(f"noisy has dtype {cols['noisy'].dtype}, expected uint16")
    image_shape = tuple(cols["noisy"].shape[1:])
    if len(image_shape) != 3 or image_shape[0] != 4:
        return problems + [f"noisy has shape {tuple(cols['noisy'].shape)}, expected (n, 4, h, w)"], True
    for c in IMAGE_FIELDS[1:]:
        if c in cols and tuple(cols[c].shape[1:]) != image_shape:
            return problems + [f"{c} has shape {tuple(cols[c].shape)}, noisy has {tuple(cols['noisy'].shape)}"], True
    if str(cols["clean"].dtype) not in CLEAN_DTYPES:
        problems.append(f"clean has dtype {cols['clean'].dtype}, expected one of {', '.join(CLEAN_DTYPES)}")
    for c, (dtype, sub) in META_FIELDS.items():
        if tuple(cols[c].shape) != (n, *sub) or str(cols[c].dtype) != dtype:
            problems.append(f"column {c} has shape {tuple(cols[c].shape)} and dtype {cols[c].dtype}, "
                            f"expected {(n, *sub)} {dtype}")
            return problems, True
    if int(attrs.get("format_version", 1)) >= 2 and _digests(attrs, n) is None:
        problems.append(f"{DIGESTS_KEY} missing or malformed in the shard's attributes")
    return problems, False


class _ShardCheck:
    """Checks of one opened shard; problems are appended to ``problems``."""

    def __init__(self, name: str, entry: dict[str, Any], shard: ShardFile, clean_range: tuple[float, float]) -> None:
        self.name, self.entry, self.shard, self.clean_range = name, entry, shard, clean_range
        self.problems: list[str] = []
        self.n_checked = 0
        self.digests: dict[str, Any] | None = None

    def add(self, message: str) -> None:
        self.problems.append(f"{self.name}: {message}")

    def run(self, level: str = "checksum") -> None:
        problems, fatal = structure_problems(self.shard, self.entry)
        for problem in problems:
            self.add(problem)
        if fatal or level == "structure":
            return
        start, n = int(self.entry["start"]), int(self.shard.columns["noisy"].shape[0])
        hasher = ShardHasher()
        meta = self._check_meta(hasher, start, n)
        if meta is None:
            return
        self._check_images(hasher, meta, n)
        if self.n_checked == n:
            digest = hasher.hexdigest()
            if digest != self.entry.get("checksum"):
                self.add(f"checksum mismatch (stored data gives {digest[:12]}..., manifest.json records "
                         f"{str(self.entry.get('checksum'))[:12]}...)")

    def _check_meta(self, hasher: ShardHasher, start: int, n: int) -> dict[str, np.ndarray] | None:
        cols = self.shard.columns
        meta: dict[str, np.ndarray] = {}
        try:
            for c, (_, sub) in META_FIELDS.items():
                meta[c] = np.asarray(cols[c][...])
                if meta[c].shape != (n, *sub):
                    self.add(f"column {c} has shape {meta[c].shape}, expected {(n, *sub)}")
                    return None
            strings = {c: self.shard.strings(c) for c in STRING_FIELDS}
        except Exception as exc:  # noqa: BLE001 - report any decoding failure
            self.add(f"cannot read metadata ({one_line(exc)})")
            return None
        index = meta["index"]
        self.digests = _digests(self.shard.attrs, n)
        if self.digests is not None:
            for problem in metadata_problems(meta, strings, self.digests, start):
                self.add(problem)
        if not np.array_equal(index, np.arange(start, start + n)):
            self.add(f"indices are not {start}..{start + n - 1}")
        for c in ("shot", "read", "black_level", "white_level", "wb_gains", "xyz_to_cam"):
            bad = ~np.isfinite(meta[c])
            if bad.any():
                self.add(f"{c} holds non-finite values (first at sample {_first(bad, index)})")
        for c in ("iso", "gain"):
            if np.isinf(meta[c]).any():
                self.add(f"{c} holds infinite values")
        with np.errstate(invalid="ignore"):
            bad_levels = ~(meta["white_level"] > meta["black_level"])
        if bad_levels.any():
            self.add(f"white level not above black level (first at sample {_first(bad_levels, index)})")
        if (meta["white_level"] > 65535).any() or (meta["black_level"] < 0).any():
            self.add("black/white level outside [0, 65535]")
        bad_cfa = sorted({s for s in strings["cfa"] if s not in CFA_PATTERNS})
        if bad_cfa:
            self.add(f"unknown CFA patterns {bad_cfa}")
        for c in META_FIELDS:
            hasher.update(c, meta[c])
        for c in STRING_FIELDS:
            hasher.update(c, strings[c])
        return meta

    def _check_images(self, hasher: ShardHasher, meta: dict[str, np.ndarray], n: int) -> None:
        cols = self.shard.columns
        lo, hi = self.clean_range
        index, white = meta["index"], meta["white_level"]
        found: set[str] = set()

        def once(key: str, message: str) -> None:
            if key not in found:
                found.add(key)
                self.add(message)

        for a in range(0, n, _BLOCK):
            b = min(n, a + _BLOCK)
            try:
                blocks = {c: np.asarray(cols[c][a:b]) for c in IMAGE_FIELDS if c in cols}
            except Exception as exc:  # noqa: BLE001 - corrupt chunk, truncated file, ...
                self.add(f"cannot read samples {int(index[a])}..{int(index[b - 1])} ({one_line(exc)})")
                return
            for c, block in blocks.items():
                hasher.update(c, block)
                if self.digests is not None:
                    for j in range(a, b):
                        problem = sample_problem(self.digests, c, j, block[j - a], int(self.entry["start"]))
                        if problem is not None:
                            self.add(problem)
            noisy = blocks["noisy"]
            over = noisy.reshape(b - a, 4, -1).max(axis=2) > white[a:b]
            if over.any():
                once("white", f"noisy above the white level (first at sample {_first(over, index[a:b])})")
            clean = blocks["clean"]
            bad = ~np.isfinite(clean)
            if bad.any():
                once("nan", f"clean holds non-finite values (NaN/inf; first at sample {_first(bad, index[a:b])})")
            with np.errstate(invalid="ignore"):
                out = (clean < lo) | (clean > hi)
            if out.any():
                once("range", f"clean outside [{lo}, {hi}] (first at sample {_first(out, index[a:b])})")
            if "uncertainty" in blocks:
                unc = blocks["uncertainty"]
                with np.errstate(invalid="ignore"):
                    bad_unc = ~(np.isfinite(unc) & (unc >= 0))
                if bad_unc.any():
                    once("unc", f"uncertainty not finite and >= 0 (first at sample {_first(bad_unc, index[a:b])})")
            self.n_checked += b - a


def check_shard(root: str | Path, name: str, entry: dict[str, Any], level: str = "checksum",
                clean_range: tuple[float, float] = CLEAN_RANGE) -> tuple[list[str], int]:
    """Check one shard of the store in ``root`` against its manifest entry.

    Args:
        root: Store folder.
        name: Shard name from the manifest (already validated by :class:`Manifest`).
        entry: Its manifest entry.
        level: ``"structure"``: attributes and array headers only (:func:`structure_problems`);
            ``"checksum"``: also read every value, check the stored digests, the value ranges and
            recompute the shard checksum.
        clean_range: Accepted ``(min, max)`` of clean values.

    Returns:
        ``(problems, n_checked)``: one line per problem starting with the shard name, and the
        samples whose data was read.
    """
    if level not in CHECK_LEVELS:
        raise RawSynthError(f"check level: expected one of {', '.join(CHECK_LEVELS)}, got {level!r}")
    try:
        path = shard_path(root, name)
    except RawSynthError:
        return [f"{name}: lies outside the store (a symbolic link to {(Path(root) / name).resolve()})"], 0
    if not path.exists():
        return [f"{name}: missing (listed in {MANIFEST_NAME})"], 0
    try:
        shard = open_shard_file(path)
    except RawSynthError as exc:
        return [f"{name}: {str(exc).split(': ', 1)[-1]}"], 0
    try:
        check = _ShardCheck(name, entry, shard, clean_range)
        try:
            check.run(level)
        except Exception as exc:  # noqa: BLE001 - a damaged shard must not abort the report
            check.add(f"cannot read ({one_line(exc)})")
        return check.problems, check.n_checked
    finally:
        shard.close()


def verify_store(path: str | Path, clean_range: tuple[float, float] = CLEAN_RANGE) -> VerifyReport:
    """Check the store in ``path`` (see the module docstring for the list of checks).

    Args:
        path: Store folder.
        clean_range: Accepted ``(min, max)`` of clean values.

    Returns:
        :class:`VerifyReport`; ``ok`` only when every check passed. Never raises for a damaged
        store: each problem is reported as a line naming the shard.
    """
    root = Path(path)
    try:
        manifest = Manifest.load(root)
    except RawSynthError as exc:
        return VerifyReport(ok=False, problems=[str(exc)], n_checked=0)
    problems: list[str] = []
    warnings: list[str] = []
    n_checked = 0
    suffix = SUFFIXES[manifest.format]
    ordered = sorted(manifest.shards.items(), key=lambda item: (int(item[1]["start"]), item[0]))
    for name, entry in ordered:
        state = entry.get("state")
        if state != "complete":
            problems.append(f"{name}: not complete (state {state!r} in {MANIFEST_NAME})")
            continue
        if not name.endswith(suffix):
            problems.append(f"{name}: not a {manifest.format} shard (expected a name ending in {suffix})")
            continue
        shard_problems, checked = check_shard(root, name, entry, clean_range=clean_range)
        problems.extend(shard_problems)
        n_checked += checked
    # coverage of 0 .. n_samples-1 by the complete shards
    expected = 0
    for name, entry in manifest.complete_shards():
        start, stop = int(entry["start"]), int(entry["stop"])
        if start < expected:
            problems.append(f"{name}: range {start}..{stop} overlaps the previous shard")
        elif start > expected:
            problems.append(f"store: samples {expected}..{start - 1} are in no complete shard")
        expected = max(expected, stop)
    if expected < manifest.n_samples:
        problems.append(f"store: samples {expected}..{manifest.n_samples - 1} are in no complete shard")
    total = manifest.n_complete
    if total != manifest.n_samples:
        problems.append(f"store: complete shards hold {total} samples, {MANIFEST_NAME} expects {manifest.n_samples}")
    holder = lock_holder(root)
    if holder is not None:
        warnings.append(f"{LOCK_NAME}: a run is writing this store now (pid {holder.get('pid', '?')} on "
                        f"{holder.get('host', '?')}); shards may still be added")
    if root.is_dir():
        for entry_path in sorted(root.iterdir()):
            if entry_path.name.startswith(PARTIAL_PREFIX):
                warnings.append(
                    f"{entry_path.name}: leftover temporary entry (raw-synth generate removes it on resume)"
                )
            elif entry_path.name.startswith("shard-") and entry_path.name not in manifest.shards:
                warnings.append(f"{entry_path.name}: shard not listed in {MANIFEST_NAME}")
    for line in problems:
        logger.info("verify: %s", line)
    return VerifyReport(ok=not problems, problems=problems, n_checked=n_checked, n_shards=len(manifest.shards),
                        warnings=warnings)
