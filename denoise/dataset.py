"""``ShardDataset``: raw-synth shards as a :class:`torch.utils.data.Dataset` for denoiser training.

Each item is a dict of tensors:

* ``noisy``, ``clean``, ``variance``: float32 ``(4, c, c)`` packed RGGB planes (R, Gr, Gb, B),
  normalised; ``variance = max(shot * noisy + read, 0)`` per plane;
* ``shot``, ``read``, ``wb_gains``: float32 ``(4,)`` per plane (in the item's plane order);
* ``cam_to_rgb``: float32 ``(3, 3)`` camera RGB -> linear sRGB (from the stored ``xyz_to_cam``);
* ``index``: int64 scalar, the sample's global index in the store.

**Held-out split by shard.** ``split="val"`` holds whole shards (the last ``ceil(val_fraction *
n_shards)`` complete shards, or the named ``val_shards``); ``split="train"`` the others and
``split="all"`` every shard. No sample of a validation shard is ever seen in training.

**Bayer-safe augmentation.** The eight symmetries of the square act on the *full-resolution
mosaic*, not on the packed planes. Reversing an axis of an even-sized RGGB mosaic moves every
pixel to the other parity (a horizontal flip turns RGGB into GRBG), so along every reversed axis
the crop window is taken one packed pixel larger and, after the flip, one mosaic pixel is cut from
both ends (``raw_synth.cfa.unify(..., mode="crop")``): the result is again an RGGB mosaic whose
every pixel kept its colour. A transpose keeps R and B sites and exchanges the two greens (the
``Gb`` values become the ``Gr`` plane), so per-plane ``shot``/``read``/``wb_gains`` are permuted
the same way. See :func:`dihedral_packed`.

**Exposure augmentation** (``exposure > 0``). raw-synth's photo pairs are dark: Unprocessing divides
by a brightness gain, so 99 % of the clean values of a typical store lie below about 0.5, while a
real frame's highlights reach the white level. With probability ``exposure`` an item's crop is
brightened so that its 99th percentile lands at ``U(0.5, 1.25)`` (gain at least 1, at most 16),
clipped at white like a sensor, and its noise is drawn again for the new signal from the sample's
own per-plane ``shot`` and ``read`` (heteroscedastic Gaussian, as raw-synth's cameras draw it),
quantised to the camera's DN step and clipped to its range. See :func:`brighten`.

**Determinism and workers.** The crop position and symmetry of item ``i`` are drawn from
``numpy.random.default_rng([seed, epoch, index])``: the same ``(seed, epoch)`` gives the same
items whatever the worker count or order, which makes resumed training exact. The store handles
open lazily in each worker (``open_shards`` reopens after ``fork`` and drops handles when pickled).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from raw_synth.cfa import pack, unpack
from raw_synth.errors import RawSynthError

__all__ = [
    "DIHEDRAL",
    "SPLITS",
    "ShardDataset",
    "EpochSampler",
    "dihedral_packed",
    "brighten",
    "plane_order",
    "make_sampler",
    "split_shards",
]

#: The eight symmetries of the square as ``(transpose, flip_rows, flip_cols)``, applied in that order.
DIHEDRAL: tuple[tuple[bool, bool, bool], ...] = tuple(
    (t, r, c) for t in (False, True) for r in (False, True) for c in (False, True)
)
#: Accepted ``split`` values.
SPLITS: tuple[str, ...] = ("train", "val", "all")


def reversed_axes(transpose: bool, flip_rows: bool, flip_cols: bool) -> tuple[bool, bool]:
    """Which axes of the *input* (rows, columns) a symmetry reverses."""
    return (flip_cols, flip_rows) if transpose else (flip_rows, flip_cols)


def plane_order(transpose: bool) -> list[int]:
    """Input plane feeding each output plane: a transpose exchanges Gr and Gb."""
    return [0, 2, 1, 3] if transpose else [0, 1, 2, 3]


def dihedral_packed(packed: np.ndarray, transpose: bool, flip_rows: bool, flip_cols: bool) -> np.ndarray:
    """Apply a symmetry of the square to a packed RGGB image, keeping every pixel's colour.

    The packed planes are interleaved into the RGGB mosaic, the mosaic is transposed and/or
    flipped, and along every flipped axis one pixel is cut from both ends, which restores the
    RGGB phase; the result is packed again in R, Gr, Gb, B order.

    Args:
        packed: ``(..., 4, h, w)`` numpy array, R, Gr, Gb, B planes of an RGGB-phase mosaic.
        transpose: Swap the two spatial axes (applied first).
        flip_rows: Reverse the row order (after the transpose).
        flip_cols: Reverse the column order (after the transpose).

    Returns:
        ``(..., 4, h', w')`` float array, where ``(h', w')`` is ``(h, w)`` (or ``(w, h)`` after a
        transpose) less one along every flipped axis. Output pixel ``(i, j)`` of plane ``p`` is
        the mosaic pixel the symmetry moved there; plane ``p`` holds input plane
        ``plane_order(transpose)[p]``.

    Raises:
        RawSynthError: If the input is not ``(..., 4, h, w)`` or a flipped axis has one pixel.
    """
    array = np.asarray(packed)
    if array.ndim < 3 or array.shape[-3] != 4:
        raise RawSynthError(f"packed: expected shape (..., 4, h, w), got {tuple(array.shape)}")
    mosaic = unpack(array, "RGGB")
    if transpose:
        mosaic = np.swapaxes(mosaic, -1, -2)
    rows, cols = mosaic.shape[-2:]
    if (flip_rows and rows < 4) or (flip_cols and cols < 4):
        raise RawSynthError(f"packed: a flipped axis needs at least 2 packed pixels, got {tuple(array.shape)}")
    if flip_rows:
        mosaic = mosaic[..., ::-1, :][..., 1 : rows - 1, :]
    if flip_cols:
        mosaic = mosaic[..., :, ::-1][..., :, 1 : cols - 1]
    return np.ascontiguousarray(pack(mosaic, "RGGB"))


#: Range of the brightened crop's 99th percentile, and the largest gain (see :func:`brighten`).
EXPOSURE_TARGET: tuple[float, float] = (0.5, 1.25)
EXPOSURE_MAX_GAIN = 16.0


def brighten(
    clean: np.ndarray,
    shot: np.ndarray,
    read: np.ndarray,
    black: np.ndarray,
    white: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """A brighter exposure of a clean packed crop, and a new noisy one drawn for it.

    Args:
        clean: ``(4, h, w)`` clean planes in [0, 1] (not modified).
        shot: ``(4,)`` per-plane shot coefficient (normalised units).
        read: ``(4,)`` per-plane read variance.
        black: ``(4,)`` black level in DN.
        white: ``(4,)`` white level in DN.
        rng: The item's generator (draws the target level, then the noise).

    Returns:
        ``(noisy, clean)`` float32 ``(4, h, w)``: ``clean * g`` clipped to 1, where ``g`` puts the
        99th percentile at ``U(0.5, 1.25)`` (``1 <= g <= 16``), and
        ``clean + sqrt(shot * clean + read) * N(0, 1)`` rounded to the DN step ``1 / (white - black)``
        and clipped to ``[-black / (white - black), 1]``.
    """
    level = float(np.percentile(clean, 99.0))
    target = float(rng.uniform(*EXPOSURE_TARGET))
    gain = min(max(target / max(level, 1e-6), 1.0), EXPOSURE_MAX_GAIN)
    bright = np.minimum(clean.astype(np.float32) * np.float32(gain), np.float32(1.0))
    planes = (slice(None), None, None)
    sd = np.sqrt(np.maximum(shot[planes] * bright + read[planes], 0.0)).astype(np.float32)
    noisy = bright + sd * rng.standard_normal(bright.shape, dtype=np.float32)
    span = white - black
    step = span.astype(np.float32)[planes]
    noisy = np.clip(np.rint(noisy * step) / step, (-black / span).astype(np.float32)[planes], 1.0)
    return noisy.astype(np.float32), bright


def _resolve_store(path: Any) -> Any:
    from raw_synth.store import ShardStore, open_shards

    if isinstance(path, ShardStore):
        return path
    folder = Path(path)
    if not folder.exists():
        raise RawSynthError(f"{folder}: shard store not found")
    return open_shards(folder)


def split_shards(
    shard_names: Sequence[str],
    split: str,
    val_fraction: float = 0.1,
    val_shards: Sequence[str | int] | None = None,
    where: str = "store",
) -> list[str]:
    """Choose the shards of a split (whole shards go to validation).

    Args:
        shard_names: Complete shards in sample order.
        split: ``"train"``, ``"val"`` or ``"all"``.
        val_fraction: Fraction of shards held out, ``0 <= f < 1``; the last ``ceil(f * n)``
            shards (at least one when ``f > 0``). Ignored when ``val_shards`` is given.
        val_shards: Held-out shards by name (``"shard-000003.zarr"``) or position.
        where: Store named in error messages.

    Returns:
        Shard names of the split, in store order.

    Raises:
        RawSynthError: Unknown split or shard, bad fraction, or an empty split.
    """
    if split not in SPLITS:
        raise RawSynthError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    names = list(shard_names)
    if not names:
        raise RawSynthError(f"{where}: holds no complete shard")
    if split == "all":
        return names
    if val_shards is not None:
        held: set[str] = set()
        for item in val_shards:
            if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                if not -len(names) <= int(item) < len(names):
                    raise RawSynthError(f"val_shards: position {item} out of range for {len(names)} shards in {where}")
                held.add(names[int(item)])
            elif isinstance(item, str) and item in names:
                held.add(item)
            else:
                raise RawSynthError(f"val_shards: {item!r} is not a complete shard of {where}")
    else:
        if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 <= val_fraction < 1:
            raise RawSynthError(f"val_fraction: expected a number in [0, 1), got {val_fraction!r}")
        n_val = math.ceil(val_fraction * len(names)) if val_fraction > 0 else 0
        held = set(names[len(names) - n_val :]) if n_val else set()
    chosen = [n for n in names if (n in held) == (split == "val")]
    if not chosen:
        hint = ("set val_fraction > 0 or val_shards" if split == "val"
                else "the store needs at least 2 shards to hold one out (or set val_fraction to 0)")
        raise RawSynthError(f"{where}: the {split!r} split is empty ({len(names)} shard(s), {len(held)} held out); "
                            f"{hint}")
    return chosen


def _crop_size(crop: Any) -> tuple[int, int] | None:
    if crop is None:
        return None
    if isinstance(crop, (int, np.integer)) and not isinstance(crop, bool):
        crop = (int(crop), int(crop))
    if (
        not isinstance(crop, (tuple, list))
        or len(crop) != 2
        or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c >= 2 for c in crop)
    ):
        raise RawSynthError(f"crop: expected None, an integer >= 2 or (h, w) packed pixels, got {crop!r}")
    return int(crop[0]), int(crop[1])


class ShardDataset(Dataset):
    """Noisy/clean packed-RAW pairs from a raw-synth store for :class:`torch.utils.data.DataLoader`.

    Args:
        path: Store folder (or an open :class:`~raw_synth.store.ShardStore`).
        split: ``"train"``, ``"val"`` or ``"all"`` (see :func:`split_shards`).
        val_fraction: Fraction of shards held out for ``"val"``.
        val_shards: Held-out shards by name or position (overrides ``val_fraction``).
        crop: Random crop in packed pixels (int or ``(h, w)``), or ``None`` for whole samples.
        augment: Draw one of the eight Bayer-safe symmetries per item.
        seed: Seed of the crops and symmetries (with the epoch, see :meth:`set_epoch`).
        exposure: Probability in [0, 1] that an item is brightened and its noise drawn again
            (:func:`brighten`); 0 (default) leaves every item as stored.

    Raises:
        RawSynthError: Missing store, bad arguments, empty split.
    """

    def __init__(
        self,
        path: str | Path | Any,
        split: str = "train",
        val_fraction: float = 0.1,
        val_shards: Sequence[str | int] | None = None,
        crop: int | tuple[int, int] | None = None,
        augment: bool = True,
        seed: int = 0,
        exposure: float = 0.0,
    ) -> None:
        super().__init__()
        self.store = _resolve_store(path)
        self.path = Path(self.store.path)
        self.split = split
        self.shards = split_shards(self.store.shard_names, split, val_fraction, val_shards, str(self.path))
        counts = {name: int(entry["count"]) for name, entry in self.store.manifest.complete_shards()}
        positions: list[int] = []
        offset = 0
        chosen = set(self.shards)
        for name in self.store.shard_names:
            if name in chosen:
                positions.extend(range(offset, offset + counts[name]))
            offset += counts[name]
        self.positions = np.asarray(positions, dtype=np.int64)
        self.crop = _crop_size(crop)
        if not isinstance(augment, bool):
            raise RawSynthError(f"augment: expected a boolean, got {augment!r}")
        self.augment = augment
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise RawSynthError(f"seed: expected a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        if isinstance(exposure, bool) or not isinstance(exposure, (int, float)) or not 0.0 <= exposure <= 1.0:
            raise RawSynthError(f"exposure: expected a probability in [0, 1], got {exposure!r}")
        self.exposure = float(exposure)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops and symmetries are drawn (call before each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return int(self.positions.size)

    def item_rng(self, i: int) -> np.random.Generator:
        """The generator of item ``i`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, int(self.positions[i])])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"ShardDataset indices must be integers, not {type(i).__name__}")
        n = len(self)
        if not -n <= int(i) < n:
            raise IndexError(f"item {i} out of range for a split of {n} samples")
        i = int(i) % n
        sample = self.store[int(self.positions[i])]
        rng = self.item_rng(i)
        noisy, clean = sample["noisy"], sample["clean"]
        height, width = noisy.shape[-2:]
        k = int(rng.integers(len(DIHEDRAL)))
        if self.crop is None and height != width:
            k %= 4  # whole non-square samples are not transposed, so every item keeps its shape
        transform = DIHEDRAL[k] if self.augment else DIHEDRAL[0]
        rev_rows, rev_cols = reversed_axes(*transform)
        # output size in the input's orientation
        out_h, out_w = self.crop if self.crop is not None else (height, width)
        if transform[0] and self.crop is not None:
            out_h, out_w = out_w, out_h  # crop (h, w) is the size after the transpose
        if out_h > height or out_w > width:
            raise RawSynthError(
                f"{self.path}: sample {sample['index']} is {height}x{width} packed pixels, "
                f"smaller than crop {self.crop}"
            )
        win_h, win_w = out_h + rev_rows, out_w + rev_cols
        pairs = np.stack([noisy, clean])  # (2, 4, h, w): one crop and one transform for both
        pad_h, pad_w = max(0, win_h - height), max(0, win_w - width)
        if pad_h or pad_w:  # reflection inside one plane keeps its colour
            if height < 2 or width < 2:
                raise RawSynthError(f"{self.path}: sample {sample['index']} is too small ({height}x{width}) to flip")
            pairs = np.pad(pairs, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode="reflect")
        y0 = int(rng.integers(0, pairs.shape[-2] - win_h + 1))
        x0 = int(rng.integers(0, pairs.shape[-1] - win_w + 1))
        window = pairs[..., y0 : y0 + win_h, x0 : x0 + win_w]
        moved = dihedral_packed(window, *transform) if transform != DIHEDRAL[0] else np.ascontiguousarray(window)
        order = plane_order(transform[0])
        shot = np.asarray(sample["shot"], dtype=np.float32)[order]
        read = np.asarray(sample["read"], dtype=np.float32)[order]
        wb = np.asarray(sample["wb_gains"], dtype=np.float32)[order]
        noisy_crop, clean_crop = moved[0], moved[1]
        if self.exposure > 0.0 and rng.random() < self.exposure:
            black = np.asarray(sample["black_level"], dtype=np.float64)[order]
            white = np.asarray(sample["white_level"], dtype=np.float64)[order]
            noisy_crop, clean_crop = brighten(clean_crop, shot, read, black, white, rng)
        noisy_t = torch.from_numpy(noisy_crop.astype(np.float32, copy=False))
        variance = (noisy_t * torch.from_numpy(shot)[:, None, None]
                    + torch.from_numpy(read)[:, None, None]).clamp_min_(0.0)
        return {
            "noisy": noisy_t,
            "clean": torch.from_numpy(clean_crop.astype(np.float32, copy=False)),
            "variance": variance,
            "shot": torch.from_numpy(shot),
            "read": torch.from_numpy(read),
            "wb_gains": torch.from_numpy(wb),
            "cam_to_rgb": torch.from_numpy(_cam_to_rgb(sample["xyz_to_cam"])),
            "index": torch.tensor(int(sample["index"]), dtype=torch.int64),
        }

    def __repr__(self) -> str:
        return (
            f"ShardDataset({str(self.path)!r}, split={self.split!r}, samples={len(self)}, shards={len(self.shards)}, "
            f"crop={self.crop}, augment={self.augment}, exposure={self.exposure})"
        )


def _cam_to_rgb(xyz_to_cam: np.ndarray) -> np.ndarray:
    from raw_synth.isp.color import cam_to_rgb_from_xyz_to_cam

    try:
        return np.asarray(cam_to_rgb_from_xyz_to_cam(np.asarray(xyz_to_cam, dtype=np.float64)), dtype=np.float32)
    except RawSynthError:
        return np.eye(3, dtype=np.float32)


class EpochSampler(Sampler[int]):
    """Single-process sampler: a seeded permutation per epoch (``torch.randperm``), or ``0..n-1``.

    Mirrors :class:`torch.utils.data.distributed.DistributedSampler`'s seeding (generator seed
    ``seed + epoch``), so an epoch's order is reproducible and resumable.
    """

    def __init__(self, data_source: Any, shuffle: bool = True, seed: int = 0) -> None:
        self.n = len(data_source)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (changes the permutation)."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n


def make_sampler(dataset: Any, shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> Sampler[int]:
    """The sampler for ``dataset``: distributed when ``torch.distributed`` is initialised.

    Args:
        dataset: A sized dataset.
        shuffle: Shuffle every epoch (``set_epoch`` picks the permutation).
        seed: Permutation seed (shared by all ranks).
        drop_last: Distributed only: drop the tail instead of padding ranks to equal length.

    Returns:
        :class:`~torch.utils.data.distributed.DistributedSampler` (this rank's share) under
        ``torch.distributed``, else :class:`EpochSampler`. Both have ``set_epoch``.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        from torch.utils.data.distributed import DistributedSampler

        return DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
    return EpochSampler(dataset, shuffle=shuffle, seed=seed)
