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
from raw_synth.errors import RawSynthError
from raw_synth.store.checksum import ShardHasher
from raw_synth.store.manifest import MANIFEST_NAME, Manifest
from raw_synth.store.records import IMAGE_FIELDS, META_FIELDS, STRING_FIELDS
from raw_synth.store.shard_file import SUFFIXES, ShardFile, open_shard_file
from raw_synth.store.writer import PARTIAL_PREFIX

__all__ = ["VerifyReport", "verify_store", "CLEAN_RANGE"]

logger = logging.getLogger(__name__)

#: Accepted range of clean values (normalised; a little slack around [0, 1]).
CLEAN_RANGE: tuple[float, float] = (-0.05, 1.05)

_BLOCK = 16


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


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _first(mask: np.ndarray, index: np.ndarray) -> int:
    return int(index[int(np.argmax(mask.reshape(mask.shape[0], -1).any(axis=1)))])


class _ShardCheck:
    """Checks of one opened shard; problems are appended to ``problems``."""

    def __init__(self, name: str, entry: dict[str, Any], shard: ShardFile, clean_range: tuple[float, float]) -> None:
        self.name, self.entry, self.shard, self.clean_range = name, entry, shard, clean_range
        self.problems: list[str] = []
        self.n_checked = 0

    def add(self, message: str) -> None:
        self.problems.append(f"{self.name}: {message}")

    def run(self) -> None:
        attrs, entry = self.shard.attrs, self.entry
        start, stop, count = int(entry["start"]), int(entry["stop"]), int(entry["count"])
        if stop - start != count:
            self.add(f"manifest range {start}..{stop} does not match its count {count}")
        if not attrs.get("complete"):
            self.add("incomplete (no completion mark in the shard)")
            return
        for key in ("start", "stop", "count", "checksum"):
            if attrs.get(key) != entry.get(key):
                self.add(f"{key} in the shard ({attrs.get(key)!r}) differs from manifest.json ({entry.get(key)!r})")
        cols = self.shard.columns
        missing = [c for c in ("noisy", "clean", *META_FIELDS, *STRING_FIELDS) if c not in cols]
        if missing:
            self.add(f"missing columns {', '.join(missing)}")
            return
        n = int(cols["noisy"].shape[0])
        if n != count:
            self.add(f"holds {n} samples, manifest.json says {count}")
        for c in (*IMAGE_FIELDS, *META_FIELDS, *STRING_FIELDS):
            if c in cols and int(cols[c].shape[0]) != n:
                self.add(f"column {c} holds {cols[c].shape[0]} rows, noisy holds {n}")
                return
        if cols["noisy"].dtype != np.uint16:
            self.add(f"noisy has dtype {cols['noisy'].dtype}, expected uint16")
        hasher = ShardHasher()
        meta = self._check_meta(hasher, start, n)
        if meta is None:
            return
        self._check_images(hasher, meta, n)
        if self.n_checked == n:
            digest = hasher.hexdigest()
            if digest != entry.get("checksum"):
                self.add(f"checksum mismatch (stored data gives {digest[:12]}..., manifest.json records "
                         f"{str(entry.get('checksum'))[:12]}...)")

    def _check_meta(self, hasher: ShardHasher, start: int, n: int) -> dict[str, np.ndarray] | None:
        cols = self.shard.columns
        meta: dict[str, np.ndarray] = {}
        try:
            for c, (dtype, sub) in META_FIELDS.items():
                meta[c] = np.asarray(cols[c][...])
                if meta[c].shape != (n, *sub):
                    self.add(f"column {c} has shape {meta[c].shape}, expected {(n, *sub)}")
                    return None
            strings = {c: self.shard.strings(c) for c in STRING_FIELDS}
        except Exception as exc:  # noqa: BLE001 - report any decoding failure
            self.add(f"cannot read metadata ({_one_line(exc)})")
            return None
        index = meta["index"]
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
                self.add(f"cannot read samples {int(index[a])}..{int(index[b - 1])} ({_one_line(exc)})")
                return
            for c, block in blocks.items():
                hasher.update(c, block)
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
        shard_path = root / name
        if not shard_path.exists():
            problems.append(f"{name}: missing (listed in {MANIFEST_NAME})")
            continue
        try:
            shard = open_shard_file(shard_path)
        except RawSynthError as exc:
            problems.append(f"{name}: {str(exc).split(': ', 1)[-1]}")
            continue
        try:
            check = _ShardCheck(name, entry, shard, clean_range)
            try:
                check.run()
            except Exception as exc:  # noqa: BLE001 - a damaged shard must not abort the report
                check.add(f"cannot read ({_one_line(exc)})")
            problems.extend(check.problems)
            n_checked += check.n_checked
        finally:
            shard.close()
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
