"""SIDD RAW denoising evaluation: denoise the validation or benchmark blocks and score them.

Per image (``images x blocks`` of ``h x w`` mosaics, normally ``40 x 32`` of ``256 x 256``):

1. **CFA** from the image's metadata (tag 33422), else an assumption (see
   :func:`denoise.sidd.image_infos`).
2. **Unify** every block to RGGB phase (``raw_synth.cfa.unify``, ``mode="pad"``) and pack it
   to ``(4, h/2 (+1), w/2 (+1))`` (:func:`denoise.sidd.unify_blocks`).
3. **Noise level** ``variance = shot * x + read`` per plane, only for methods that need it: the
   metadata NoiseProfile (tag 51041), else a blind estimate from the image's noisy blocks
   (:func:`denoise.sidd.estimate_noise`); ``noise="blind"`` forces the estimate.
4. **Denoise** in batches: a method maps ``(B, 4, h, w)`` packed noisy + ``shot``/``read`` to the
   denoised packed blocks, clamped to [0, 1]. Checkpoints follow the denoiser contract:
   ``model.predict(noisy, variance)`` (else ``model(noisy, variance)`` on 16-multiple padding),
   with ``variance = clamp(shot * noisy + read, 0)`` for conditioned models and ``None`` for blind ones.
5. **Restore** to the native phase and size (:func:`denoise.sidd.restore_blocks`; exact).
6. **Score** (validation only) per block against the ground truth:

   * RAW PSNR ``10 log10(1 / MSE)`` on the ``h x w`` mosaic in [0, 1] and RAW SSIM
     (:func:`raw_synth.metrics.ssim`, the mosaic as one grayscale image). The summary is the
     **mean of the per-block values** over all blocks (SIDD's way), also per image, camera and ISO.
   * sRGB PSNR/SSIM where the metadata gives AsShotNeutral and a colour matrix: both blocks
     rendered with :func:`denoise.sidd.render_blocks`, quantised to 8 bits (``round(255 x) / 255``),
     scored in [0, 1] (SSIM: mean over the three channels).

For the benchmark split (no ground truth) the denoised blocks are kept, in the dtype of the input
file, for the submission files (:func:`write_submissions`).

:func:`denoise.eval_sidd.run_eval_sidd` does everything the ``raw-synth eval-sidd`` command
needs, report included.
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch

from denoise.baselines import (
    BASELINE_DESCRIPTIONS,
    BASELINES,
    OPTIONAL_PACKAGES,
    BlockDenoiser,
    require_package,
)
from denoise.ensemble import check_ensemble, geometric_ensemble
from denoise.sidd import (
    ImageInfo,
    SiddSplit,
    estimate_noise,
    render_blocks,
    restore_blocks,
    srgb_matrix,
    unify_blocks,
    write_submit_raw_csv,
    write_submit_raw_mat,
)
from raw_synth.errors import RawSynthError
from raw_synth.metrics import psnr, ssim
from raw_synth.models.body import pad_to_multiple
from raw_synth.tiling import tiled_apply

__all__ = [
    "NOISE_MODES",
    "Method",
    "MethodResult",
    "CropSample",
    "SiddEvaluation",
    "model_method",
    "load_method",
    "raw_block_metrics",
    "srgb_block_metrics",
    "quantize_8bit",
    "aggregate",
    "evaluate_sidd",
    "write_submissions",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

#: Where the noise level comes from: metadata if present else blind, metadata only, blind only.
NOISE_MODES: tuple[str, ...] = ("auto", "metadata", "blind")

_PAD_MULTIPLE = 16
_METRICS = ("raw_psnr", "raw_ssim", "srgb_psnr", "srgb_ssim")


# ============================================================================ methods


@dataclass(frozen=True, eq=False)
class Method:
    """A denoiser as the evaluation sees it.

    Attributes:
        name: row label (``identity``, ``anscombe-nlm``, ``anscombe-bm3d``, or the checkpoint's file stem).
        kind: ``"identity"``, ``"classical"`` or ``"checkpoint"``.
        description: one line for the report.
        needs_noise: whether ``denoise`` uses ``shot``/``read``.
        denoise: ``fn(noisy (B, 4, h, w) float32, shot (4,), read (4,)) -> (B, 4, h, w)`` in [0, 1].
        checkpoint: the checkpoint path, for checkpoints.
        sha256: the checkpoint's sha256.
        info: extra facts (architecture, config, checkpoint ``extra``).
    """

    name: str
    kind: str
    description: str
    needs_noise: bool
    denoise: BlockDenoiser
    checkpoint: Optional[str] = None
    sha256: Optional[str] = None
    info: dict[str, Any] = field(default_factory=dict)


def model_method(model: torch.nn.Module, name: str, device: Union[str, torch.device] = "cpu",
                 description: str = "", ensemble: int = 1, **extra: Any) -> Method:
    """Wrap a denoiser that follows the contract as a :class:`Method`.

    Args:
        model: ``model(noisy, variance=None)`` on ``(B, 4, h, w)`` packed RGGB; optional
            ``model.predict`` for any size and ``model.config.conditioned``.
        name: row label.
        device: where to run it.
        description: one line for the report.
        ensemble: average over this many Bayer-preserving flips/turns (1, 2, 4 or 8;
            :func:`denoise.ensemble.geometric_ensemble`).
        **extra: stored in :attr:`Method.info` / ``checkpoint`` / ``sha256`` if given.

    Returns:
        The method; its outputs are clamped to [0, 1] and returned as float32 numpy.
    """
    conditioned = bool(getattr(getattr(model, "config", None), "conditioned", False))
    check_ensemble(ensemble)
    dev = torch.device(device)
    model = model.to(dev).eval()
    # model.predict takes any size; a bare forward gets the blocks padded to a multiple of 16.
    pad_multiple = 1 if hasattr(model, "predict") else _PAD_MULTIPLE

    def bare_predict(x: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        # the ensemble's unified inputs gain a reflected row/column: pad them again for a bare forward
        padded, (height, width) = pad_to_multiple(x, _PAD_MULTIPLE)
        var = None if v is None else pad_to_multiple(v, _PAD_MULTIPLE)[0]
        return model(padded, variance=var)[..., :height, :width]

    predict = model.predict if pad_multiple == 1 else bare_predict

    def run_model(noisy_t: torch.Tensor, variance_t: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"out": geometric_ensemble(predict, noisy_t, variance_t, ensemble)}

    def run(noisy: np.ndarray, shot: np.ndarray, read: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32)).to(dev)
        variance = None
        if conditioned:
            s = torch.as_tensor(np.asarray(shot, np.float32), device=dev).view(1, 4, 1, 1)
            r = torch.as_tensor(np.asarray(read, np.float32), device=dev).view(1, 4, 1, 1)
            variance = (s * x + r).clamp_min(0.0)
        inputs = [x] if variance is None else [x, variance]
        with torch.inference_mode():
            out = tiled_apply(run_model, inputs, None, pad_multiple=pad_multiple)["out"]
        if tuple(out.shape) != tuple(x.shape):
            raise RawSynthError(f"{name}: model returned shape {tuple(out.shape)} for input {tuple(x.shape)}")
        return out.clamp(0.0, 1.0).float().cpu().numpy()

    checkpoint = extra.pop("checkpoint", None)
    sha = extra.pop("sha256", None)
    desc = description or f"{type(model).__name__} ({'conditioned on the noise level' if conditioned else 'blind'})"
    if ensemble > 1:
        desc += f", self-ensemble of {ensemble} flips/turns"
    info = {"conditioned": conditioned, "ensemble": ensemble, **extra}
    return Method(name, "checkpoint", desc, conditioned, run, checkpoint, sha, info)


def load_method(spec: str, device: Union[str, torch.device] = "cpu", ensemble: int = 1) -> Method:
    """A method from a ``--model`` value: a baseline name or a denoiser checkpoint.

    Args:
        spec: ``identity``, ``anscombe-nlm``, ``anscombe-bm3d``, or a ``.safetensors`` checkpoint
            saved with ``raw_synth.checkpoint.save_model(..., kind="denoiser")``.
        device: for checkpoints.
        ensemble: for checkpoints, the self-ensemble size (1, 2, 4 or 8); the row is named
            ``STEM-x8`` when it is above 1.

    Returns:
        :class:`Method`.

    Raises:
        MissingPackageError: (a :class:`RawSynthError`) if a classical baseline's optional package
            is not installed (scikit-image for ``anscombe-nlm``, bm3d for ``anscombe-bm3d``).
        RawSynthError: if ``spec`` is neither a baseline nor a readable denoiser checkpoint.
    """
    name = str(spec).strip()
    if name in BASELINES:
        if name in OPTIONAL_PACKAGES:
            require_package(name)  # fail here, before any block is read
        kind = "identity" if name == "identity" else "classical"
        return Method(name, kind, BASELINE_DESCRIPTIONS[name], name != "identity", BASELINES[name])
    path = Path(name)
    if not path.is_file():
        raise RawSynthError(
            f"--model {name}: no such checkpoint file and not a baseline ({', '.join(BASELINES)})")
    from raw_synth.checkpoint import file_sha256, load_model

    check_ensemble(ensemble, "--ensemble")
    model, meta = load_model(path, kind="denoiser", device=device)
    name = path.stem if ensemble == 1 else f"{path.stem}-x{ensemble}"
    return model_method(model, name, device, ensemble=ensemble, checkpoint=str(path), sha256=file_sha256(path),
                        architecture=meta.get("architecture"), config=meta.get("config"), extra=meta.get("extra"))


# ============================================================================ metrics


def raw_block_metrics(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RAW PSNR and SSIM of each block.

    Args:
        pred: ``(n, h, w)`` mosaics in [0, 1].
        gt: ``(n, h, w)`` ground truth.

    Returns:
        ``(psnr, ssim)``, float64 ``(n,)`` each (PSNR ``inf`` for identical blocks).
    """
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    ps = np.array([psnr(p[i], g[i], data_range=1.0) for i in range(p.shape[0])])
    ss = np.array([ssim(p[i], g[i], data_range=1.0, channel_axis=None) for i in range(p.shape[0])])
    return ps, ss


def quantize_8bit(rgb: np.ndarray) -> np.ndarray:
    """``round(255 * clip(x, 0, 1)) / 255`` as float64 (what scoring saved 8-bit images sees)."""
    return np.round(np.clip(np.asarray(rgb, np.float64), 0.0, 1.0) * 255.0) / 255.0


def srgb_block_metrics(pred_rgb: np.ndarray, gt_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sRGB PSNR and SSIM of each block after 8-bit quantisation.

    Args:
        pred_rgb: ``(n, h, w, 3)`` rendered blocks in [0, 1].
        gt_rgb: ``(n, h, w, 3)`` rendered ground truth.

    Returns:
        ``(psnr, ssim)``, float64 ``(n,)`` each; SSIM is the mean over the three channels.
    """
    p = quantize_8bit(pred_rgb)
    g = quantize_8bit(gt_rgb)
    ps = np.array([psnr(p[i], g[i], data_range=1.0) for i in range(p.shape[0])])
    ss = np.array([ssim(p[i], g[i], data_range=1.0, channel_axis=-1) for i in range(p.shape[0])])
    return ps, ss


def _mean(values: np.ndarray) -> Optional[float]:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else None


def aggregate(values: np.ndarray, infos: Sequence[ImageInfo]) -> dict[str, Any]:
    """Means of per-block values overall, per image, per camera, per ISO and per camera + ISO.

    Args:
        values: ``(images, blocks)`` per-block scores (NaN = not computed, ignored).
        infos: one :class:`ImageInfo` per image.

    Returns:
        ``{"all": float|None, "per_image": [float|None], "per_camera": {camera: float},
        "per_iso": {"100": float, ...}, "per_camera_iso": {"S6 ISO 100": float}}``; means are
        over blocks (every block weighs the same).
    """
    arr = np.asarray(values, dtype=np.float64)
    out: dict[str, Any] = {"all": _mean(arr), "per_image": [_mean(arr[i]) for i in range(arr.shape[0])]}
    groups: dict[str, dict[str, list[int]]] = {"per_camera": {}, "per_iso": {}, "per_camera_iso": {}}
    for i, info in enumerate(infos[: arr.shape[0]]):
        iso = "unknown" if info.iso is None else str(info.iso)
        groups["per_camera"].setdefault(info.camera, []).append(i)
        groups["per_iso"].setdefault(iso, []).append(i)
        groups["per_camera_iso"].setdefault(f"{info.camera} ISO {iso}", []).append(i)
    for key, table in groups.items():
        ordered = sorted(table.items(), key=lambda kv: _sort_key(kv[0]))
        out[key] = {name: _mean(arr[idx]) for name, idx in ordered}
    return out


def _sort_key(label: str) -> tuple[Any, ...]:
    parts = re.split(r"(\d+)", label)
    return tuple(int(p) if p.isdigit() else p for p in parts)


# ============================================================================ results


@dataclass(eq=False)
class MethodResult:
    """Scores (validation) or outputs (benchmark) of one method.

    Attributes:
        method: the :class:`Method`.
        raw_psnr: float64 ``(images, blocks)`` or ``None`` (benchmark).
        raw_ssim: same.
        srgb_psnr: same; NaN for images without colour metadata.
        srgb_ssim: same.
        seconds: wall time of denoising (excluding scoring).
        outputs: denoised blocks ``(images, blocks, h, w)`` in the input file's dtype
            (benchmark only), else ``None``.
        crops: rendered sRGB ``(h, w, 3)`` of the crop blocks, in :attr:`SiddEvaluation.crops` order.
        submissions: files written by :func:`write_submissions`.
    """

    method: Method
    raw_psnr: Optional[np.ndarray]
    raw_ssim: Optional[np.ndarray]
    srgb_psnr: Optional[np.ndarray]
    srgb_ssim: Optional[np.ndarray]
    seconds: float
    outputs: Optional[np.ndarray] = None
    crops: list[np.ndarray] = field(default_factory=list)
    submissions: dict[str, str] = field(default_factory=dict)

    def metric(self, name: str) -> Optional[np.ndarray]:
        """One of ``raw_psnr``, ``raw_ssim``, ``srgb_psnr``, ``srgb_ssim``."""
        return getattr(self, name)


@dataclass(frozen=True, eq=False)
class CropSample:
    """A block shown in the crops figure.

    Attributes:
        image: image index.
        block: block index.
        camera: phone code.
        iso: ISO or ``None``.
        noisy: rendered sRGB ``(h, w, 3)`` float32.
        gt: rendered ground truth, or ``None`` (benchmark).
        calibrated: whether the rendering used the image's white balance and colour matrix.
    """

    image: int
    block: int
    camera: str
    iso: Optional[int]
    noisy: np.ndarray
    gt: Optional[np.ndarray]
    calibrated: bool


@dataclass(eq=False)
class SiddEvaluation:
    """Everything a SIDD report shows.

    Attributes:
        split: the :class:`~denoise.sidd.SiddSplit` evaluated.
        infos: per-image facts (CFA, camera, ISO, noise level and their sources).
        methods: one :class:`MethodResult` per method, in row order.
        crops: blocks of the crops figure.
        notes: assumptions and caveats, one sentence each.
        settings: how it was run (noise mode, metadata folder, device, batch size, ...).
        created: ISO-8601 UTC time stamp.
    """

    split: SiddSplit
    infos: list[ImageInfo]
    methods: list[MethodResult]
    crops: list[CropSample]
    notes: list[str]
    settings: dict[str, Any]
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    @property
    def has_gt(self) -> bool:
        """Whether scores exist (validation split)."""
        return self.split.gt is not None

    def summary(self, method: MethodResult) -> dict[str, Optional[float]]:
        """Mean over all blocks of each metric (``None`` where not computed)."""
        out: dict[str, Optional[float]] = {}
        for name in _METRICS:
            values = method.metric(name)
            out[name] = None if values is None else _mean(values)
        return out

    def breakdown(self, method: MethodResult, name: str) -> Optional[dict[str, Any]]:
        """:func:`aggregate` of one metric of one method (``None`` without scores)."""
        values = method.metric(name)
        return None if values is None else aggregate(values, self.infos)


# ============================================================================ evaluation


def _noise_for(info: ImageInfo, noisy_blocks: np.ndarray, mode: str) -> ImageInfo:
    if mode != "blind" and info.shot is not None:
        return info
    if mode == "metadata":
        where = info.metadata_path or "no metadata file"
        raise RawSynthError(
            f"{where}: no NoiseProfile (tag 51041) for image {info.index} and --noise metadata was asked")
    shot, read, source = estimate_noise(noisy_blocks, info.cfa)
    return info.with_noise(shot, read, source)


def _color(info: ImageInfo) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    if not info.has_color:
        return None, None
    assert info.metadata is not None
    return np.asarray(info.metadata.as_shot_neutral), srgb_matrix(info.metadata)


def _pick_crops(infos: Sequence[ImageInfo], n_blocks: int, n_crops: int) -> list[tuple[int, int]]:
    """Up to ``n_crops`` (image, block): first one image per camera, then further images."""
    chosen: list[int] = []
    seen: set[str] = set()
    for info in infos:
        if info.camera not in seen:
            seen.add(info.camera)
            chosen.append(info.index)
    for info in infos:
        if info.index not in chosen:
            chosen.append(info.index)
    picks = chosen[: max(0, n_crops)]
    return [(i, (i * 7) % n_blocks) for i in picks]


def evaluate_sidd(
    split: SiddSplit,
    infos: Sequence[ImageInfo],
    methods: Sequence[Method],
    *,
    noise: str = "auto",
    batch_size: int = 8,
    srgb: bool = True,
    n_crops: int = 4,
    keep_outputs: Optional[bool] = None,
    progress: bool = False,
    settings: Optional[dict[str, Any]] = None,
) -> SiddEvaluation:
    """Denoise every block of a split with every method and score it.

    Args:
        split: from :func:`denoise.sidd.load_sidd_split`.
        infos: from :func:`denoise.sidd.image_infos`, one per image of ``split``.
        methods: what to run (see :func:`load_method`).
        noise: ``"auto"``, ``"metadata"`` or ``"blind"`` (see :data:`NOISE_MODES`).
        batch_size: blocks per denoiser call.
        srgb: compute sRGB scores where colour metadata exists.
        n_crops: blocks kept (rendered) for the crops figure.
        keep_outputs: keep the denoised blocks (default: for the benchmark split only).
        progress: show a tqdm bar over images.
        settings: extra facts recorded in the result.

    Returns:
        :class:`SiddEvaluation`.

    Raises:
        RawSynthError: on mismatched ``infos``, a bad option, or a failing method.
    """
    if noise not in NOISE_MODES:
        raise RawSynthError(f"noise: unknown mode {noise!r}, expected one of {', '.join(NOISE_MODES)}")
    if batch_size < 1:
        raise RawSynthError(f"batch_size: must be >= 1, got {batch_size}")
    if not methods:
        raise RawSynthError("methods: nothing to evaluate")
    if len(infos) != split.n_images:
        raise RawSynthError(f"infos: {len(infos)} image records for {split.n_images} images")
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise RawSynthError(f"methods: duplicate names {names}")
    keep = (split.gt is None) if keep_outputs is None else bool(keep_outputs)
    has_gt = split.gt is not None
    n, nb = split.n_images, split.n_blocks
    need_noise = any(m.needs_noise for m in methods)
    crops_at = _pick_crops(infos, nb, n_crops)
    crop_lookup = {pos: k for k, pos in enumerate(crops_at)}

    results = []
    for m in methods:
        scores = [np.full((n, nb), np.nan) for _ in _METRICS] if has_gt else [None] * 4
        outputs = np.empty(split.noisy.shape, dtype=split.dtype) if keep else None
        crops: list[Any] = [None] * len(crops_at)
        results.append(MethodResult(m, *scores, seconds=0.0, outputs=outputs, crops=crops))
    crop_samples: list[Optional[CropSample]] = [None] * len(crops_at)
    final_infos: list[ImageInfo] = []

    iterator = range(n)
    if progress:
        import sys

        from tqdm import tqdm

        iterator = tqdm(iterator, desc=f"SIDD {split.name}", unit="image", disable=None, file=sys.stderr)
    for i in iterator:
        info = infos[i]
        noisy_blocks = split.noisy[i]
        if need_noise:
            info = _noise_for(info, noisy_blocks, noise)
        final_infos.append(info)
        neutral, matrix = _color(info)
        calibrated = neutral is not None
        do_srgb = srgb and has_gt and calibrated
        packed = unify_blocks(noisy_blocks, info.cfa)
        shot = info.shot if info.shot is not None else np.zeros(4)
        read = info.read if info.read is not None else np.zeros(4)
        gt_rgb = None
        if do_srgb:
            gt_rgb = render_blocks(split.gt[i], info.cfa, neutral, matrix)  # type: ignore[index]
        image_crops = [(b, k) for (img, b), k in crop_lookup.items() if img == i]
        for b, k in image_crops:
            noisy_rgb = render_blocks(noisy_blocks[b:b + 1], info.cfa, neutral, matrix)[0]
            gt_crop = None
            if has_gt:
                gt_crop = gt_rgb[b] if gt_rgb is not None else render_blocks(
                    split.gt[i][b:b + 1], info.cfa, neutral, matrix)[0]  # type: ignore[index]
            crop_samples[k] = CropSample(i, b, info.camera, info.iso, noisy_rgb, gt_crop, calibrated)

        for res in results:
            start = time.perf_counter()
            out_packed = np.empty(packed.shape, dtype=np.float32)
            for s in range(0, nb, batch_size):
                chunk = packed[s:s + batch_size]
                den = np.asarray(res.method.denoise(chunk, shot, read), dtype=np.float32)
                if den.shape != chunk.shape:
                    raise RawSynthError(f"{res.method.name}: returned shape {den.shape} for input {chunk.shape}")
                out_packed[s:s + batch_size] = den
            denoised = np.clip(restore_blocks(out_packed, info.cfa), 0.0, 1.0)
            res.seconds += time.perf_counter() - start
            if res.outputs is not None:
                res.outputs[i] = denoised.astype(split.dtype, copy=False)
            pred_rgb = None
            if has_gt:
                rp, rs = raw_block_metrics(denoised, split.gt[i])  # type: ignore[index]
                res.raw_psnr[i], res.raw_ssim[i] = rp, rs  # type: ignore[index]
                if do_srgb:
                    pred_rgb = render_blocks(denoised, info.cfa, neutral, matrix)
                    sp, ss = srgb_block_metrics(pred_rgb, gt_rgb)  # type: ignore[arg-type]
                    res.srgb_psnr[i], res.srgb_ssim[i] = sp, ss  # type: ignore[index]
            for b, k in image_crops:
                res.crops[k] = pred_rgb[b] if pred_rgb is not None else render_blocks(
                    denoised[b:b + 1], info.cfa, neutral, matrix)[0]

    if (has_gt and not any(info.has_color for info in final_infos)) or not srgb:
        for res in results:
            res.srgb_psnr = res.srgb_ssim = None
    evaluation = SiddEvaluation(split, final_infos, results, [c for c in crop_samples if c is not None], [],
                                dict(settings or {}, noise=noise, batch_size=batch_size, srgb=srgb))
    evaluation.notes.extend(_notes(evaluation, need_noise))
    return evaluation


def _count(values: Sequence[str]) -> str:
    tally: dict[str, int] = {}
    for v in values:
        tally[v] = tally.get(v, 0) + 1
    return "; ".join(f"{k}: {c} image{'s' if c != 1 else ''}" for k, c in tally.items())


def _notes(ev: SiddEvaluation, need_noise: bool) -> list[str]:
    notes = []
    sources = [info.cfa_source for info in ev.infos]
    if all(s == "metadata" for s in sources):
        notes.append("CFA of every image read from its metadata (CFAPattern, tag 33422).")
    else:
        described = {
            "metadata": "metadata CFAPattern",
            "argument": "given by --cfa",
            "phone": "SIDD phone code -> bundled sidd-* camera profile (only S6 = GRBG is verified)",
            "default": f"ASSUMED {ev.infos[0].cfa if ev.infos else 'RGGB'} (no metadata, no --cfa)",
        }
        notes.append("CFA: " + _count([described[s] for s in sources]) + ". Without metadata a wrong "
                     "Bayer phase misleads the denoiser (identity scores are unaffected); pass --metadata-dir.")
    if need_noise:
        sources = _count([info.noise_source for info in ev.infos])
        notes.append(f"Noise level (variance = shot * x + read): {sources}.")
    else:
        notes.append("Noise level: not needed (no method uses it).")
    if ev.has_gt:
        colour = sum(info.has_color for info in ev.infos)
        if ev.methods and ev.methods[0].srgb_psnr is not None:
            notes.append(
                f"sRGB scores on {colour} of {len(ev.infos)} images (those with AsShotNeutral and a colour matrix), "
                "rendered as SIDD's simple-camera-pipeline (WB 1/AsShotNeutral, Malvar demosaic, ColorMatrix2 -> XYZ "
                "-> sRGB, sRGB curve, no tone curve), 8-bit quantised. Published sRGB numbers come from SIDD's own "
                "renderings, so they are only roughly comparable.")
        else:
            notes.append("No sRGB scores: no image has colour metadata (pass --metadata-dir).")
        notes.append("RAW PSNR/SSIM are means of per-block values over all blocks (SIDD's way), "
                     "on the mosaic in [0, 1].")
        notes.append("Published rows are SIDD benchmark-server scores; RAW scores of named methods on the validation "
                     "blocks were not found, so measured validation rows are comparable in trend, not to the decimal.")
    else:
        notes.append("The benchmark split has no ground truth: upload SubmitRaw.mat to the SIDD benchmark site or "
                     "SubmitRaw.csv to the Kaggle competition 'sidd-benchmark-raw-psnr' to get scores comparable with "
                     "the published rows.")
    if ev.split.n_images < ev.split.total_images:
        notes.append(f"Only the first {ev.split.n_images} of {ev.split.total_images} images were evaluated "
                     "(--max-images); " + ("submissions are partial and not accepted by the servers."
                                           if not ev.has_gt else "scores are not those of the full split."))
    return notes


# ============================================================================ submissions


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "method"


def write_submissions(result: MethodResult, out_dir: PathLike) -> dict[str, str]:
    """Write ``SubmitRaw.mat`` (key ``SubmitRaw``) and ``SubmitRaw.csv`` (``ID``, ``BLOCK`` base64).

    Args:
        result: a benchmark :class:`MethodResult` with ``outputs``.
        out_dir: folder; files go to ``out_dir/<method>/``.

    Returns:
        ``{"mat": path, "csv": path}`` (also stored in ``result.submissions``).

    Raises:
        RawSynthError: if the result holds no outputs or the files cannot be written.
    """
    if result.outputs is None:
        raise RawSynthError(f"{result.method.name}: no denoised blocks kept, cannot write a submission")
    folder = Path(out_dir) / _slug(result.method.name)
    folder.mkdir(parents=True, exist_ok=True)
    mat = write_submit_raw_mat(folder / "SubmitRaw.mat", result.outputs)
    csv = write_submit_raw_csv(folder / "SubmitRaw.csv", result.outputs)
    result.submissions = {"mat": str(mat), "csv": str(csv)}
    return result.submissions
