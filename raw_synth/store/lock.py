"""One writer per store: an exclusive advisory lock on ``DIR/.raw-synth.lock``.

``raw-synth generate`` holds :class:`StoreLock` for its whole run. A second writer on the same
folder is refused at once with one line naming the holder (pid, host, since when), instead of
both runs deleting and replacing each other's shards. The lock is a ``flock`` on the lock file,
so the kernel releases it when its holder dies: a killed run never leaves a stale lock behind,
and the next run simply takes it. Readers (``open_shards``, ``inspect``, ``verify``) take no lock;
:func:`lock_holder` tells them whether a writer is at work.

``flock`` locks are reliable on local file systems; on NFS they are emulated with POSIX locks
(Linux >= 2.6.12), which also work across hosts.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from raw_synth.errors import RawSynthError

__all__ = ["LOCK_NAME", "StoreLock", "lock_holder"]

logger = logging.getLogger(__name__)

#: File name of the lock inside a store folder.
LOCK_NAME = ".raw-synth.lock"


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process"
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('since', '?')}"


def _read_holder(fd: int) -> dict[str, Any] | None:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", errors="replace")
        holder = json.loads(text) if text.strip() else None
    except (OSError, json.JSONDecodeError):
        return None
    return holder if isinstance(holder, dict) else None


#: How long a refused writer waits for the holder's record: a holder that has just taken the lock
#: writes it a moment later.
HOLDER_WAIT_S = 1.0


def _wait_for_holder(fd: int, timeout: float = HOLDER_WAIT_S) -> dict[str, Any] | None:
    """The holder's record, read again every 10 ms until it parses or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        holder = _read_holder(fd)
        if holder is not None or time.monotonic() >= deadline:
            return holder
        time.sleep(0.01)


class StoreLock:
    """The exclusive write lock of a store folder (a context manager).

    Args:
        folder: The store folder (must exist).
        command: What holds the lock, recorded for the refusal message of other writers.

    Example:
        >>> with StoreLock(out):  # doctest: +SKIP
        ...     write_the_shards()
    """

    def __init__(self, folder: str | Path, command: str = "raw-synth generate") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> "StoreLock":
        """Take the lock or refuse.

        Raises:
            RawSynthError: Another live process holds it (one line naming its pid and host), or
                the lock file cannot be created (e.g. a read-only folder).
        """
        if self._fd is not None:
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise RawSynthError(f"{self.folder}: cannot create the store lock {LOCK_NAME} "
                                    f"({exc.strerror or exc})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _wait_for_holder(fd)
                os.close(fd)
                raise RawSynthError(
                    f"{self.folder}: another run is writing this store ({_describe(holder)}); "
                    f"wait for it to finish or choose another --out"
                ) from None
            except OSError as exc:
                os.close(fd)
                raise RawSynthError(f"{self.folder}: cannot lock the store ({exc.strerror or exc})") from None
            # the file may have been removed (and recreated) by the holder we waited for: lock the live one
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        record = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                  "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        data = (json.dumps(record) + "\n").encode("utf-8")
        os.pwrite(fd, data, 0)  # then cut a longer old record: the file is never empty in between
        os.ftruncate(fd, len(data))
        logger.debug("%s: store lock taken (%s)", self.folder, _describe(record))
        return self

    def release(self) -> None:
        """Remove the lock file and release the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.unlink(self.path)  # while still locked: a waiter re-checks that its file is the live one
        except OSError:
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> "StoreLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_holder(folder: str | Path) -> dict[str, Any] | None:
    """Who is writing the store in ``folder`` now: ``{"pid", "host", "command", "since"}``, or ``None``.

    Takes no lock (a reader must never make a writer's start fail) and never blocks. A writer
    removes the lock file when it ends, so a file is left only by a killed run: on this host its
    process is checked and a dead one counts as free; a holder on another host is reported as is.
    """
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        holder = _read_holder(fd)
    finally:
        os.close(fd)
    if holder is None:
        return None
    if holder.get("host") == socket.gethostname():
        try:
            os.kill(int(holder.get("pid", -1)), 0)
        except PermissionError:  # alive, another user's
            pass
        except (OSError, ValueError, OverflowError):
            return None
    return holder
