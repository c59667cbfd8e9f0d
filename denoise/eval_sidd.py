"""``raw-synth eval-sidd`` as a library call: :func:`run_eval_sidd` loads, evaluates, writes the report.

It sits above :mod:`denoise.evaluate` (denoising and scoring) and :mod:`denoise.report` (the
report files), which do not import each other's callers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence, Union

from denoise.baselines import CLASSICAL_BASELINE, MissingPackageError
from denoise.evaluate import Method, SiddEvaluation, evaluate_sidd, load_method, write_submissions
from denoise.report import write_report
from denoise.sidd import find_metadata_files, image_infos, load_sidd_split
from raw_synth.errors import RawSynthError

__all__ = ["run_eval_sidd"]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]


def run_eval_sidd(
    sidd_dir: PathLike,
    models: Union[str, Sequence[str]],
    out: PathLike,
    *,
    split: str = "validation",
    metadata_dir: Optional[PathLike] = None,
    max_images: Optional[int] = None,
    cfa: Union[None, str, Sequence[str]] = None,
    noise: str = "auto",
    baselines: bool = True,
    device: str = "cpu",
    batch_size: int = 8,
    srgb: bool = True,
    plots: bool = True,
    progress: bool = False,
    ensemble: int = 1,
) -> SiddEvaluation:
    """What ``raw-synth eval-sidd`` runs: load, evaluate, write submissions and the report.

    Rows (validation): ``identity`` and the classical baseline (``anscombe-nlm``) when
    ``baselines``, then every ``models`` entry; plus the published rows in the report. A baseline
    added by ``baselines`` whose optional package is missing (scikit-image) is skipped with a
    warning and a report note; one named in ``models`` is an error.
    Benchmark: only ``models`` are run and each gets ``OUT/submissions/<name>/SubmitRaw.{mat,csv}``.

    Args:
        sidd_dir: folder with the block files of ``split``.
        models: one or more of ``identity``, ``anscombe-nlm``, ``anscombe-bm3d`` or checkpoint paths.
        out: report folder (created): ``report.json``, ``report.md``, ``plots/*.png``,
            ``submissions/`` (benchmark).
        split: ``"validation"`` or ``"benchmark"``.
        metadata_dir: folder with the per-image ``*_METADATA_RAW_*.MAT`` files (scene folders).
        max_images: evaluate the first N images only.
        cfa: CFA assumption without metadata (see :func:`denoise.sidd.image_infos`).
        noise: ``"auto"``, ``"metadata"`` or ``"blind"``.
        baselines: add identity and the classical baseline (validation only).
        device: torch device for checkpoints.
        batch_size: blocks per denoiser call.
        srgb: compute sRGB scores (needs metadata).
        plots: draw the PNG figures (``report.json``/``report.md`` are always written).
        progress: tqdm bar on stderr.
        ensemble: self-ensemble size for the checkpoints (1, 2, 4 or 8; rows named ``STEM-xN``).

    Returns:
        The :class:`SiddEvaluation` (its report is written).

    Raises:
        RawSynthError: on any bad input, naming the file or argument.
    """
    specs = [models] if isinstance(models, str) else list(models)
    if not specs:
        raise RawSynthError("--model: give at least one (a checkpoint, identity, anscombe-nlm or anscombe-bm3d)")
    implicit = ["identity", CLASSICAL_BASELINE] if baselines and split == "validation" else []
    ordered = list(implicit)
    for spec in specs:
        if spec not in ordered:
            ordered.append(spec)
    methods: list[Method] = []
    skipped: list[str] = []
    for spec in ordered:  # fail on a bad --model before reading blocks
        try:
            methods.append(load_method(spec, device, ensemble=ensemble))
        except MissingPackageError as exc:
            if spec in specs:  # asked for by name: an error; added by ``baselines``: skipped
                raise
            logger.warning("%s skipped: %s", spec, exc)
            skipped.append(f"Baseline {spec} skipped: {exc}")
    data = load_sidd_split(sidd_dir, split, max_images)
    files = find_metadata_files(metadata_dir) if metadata_dir is not None else None
    infos = image_infos(data.n_images, files, cfa, total_images=data.total_images, metadata_dir=metadata_dir)
    settings = {
        "sidd_dir": str(Path(sidd_dir)),
        "metadata_dir": None if metadata_dir is None else str(Path(metadata_dir)),
        "metadata_files": None if files is None else [str(f) for f in files[: data.n_images]],
        "max_images": max_images,
        "cfa_argument": cfa if cfa is None or isinstance(cfa, str) else list(cfa),
        "device": str(device),
        "models": specs,
        "ensemble": ensemble,
    }
    evaluation = evaluate_sidd(data, infos, methods, noise=noise, batch_size=batch_size, srgb=srgb,
                               n_crops=4 if plots else 0, progress=progress, settings=settings)
    evaluation.notes.extend(skipped)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not evaluation.has_gt:
        for res in evaluation.methods:
            write_submissions(res, out_dir / "submissions")
            res.outputs = None  # release the memory; the files hold the blocks
    write_report(evaluation, out_dir, plots=plots)
    return evaluation
