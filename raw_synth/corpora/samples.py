"""The bundled sample photographs: a few public-domain / CC0 colour photos shipped in the package.

They come from scikit-image's bundled data (see ``raw_synth/data/samples/LICENSES.md`` for each
file's source and licence) and serve as a tiny, always-available corpus for demos, smoke tests
and the ``samples`` source of ``raw-synth generate``.

Example:
    >>> names = sample_names()
    >>> names
    ['astronaut', 'chelsea', 'coffee', 'rocket']
    >>> load_sample("coffee").shape
    (400, 600, 3)
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from raw_synth.errors import RawSynthError

__all__ = ["list_samples", "sample_names", "sample_path", "load_sample"]

_SUFFIXES = (".jpg", ".png")


def _samples_dir() -> Path:
    folder = resources.files("raw_synth") / "data" / "samples"
    if not isinstance(folder, Path):
        # A zipped install; raw-synth needs its data files on disk.
        raise RawSynthError(
            f"raw_synth/data/samples: bundled samples are not on the file system ({folder})"
        )
    return folder


def list_samples() -> list[Path]:
    """Paths of the bundled sample photographs, sorted by file name.

    Returns:
        A list of absolute paths to 8-bit sRGB JPEG files.
    """
    folder = _samples_dir()
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in _SUFFIXES and p.is_file())


def sample_names() -> list[str]:
    """Names of the bundled samples (file stems), sorted: ``['astronaut', 'chelsea', ...]``."""
    return [p.stem for p in list_samples()]


def sample_path(name: str) -> Path:
    """Path of one bundled sample.

    Args:
        name: the sample name, e.g. ``"coffee"`` (a file name such as ``"coffee.jpg"`` works too).

    Returns:
        The absolute path of the image file.

    Raises:
        RawSynthError: no sample has that name.
    """
    stem = Path(str(name)).stem if Path(str(name)).suffix.lower() in _SUFFIXES else str(name)
    for path in list_samples():
        if path.stem == stem:
            return path
    raise RawSynthError(
        f"sample {name!r}: unknown sample; available: {', '.join(sample_names())}"
    )


def load_sample(name: str) -> np.ndarray:
    """Load one bundled sample photograph.

    Args:
        name: the sample name, see :func:`sample_names`.

    Returns:
        ``(H, W, 3)`` float32 sRGB (gamma-encoded, as stored) in [0, 1], i.e. the 8-bit values
        divided by 255.

    Raises:
        RawSynthError: unknown name.
    """
    path = sample_path(name)
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return rgb.astype(np.float32) / np.float32(255.0)
