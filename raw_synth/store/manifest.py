"""The store manifest: ``DIR/manifest.json``, saved atomically.

It records the full generate configuration, the raw-synth version, the inverse-ISP engine
(name and checkpoint sha256), the number of samples and the shard size, the shard format, every
shard with its sample range, checksum and state, and every skipped input with its reason.
A re-run with the same configuration resumes; :meth:`Manifest.check_compatible` refuses a
different one with a message naming the first differing field.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from raw_synth import __version__
from raw_synth.config_fields import MISSING, first_difference
from raw_synth.errors import RawSynthError
from raw_synth.store.records import ShardInfo
from raw_synth.store.shard_file import FORMATS, SUFFIXES
from raw_synth.store.writer import PARTIAL_PREFIX

__all__ = ["MANIFEST_NAME", "MANIFEST_FORMAT_VERSION", "Manifest", "manifest_path"]

#: File name of the manifest inside a store folder.
MANIFEST_NAME = "manifest.json"

#: Version of the manifest layout this code writes and reads.
MANIFEST_FORMAT_VERSION = 1

_SHA256 = re.compile(r"[0-9a-f]{64}")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _plain(value: Any) -> Any:
    """``value`` as plain JSON types (tuples -> lists, paths -> str), as a save/load gives back."""
    return json.loads(json.dumps(value, default=str))


def manifest_path(path: str | Path) -> Path:
    """``path/manifest.json`` for a store folder, or ``path`` itself when it names a file."""
    p = Path(path)
    return p if p.suffix == ".json" else p / MANIFEST_NAME


def _show(value: Any) -> str:
    return "<missing>" if value is MISSING else json.dumps(value)


@dataclass
class Manifest:
    """Contents of ``manifest.json``.

    Attributes:
        config: The full generate configuration (plain JSON data).
        n_samples: Number of samples the store is meant to hold.
        shard_size: Samples per shard (the last shard may hold fewer).
        format: ``"zarr"`` or ``"hdf5"``.
        engine: ``{"name": ..., "checkpoint_sha256": ... or None}``.
        shards: Shard name -> ``{"start", "stop", "count", "checksum", "nbytes", "state"}``;
            ``state`` is ``"complete"`` for a finished shard.
        skipped: ``[{"source": ..., "reason": ...}]`` inputs that were skipped.
        rewritten: ``[{"shard", "reason", "time"}]`` shards that failed their check when a run
            resumed and were written again.
        format_version: Manifest layout version.
        raw_synth_version: Version of raw-synth that created the store.
        created: ISO 8601 UTC creation time.
        updated: ISO 8601 UTC time of the last change.
        directory: Folder the manifest was loaded from or saved to (not saved; used in messages).
    """

    config: dict[str, Any]
    n_samples: int
    shard_size: int
    format: str = "zarr"
    engine: dict[str, Any] = field(default_factory=lambda: {"name": None, "checkpoint_sha256": None})
    shards: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    rewritten: list[dict[str, str]] = field(default_factory=list)
    format_version: int = MANIFEST_FORMAT_VERSION
    raw_synth_version: str = __version__
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)
    directory: Path | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise RawSynthError(f"format: expected one of {', '.join(FORMATS)}, got {self.format!r}")
        for name in ("n_samples", "shard_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "n_samples" else 1):
                raise RawSynthError(f"manifest: {name}: expected a positive integer, got {value!r}")
        self.config = _plain(dict(self.config))

    # ------------------------------------------------------------------ shards and skipped inputs
    def record_shard(self, info: ShardInfo, state: str = "complete") -> None:
        """Record a written shard (replacing an earlier entry of the same name)."""
        self.shards[info.name] = {
            "start": int(info.start),
            "stop": int(info.stop),
            "count": int(info.count),
            "checksum": info.checksum,
            "nbytes": int(info.nbytes),
            "state": state,
        }
        self.updated = _now()

    def add_skipped(self, source: str, reason: str) -> None:
        """Record a skipped input and its reason."""
        self.skipped.append({"source": str(source), "reason": str(reason)})
        self.updated = _now()

    def note_rewritten(self, name: str, reason: str) -> None:
        """Record that shard ``name`` failed its check on resume (``reason``) and is written again."""
        self.rewritten.append({"shard": str(name), "reason": str(reason), "time": _now()})
        self.updated = _now()

    def complete_shards(self) -> list[tuple[str, dict[str, Any]]]:
        """``(name, entry)`` of every shard in state ``"complete"``, sorted by ``start``."""
        done = [(n, e) for n, e in self.shards.items() if e.get("state") == "complete"]
        return sorted(done, key=lambda item: (int(item[1]["start"]), item[0]))

    @property
    def n_complete(self) -> int:
        """Samples held by complete shards."""
        return sum(int(e["count"]) for _, e in self.complete_shards())

    # ------------------------------------------------------------------ compatibility
    def check_compatible(
        self, config: Mapping[str, Any], where: str | Path | None = None, ignore: Iterable[str] = ()
    ) -> None:
        """Refuse to resume with a different configuration.

        Args:
            config: The configuration of the new run (compared as plain JSON data).
            where: Store folder named in the message (default: :attr:`directory`).
            ignore: Top-level config keys not compared (e.g. worker counts).

        Raises:
            RawSynthError: ``"DIR: holds a store made with a different configuration
                (field X: A != B); use --overwrite to replace it"``, A the stored value and B the
                new one (``<missing>`` when absent), X the dotted path of the first difference.
        """
        skip = set(ignore)
        stored = {k: v for k, v in self.config.items() if k not in skip}
        given = {k: v for k, v in _plain(dict(config)).items() if k not in skip}
        diff = first_difference(stored, given)
        if diff is not None:
            name, a, b = diff
            place = where if where is not None else (self.directory if self.directory is not None else "store")
            raise RawSynthError(
                f"{place}: holds a store made with a different configuration "
                f"(field {name}: {_show(a)} != {_show(b)}); use --overwrite to replace it"
            )

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON-able data (shards sorted by name)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "directory"}
        out["shards"] = {name: dict(self.shards[name]) for name in sorted(self.shards)}
        return _plain(out)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str | Path = "manifest") -> "Manifest":
        """Build from :meth:`to_dict` data.

        Raises:
            RawSynthError: Missing or malformed fields, or a newer format version.
        """
        if not isinstance(data, Mapping):
            raise RawSynthError(f"{where}: not a raw-synth manifest (expected a JSON object)")
        version = data.get("format_version", MANIFEST_FORMAT_VERSION)
        if not isinstance(version, int) or version > MANIFEST_FORMAT_VERSION:
            raise RawSynthError(
                f"{where}: manifest format version {version!r} is newer than this raw-synth supports "
                f"({MANIFEST_FORMAT_VERSION}); upgrade raw-synth"
            )
        known = {f.name for f in fields(cls)} - {"directory"}
        kwargs = {k: v for k, v in data.items() if k in known}
        for required in ("config", "n_samples", "shard_size"):
            if required not in kwargs:
                raise RawSynthError(f"{where}: not a raw-synth manifest (field {required!r} is missing)")
        if not isinstance(kwargs["config"], dict) or not isinstance(kwargs.get("shards", {}), dict):
            raise RawSynthError(f"{where}: not a raw-synth manifest (config and shards must be JSON objects)")
        try:
            manifest = cls(**kwargs)
        except TypeError as exc:
            raise RawSynthError(f"{where}: not a raw-synth manifest ({exc})") from None
        except RawSynthError as exc:
            raise RawSynthError(f"{where}: {exc}") from None
        manifest._validate(where)
        return manifest

    def _validate(self, where: str | Path) -> None:
        """Check every field a reader or a resume trusts (one line naming the first bad one).

        Shard names must be the writer's own (``shard-NNNNNN.zarr`` / ``.h5`` of the store's
        format), so no entry can point outside the store; ranges, counts and sizes must be
        non-negative integers and checksums sha256 hex; ``n_samples``, ``shard_size`` and ``format``
        must agree with the stored configuration.
        """
        for key, value in (("n", self.n_samples), ("shard_size", self.shard_size), ("format", self.format)):
            if key in self.config and _plain(self.config[key]) != value:
                field_name = {"n": "n_samples"}.get(key, key)
                raise RawSynthError(f"{where}: {field_name} is {value!r} but the stored configuration says "
                                    f"{key} = {self.config[key]!r} (the manifest was edited or damaged)")
        if not isinstance(self.engine, dict):
            raise RawSynthError(f"{where}: engine: expected a JSON object, got {self.engine!r}")
        if not isinstance(self.skipped, list) or not all(
                isinstance(e, dict) and isinstance(e.get("source"), str) and isinstance(e.get("reason"), str)
                for e in self.skipped):
            raise RawSynthError(f"{where}: skipped: expected a list of {{source, reason}} strings")
        if not isinstance(self.rewritten, list) or not all(isinstance(e, dict) for e in self.rewritten):
            raise RawSynthError(f"{where}: rewritten: expected a list of {{shard, reason, time}} objects")
        pattern = re.compile(rf"shard-(\d{{6,}}){re.escape(SUFFIXES[self.format])}")
        for name, entry in self.shards.items():
            match = pattern.fullmatch(str(name))
            if match is None:
                raise RawSynthError(f"{where}: shard entry {name!r} is not a {self.format} shard name of this store "
                                    f"(expected shard-NNNNNN{SUFFIXES[self.format]})")
            if not isinstance(entry, dict):
                raise RawSynthError(f"{where}: shard {name}: expected a JSON object")
            for key in ("start", "stop", "count", "nbytes"):
                number = entry.get(key, 0 if key == "nbytes" else None)
                if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                    raise RawSynthError(f"{where}: shard {name}: {key}: expected a non-negative integer, "
                                        f"got {number!r}")
            checksum = entry.get("checksum")
            if not isinstance(checksum, str) or _SHA256.fullmatch(checksum) is None:
                raise RawSynthError(f"{where}: shard {name}: checksum: expected 64 hex digits, got {checksum!r}")
            if not isinstance(entry.get("state", "complete"), str):
                raise RawSynthError(f"{where}: shard {name}: state: expected a string, got {entry.get('state')!r}")

    def save(self, path: str | Path | None = None) -> Path:
        """Write ``manifest.json`` atomically (temporary file, fsync, ``os.replace``).

        Args:
            path: Store folder or manifest file; default :attr:`directory`.

        Returns:
            The manifest file path.

        Raises:
            RawSynthError: No path known, or a file-system error (one line naming the file).
        """
        if path is None:
            if self.directory is None:
                raise RawSynthError("manifest: no path given and none known")
            path = self.directory
        target = manifest_path(path)
        self.updated = _now()
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"
        tmp = target.parent / f"{PARTIAL_PREFIX}{target.name}.{os.getpid()}-{secrets.token_hex(4)}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise RawSynthError(f"{target}: cannot write manifest: {exc.strerror or exc}") from None
        self.directory = target.parent
        return target

    @classmethod
    def load(cls, path: str | Path) -> "Manifest":
        """Read ``manifest.json`` from a store folder (or the file itself).

        Raises:
            RawSynthError: Missing file ("DIR: no manifest.json (not a raw-synth store)"),
                invalid JSON or malformed content, one line naming the file.
        """
        target = manifest_path(path)
        if not target.is_file():
            raise RawSynthError(f"{target.parent}: no {MANIFEST_NAME} (not a raw-synth store)")
        try:
            data = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            reason = " ".join(str(exc).split())
            raise RawSynthError(f"{target}: not a valid raw-synth manifest ({reason})") from None
        manifest = cls.from_dict(data, where=target)
        manifest.directory = target.parent
        return manifest
