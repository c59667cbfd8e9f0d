"""Built-in image corpora: sources of sRGB images that need no user files.

Three corpora exist, named as ``raw-synth generate --src`` names them:

``samples``
    The few public-domain / CC0 photographs bundled with the package
    (:mod:`raw_synth.corpora.samples`). Index ``i`` is photo ``i % len``; with ``size`` it is a
    random crop of that photo, the crop position fixed by ``(seed, i)``, so an index past the
    end gives a fresh crop of a photo that came before.
``deadleaves``
    Procedural dead-leaves images (:mod:`raw_synth.corpora.deadleaves`), unbounded: index ``i``
    renders the image seeded by ``(seed, i)``; default size 512x512.
``vibrant``
    Procedural VibrantLeaves images (:mod:`raw_synth.corpora.vibrant`), unbounded like
    ``deadleaves``: textured leaves of varied shapes, colour gradients, depth of field and a
    simple camera model, closer to photographs than flat dead leaves; default size 512x512.

Every image is ``(H, W, 3)`` float32 sRGB in [0, 1], and the same ``(name, index, size, seed)``
always gives the same image, whatever order the indices are asked in. The random stream of item
``(seed, index)`` is its own: it does not overlap the per-sample stream that
``raw_synth.seeding.sample_rng(seed, index)`` gives, so the pipeline may use the same pair for
the image and for the noise.

Example:
    >>> img = load_corpus_image("deadleaves", 7, size=(64, 96), seed=1)
    >>> img.shape
    (64, 96, 3)
    >>> corpus_length("vibrant") is None
    True
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from raw_synth.corpora.deadleaves import dead_leaves
from raw_synth.corpora.samples import list_samples, load_sample, sample_names
from raw_synth.corpora.vibrant import VibrantParams, vibrant_leaves
from raw_synth.errors import RawSynthError

__all__ = [
    "CORPORA",
    "DEFAULT_DEADLEAVES_SIZE",
    "DEFAULT_VIBRANT_SIZE",
    "corpus_length",
    "corpus_item_id",
    "load_corpus_image",
    "iter_corpus",
    "dead_leaves",
    "vibrant_leaves",
    "VibrantParams",
    "list_samples",
    "load_sample",
    "sample_names",
]

#: Names of the built-in corpora.
CORPORA: tuple[str, ...] = ("samples", "deadleaves", "vibrant")
#: Height and width of a dead-leaves image when no size is given.
DEFAULT_DEADLEAVES_SIZE: tuple[int, int] = (512, 512)
#: Height and width of a VibrantLeaves image when no size is given.
DEFAULT_VIBRANT_SIZE: tuple[int, int] = (512, 512)


def _check_name(name: str) -> None:
    if name not in CORPORA:
        raise RawSynthError(f"corpus {name!r}: unknown corpus; available: {', '.join(CORPORA)}")


def _check_index(index: int) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise RawSynthError(f"index: must be a non-negative int, got {index!r}")
    return int(index)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise RawSynthError(f"seed: must be a non-negative int, got {seed!r}")
    return int(seed)


def _check_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    hw = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(hw) != 2 or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in hw
    ):
        raise RawSynthError(f"size: must be a positive int or (height, width), got {size!r}")
    return int(hw[0]), int(hw[1])


#: Extra SeedSequence word that keeps corpus streams apart from other per-sample streams
#: (such as ``raw_synth.seeding.sample_rng(seed, index)``, which draws the noise).
_STREAM_TAG = 0x636F7270  # "corp"


def _item_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, index, _STREAM_TAG]))


def corpus_length(name: str) -> int | None:
    """Number of distinct source images in a corpus.

    Args:
        name: a name of :data:`CORPORA`.

    Returns:
        The number of bundled photos for ``samples``; ``None`` for the procedural ``deadleaves``
        and ``vibrant`` (unbounded).

    Raises:
        RawSynthError: unknown corpus name.
    """
    _check_name(name)
    return len(list_samples()) if name == "samples" else None


def corpus_item_id(name: str, index: int) -> str:
    """A short human-readable id of one corpus item, for manifests and logs.

    Args:
        name: the corpus name.
        index: the item index, >= 0.

    Returns:
        ``"samples/<photo>#<index>"``, ``"deadleaves#<index>"`` or ``"vibrant#<index>"``.
    """
    _check_name(name)
    index = _check_index(index)
    if name == "samples":
        names = sample_names()
        return f"samples/{names[index % len(names)]}#{index}"
    return f"{name}#{index}"


def load_corpus_image(
    name: str,
    index: int,
    *,
    size: int | tuple[int, int] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Load or render item ``index`` of a built-in corpus.

    Args:
        name: a name of :data:`CORPORA`.
        index: item index, >= 0. ``samples`` cycles through its photos.
        size: output ``(height, width)`` (or one int for a square). ``samples``: a random crop of
            that size (must fit inside the photo); ``None`` gives the whole photo. ``deadleaves``
            and ``vibrant``: the rendered size; ``None`` gives :data:`DEFAULT_DEADLEAVES_SIZE` or
            :data:`DEFAULT_VIBRANT_SIZE`.
        seed: corpus seed, >= 0; with ``index`` it fixes the crop position or the rendering.

    Returns:
        ``(H, W, 3)`` float32 sRGB in [0, 1]; a new array the caller may modify.

    Raises:
        RawSynthError: unknown corpus, a bad index, size or seed, or a crop larger than the photo.
    """
    _check_name(name)
    index = _check_index(index)
    seed = _check_seed(seed)
    hw = _check_size(size)
    rng = _item_rng(seed, index)
    if name == "deadleaves":
        h, w = hw if hw is not None else DEFAULT_DEADLEAVES_SIZE
        return dead_leaves(h, w, rng)
    if name == "vibrant":
        return vibrant_leaves(hw if hw is not None else DEFAULT_VIBRANT_SIZE, rng)

    names = sample_names()
    photo_name = names[index % len(names)]
    photo = load_sample(photo_name)
    if hw is None:
        return photo
    h, w = hw
    ph, pw = photo.shape[:2]
    if h > ph or w > pw:
        raise RawSynthError(
            f"size: a {h}x{w} crop does not fit sample {photo_name!r} ({ph}x{pw})"
        )
    top = int(rng.integers(0, ph - h + 1))
    left = int(rng.integers(0, pw - w + 1))
    return photo[top : top + h, left : left + w].copy()


def iter_corpus(
    name: str,
    count: int | None = None,
    *,
    start: int = 0,
    size: int | tuple[int, int] | None = None,
    seed: int = 0,
) -> Iterator[np.ndarray]:
    """Yield consecutive corpus items ``start, start + 1, ...``, see :func:`load_corpus_image`.

    Args:
        name: a name of :data:`CORPORA`.
        count: how many items; ``None`` gives one pass over ``samples`` (its photo count) and is
            an error for the unbounded ``deadleaves`` and ``vibrant``.
        start: first index, >= 0.
        size: as in :func:`load_corpus_image`.
        seed: as in :func:`load_corpus_image`.

    Yields:
        ``(H, W, 3)`` float32 sRGB images in [0, 1].

    Raises:
        RawSynthError: bad arguments (raised at the first ``next``).
    """
    _check_name(name)
    start = _check_index(start)
    if count is None:
        count = corpus_length(name)
        if count is None:
            raise RawSynthError(f"count: corpus {name!r} is unbounded, give a count")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise RawSynthError(f"count: must be a non-negative int, got {count!r}")
    for index in range(start, start + int(count)):
        yield load_corpus_image(name, index, size=size, seed=seed)
