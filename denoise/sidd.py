"""SIDD for the denoiser: the block files of a split, per-image facts, and per-block CFA handling.

The SIDD file readers live in :mod:`raw_synth.io.sidd` and are re-exported here. This module
adds what the evaluation needs on top of them:

* :func:`load_sidd_split` - the noisy (and, for ``validation``, ground-truth) RAW blocks of a
  split from a SIDD folder, checked for shape, even size and finite values. Validation =
  ``ValidationNoisyBlocksRaw.mat`` + ``ValidationGtBlocksRaw.mat``; benchmark =
  ``BenchmarkNoisyBlocksRaw.mat`` (no ground truth). Blocks are ``(images, blocks, h, w)``,
  normally ``(40, 32, 256, 256)``, float in [0, 1], in each image's native CFA phase.
* :func:`find_metadata_files` / :func:`image_infos` - one :class:`ImageInfo` per image: camera,
  ISO, CFA, white balance, colour matrix and noise level, from the per-image
  ``*_METADATA_RAW_*.MAT`` files. **Mapping:** the metadata files found under the metadata
  folder (one per scene folder, ``_010`` preferred) are sorted by scene-folder name and matched
  to the block file's images in that order (image ``i`` gets the ``i``-th file), the order in
  which SIDD lists its 40 benchmark scenes; :func:`image_infos` also takes an explicit list.
  Without metadata the CFA is an assumption (a pattern for every image, one per image, or a
  SIDD phone code per image mapped through the bundled ``sidd-*`` camera profiles).
* :func:`unify_blocks` / :func:`restore_blocks` - per-block Bayer unification to RGGB phase
  (``raw_synth.cfa.unify``, ``mode="pad"``) and packing, and the exact inverse.
* :func:`estimate_noise` - blind noise level of one image's blocks
  (:func:`raw_synth.calibrate.estimate_blind`, with a MAD-of-Haar fallback).
* :func:`render_blocks` - blocks to sRGB the way SIDD's simple-camera-pipeline does (from its
  'normal' stage): white balance by ``1 / AsShotNeutral`` per CFA site and clip, Malvar
  demosaicing (MATLAB's ``demosaic``), camera -> XYZ with the row-normalised inverse of
  ``ColorMatrix2`` (MATLAB ``run_pipeline.m``), XYZ -> linear sRGB (D65), clip, sRGB transfer
  curve; no tone curve and no orientation (SIDD-Medium sRGB is "gamma-corrected without tone
  mapping"; orientation does not change PSNR/SSIM).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import scipy.io
import torch

from raw_synth.cfa import CFA_PATTERNS, check_cfa, pack, restore, unify, unpack
from raw_synth.errors import RawSynthError
from raw_synth.io.sidd import (
    SIDD_PHONES,
    SiddMetadata,
    is_mat_v73,
    iter_sidd_medium,
    read_block_positions,
    read_sidd_blocks,
    read_sidd_metadata,
    read_submit_raw_csv,
    read_submit_raw_mat,
    write_submit_raw_csv,
    write_submit_raw_mat,
)
from raw_synth.isp.color import RGB_TO_XYZ
from raw_synth.isp.forward import process_raw

__all__ = [
    # re-exported readers and writers
    "SiddMetadata",
    "read_sidd_blocks",
    "read_block_positions",
    "read_sidd_metadata",
    "iter_sidd_medium",
    "write_submit_raw_mat",
    "write_submit_raw_csv",
    "read_submit_raw_mat",
    "read_submit_raw_csv",
    # evaluation helpers
    "SPLITS",
    "SPLIT_FILES",
    "DEFAULT_CFA",
    "NLF_FLOOR",
    "SiddSplit",
    "ImageInfo",
    "load_sidd_split",
    "stored_dtype",
    "find_metadata_files",
    "phone_cfa",
    "image_infos",
    "unify_blocks",
    "restore_blocks",
    "estimate_noise",
    "mad_noise",
    "srgb_matrix",
    "render_blocks",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

#: The SIDD splits with RAW blocks.
SPLITS: tuple[str, ...] = ("validation", "benchmark")

#: ``split -> (noisy file, ground-truth file or None)`` inside the SIDD folder.
SPLIT_FILES: dict[str, tuple[str, Optional[str]]] = {
    "validation": ("ValidationNoisyBlocksRaw.mat", "ValidationGtBlocksRaw.mat"),
    "benchmark": ("BenchmarkNoisyBlocksRaw.mat", None),
}

#: CFA assumed for every image when neither metadata nor ``cfa`` is given.
DEFAULT_CFA = "RGGB"

#: NoiseProfile values below this are raised to it (Noise Flow replaces zeros by 1e-6).
NLF_FLOOR = 1e-6

_METADATA_NAME = re.compile(r"METADATA_RAW_(\d+)\.MAT$", re.IGNORECASE)


# ============================================================================ split files


@dataclass(frozen=True, eq=False)
class SiddSplit:
    """The RAW blocks of one SIDD split.

    Attributes:
        name: ``"validation"`` or ``"benchmark"``.
        noisy: float32 ``(images, blocks, h, w)`` in [0, 1], native CFA phase.
        gt: float32, same shape, or ``None`` (benchmark).
        noisy_path: the noisy block file.
        gt_path: the ground-truth file or ``None``.
        dtype: dtype the noisy blocks are stored in (submissions keep it), e.g. ``float32``.
        total_images: images in the file (before ``max_images``).
    """

    name: str
    noisy: np.ndarray
    gt: Optional[np.ndarray]
    noisy_path: Path
    gt_path: Optional[Path]
    dtype: np.dtype
    total_images: int

    @property
    def n_images(self) -> int:
        """Images evaluated."""
        return int(self.noisy.shape[0])

    @property
    def n_blocks(self) -> int:
        """Blocks per image."""
        return int(self.noisy.shape[1])

    @property
    def block_shape(self) -> tuple[int, int]:
        """``(h, w)`` of one block (mosaic pixels)."""
        return int(self.noisy.shape[2]), int(self.noisy.shape[3])


def stored_dtype(path: PathLike, key: Optional[str] = None) -> np.dtype:
    """The dtype a MAT file stores a variable in (without reading the data).

    Args:
        path: v5 or v7.3 MAT file.
        key: variable name; defaults to the file stem.

    Returns:
        The numpy dtype (``float32`` for MATLAB ``single``, ``float64`` for ``double``, ...);
        ``float32`` when it cannot be told.
    """
    p = Path(path)
    name = key if key is not None else p.stem
    classes = {"single": np.float32, "double": np.float64, "uint8": np.uint8, "uint16": np.uint16,
               "int16": np.int16, "int32": np.int32, "uint32": np.uint32}
    try:
        if is_mat_v73(p):
            import h5py

            with h5py.File(p, "r") as fh:
                if name in fh and isinstance(fh[name], h5py.Dataset):
                    return np.dtype(fh[name].dtype)
        else:
            for var, _shape, cls in scipy.io.whosmat(str(p)):
                if var == name and cls in classes:
                    return np.dtype(classes[cls])
    except (OSError, ValueError, TypeError, NotImplementedError):
        pass
    return np.dtype(np.float32)


def _check_blocks(blocks: np.ndarray, path: Path) -> None:
    h, w = blocks.shape[2], blocks.shape[3]
    if blocks.shape[0] == 0 or blocks.shape[1] == 0:
        raise RawSynthError(f"{path}: no blocks (shape {blocks.shape})")
    if h % 2 or w % 2 or h < 16 or w < 16:
        raise RawSynthError(f"{path}: blocks of {h}x{w} pixels, expected even sizes of at least 16 (SIDD: 256x256)")
    if not np.isfinite(blocks).all():
        raise RawSynthError(f"{path}: blocks hold NaN or infinite values")
    low, high = float(blocks.min()), float(blocks.max())
    if low < -0.5 or high > 1.5:
        raise RawSynthError(f"{path}: block values span [{low:g}, {high:g}], expected RAW normalised to [0, 1]")


def load_sidd_split(sidd_dir: PathLike, split: str = "validation", max_images: Optional[int] = None) -> SiddSplit:
    """Read and check the RAW blocks of a SIDD split.

    Args:
        sidd_dir: folder holding the block files (``ValidationNoisyBlocksRaw.mat``,
            ``ValidationGtBlocksRaw.mat``, ``BenchmarkNoisyBlocksRaw.mat``).
        split: ``"validation"`` or ``"benchmark"``.
        max_images: keep only the first this many images.

    Returns:
        :class:`SiddSplit`.

    Raises:
        RawSynthError: naming the file, if one is missing, malformed, of another shape than its
            partner, holds odd-sized blocks or non-finite values; or on a bad ``split`` /
            ``max_images``.
    """
    if split not in SPLITS:
        raise RawSynthError(f"split: unknown SIDD split {split!r}, expected one of {', '.join(SPLITS)}")
    if max_images is not None and int(max_images) < 1:
        raise RawSynthError(f"max_images: must be >= 1, got {max_images}")
    folder = Path(sidd_dir)
    if not folder.is_dir():
        raise RawSynthError(f"{folder}: not a folder (expected the SIDD folder with {SPLIT_FILES[split][0]})")
    noisy_name, gt_name = SPLIT_FILES[split]
    noisy_path = folder / noisy_name
    if not noisy_path.is_file():
        raise RawSynthError(f"{noisy_path}: file not found (the {split} split needs {noisy_name} in --sidd-dir)")
    gt_path = folder / gt_name if gt_name else None
    if gt_path is not None and not gt_path.is_file():
        raise RawSynthError(f"{gt_path}: file not found (the {split} split needs {gt_name} in --sidd-dir)")

    noisy = read_sidd_blocks(noisy_path)
    _check_blocks(noisy, noisy_path)
    total = int(noisy.shape[0])
    keep = total if max_images is None else min(total, int(max_images))
    noisy = noisy[:keep]
    gt = None
    if gt_path is not None:
        gt_all = read_sidd_blocks(gt_path)
        if gt_all.shape[0] != total or gt_all.shape[1:] != noisy.shape[1:]:
            raise RawSynthError(
                f"{gt_path}: shape {gt_all.shape} does not match {noisy_name} {(total, *noisy.shape[1:])}")
        gt = gt_all[:keep]
        _check_blocks(gt, gt_path)
    return SiddSplit(name=split, noisy=noisy, gt=gt, noisy_path=noisy_path, gt_path=gt_path,
                     dtype=stored_dtype(noisy_path), total_images=total)


# ============================================================================ per-image facts


@dataclass(frozen=True, eq=False)
class ImageInfo:
    """What the evaluation knows about one SIDD image.

    Attributes:
        index: image index in the block file.
        camera: SIDD phone code (``S6``, ...) or ``"unknown"``.
        iso: ISO, or ``None`` when unknown.
        cfa: native Bayer pattern of the blocks.
        cfa_source: ``"metadata"``, ``"argument"``, ``"phone"`` (phone code -> bundled profile)
            or ``"default"`` (:data:`DEFAULT_CFA`, an assumption).
        shot: float64 ``(4,)`` R, Gr, Gb, B, ``variance = shot * x + read``, or ``None`` until known.
        read: float64 ``(4,)`` or ``None``.
        noise_source: ``"metadata NoiseProfile (tag 51041)"``, ``"blind (raw_synth.calibrate.estimate_blind)"``,
            ``"blind (MAD of Haar diagonal details)"`` or ``"none"``.
        metadata: the metadata, or ``None``.
        metadata_path: its file, or ``None``.
    """

    index: int
    camera: str
    iso: Optional[int]
    cfa: str
    cfa_source: str
    shot: Optional[np.ndarray] = None
    read: Optional[np.ndarray] = None
    noise_source: str = "none"
    metadata: Optional[SiddMetadata] = None
    metadata_path: Optional[Path] = None

    def with_noise(self, shot: np.ndarray, read: np.ndarray, source: str) -> "ImageInfo":
        """A copy with the noise level set."""
        return ImageInfo(self.index, self.camera, self.iso, self.cfa, self.cfa_source,
                         np.asarray(shot, np.float64).copy(), np.asarray(read, np.float64).copy(), source,
                         self.metadata, self.metadata_path)

    @property
    def has_color(self) -> bool:
        """Whether AsShotNeutral and a colour matrix are known (sRGB rendering possible)."""
        m = self.metadata
        if m is None:
            return False
        matrix_ok = bool(np.isfinite(m.color_matrix2).all() or np.isfinite(m.color_matrix1).all())
        return matrix_ok and bool(np.isfinite(m.as_shot_neutral).all()) and bool((m.as_shot_neutral > 0).all())


def find_metadata_files(metadata_dir: PathLike) -> list[Path]:
    """Find the per-image ``*_METADATA_RAW_*.MAT`` files under a folder, in matching order.

    Searches recursively; keeps one file per folder (set ``_010`` if present, else the lowest
    set number) and sorts by the path relative to ``metadata_dir`` (i.e. by scene-folder name,
    SIDD's order). Files lying directly in ``metadata_dir`` are kept all and sorted by name.

    Args:
        metadata_dir: e.g. ``SIDD_Benchmark_Data`` (scene folders with metadata files).

    Returns:
        The files, in the order they are matched to the images.

    Raises:
        RawSynthError: if the folder does not exist or holds no metadata file.
    """
    root = Path(metadata_dir)
    if not root.is_dir():
        raise RawSynthError(f"{root}: not a folder (expected SIDD scene folders with *_METADATA_RAW_*.MAT files)")
    found = sorted(p for p in root.rglob("*") if p.is_file() and _METADATA_NAME.search(p.name))
    if not found:
        raise RawSynthError(f"{root}: no *_METADATA_RAW_*.MAT file found")
    chosen: dict[Path, Path] = {}
    direct: list[Path] = []
    for path in found:
        if path.parent == root:
            direct.append(path)
            continue
        current = chosen.get(path.parent)
        set_no = int(_METADATA_NAME.search(path.name).group(1))  # type: ignore[union-attr]
        if current is None or set_no < int(_METADATA_NAME.search(current.name).group(1)):  # type: ignore[union-attr]
            chosen[path.parent] = path
    files = direct + list(chosen.values())
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def phone_cfa(code: str) -> str:
    """Native CFA of a SIDD phone from the bundled ``sidd-<code>`` camera profile.

    Only S6 (GRBG) is verified on a real file; the others follow public loaders.

    Raises:
        RawSynthError: for an unknown phone code.
    """
    from raw_synth.camera import get_profile

    name = code.strip().upper()
    if name not in SIDD_PHONES:
        raise RawSynthError(
            f"cfa: {code!r} is neither a Bayer pattern nor a SIDD phone code ({', '.join(SIDD_PHONES)})")
    return get_profile(f"sidd-{name.lower()}").cfa


def _cfa_entries(cfa: Union[None, str, Sequence[str]], n_images: int) -> list[tuple[str, str, str]]:
    """``(cfa, source, camera)`` per image from the ``cfa`` argument (no metadata)."""
    if cfa is None:
        return [(DEFAULT_CFA, "default", "unknown")] * n_images
    items = [c.strip() for c in cfa.split(",")] if isinstance(cfa, str) else [str(c).strip() for c in cfa]
    if len(items) == 1:
        items = items * n_images
    if len(items) < n_images:
        raise RawSynthError(f"cfa: {len(items)} entries for {n_images} images (give one for all or one per image)")
    out = []
    for item in items[:n_images]:
        if item.upper() in CFA_PATTERNS:
            out.append((check_cfa(item), "argument", "unknown"))
        else:
            out.append((phone_cfa(item), "phone", item.upper()))
    return out


def image_infos(
    n_images: int,
    metadata_files: Optional[Sequence[PathLike]] = None,
    cfa: Union[None, str, Sequence[str]] = None,
    total_images: Optional[int] = None,
    metadata_dir: Optional[PathLike] = None,
) -> list[ImageInfo]:
    """Per-image facts from metadata files (image ``i`` <- file ``i``) or from assumptions.

    Args:
        n_images: images evaluated (the first ``n_images`` of the block file).
        metadata_files: metadata files in image order, or ``None``. Must number ``total_images``.
        cfa: used only without metadata: a pattern for all images (``"GRBG"``), a comma list or
            sequence with one pattern or SIDD phone code (``"S6"``) per image; ``None`` assumes
            :data:`DEFAULT_CFA`.
        total_images: images in the block file (defaults to ``n_images``).
        metadata_dir: only for error messages.

    Returns:
        One :class:`ImageInfo` per image; the noise level is set from NoiseProfile when the
        metadata has one (zeros raised to :data:`NLF_FLOOR`), else left ``None``.

    Raises:
        RawSynthError: if the number of metadata files differs from the number of images, a
            file is malformed, or ``cfa`` is invalid.
    """
    total = n_images if total_images is None else int(total_images)
    if metadata_files is None:
        entries = _cfa_entries(cfa, n_images)
        return [ImageInfo(i, camera, None, c, source) for i, (c, source, camera) in enumerate(entries)]
    files = [Path(f) for f in metadata_files]
    if len(files) != total:
        where = metadata_dir if metadata_dir is not None else "metadata"
        raise RawSynthError(
            f"{where}: found {len(files)} metadata files, expected {total} (one per image of the block file, "
            "matched in sorted scene-folder order)")
    infos = []
    for i, path in enumerate(files[:n_images]):
        meta = read_sidd_metadata(path)
        info = ImageInfo(i, meta.camera or "unknown", meta.iso or None, meta.cfa, "metadata",
                         metadata=meta, metadata_path=path)
        if meta.noise_profile.shape[0] > 0:
            shot, read = meta.nlf(floor=NLF_FLOOR)
            info = info.with_noise(shot, read, "metadata NoiseProfile (tag 51041)")
        infos.append(info)
    return infos


# ============================================================================ CFA unification


def unify_blocks(blocks: np.ndarray, cfa: str) -> np.ndarray:
    """Bring native-phase blocks to RGGB phase (reflect-pad one pixel where needed) and pack.

    Args:
        blocks: ``(..., h, w)`` mosaics, even ``h`` and ``w``, native pattern ``cfa``.
        cfa: the native Bayer pattern.

    Returns:
        float32 packed RGGB ``(..., 4, h/2 + dy, w/2 + dx)`` where ``(dy, dx)`` is the red-site
        offset of ``cfa`` (e.g. ``(..., 4, 128, 129)`` for 256x256 GRBG blocks).
    """
    unified = unify(np.asarray(blocks, dtype=np.float32), cfa, mode="pad")
    return np.ascontiguousarray(pack(unified, "RGGB"))


def restore_blocks(packed: np.ndarray, cfa: str) -> np.ndarray:
    """Exact inverse of :func:`unify_blocks`.

    Args:
        packed: ``(..., 4, h', w')`` RGGB-packed as returned by :func:`unify_blocks`.
        cfa: the native pattern to restore.

    Returns:
        ``(..., h, w)`` mosaics in the native phase and size.
    """
    return np.ascontiguousarray(restore(unpack(np.asarray(packed), "RGGB"), cfa, mode="pad"))


# ============================================================================ noise level


def mad_noise(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signal-independent noise level per plane from the median absolute Haar diagonal detail.

    ``sigma = median(|HH|) / 0.6745`` with ``HH = (a - b - c + d) / 2`` over 2x2 cells of each
    plane (Donoho's MAD estimator); returned as ``shot = 0``, ``read = sigma^2``.

    Args:
        packed: ``(..., 4, h, w)`` (stacks are pooled), ``h, w >= 2``.

    Returns:
        ``(shot, read)``, float64 ``(4,)`` each.
    """
    arr = np.asarray(packed, dtype=np.float64)
    arr = arr.reshape(-1, 4, arr.shape[-2], arr.shape[-1])
    h, w = arr.shape[-2] // 2 * 2, arr.shape[-1] // 2 * 2
    a = arr[..., 0:h:2, 0:w:2]
    b = arr[..., 0:h:2, 1:w:2]
    c = arr[..., 1:h:2, 0:w:2]
    d = arr[..., 1:h:2, 1:w:2]
    hh = (a - b - c + d) / 2.0
    sigma = np.median(np.abs(np.moveaxis(hh, 1, 0).reshape(4, -1)), axis=1) / 0.6745
    return np.zeros(4), sigma**2


def estimate_noise(blocks: np.ndarray, cfa: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Blind noise level of one image from its noisy blocks.

    Uses :func:`raw_synth.calibrate.estimate_blind` on the blocks packed in their native phase
    (pooled); if it fails (e.g. too few flat blocks), :func:`mad_noise`.

    Args:
        blocks: ``(blocks, h, w)`` noisy mosaics of one image, in [0, 1].
        cfa: their Bayer pattern.

    Returns:
        ``(shot, read, source)``: float64 ``(4,)`` each, and a description of the method.
    """
    packed = pack(np.asarray(blocks, dtype=np.float32), cfa)
    try:
        from raw_synth.calibrate import estimate_blind
    except ImportError:  # pragma: no cover - calibrate ships with raw-synth
        estimate_blind = None
    if estimate_blind is not None:
        try:
            fit = estimate_blind(list(packed))
            shot, read = np.maximum(fit.shot, 0.0), np.maximum(fit.read, 0.0)
            if np.isfinite(shot).all() and np.isfinite(read).all() and (shot + read > 0).all():
                return shot, read, "blind (raw_synth.calibrate.estimate_blind)"
        except RawSynthError as exc:
            logger.info("blind estimate failed (%s); using MAD of Haar details", exc)
    shot, read = mad_noise(packed)
    return shot, read, "blind (MAD of Haar diagonal details)"


# ============================================================================ sRGB rendering


def srgb_matrix(meta: SiddMetadata) -> np.ndarray:
    """Camera RGB -> linear sRGB matrix of simple-camera-pipeline's MATLAB version.

    ``xyz2cam`` = ``ColorMatrix2`` (``ColorMatrix1`` if absent) with rows normalised to sum 1;
    ``cam2xyz`` = its inverse; then XYZ -> linear sRGB (inverse of :data:`RGB_TO_XYZ`, D65).

    Returns:
        float64 ``(3, 3)``.

    Raises:
        RawSynthError: if no colour matrix is known or it cannot be inverted.
    """
    xyz2cam = meta.color_matrix2 if np.isfinite(meta.color_matrix2).all() else meta.color_matrix1
    if not np.isfinite(xyz2cam).all():
        raise RawSynthError(f"{meta.source or 'metadata'}: no ColorMatrix2/ColorMatrix1, cannot render sRGB")
    sums = xyz2cam.sum(axis=1, keepdims=True)
    if np.any(np.abs(sums) < 1e-12):
        raise RawSynthError(f"{meta.source or 'metadata'}: a colour-matrix row sums to zero")
    try:
        cam2xyz = np.linalg.inv(xyz2cam / sums)
    except np.linalg.LinAlgError:
        raise RawSynthError(f"{meta.source or 'metadata'}: colour matrix is singular") from None
    return np.linalg.inv(RGB_TO_XYZ) @ cam2xyz


def render_blocks(
    blocks: np.ndarray,
    cfa: str,
    as_shot_neutral: Optional[np.ndarray] = None,
    cam_to_rgb: Optional[np.ndarray] = None,
    batch: int = 16,
) -> np.ndarray:
    """Render native-phase RAW blocks to sRGB (see the module docstring for the steps).

    Args:
        blocks: ``(n, h, w)`` mosaics in [0, 1].
        cfa: their Bayer pattern.
        as_shot_neutral: ``(3,)`` R, G, B; white balance gains are ``1 / as_shot_neutral``.
            ``None``: no white balance.
        cam_to_rgb: ``(3, 3)`` camera -> linear sRGB (:func:`srgb_matrix`); ``None``: identity.
        batch: blocks per torch call.

    Returns:
        float32 ``(n, h, w, 3)`` in [0, 1]. (Packing in the native phase shifts colours by at
        most one pixel against the mosaic, the same for every rendered version of a block.)
    """
    arr = np.asarray(blocks, dtype=np.float32)
    gains = np.ones(4) if as_shot_neutral is None else 1.0 / np.asarray(as_shot_neutral, np.float64)[[0, 1, 1, 2]]
    matrix = np.eye(3) if cam_to_rgb is None else np.asarray(cam_to_rgb, np.float64)
    wb = torch.as_tensor(gains, dtype=torch.float32)
    ccm = torch.as_tensor(matrix, dtype=torch.float32)
    out = np.empty((*arr.shape, 3), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, arr.shape[0], batch):
            packed = torch.from_numpy(np.ascontiguousarray(pack(arr[start:start + batch], cfa)))
            rgb = process_raw(packed, wb, ccm, demosaic="malvar", gamma="srgb", tone=False)
            out[start:start + batch] = rgb.permute(0, 2, 3, 1).numpy()
    return out

