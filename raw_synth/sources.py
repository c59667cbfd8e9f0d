"""Input sources of ``raw-synth generate``: where each sample's sRGB patch comes from.

``--src`` names one of:

* a **folder** - every file with an image extension below it (recursive), sorted;
* a **glob** (``"photos/**/*.jpg"``) - every file it matches, sorted;
* a **list file** - one path per line, ``#`` starts a comment, relative paths are relative to the
  list file's folder (a single image file is a one-item source);
* ``samples`` - the photographs bundled with the package;
* ``deadleaves`` - procedural dead-leaves images, unbounded (the default).

:func:`resolve_sources` runs once, on the client, before planning: it reads every file's header
with Pillow (cheap, no pixel decoding) and keeps the files that can serve a ``patch x patch``
crop; the others are skipped with their reason (not an image, corrupt header, smaller than the
patch). A file whose pixels turn out unreadable later, in a worker, is reported by
:meth:`Sources.load_patch` (its :class:`SourcePatch` carries the failure) and the sample falls
back to the next item, deterministically.

Sample ``index`` of a run seeded with ``seed`` uses item ``perm[index % n_items]``, where
``perm`` is a permutation fixed by ``seed``; its crop is a random ``patch x patch`` window with
even ``(y, x)`` (so the Bayer phase of the inverse ISP's mosaic is the image's), drawn from the
sample's generator. ``deadleaves`` renders item ``index`` at the patch size (crop ``(0, 0)``).

Example:
    >>> src = resolve_sources("deadleaves", patch=32)
    >>> import numpy as np
    >>> patch = src.load_patch(5, seed=0, patch=32, rng=np.random.default_rng(0))
    >>> patch.rgb.shape, patch.source, patch.crop
    ((32, 32, 3), 'deadleaves#5', (0, 0))
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import warnings
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from raw_synth.errors import RawSynthError

__all__ = [
    "IMAGE_EXTENSIONS",
    "Skipped",
    "SourcePatch",
    "Sources",
    "resolve_sources",
    "scan_image",
]

logger = logging.getLogger(__name__)

#: File name extensions (lower case) that a folder source picks up.
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".ppm", ".pnm", ".pgm",
)
_GLOB_CHARS = ("*", "?", "[")
#: SeedSequence word that keeps the item permutation apart from every per-sample stream.
_PERM_TAG = 0x70657261  # "pera"
#: How many times a sample moves on to the next item when a file fails to decode in a worker.
_MAX_FALLBACK = 64
#: Decoded images a worker keeps in memory (bytes), so consecutive crops of one photo are cheap.
_CACHE_BYTES = 192 * 1024 * 1024

SourceKind = Literal["files", "samples", "deadleaves"]


@dataclass(frozen=True)
class Skipped:
    """An input that cannot serve and why.

    Attributes:
        source: The input's id (its path as listed, or relative to the source folder).
        reason: One line, e.g. ``"not an image file (cannot identify image format)"``.
    """

    source: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """``{"source": ..., "reason": ...}`` as the manifest stores it."""
        return {"source": self.source, "reason": self.reason}


@dataclass(frozen=True)
class SourcePatch:
    """The sRGB patch of one sample.

    Attributes:
        rgb: float32 ``(patch, patch, 3)`` sRGB in ``[0, 1]`` (a new array).
        source: Id of the item it came from, e.g. ``"photos/a.jpg"``, ``"samples/coffee#3"``,
            ``"deadleaves#17"``.
        crop: ``(y, x)`` of the window's top-left corner in the source image (both even).
        failed: Items that failed to decode on the way (normally empty).
    """

    rgb: np.ndarray
    source: str
    crop: tuple[int, int]
    failed: tuple[Skipped, ...] = ()


@dataclass(frozen=True)
class Sources:
    """The resolved ``--src``: a small, picklable description the workers load patches from.

    Attributes:
        spec: The ``--src`` text as given.
        kind: ``"files"``, ``"samples"`` or ``"deadleaves"``.
        paths: Absolute paths of the usable files (``files``), in item order.
        ids: Display ids of ``paths`` (same order); for ``samples`` the photo names.
        sizes: ``(height, width)`` of each usable file as its header states (stored orientation).
        skipped: Inputs that cannot serve, with reasons.
    """

    spec: str
    kind: SourceKind
    paths: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    sizes: tuple[tuple[int, int], ...] = ()
    skipped: tuple[Skipped, ...] = ()
    _perm_cache: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    @property
    def n_items(self) -> int | None:
        """Number of usable items; ``None`` for the unbounded ``deadleaves``."""
        return None if self.kind == "deadleaves" else len(self.ids)

    def fingerprint(self) -> str:
        """sha256 of the kind and the usable items (ids and header sizes), to tell sources apart."""
        digest = hashlib.sha256(self.kind.encode())
        for item_id, size in zip(self.ids, self.sizes or [()] * len(self.ids)):
            digest.update(f"\0{item_id}\0{tuple(size)}".encode())
        return digest.hexdigest()

    def permutation(self, seed: int) -> np.ndarray:
        """The item order of a run seeded with ``seed``: int64 ``(n_items,)``."""
        n = self.n_items or 0
        key = (int(seed), n)
        perm = self._perm_cache.get(key)
        if perm is None:
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), _PERM_TAG]))
            perm = rng.permutation(n)
            self._perm_cache.clear()
            self._perm_cache[key] = perm
        return perm

    def item_of(self, index: int, seed: int) -> int:
        """Item number (into ``ids``) of sample ``index``; for ``deadleaves`` the index itself."""
        if self.kind == "deadleaves":
            return int(index)
        perm = self.permutation(seed)
        return int(perm[int(index) % len(perm)])

    def load_patch(self, index: int, seed: int, patch: int, rng: np.random.Generator) -> SourcePatch:
        """The sRGB patch of sample ``index``.

        Args:
            index: Global sample index, ``>= 0``.
            seed: Run seed; fixes the item order (and the dead-leaves rendering).
            patch: Side of the square patch in pixels (even).
            rng: The sample's generator; the crop position is drawn from it (two integers).

        Returns:
            A :class:`SourcePatch`. When a file fails to decode here, the next item of the
            permutation is tried (up to 64 times) and the failures are listed in ``failed``.

        Raises:
            RawSynthError: If every item tried fails.
        """
        if self.kind == "deadleaves":
            from raw_synth.corpora import load_corpus_image

            rgb = load_corpus_image("deadleaves", int(index), size=(patch, patch), seed=int(seed))
            return SourcePatch(rgb=rgb, source=f"deadleaves#{int(index)}", crop=(0, 0))

        perm = self.permutation(seed)
        failed: list[Skipped] = []
        for step in range(min(_MAX_FALLBACK, len(perm))):
            item = int(perm[(int(index) + step) % len(perm)])
            try:
                image = self._image(item)
            except RawSynthError as error:
                failed.append(Skipped(self.ids[item], _reason(str(error), self.paths[item] if self.paths else "")))
                continue
            height, width = image.shape[:2]
            if height < patch or width < patch:
                failed.append(Skipped(self.ids[item], f"smaller than the patch ({height}x{width} < {patch}x{patch})"))
                continue
            y = 2 * int(rng.integers(0, (height - patch) // 2 + 1))
            x = 2 * int(rng.integers(0, (width - patch) // 2 + 1))
            rgb = np.array(image[y : y + patch, x : x + patch], dtype=np.float32, copy=True)
            source = f"samples/{self.ids[item]}#{int(index)}" if self.kind == "samples" else self.ids[item]
            return SourcePatch(rgb=rgb, source=source, crop=(y, x), failed=tuple(failed))
        reasons = "; ".join(f"{f.source}: {f.reason}" for f in failed[:3])
        raise RawSynthError(f"sample {index}: no readable input image found ({reasons})")

    def _image(self, item: int) -> np.ndarray:
        """Decoded image of one item, from the worker's small cache."""
        key = (self.kind, self.paths[item] if self.kind == "files" else self.ids[item])
        image = _CACHE.get(key)
        if image is None:
            if self.kind == "samples":
                from raw_synth.corpora import load_sample

                image = load_sample(self.ids[item])
            else:
                from raw_synth.io import read_image

                image = read_image(self.paths[item])
            _CACHE.put(key, image)
        return image


class _ImageCache:
    """Least-recently-used decoded images, bounded by bytes (one per worker process)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.items: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    def get(self, key: tuple[str, str]) -> np.ndarray | None:
        image = self.items.get(key)
        if image is not None:
            self.items.move_to_end(key)
        return image

    def put(self, key: tuple[str, str], image: np.ndarray) -> None:
        self.items[key] = image
        self.items.move_to_end(key)
        while len(self.items) > 1 and sum(a.nbytes for a in self.items.values()) > self.budget:
            self.items.popitem(last=False)

    def clear(self) -> None:
        self.items.clear()


_CACHE = _ImageCache(_CACHE_BYTES)


def _reason(message: str, path: str) -> str:
    """A read error's message without the leading ``path: `` (the manifest names the source)."""
    prefix = f"{path}: "
    return message[len(prefix):] if path and message.startswith(prefix) else message


def scan_image(path: str | Path, patch: int) -> tuple[tuple[int, int] | None, str | None]:
    """Read one file's header and decide whether it can serve ``patch x patch`` crops.

    Args:
        path: The file.
        patch: Patch side in pixels.

    Returns:
        ``((height, width), None)`` for a usable file, ``(None, reason)`` otherwise.
    """
    from PIL import Image, UnidentifiedImageError

    file = Path(path)
    if not file.exists():
        return None, "file not found"
    if not file.is_file():
        return None, "not a file"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                width, height = image.size
    except UnidentifiedImageError:
        size = _tiff_size(file)
        if size is None:
            return None, "not an image file (cannot identify image format)"
        height, width = size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None, "image too large to read safely"
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        text = " ".join(str(error).split()) or type(error).__name__
        return None, f"cannot read image ({text})"
    if height < patch or width < patch:
        return None, f"smaller than the patch ({height}x{width} < {patch}x{patch})"
    return (int(height), int(width)), None


def _tiff_size(file: Path) -> tuple[int, int] | None:
    """``(height, width)`` of a TIFF that Pillow does not open (e.g. float RGB), else ``None``."""
    try:
        with open(file, "rb") as handle:
            if handle.read(4) not in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
                return None
        import tifffile

        with tifffile.TiffFile(file) as tif:
            shape = tif.pages[0].shape
        return int(shape[0]), int(shape[1])
    except Exception:  # a broken TIFF header is simply not an image we can use
        return None


def _list_file_paths(listing: Path) -> list[tuple[str, Path]]:
    """``(id, path)`` of each line of a list file."""
    try:
        text = listing.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RawSynthError(f"{listing}: not a list file (not UTF-8 text) nor an image") from None
    except OSError as error:
        raise RawSynthError(f"{listing}: cannot read list file ({error.strerror or error})") from None
    entries = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        path = Path(entry).expanduser()
        entries.append((entry, path if path.is_absolute() else listing.parent / path))
    return entries


def _collect(spec: str) -> tuple[SourceKind, list[tuple[str, Path]]]:
    """Kind and ``(id, path)`` candidates of a ``--src``."""
    if spec in ("samples", "deadleaves") and not Path(spec).exists():
        return spec, []  # type: ignore[return-value]
    path = Path(spec).expanduser()
    if path.is_dir():
        root = path.resolve()
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        return "files", [(str(Path(root.name) / p.relative_to(root)), p) for p in files]
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return "files", [(spec, path)]
        return "files", _list_file_paths(path)
    if any(c in spec for c in _GLOB_CHARS):
        matches = sorted(m for m in glob.glob(os.path.expanduser(spec), recursive=True) if os.path.isfile(m))
        return "files", [(m, Path(m)) for m in matches]
    raise RawSynthError(
        f"--src {spec!r}: no such folder, file or glob match; expected a folder, a glob, a list file, "
        f"'samples' or 'deadleaves'"
    )


def _summary(skipped: list[Skipped]) -> str:
    """``"2 not an image file, 1 smaller than the patch"``: reasons grouped by their first words."""
    if not skipped:
        return "no image files found"
    counts = Counter(s.reason.split(" (", 1)[0] for s in skipped)
    return ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def resolve_sources(spec: str, patch: int, threads: int = 8) -> Sources:
    """Resolve ``--src`` into usable items, reading only file headers.

    Args:
        spec: A folder, a glob, a list file, a single image, ``"samples"`` or ``"deadleaves"``.
        patch: Patch side in pixels (positive, even); smaller images are skipped.
        threads: Threads reading headers in parallel.

    Returns:
        The :class:`Sources`, its ``skipped`` listing every unusable input with its reason.

    Raises:
        RawSynthError: If ``spec`` names nothing, or no usable input remains:
            ``"no usable input images in SRC: N skipped (reasons...)"``.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise RawSynthError(f"--src: expected a folder, glob, list file, 'samples' or 'deadleaves', got {spec!r}")
    if isinstance(patch, bool) or not isinstance(patch, (int, np.integer)) or patch < 2 or patch % 2:
        raise RawSynthError(f"--patch: expected an even number of pixels >= 2, got {patch!r}")
    kind, candidates = _collect(spec)
    if kind == "deadleaves":
        return Sources(spec=spec, kind="deadleaves")
    if kind == "samples":
        from raw_synth.corpora import list_samples

        ids, sizes, skipped = [], [], []
        for file in list_samples():
            size, reason = scan_image(file, patch)
            if reason is None:
                ids.append(file.stem)
                sizes.append(size)
            else:
                skipped.append(Skipped(f"samples/{file.stem}", reason))
        sources = Sources(spec=spec, kind="samples", paths=(), ids=tuple(ids), sizes=tuple(sizes),
                          skipped=tuple(skipped))
    else:
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            results = list(pool.map(lambda c: scan_image(c[1], patch), candidates))
        paths, ids, sizes, skipped = [], [], [], []
        for (item_id, file), (size, reason) in zip(candidates, results):
            if reason is None:
                paths.append(str(Path(file).resolve()))
                ids.append(item_id)
                sizes.append(size)
            else:
                skipped.append(Skipped(item_id, reason))
        sources = Sources(spec=spec, kind="files", paths=tuple(paths), ids=tuple(ids), sizes=tuple(sizes),
                          skipped=tuple(skipped))
    for entry in sources.skipped:
        logger.warning("skipping %s: %s", entry.source, entry.reason)
    if not sources.ids:
        raise RawSynthError(
            f"no usable input images in {spec}: {len(sources.skipped)} skipped ({_summary(list(sources.skipped))})"
        )
    logger.info("--src %s: %d usable images, %d skipped", spec, len(sources.ids), len(sources.skipped))
    return sources
