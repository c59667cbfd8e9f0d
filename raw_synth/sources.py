"""Input sources of ``raw-synth generate``: where each sample's sRGB patch comes from.

``--src`` names one of:

* a **folder** - every file with an image extension below it (recursive), sorted;
* a **glob** (``"photos/**/*.jpg"``) - every file it matches, sorted;
* a **list file** - one path per line, ``#`` starts a comment, relative paths are relative to the
  list file's folder (a single image file is a one-item source);
* ``samples`` - the photographs bundled with the package;
* an unbounded **procedural corpus** of :mod:`raw_synth.corpora` (one whose
  ``corpus_length`` is ``None``), e.g. ``deadleaves`` (the default): every sample renders its
  own image at the patch size.

:func:`resolve_sources` runs once, on the client, before planning: it reads every file's header
with Pillow (cheap, no pixel decoding) and keeps the files that can serve a ``patch x patch``
crop at the chosen ``downscale``; the others are skipped with their reason (not an image, corrupt
header, smaller than the patch, larger than ``max_pixels``). Entries of a folder that have an
image extension but are not regular files (a directory ``x.jpg``, a FIFO, a broken symbolic link,
a symbolic link loop) are skipped with their reason too, never opened. A file whose pixels turn
out unreadable later, in a worker, is reported by :meth:`Sources.load_patch` (its
:class:`SourcePatch` carries the failure) and the sample falls back to the next item,
deterministically; any decoder failure counts, a ``MemoryError`` included.

Bounded decoding: an image whose header claims more than ``max_pixels`` (stored height x width,
:data:`DEFAULT_MAX_PIXELS` = 2**28 unless ``--max-pixels`` says otherwise) is skipped by the scan
(``"image too large (100000x100000 = 10000000000 pixels > limit 268435456; raise
--max-pixels)"``), and the workers' decoder checks the same limit before allocating. The scan
reads PNG and TIFF sizes itself, other formats from Pillow's header parse, and it does not rely
on Pillow's decompression-bomb warnings (process-wide state): the same folder gives the same
answer on every run, whatever the number of scanning threads.

Sample ``index`` of a run seeded with ``seed`` uses item ``perm[(index // k) % n_items]``, where
``perm`` is a permutation fixed by ``seed`` and ``k`` is ``crops_per_image`` (1 by default:
consecutive samples visit different items). With ``k > 1``, ``k`` consecutive samples - which
one shard task makes one after the other - share an item, so a worker decodes it once for ``k``
crops. Each sample's crop is a random ``patch x patch`` window with even ``(y, x)`` (so the Bayer
phase of the inverse ISP's mosaic is the image's), drawn from the sample's generator. A
procedural corpus renders item ``index`` at the patch size (crop ``(0, 0)``).

Decoding: a worker decodes a file once to its compact form
(:func:`raw_synth.io.images.decode_image`: ``uint8`` codes for 8-bit files, ``uint16`` for
16-bit ones, grey as one channel, optionally shrunk by ``downscale`` with a box filter), keeps it
in a byte-bounded cache (:class:`ImageCache`), and converts only the crop to float. At
``downscale`` 1 a patch is bit for bit ``read_image(path)[y : y + patch, x : x + patch]``.

Example:
    >>> src = resolve_sources("deadleaves", patch=32)
    >>> import numpy as np
    >>> patch = src.load_patch(5, seed=0, patch=32, rng=np.random.default_rng(0))
    >>> patch.rgb.shape, patch.source, patch.crop
    ((32, 32, 3), 'deadleaves#5', (0, 0))
"""

from __future__ import annotations

import errno
import glob
import hashlib
import logging
import os
import stat
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from raw_synth.errors import RawSynthError, one_line
from raw_synth.image_header import DEFAULT_MAX_PIXELS, TIFF_MAGIC, header_size, raise_pillow_threshold, too_large_reason

if TYPE_CHECKING:  # raw_synth.io imports torch; a client resolving a procedural --src does not need it
    from raw_synth.io.images import CompactImage

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "IMAGE_EXTENSIONS",
    "ImageCache",
    "Skipped",
    "SourcePatch",
    "Sources",
    "procedural_corpora",
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
#: Default byte budget of each worker's decoded-image cache (``--cache-mb 1024``): about 85
#: decoded 4 MP photos at 8 bits, 340 at ``--downscale 2``.
DEFAULT_CACHE_BYTES = 1024 * 1024 * 1024
#: ``--downscale`` factors (:data:`raw_synth.io.images.DOWNSCALES`, which a test keeps equal).
DOWNSCALES: tuple[int, ...] = (1, 2, 4)
#: Failed decodes a worker remembers (so a corrupt file is not decoded again for every sample).
_MAX_FAILURES = 4096
#: What ``stat`` calls the kinds of entry that are not regular files.
_SPECIAL_FILES = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                  (stat.S_ISBLK, "block device"))


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
        crop: ``(y, x)`` of the window's top-left corner in the (downscaled) source image, both even.
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
        kind: ``"files"``, ``"samples"`` or the name of a procedural corpus (``"deadleaves"``, ...).
        paths: Absolute paths of the usable files (``files``), in item order.
        ids: Display ids of ``paths`` (same order); for ``samples`` the photo names.
        sizes: ``(height, width)`` of each usable file as its header states (stored orientation,
            full resolution).
        skipped: Inputs that cannot serve, with reasons.
        downscale: Files are decoded shrunk by this factor (1, 2 or 4; 1 for procedural corpora).
        crops_per_image: ``k``: consecutive samples that share one item (1 for procedural corpora).
        max_pixels: Largest image (stored height x width) the scan accepted and the workers decode.
        cache_bytes: Budget of each worker's decoded-image cache; changes speed and memory only.
    """

    spec: str
    kind: str
    paths: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    sizes: tuple[tuple[int, int], ...] = ()
    skipped: tuple[Skipped, ...] = ()
    downscale: int = 1
    crops_per_image: int = 1
    max_pixels: int = DEFAULT_MAX_PIXELS
    cache_bytes: int = field(default=DEFAULT_CACHE_BYTES, compare=False)
    _perm_cache: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    @property
    def procedural(self) -> bool:
        """Whether the items are rendered (a procedural corpus) rather than decoded from files."""
        return self.kind not in ("files", "samples")

    @property
    def n_items(self) -> int | None:
        """Number of usable items; ``None`` for an unbounded procedural corpus."""
        return None if self.procedural else len(self.ids)

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
        """Item number (into ``ids``) of sample ``index``; for a procedural corpus the index itself."""
        if self.procedural:
            return int(index)
        perm = self.permutation(seed)
        return int(perm[(int(index) // self.crops_per_image) % len(perm)])

    def load_patch(self, index: int, seed: int, patch: int, rng: np.random.Generator) -> SourcePatch:
        """The sRGB patch of sample ``index``.

        Args:
            index: Global sample index, ``>= 0``.
            seed: Run seed; fixes the item order (and a procedural corpus's rendering).
            patch: Side of the square patch in pixels (even).
            rng: The sample's generator; the crop position is drawn from it (two integers; none
                for a procedural corpus).

        Returns:
            A :class:`SourcePatch`. When a file fails to decode here (any decoder error, a
            ``MemoryError`` included), the next item of the permutation is tried (up to 64 times)
            and the failures are listed in ``failed``.

        Raises:
            RawSynthError: If every item tried fails.
        """
        if self.procedural:
            from raw_synth import corpora

            rgb = corpora.load_corpus_image(self.kind, int(index), size=(patch, patch), seed=int(seed))
            return SourcePatch(rgb=rgb, source=f"{self.kind}#{int(index)}", crop=(0, 0))

        perm = self.permutation(seed)
        position = int(index) // self.crops_per_image
        failed: list[Skipped] = []
        for step in range(min(_MAX_FALLBACK, len(perm))):
            item = int(perm[(position + step) % len(perm)])
            try:
                image = self._image(item)
            except RawSynthError as error:
                failed.append(Skipped(self.ids[item], _reason(str(error), self._name(item))))
                continue
            height, width = image.height, image.width
            if height < patch or width < patch:
                failed.append(Skipped(self.ids[item], _too_small(height, width, patch, self.downscale)))
                continue
            y = 2 * int(rng.integers(0, (height - patch) // 2 + 1))
            x = 2 * int(rng.integers(0, (width - patch) // 2 + 1))
            rgb = image.crop(y, x, patch, patch)
            source = f"samples/{self.ids[item]}#{int(index)}" if self.kind == "samples" else self.ids[item]
            return SourcePatch(rgb=rgb, source=source, crop=(y, x), failed=tuple(failed))
        reasons = "; ".join(f"{f.source}: {f.reason}" for f in failed[:3])
        raise RawSynthError(f"sample {index}: no readable input image found ({reasons})")

    def _name(self, item: int) -> str:
        """The file of an item as decode errors name it."""
        return self.paths[item] if self.kind == "files" else f"samples/{self.ids[item]}"

    def _image(self, item: int) -> CompactImage:
        """Decoded (compact) image of one item, from this process's cache.

        Raises:
            RawSynthError: The file cannot be decoded, for whatever reason (remembered, so it is
                not decoded again).
        """
        key = (self.kind, self.paths[item] if self.kind == "files" else self.ids[item], self.downscale,
               self.max_pixels)
        _CACHE.set_budget(self.cache_bytes)
        image = _CACHE.get(key)
        if image is None:
            if self.kind == "samples":
                image = _CACHE.decode(key, lambda: _decode_sample(self.ids[item], self.downscale),
                                      name=self._name(item))
            else:
                from raw_synth.io.images import decode_image

                image = _CACHE.decode(key, lambda: decode_image(self.paths[item], self.downscale,
                                                                max_pixels=self.max_pixels),
                                      name=self._name(item))
            _CACHE.put(key, image)
        return image


def _decode_sample(name: str, downscale: int) -> CompactImage:
    """A bundled photo as :func:`raw_synth.corpora.load_sample` reads it (RGB codes, no EXIF turn)."""
    from PIL import Image

    from raw_synth.corpora.samples import sample_path
    from raw_synth.io.images import CompactImage, box_reduce

    with Image.open(sample_path(name)) as image:
        codes = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return CompactImage(box_reduce(codes, downscale))


class ImageCache:
    """Decoded images of one process, within a byte budget.

    Items come in a cycle (the permutation repeats), so least-recently-used eviction would, for a
    folder larger than the budget, throw out every image just before its next turn: every lookup
    would miss. This cache instead fills up to its budget and then holds what it has ("resident"
    images); an image that does not fit occupies a single extra slot (``current``) until the next
    such image replaces it. For a cycle the hit rate is then about ``budget / folder size``, and
    ``k`` consecutive crops of any image decode it once. Memory: at most ``budget`` plus one image.

    Attributes:
        budget: Bytes the resident images may take.
        resident: ``key -> image``, the held images.
        current: ``(key, image)`` of the latest image that did not fit, or ``None``.
        nbytes: Bytes of the resident images.
        failures: ``key -> error message`` of files that failed to decode (at most 4096).
    """

    def __init__(self, budget: int) -> None:
        self.budget = int(budget)
        self.resident: OrderedDict[tuple, CompactImage] = OrderedDict()
        self.current: tuple[tuple, CompactImage] | None = None
        self.nbytes = 0
        self.failures: dict[tuple, str] = {}

    def set_budget(self, budget: int) -> None:
        """Change the budget; when it shrinks, the latest resident images are dropped until they fit."""
        self.budget = int(budget)
        while self.resident and self.nbytes > self.budget:
            _, image = self.resident.popitem(last=True)
            self.nbytes -= image.nbytes

    def get(self, key: tuple) -> CompactImage | None:
        """The cached image of ``key``, or ``None``."""
        image = self.resident.get(key)
        if image is None and self.current is not None and self.current[0] == key:
            image = self.current[1]
        return image

    def put(self, key: tuple, image: CompactImage) -> None:
        """Keep ``image``: resident if it fits in the budget, else in the ``current`` slot."""
        if key in self.resident:
            return
        if self.nbytes + image.nbytes <= self.budget:
            self.resident[key] = image
            self.nbytes += image.nbytes
        else:
            self.current = (key, image)

    def decode(self, key: tuple, decoder: Callable[[], CompactImage], name: str = "") -> CompactImage:
        """``decoder()``, remembering a failure so that the same key fails at once next time.

        Any exception of the decoder is a failure of this input: a ``MemoryError`` becomes
        ``"NAME: out of memory while decoding (MemoryError)"``, another unexpected one (from Pillow,
        tifffile, ...) ``"NAME: cannot decode image (TYPE: message)"``.

        Args:
            key: The cache key of the image.
            decoder: Decodes it.
            name: The file, named in the messages of exceptions other than RawSynthError.

        Raises:
            RawSynthError: The decoder's error (or the remembered one), as one line.
        """
        message = self.failures.get(key)
        if message is not None:
            raise RawSynthError(message)
        try:
            return decoder()
        except RawSynthError as error:
            message = str(error)
        except MemoryError:
            message = f"{name}: out of memory while decoding (MemoryError)"
        except Exception as error:  # any decoder failure skips this input, never the run
            logger.debug("%s: decoder failed", name, exc_info=True)
            message = f"{name}: cannot decode image ({type(error).__name__}: {one_line(error)})"
        if len(self.failures) < _MAX_FAILURES:
            self.failures[key] = message
        raise RawSynthError(message)

    def clear(self) -> None:
        """Forget every image and failure."""
        self.resident.clear()
        self.current = None
        self.nbytes = 0
        self.failures.clear()


#: This process's cache (each Dask worker process has its own).
_CACHE = ImageCache(DEFAULT_CACHE_BYTES)


def _too_small(height: int, width: int, patch: int, downscale: int, decoded: bool = True) -> str:
    """The skip reason of an image that cannot hold a patch.

    Args:
        height: Rows, as decoded (``decoded``) or as the header states (full resolution).
        width: Columns, likewise.
        patch: Patch side.
        downscale: The decode's shrink factor.
        decoded: Whether ``height`` and ``width`` are already shrunk.
    """
    if downscale == 1:
        return f"smaller than the patch ({height}x{width} < {patch}x{patch})"
    if decoded:
        return f"smaller than the patch at --downscale {downscale} ({height}x{width} < {patch}x{patch})"
    return (f"smaller than the patch at --downscale {downscale} ({height}x{width} shrinks to "
            f"{height // downscale}x{width // downscale} < {patch}x{patch})")


def _reason(message: str, path: str) -> str:
    """A read error's message without the leading ``path: `` (the manifest names the source)."""
    prefix = f"{path}: "
    return message[len(prefix):] if path and message.startswith(prefix) else message


def scan_image(path: str | Path, patch: int, downscale: int = 1, *,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[tuple[int, int] | None, str | None]:
    """Read one file's header and decide whether it can serve ``patch x patch`` crops.

    Safe on hostile input and in threads: an entry that is not a regular file is never opened, the
    pixel limit is checked on the header, and no process-wide warning filter is touched.

    Args:
        path: The file.
        patch: Patch side in pixels.
        downscale: The file will be decoded shrunk by this factor (1, 2 or 4); it must hold the
            patch at that size (``height // downscale`` and ``width // downscale`` at least ``patch``).
        max_pixels: Refuse an image whose header claims more pixels (stored height x width).

    Returns:
        ``((height, width), None)`` for a usable file (its full-resolution header size, stored
        orientation), ``(None, reason)`` otherwise, e.g. ``"image too large (20000x20000 =
        400000000 pixels > limit 268435456; raise --max-pixels)"`` or ``"symbolic link loop"``.
    """
    from PIL import Image, UnidentifiedImageError

    file = Path(path)
    problem = _entry_problem(file)
    if problem is not None:
        return None, problem
    header = header_size(file)
    if header is not None and header[0] * header[1] > max_pixels:
        return None, too_large_reason(max_pixels, header)
    raise_pillow_threshold(max_pixels)
    try:
        with Image.open(file) as image:
            width, height = image.size
    except UnidentifiedImageError:
        size = _tiff_size(file)
        if size is None:
            return None, "not an image file (cannot identify image format)"
        height, width = size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None, too_large_reason(max_pixels)
    except MemoryError:
        return None, "out of memory while reading the header (MemoryError)"
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        return None, f"cannot read image ({one_line(error)})"
    except Exception as error:  # a hostile header must not stop the scan
        return None, f"cannot read image ({type(error).__name__}: {one_line(error)})"
    if int(height) * int(width) > max_pixels:
        return None, too_large_reason(max_pixels, (height, width))
    if height // downscale < patch or width // downscale < patch:
        return None, _too_small(int(height), int(width), patch, downscale, decoded=False)
    return (int(height), int(width)), None


def _entry_problem(file: Path) -> str | None:
    """Why an entry cannot be an input file, or ``None`` for a regular file (one ``stat``, nothing opened)."""
    try:
        mode = os.stat(file).st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symbolic link loop"
        if os.path.islink(file):
            return "broken symbolic link"
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            return "file not found"
        return f"cannot read file ({error.strerror or one_line(error)})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory"
    kind = next((name for test, name in _SPECIAL_FILES if test(mode)), "special file")
    return f"not a regular file ({kind})"


def _tiff_size(file: Path) -> tuple[int, int] | None:
    """``(height, width)`` of a TIFF that Pillow does not open (e.g. float RGB) as tifffile reads it, else ``None``."""
    try:
        with open(file, "rb") as handle:
            if handle.read(4) not in TIFF_MAGIC:
                return None
        import tifffile

        with tifffile.TiffFile(file) as tif:
            page = tif.pages[0]
            return int(page.imagelength), int(page.imagewidth)
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


def procedural_corpora() -> tuple[str, ...]:
    """Names of the unbounded corpora of :mod:`raw_synth.corpora` that ``--src`` accepts, in registry order."""
    from raw_synth import corpora

    return tuple(name for name in corpora.CORPORA if name != "samples" and corpora.corpus_length(name) is None)


def _expected() -> str:
    """What ``--src`` accepts, for error messages."""
    return f"a folder, a glob, a list file, 'samples' or a procedural corpus ({', '.join(procedural_corpora())})"


def _collect(spec: str) -> tuple[str, list[tuple[str, Path, str | None]]]:
    """Kind (``"files"``, ``"samples"`` or a corpus name) and ``(id, path, problem)`` entries of a ``--src``.

    ``problem`` is ``None`` for a candidate whose header is to be read, else the reason a folder
    entry with an image extension (in a folder or a glob's matches) is not a file (:func:`_entry_problem`).
    The folder walk lists entries without opening any (a FIFO would block a reader) and does not follow symbolic links
    to folders, so a link loop cannot make it run forever.
    """
    if not Path(spec).exists() and (spec == "samples" or spec in procedural_corpora()):
        return spec, []
    path = Path(spec).expanduser()
    if path.is_dir():
        root = path.resolve()
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        return "files", [(str(Path(root.name) / p.relative_to(root)), p, _entry_problem(p)) for p in files]
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return "files", [(spec, path, None)]
        return "files", [(item_id, file, None) for item_id, file in _list_file_paths(path)]
    if any(c in spec for c in _GLOB_CHARS):
        # regular files, and entries named like images that are not (recorded with their reason, as in a folder)
        matches = sorted(m for m in glob.glob(os.path.expanduser(spec), recursive=True)
                         if os.path.isfile(m) or Path(m).suffix.lower() in IMAGE_EXTENSIONS)
        return "files", [(m, Path(m), _entry_problem(Path(m))) for m in matches]
    raise RawSynthError(f"--src {spec!r}: no such folder, file or glob match; expected {_expected()}")


def _summary(skipped: list[Skipped]) -> str:
    """``"2 not an image file, 1 smaller than the patch"``: reasons grouped by their first words."""
    if not skipped:
        return "no image files found"
    counts = Counter(s.reason.split(" (", 1)[0] for s in skipped)
    return ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _check_options(downscale: int, crops_per_image: int, cache_bytes: int, max_pixels: int) -> None:
    """Validate the decode options of :func:`resolve_sources` (one-line errors naming the option)."""
    if isinstance(downscale, bool) or downscale not in DOWNSCALES:
        raise RawSynthError(f"--downscale: expected one of {', '.join(map(str, DOWNSCALES))}, got {downscale!r}")
    for value, option, minimum in ((crops_per_image, "--crops-per-image", 1), (cache_bytes, "--cache-mb", 0),
                                   (max_pixels, "--max-pixels", 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise RawSynthError(f"{option}: expected an integer >= {minimum}, got {value!r}")


def _scan_files(entries: list[tuple[str, Path, str | None]], patch: int, downscale: int, threads: int,
                max_pixels: int = DEFAULT_MAX_PIXELS
                ) -> tuple[list[str], list[str], list[tuple[int, int]], list[Skipped]]:
    """``(paths, ids, sizes, skipped)`` of the entries (in their order), reading headers on ``threads`` threads.

    Entries that carry a problem already are skipped with it, unread.
    """
    candidates = [(item_id, file) for item_id, file, problem in entries if problem is None]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        scanned = iter(list(pool.map(lambda c: scan_image(c[1], patch, downscale, max_pixels=max_pixels),
                                     candidates)))
    results = [next(scanned) if problem is None else (None, problem) for _, _, problem in entries]
    paths, ids, sizes, skipped = [], [], [], []
    for (item_id, file, _), (size, reason) in zip(entries, results):
        if reason is None:
            paths.append(str(Path(file).resolve()))
            ids.append(item_id)
            sizes.append(size)
        else:
            skipped.append(Skipped(item_id, reason))
    return paths, ids, sizes, skipped


def resolve_sources(spec: str, patch: int, threads: int = 8, *, downscale: int = 1, crops_per_image: int = 1,
                    cache_bytes: int = DEFAULT_CACHE_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS) -> Sources:
    """Resolve ``--src`` into usable items, reading only file headers.

    Args:
        spec: A folder, a glob, a list file, a single image, ``"samples"`` or the name of an
            unbounded corpus of :mod:`raw_synth.corpora` (``"deadleaves"``, ...).
        patch: Patch side in pixels (positive, even); smaller images are skipped.
        threads: Threads reading headers in parallel.
        downscale: Decode files shrunk by 1, 2 or 4 (box filter); a file must hold the patch at
            that size. Photo sources only.
        crops_per_image: ``k >= 1`` consecutive samples share one item. Photo sources only.
        cache_bytes: Budget of each worker's decoded-image cache (``>= 0``).
        max_pixels: Skip images whose header claims more pixels (stored height x width; ``>= 1``);
            the workers decode with the same limit.

    Returns:
        The :class:`Sources`, its ``skipped`` listing every unusable input with its reason (a
        folder's entries that are not files included).

    Raises:
        RawSynthError: If ``spec`` names nothing, an option is invalid (or given to a procedural
            corpus), or no usable input remains: ``"no usable input images in SRC: N skipped
            (reasons...)"``.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise RawSynthError(f"--src: expected {_expected()}, got {spec!r}")
    if isinstance(patch, bool) or not isinstance(patch, (int, np.integer)) or patch < 2 or patch % 2:
        raise RawSynthError(f"--patch: expected an even number of pixels >= 2, got {patch!r}")
    _check_options(downscale, crops_per_image, cache_bytes, max_pixels)
    options = dict(downscale=int(downscale), crops_per_image=int(crops_per_image), cache_bytes=int(cache_bytes),
                   max_pixels=int(max_pixels))
    kind, entries = _collect(spec)
    if kind not in ("files", "samples"):
        for option, value in (("--downscale", downscale), ("--crops-per-image", crops_per_image)):
            if value != 1:
                raise RawSynthError(f"{option}: applies to photo sources; the procedural {kind!r} is rendered "
                                    f"at the patch size (got {option} {value})")
        return Sources(spec=spec, kind=kind, **options)
    if kind == "samples":
        from raw_synth.corpora import list_samples

        ids, sizes, skipped = [], [], []
        for file in list_samples():
            size, reason = scan_image(file, patch, downscale, max_pixels=int(max_pixels))
            if reason is None:
                ids.append(file.stem)
                sizes.append(size)
            else:
                skipped.append(Skipped(f"samples/{file.stem}", reason))
        sources = Sources(spec=spec, kind="samples", paths=(), ids=tuple(ids), sizes=tuple(sizes),
                          skipped=tuple(skipped), **options)
    else:
        paths, ids, sizes, skipped = _scan_files(entries, patch, downscale, threads, int(max_pixels))
        sources = Sources(spec=spec, kind="files", paths=tuple(paths), ids=tuple(ids), sizes=tuple(sizes),
                          skipped=tuple(skipped), **options)
    for entry in sources.skipped:
        logger.warning("skipping %s: %s", entry.source, entry.reason)
    if not sources.ids:
        raise RawSynthError(
            f"no usable input images in {spec}: {len(sources.skipped)} skipped ({_summary(list(sources.skipped))})"
        )
    logger.info("--src %s: %d usable images, %d skipped", spec, len(sources.ids), len(sources.skipped))
    return sources
