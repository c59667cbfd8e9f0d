"""Training pairs for the inverse ISP: (sRGB, packed RAW) from three folder layouts.

Layouts (detected by :func:`detect_layout`, or forced with ``data.layout``):

* ``paired``: sub-folders ``rgb/`` (``.png``, ``.jpg``, ``.jpeg``, ``.tif``, ``.tiff``, ``.bmp``)
  and ``raw/`` (``.npy`` packed ``(h, w, 4)`` or ``(4, h, w)``, R, Gr, Gb, B), matched by
  relative path without suffix.
* ``aim22``: the AIM 2022 Reversed-ISP layout (facts 5): ``NAME.jpg`` beside ``NAME.npy``,
  the RAW packed ``(h, w, 4)`` ``uint16``, normalised by ``data.raw_max`` (1024).
* ``camera-raw``: camera RAW files (DNG and the other formats LibRaw reads). The RAW is
  :func:`raw_synth.io.read_raw`'s normalised packed image; the sRGB is rendered with
  ``rawpy.postprocess`` (see :class:`~raw_synth.training.config.RenderConfig`). LibRaw's
  output has the size of the visible mosaic (``half_size`` off, ``user_flip=0``) and output
  pixel ``(y, x)`` is mosaic pixel ``(y, x)``; files where the sizes differ are skipped.
  A sensor of another Bayer phase is unified to RGGB by cropping one row / column from both
  ends of the mosaic *and* of the RGB (:func:`raw_synth.cfa.unify`, ``mode="crop"``), since
  SSDNet predicts an RGGB-phase mosaic on the input's pixel grid. Rendered pairs are cached
  as ``.npz`` (16-bit RGB exactly as LibRaw made it, float32 RAW) under the run's ``cache/``.

Integer RAW ``.npy`` files are divided by ``data.raw_max``; float files are taken as normalised.
Targets are clipped to [0, 1] when ``data.clip_raw`` (SSDNet's output range); LibRaw clips
below black and above white as well.

Every pair is an RGB ``(H, W, 3)`` float32 in [0, 1] and a packed RAW ``(4, H/2, W/2)``
float32 whose RGGB mosaic is aligned with it.

Held-out data (:class:`Split`): ``right-columns`` keeps the right-most ``fraction`` of every
image's columns (rounded to even) for validation and never lets a training crop touch them;
``images`` holds out whole images. ``DATA/split.json`` (``{"format": "raw-synth-split/1",
"holdout": "right-columns", "fraction": 0.25}`` or ``{"holdout": "images", "images": [names]}``)
fixes the split with the data.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from raw_synth.cfa import pack, red_offset, unify, unpack
from raw_synth.errors import RawSynthError
from raw_synth.file_hash import file_sha256
from raw_synth.training.augment import N_TRANSFORMS, augment_pair, colour_shift_pair, crop_pair
from raw_synth.training.config import DataConfig, RenderConfig, ValConfig

__all__ = [
    "RAW_SUFFIXES",
    "RGB_SUFFIXES",
    "SPLIT_FILE",
    "SPLIT_FORMAT",
    "PairImage",
    "PairSource",
    "Split",
    "TrainingData",
    "detect_layout",
    "find_sources",
    "render_camera_raw",
    "holdout_column",
    "load_split",
    "make_split",
    "prepare_data",
    "sample_training_crop",
    "validation_crops",
    "CropDataset",
    "StepBatchSampler",
]

logger = logging.getLogger(__name__)

#: Camera-RAW suffixes looked for by the ``camera-raw`` layout (LibRaw formats, Bayer sensors).
RAW_SUFFIXES: tuple[str, ...] = (
    ".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2", ".raf",
    ".pef", ".srw", ".kdc", ".dcr", ".mrw", ".3fr", ".fff", ".iiq", ".mos", ".erf", ".rwl", ".x3f",
)
#: sRGB suffixes of the ``paired`` layout.
RGB_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
#: Name of the split file in a data folder.
SPLIT_FILE = "split.json"
SPLIT_FORMAT = "raw-synth-split/1"
_CACHE_FORMAT = "raw-synth-pair-cache/1"
_MIN_IMAGES_FOR_IMAGE_HOLDOUT = 8
_INVERSE_ORIENTATION = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


@dataclass(frozen=True, eq=False)
class PairImage:
    """One aligned training pair.

    Attributes:
        name: Identifier (path relative to the data folder, without suffix).
        rgb: float32 ``(H, W, 3)`` sRGB in [0, 1].
        raw: float32 ``(4, H/2, W/2)`` packed RAW, RGGB phase of the RGB grid.
    """

    name: str
    rgb: np.ndarray
    raw: np.ndarray


@dataclass(frozen=True)
class PairSource:
    """Where one pair lives and its size, before loading.

    Attributes:
        name: Identifier (relative path without suffix, POSIX separators).
        layout: ``camera-raw``, ``aim22`` or ``paired``.
        rgb_path: The sRGB file (the cache ``.npz`` for camera-RAW).
        raw_path: The RAW ``.npy`` (None for camera-RAW).
        height: RGB height of the aligned pair.
        width: RGB width of the aligned pair.
        camera: Camera facts (``name``, ``wb_gains``, ``xyz_to_cam``, ``cfa``, ``source``) or None.
    """

    name: str
    layout: str
    rgb_path: Path
    raw_path: Path | None
    height: int
    width: int
    camera: dict[str, Any] | None = None

    def load(self, raw_max: float = 1024.0, clip_raw: bool = True) -> PairImage:
        """Read the pair (see the module docstring for normalisation and clipping)."""
        if self.layout == "camera-raw":
            with np.load(self.rgb_path, allow_pickle=False) as data:
                rgb = data["rgb"].astype(np.float32) / np.float32(data["rgb_max"])
                raw = data["raw"].astype(np.float32)
        else:
            assert self.raw_path is not None
            rgb = _read_rgb(self.rgb_path)
            raw = _read_packed_npy(self.raw_path, raw_max)
        if rgb.shape[:2] != (2 * raw.shape[1], 2 * raw.shape[2]):
            raise RawSynthError(f"{self.raw_path or self.rgb_path}: RAW shape {raw.shape} does not match the "
                                f"RGB size {rgb.shape[0]}x{rgb.shape[1]} (expected half the RGB size)")
        if clip_raw:
            raw = np.clip(raw, 0.0, 1.0)
        return PairImage(self.name, np.ascontiguousarray(rgb, dtype=np.float32),
                         np.ascontiguousarray(raw, dtype=np.float32))


# --------------------------------------------------------------------------------------------
# reading files


def _read_rgb(path: Path) -> np.ndarray:
    """sRGB file as float32 ``(H, W, 3)`` in the *stored* pixel order (EXIF rotation undone)."""
    from PIL import Image

    from raw_synth.io.images import apply_orientation, read_image

    rgb = read_image(path)
    try:
        with Image.open(path) as image:
            orientation = int(image.getexif().get(0x0112, 1) or 1)
    except Exception:  # read_image already accepted the file; a missing EXIF block means upright
        orientation = 1
    if orientation not in (1, 0) and orientation in _INVERSE_ORIENTATION:
        rgb = apply_orientation(rgb, _INVERSE_ORIENTATION[orientation])  # the RAW is stored unrotated
    return np.ascontiguousarray(rgb, dtype=np.float32)


def _read_packed_npy(path: Path, raw_max: float) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise RawSynthError(f"{path}: not a plain .npy array ({' '.join(str(error).split())})") from None
    except (OSError, EOFError) as error:
        raise RawSynthError(f"{path}: cannot read .npy ({' '.join(str(error).split())})") from None
    if data.ndim != 3 or 4 not in (data.shape[0], data.shape[-1]):
        raise RawSynthError(f"{path}: expected packed RAW (h, w, 4) or (4, h, w), got shape {data.shape}")
    planes = data if data.shape[-1] != 4 else np.moveaxis(data, -1, 0)
    if np.issubdtype(planes.dtype, np.integer):
        return planes.astype(np.float32) / np.float32(raw_max)
    if np.issubdtype(planes.dtype, np.floating):
        return planes.astype(np.float32)
    raise RawSynthError(f"{path}: RAW must hold integers or floats, got dtype {data.dtype}")


def _image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image in its stored orientation, from the header only."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as error:
        raise RawSynthError(f"{path}: not an image file ({' '.join(str(error).split())})") from None
    return height, width


def _npy_shape(path: Path) -> tuple[int, ...]:
    try:
        return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)
    except (ValueError, OSError, EOFError) as error:
        raise RawSynthError(f"{path}: cannot read .npy ({' '.join(str(error).split())})") from None


# --------------------------------------------------------------------------------------------
# layouts


def _name(path: Path, root: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def _files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def _aim_pairs(root: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for jpg in _files(root, (".jpg", ".jpeg")):
        npy = jpg.with_suffix(".npy")
        if npy.is_file():
            pairs.append((jpg, npy))
    return pairs


def detect_layout(data_dir: str | Path) -> str:
    """Name the layout of a data folder: ``paired``, ``aim22`` or ``camera-raw``.

    Order: ``rgb/`` + ``raw/`` sub-folders, then same-stem ``.jpg`` + ``.npy`` pairs, then camera
    RAW files (searched recursively; hidden entries ignored).

    Raises:
        RawSynthError: If the folder is missing or holds none of the three.
    """
    root = Path(data_dir)
    if not root.exists():
        raise RawSynthError(f"{root}: data folder not found")
    if not root.is_dir():
        raise RawSynthError(f"{root}: not a folder (expected a data folder of training pairs)")
    if (root / "rgb").is_dir() and (root / "raw").is_dir():
        return "paired"
    if _aim_pairs(root):
        return "aim22"
    if _files(root, RAW_SUFFIXES):
        return "camera-raw"
    raise RawSynthError(
        f"{root}: no training pairs found: expected camera RAW files ({', '.join(RAW_SUFFIXES[:4])}, ...), "
        "AIM 2022 pairs (NAME.jpg + NAME.npy) or rgb/ and raw/ sub-folders")


def render_camera_raw(path: str | Path, render: RenderConfig | None = None
                      ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Render a camera RAW file into an aligned (sRGB, packed RAW) pair.

    Args:
        path: RAW file LibRaw reads (Bayer sensor).
        render: rawpy settings (default :class:`RenderConfig`: 16-bit, camera WB,
            ``adjust_maximum_thr=0``, AHD).

    Returns:
        ``(rgb, raw, camera)``: ``rgb`` ``uint16`` (or ``uint8`` for 8-bit output)
        ``(H, W, 3)`` as LibRaw made it; ``raw`` float32 ``(4, H/2, W/2)`` normalised, *not*
        clipped, RGGB phase of the RGB grid (other phases unified by cropping one row/column
        from both ends of both images); ``camera`` facts (``name``, ``wb_gains``,
        ``xyz_to_cam``, ``cfa``) where the file has them, with ``None`` for missing ones.

    Raises:
        RawSynthError: If the file cannot be read or LibRaw's output size differs from the
            visible mosaic.
    """
    import rawpy

    from raw_synth.io import read_raw

    render = render or RenderConfig()
    name = str(path)
    image = read_raw(path)
    try:
        with rawpy.imread(str(path)) as handle:
            visible = tuple(handle.raw_image_visible.shape)
            rgb = handle.postprocess(
                use_camera_wb=render.use_camera_wb,
                no_auto_bright=True,
                output_bps=render.output_bps,
                user_flip=0,
                half_size=False,
                adjust_maximum_thr=render.adjust_maximum_thr,
                demosaic_algorithm=rawpy.DemosaicAlgorithm[render.demosaic],
            )
    except rawpy.LibRawError as error:
        raise RawSynthError(f"{name}: LibRaw cannot render the file ({' '.join(str(error).split())})") from None
    if tuple(rgb.shape[:2]) != visible:
        raise RawSynthError(f"{name}: LibRaw's output {rgb.shape[0]}x{rgb.shape[1]} differs from the visible mosaic "
                            f"{visible[0]}x{visible[1]}; pixels cannot be aligned")
    rgb = rgb[:image.height, :image.width]  # read_raw drops an odd last row / column
    mosaic = unpack(image.packed, image.cfa)
    dy, dx = red_offset(image.cfa)
    unified = unify(mosaic, image.cfa, "crop")
    rgb = np.ascontiguousarray(rgb[dy:image.height - dy, dx:image.width - dx])
    raw = np.ascontiguousarray(pack(unified, "RGGB"), dtype=np.float32)
    camera = {
        "name": image.camera or Path(name).stem,
        "wb_gains": list(image.wb) if image.wb is not None else None,
        "xyz_to_cam": image.xyz_to_cam.tolist() if image.xyz_to_cam is not None else None,
        "cfa": image.cfa,
    }
    return rgb, raw, camera


def _camera_or_none(camera: dict[str, Any]) -> dict[str, Any] | None:
    if camera.get("wb_gains") is None or camera.get("xyz_to_cam") is None:
        return None
    return camera


def _camera_raw_sources(root: Path, data: DataConfig, cache_dir: Path) -> tuple[list[PairSource], list[dict[str, str]]]:
    sources, skipped = [], []
    cache_dir.mkdir(parents=True, exist_ok=True)
    settings = json.dumps({"render": _render_dict(data.render), "format": _CACHE_FORMAT}, sort_keys=True)
    for path in _files(root, RAW_SUFFIXES):
        name = _name(path, root)
        key = hashlib.sha256((file_sha256(path) + settings).encode()).hexdigest()[:16]
        cached = cache_dir / f"{name.replace('/', '__')}-{key}.npz"
        try:
            if not (data.cache and cached.is_file()):
                rgb, raw, camera = render_camera_raw(path, data.render)
                temporary = cached.with_name(cached.stem + ".tmp.npz")
                np.savez(temporary, rgb=rgb, raw=raw, rgb_max=np.float64(np.iinfo(rgb.dtype).max),
                         camera=np.array(json.dumps(camera)))
                temporary.replace(cached)
                logger.info("%s: rendered and cached as %s", path, cached.name)
            with np.load(cached, allow_pickle=False) as stored:
                height, width = stored["rgb"].shape[:2]
                camera = json.loads(str(stored["camera"]))
        except RawSynthError as error:
            logger.warning("skipping %s", error)
            skipped.append({"source": str(path), "reason": str(error)})
            continue
        camera["source"] = str(path)
        sources.append(PairSource(name, "camera-raw", cached, None, int(height), int(width), _camera_or_none(camera)))
    return sources, skipped


def _render_dict(render: RenderConfig) -> dict[str, Any]:
    return {"output_bps": render.output_bps, "use_camera_wb": render.use_camera_wb,
            "adjust_maximum_thr": render.adjust_maximum_thr, "demosaic": render.demosaic}


def _paired_sources(root: Path, layout: str) -> tuple[list[PairSource], list[dict[str, str]]]:
    if layout == "aim22":
        pairs = [(jpg, npy, _name(jpg, root)) for jpg, npy in _aim_pairs(root)]
    else:
        rgb_root, raw_root = root / "rgb", root / "raw"
        if not rgb_root.is_dir() or not raw_root.is_dir():
            raise RawSynthError(f"{root}: the paired layout needs rgb/ and raw/ sub-folders")
        raws = {_name(p, raw_root): p for p in _files(raw_root, (".npy",))}
        pairs = []
        for rgb_path in _files(rgb_root, RGB_SUFFIXES):
            name = _name(rgb_path, rgb_root)
            if name in raws:
                pairs.append((rgb_path, raws[name], name))
            else:
                logger.warning("%s: no raw/%s.npy beside it; skipped", rgb_path, name)
    sources, skipped = [], []
    for rgb_path, raw_path, name in pairs:
        try:
            height, width = _image_size(rgb_path)
            shape = _npy_shape(raw_path)
            packed = shape if len(shape) != 3 or shape[-1] != 4 else (4, shape[0], shape[1])
            if len(packed) != 3 or packed[0] != 4 or (height, width) != (2 * packed[1], 2 * packed[2]):
                raise RawSynthError(f"{raw_path}: RAW shape {shape} does not match the {height}x{width} RGB "
                                    f"{rgb_path.name} (expected ({height // 2}, {width // 2}, 4))")
        except RawSynthError as error:
            logger.warning("skipping %s", error)
            skipped.append({"source": str(rgb_path), "reason": str(error)})
            continue
        sources.append(PairSource(name, layout, rgb_path, raw_path, height, width, None))
    return sources, skipped


def find_sources(data_dir: str | Path, data: DataConfig | None = None, cache_dir: str | Path | None = None
                 ) -> tuple[str, list[PairSource], list[dict[str, str]]]:
    """List (and for camera RAW, render and cache) the pairs of a data folder.

    Args:
        data_dir: The data folder.
        data: Data settings (layout, render, cache); defaults to :class:`DataConfig`.
        cache_dir: Where camera-RAW renders are cached (the trainer passes ``RUN/cache``;
            default ``DATA/.cache``).

    Returns:
        ``(layout, sources, skipped)``; ``skipped`` lists ``{"source", "reason"}``.

    Raises:
        RawSynthError: For a missing folder, no recognisable layout, or no usable pair.
    """
    data = data or DataConfig()
    root = Path(data_dir)
    detected = detect_layout(root)  # also checks that the folder exists and holds something usable
    layout = detected if data.layout == "auto" else data.layout
    if layout == "camera-raw":
        sources, skipped = _camera_raw_sources(root, data, Path(cache_dir) if cache_dir else root / ".cache")
    else:
        sources, skipped = _paired_sources(root, layout)
    if not sources:
        detail = f" ({len(skipped)} skipped; first: {skipped[0]['reason']})" if skipped else ""
        raise RawSynthError(f"{root}: no usable training pairs for layout {layout!r}{detail}")
    return layout, sources, skipped


# --------------------------------------------------------------------------------------------
# split


def holdout_column(width: int, fraction: float) -> int:
    """First held-out column of a ``right-columns`` split: even, leaving >= 2 columns each side.

    ``width - 2 * round(width * fraction / 2)``, clamped to ``[2, width - 2]``.
    """
    held = 2 * int(round(width * fraction / 2))
    return int(min(max(width - held, 2), width - 2))


@dataclass(frozen=True)
class Split:
    """Which part of every pair trains and which validates.

    Attributes:
        kind: ``right-columns``, ``images`` or ``none``.
        fraction: Held-out share of the columns (``right-columns``).
        images: Names of held-out images (``images``).
    """

    kind: str = "right-columns"
    fraction: float = 0.25
    images: tuple[str, ...] = ()

    def train_box(self, source: PairSource) -> tuple[int, int, int, int] | None:
        """``(y0, y1, x0, x1)`` of the training area of an image (RGB pixels), or None."""
        if self.kind == "images":
            return None if source.name in self.images else (0, source.height, 0, source.width)
        if self.kind == "right-columns":
            return (0, source.height, 0, holdout_column(source.width, self.fraction))
        return (0, source.height, 0, source.width)

    def val_box(self, source: PairSource) -> tuple[int, int, int, int] | None:
        """``(y0, y1, x0, x1)`` of the held-out area of an image, or None."""
        if self.kind == "images":
            return (0, source.height, 0, source.width) if source.name in self.images else None
        if self.kind == "right-columns":
            return (0, source.height, holdout_column(source.width, self.fraction), source.width)
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": SPLIT_FORMAT, "holdout": self.kind}
        if self.kind == "right-columns":
            out["fraction"] = self.fraction
        if self.kind == "images":
            out["images"] = list(self.images)
        return out


def load_split(path: str | Path) -> Split:
    """Read a ``split.json`` (see the module docstring).

    Raises:
        RawSynthError: For a malformed file.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RawSynthError(f"{path}: cannot read split file ({' '.join(str(error).split())})") from None
    if not isinstance(data, dict) or data.get("format") != SPLIT_FORMAT:
        raise RawSynthError(f"{path}: not a raw-synth split file (format must be {SPLIT_FORMAT!r})")
    kind = data.get("holdout")
    if kind == "right-columns":
        fraction = data.get("fraction")
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise RawSynthError(f"{path}: fraction must be a number in (0, 1), got {fraction!r}")
        return Split("right-columns", float(fraction))
    if kind == "images":
        images = data.get("images")
        if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
            raise RawSynthError(f"{path}: images must be a list of image names")
        return Split("images", 0.0, tuple(images))
    if kind == "none":
        return Split("none", 0.0)
    raise RawSynthError(f"{path}: holdout must be right-columns, images or none, got {kind!r}")


def make_split(data_dir: Path, sources: Sequence[PairSource], val: ValConfig, seed: int) -> Split:
    """Choose the split from ``val.holdout`` (see :class:`~raw_synth.training.config.ValConfig`)."""
    kind = val.holdout
    split_file = Path(data_dir) / SPLIT_FILE
    if kind == "split-file" or (kind == "auto" and split_file.is_file()):
        if not split_file.is_file():
            raise RawSynthError(f"{split_file}: val.holdout is split-file but the data folder has no {SPLIT_FILE}")
        split = load_split(split_file)
        unknown = sorted(set(split.images) - {s.name for s in sources})
        if unknown:
            raise RawSynthError(f"{split_file}: held-out image(s) not in the data: {', '.join(unknown[:5])}")
        return split
    if kind == "auto":
        kind = "images" if len(sources) >= _MIN_IMAGES_FOR_IMAGE_HOLDOUT else "right-columns"
    if kind == "images":
        count = max(1, int(round(len(sources) * val.fraction)))
        if count >= len(sources):
            raise RawSynthError(f"val: holding out {count} of {len(sources)} images leaves none to train on")
        order = np.random.default_rng([seed, 3]).permutation(len(sources))
        return Split("images", val.fraction, tuple(sorted(sources[i].name for i in order[:count])))
    if kind == "right-columns":
        return Split("right-columns", val.fraction)
    return Split("none", 0.0)


# --------------------------------------------------------------------------------------------
# crops


@dataclass
class TrainingData:
    """Everything the trainer needs about the data.

    Attributes:
        root: The data folder.
        layout: Detected or forced layout.
        sources: All pairs.
        split: The held-out split.
        skipped: Files that could not be used, with reasons.
        config: The data settings.
    """

    root: Path
    layout: str
    sources: list[PairSource]
    split: Split
    skipped: list[dict[str, str]]
    config: DataConfig
    _memory: dict[int, PairImage] = field(default_factory=dict, repr=False)

    def image(self, index: int) -> PairImage:
        """Load pair ``index`` (kept in memory when ``config.in_memory``)."""
        if index in self._memory:
            return self._memory[index]
        pair = self.sources[index].load(self.config.raw_max, self.config.clip_raw)
        if self.config.in_memory:
            self._memory[index] = pair
        return pair

    def train_pixels(self) -> list[int]:
        """Training-area pixels per image (0 for held-out images)."""
        out = []
        for source in self.sources:
            box = self.split.train_box(source)
            out.append(0 if box is None else (box[1] - box[0]) * (box[3] - box[2]))
        return out

    def describe(self) -> dict[str, Any]:
        """JSON-able summary (written to ``RUN/data.json``)."""
        images = []
        for source in self.sources:
            images.append({
                "name": source.name, "layout": source.layout, "height": source.height, "width": source.width,
                "train_box": self.split.train_box(source), "val_box": self.split.val_box(source),
                "camera": source.camera,
            })
        return {"root": str(self.root), "layout": self.layout, "split": self.split.to_dict(), "images": images,
                "skipped": self.skipped}


def prepare_data(data_dir: str | Path, data: DataConfig, val: ValConfig, cache_dir: str | Path, seed: int
                 ) -> TrainingData:
    """Find the pairs, render/cache camera RAW and choose the split.

    Raises:
        RawSynthError: For a bad data folder or a split that leaves nothing to train on.
    """
    root = Path(data_dir)
    layout, sources, skipped = find_sources(root, data, cache_dir)
    split = make_split(root, sources, val, seed)
    result = TrainingData(root, layout, sources, split, skipped, data)
    if not any(result.train_pixels()):
        raise RawSynthError(f"{root}: the held-out split leaves no training pixels")
    return result


def sample_training_crop(data: TrainingData, rng: np.random.Generator, patch: int, augment: bool
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Draw one aligned, optionally augmented training crop.

    The image is chosen among those whose training area fits the crop, uniformly
    (``data.sampling == "image"``) or in proportion to the area (``"area"``); the offset is uniform over even
    positions inside the training box; the transform (when ``augment``) uniform over the 8 symmetries of the
    square.

    Args:
        data: The training data.
        rng: Generator for this crop.
        patch: RGB side of the output (even).
        augment: Apply a random phase-safe flip / rotation and, when ``data.config.colour_shift``
            is set, the colour-shift augmentation to a share ``colour_shift_p`` of the crops.

    Returns:
        ``(rgb (patch, patch, 3), raw (4, patch/2, patch/2))`` float32.

    Raises:
        RawSynthError: If no image's training area fits the crop.
    """
    need = patch + (2 if augment else 0)
    weights = []
    for source, pixels in zip(data.sources, data.train_pixels()):
        box = data.split.train_box(source)
        fits = box is not None and box[1] - box[0] >= need and box[3] - box[2] >= need
        weights.append(0.0 if not fits else float(pixels) if data.config.sampling == "area" else 1.0)
    total = sum(weights)
    if total <= 0:
        raise RawSynthError(f"{data.root}: no training area of at least {need}x{need} pixels for patch {patch}; "
                            "use smaller patches (train.progressive)")
    index = int(rng.choice(len(weights), p=np.asarray(weights) / total))
    y0, y1, x0, x1 = data.split.train_box(data.sources[index])  # type: ignore[misc]
    y = y0 + 2 * int(rng.integers(0, (y1 - y0 - need) // 2 + 1))
    x = x0 + 2 * int(rng.integers(0, (x1 - x0 - need) // 2 + 1))
    k = int(rng.integers(0, N_TRANSFORMS)) if augment else 0
    pair = data.image(index)
    rgb, raw = crop_pair(pair.rgb, pair.raw, y, x, need)
    rgb, raw = augment_pair(rgb, raw, k, patch)
    shift = data.config.colour_shift
    camera = data.sources[index].camera
    if augment and shift > 0 and camera is not None and rng.random() < data.config.colour_shift_p:
        # drawn after everything above, so crops without the shift are those of a run without it
        gains = np.exp2(rng.uniform(-shift, shift, size=3))
        gains /= gains.max()
        if data.config.exposure_shift > 0:
            gains *= np.exp2(-rng.uniform(0.0, data.config.exposure_shift))
        rgb, raw = colour_shift_pair(rgb, raw, gains, _cam_to_rgb(camera))
    return rgb, raw


def _cam_to_rgb(camera: dict[str, Any]) -> np.ndarray:
    from raw_synth.isp.color import cam_to_rgb_from_xyz_to_cam

    return cam_to_rgb_from_xyz_to_cam(np.asarray(camera["xyz_to_cam"], dtype=np.float64))


def validation_crops(data: TrainingData, val: ValConfig, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Fixed held-out crops: ``(name, rgb (h, w, 3), raw (4, h/2, w/2))``.

    ``val.patch`` None takes every held-out region whole; otherwise ``val.crops_per_image``
    crops of that side (clamped to the region) at seeded even positions.
    """
    crops = []
    for index, source in enumerate(data.sources):
        box = data.split.val_box(source)
        if box is None:
            continue
        y0, y1, x0, x1 = box
        pair = data.image(index)
        if val.patch is None:
            rgb, raw = crop_pair(pair.rgb, pair.raw, y0, x0, y1 - y0, x1 - x0)
            crops.append((source.name, rgb, raw))
            continue
        height = min(val.patch, (y1 - y0) // 2 * 2)
        width = min(val.patch, (x1 - x0) // 2 * 2)
        rng = np.random.default_rng([seed, 11, index])
        for c in range(val.crops_per_image):
            y = y0 + 2 * int(rng.integers(0, (y1 - y0 - height) // 2 + 1))
            x = x0 + 2 * int(rng.integers(0, (x1 - x0 - width) // 2 + 1))
            rgb, raw = crop_pair(pair.rgb, pair.raw, y, x, height, width)
            crops.append((f"{source.name}#{c}", rgb, raw))
    return crops


class StepBatchSampler(torch.utils.data.Sampler):
    """Yields, for every step from ``start`` to ``stop``, the keys ``(step, i, patch)`` of its batch.

    The batch of a step depends only on the step (and the seed, inside :class:`CropDataset`), so
    a run resumed at step ``k`` sees exactly the batches an uninterrupted run sees: the sampler's
    position *is* the step.
    """

    def __init__(self, stages: Any, start: int, stop: int) -> None:
        self.stages = stages
        self.start = int(start)
        self.stop = int(stop)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        for step in range(self.start, self.stop):
            patch, batch = self.stages.at(step)
            yield [(step, i, patch) for i in range(batch)]

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


class CropDataset(torch.utils.data.Dataset):
    """Training crops keyed by ``(step, index_in_batch, patch)``; each has its own seeded RNG.

    ``dataset[(step, i, patch)]`` returns ``(rgb (3, P, P), raw (4, P/2, P/2))`` float32 tensors,
    drawn with ``np.random.default_rng([seed, 7, step, i])``: the same key always gives the same
    crop, whatever the number of DataLoader workers.
    """

    def __init__(self, data: TrainingData, seed: int, augment: bool) -> None:
        self.data = data
        self.seed = int(seed)
        self.augment = bool(augment)

    def __len__(self) -> int:  # keys are not integers; the length is nominal
        return len(self.data.sources)

    def __getitem__(self, key: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        step, index, patch = key
        rng = np.random.default_rng([self.seed, 7, int(step), int(index)])
        rgb, raw = sample_training_crop(self.data, rng, int(patch), self.augment)
        return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))), torch.from_numpy(raw)
