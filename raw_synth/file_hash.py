"""One sha256 of a file's bytes, read in 1 MiB blocks (checkpoints in manifests, training-set caches).

Example:
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as handle:
    ...     file_sha256(handle.name)[:16]
    'e3b0c44298fc1c14'
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["file_sha256"]

#: Bytes read at a time.
_BLOCK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (identifies the engine checkpoint in a store's manifest).

    Args:
        path: The file.

    Returns:
        64 lowercase hex digits.

    Raises:
        OSError: When the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
