"""The SIDD report: ``report.json``, ``report.md`` and plots from a :class:`~denoise.evaluate.SiddEvaluation`.

Files written by :func:`write_report` into the report folder:

* ``report.json`` - every number: settings, per-image facts (camera, ISO, CFA, noise level and
  their sources), per method the summary, per image/camera/ISO breakdowns and per-block scores,
  the published rows, the comparison rows, notes and file names. Non-finite numbers are ``null``.
* ``report.md`` - sections ``Setup``, ``Results``, ``Comparison with published results``,
  ``Per camera``, ``Per ISO``, ``Per image``, ``Submissions`` (benchmark), ``Notes``, ``Figures``.
* ``plots/psnr_per_camera.png`` - RAW PSNR per camera, one bar per method (validation).
* ``plots/crops.png`` - noisy / denoised (each method) / ground truth blocks rendered to sRGB.

:func:`format_summary` is the short text the command prints.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from denoise.evaluate import MethodResult, SiddEvaluation
from denoise.published import PUBLISHED, SSDNET_TABLE5_SPLIT, published_rows

__all__ = [
    "REPORT_FORMAT",
    "MD_SECTIONS",
    "report_dict",
    "comparison_rows",
    "report_markdown",
    "plot_psnr_per_camera",
    "plot_crops",
    "write_report",
    "format_summary",
]

PathLike = Union[str, Path]

#: ``format`` field of report.json.
REPORT_FORMAT = "raw-synth-sidd-report/1"

#: The level-2 headings of report.md, in order (``Submissions`` only for the benchmark split).
MD_SECTIONS: tuple[str, ...] = (
    "Setup",
    "Results",
    "Comparison with published results",
    "Per camera",
    "Per ISO",
    "Per image",
    "Submissions",
    "Notes",
    "Figures",
)

_METRICS = ("raw_psnr", "raw_ssim", "srgb_psnr", "srgb_ssim")
_HEAD = {"raw_psnr": "RAW PSNR", "raw_ssim": "RAW SSIM", "srgb_psnr": "sRGB PSNR", "srgb_ssim": "sRGB SSIM"}


# ============================================================================ json


def _num(value: Any) -> Optional[float]:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _nums(values: Optional[np.ndarray]) -> Optional[list[list[Optional[float]]]]:
    if values is None:
        return None
    return [[_num(v) for v in row] for row in np.asarray(values)]


def _clean(obj: Any) -> Any:
    """Make nested values JSON-safe (numpy scalars/arrays, non-finite floats, paths)."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return _num(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _split_label(ev: SiddEvaluation) -> str:
    label = f"{ev.split.name} (this run"
    if ev.split.n_images < ev.split.total_images:
        label += f", {ev.split.n_images} of {ev.split.total_images} images"
    return label + ")"


def comparison_rows(ev: SiddEvaluation) -> list[dict[str, Any]]:
    """Published rows, then one measured row per method.

    Returns:
        Dicts with ``kind`` (``"published"`` or ``"measured"``), ``method``, the four scores
        (``None`` where unknown), ``split`` and ``source``.
    """
    rows = published_rows()
    for res in ev.methods:
        summary = ev.summary(res)
        source = res.method.description
        if res.submissions:
            source += f"; submission {res.submissions.get('mat', '')}"
        rows.append({"kind": "measured", "method": res.method.name, **{k: _num(summary[k]) for k in _METRICS},
                     "split": _split_label(ev), "source": source})
    return rows


def _method_dict(ev: SiddEvaluation, res: MethodResult) -> dict[str, Any]:
    m = res.method
    out: dict[str, Any] = {
        "name": m.name,
        "kind": m.kind,
        "description": m.description,
        "needs_noise": m.needs_noise,
        "checkpoint": m.checkpoint,
        "sha256": m.sha256,
        "info": m.info,
        "seconds": res.seconds,
        "summary": ev.summary(res),
        "breakdown": {name: ev.breakdown(res, name) for name in _METRICS if res.metric(name) is not None},
        "per_block": {name: _nums(res.metric(name)) for name in _METRICS if res.metric(name) is not None},
        "submissions": res.submissions,
    }
    return out


def _image_dict(info: Any) -> dict[str, Any]:
    return {
        "index": info.index,
        "camera": info.camera,
        "iso": info.iso,
        "cfa": info.cfa,
        "cfa_source": info.cfa_source,
        "shot": None if info.shot is None else list(info.shot),
        "read": None if info.read is None else list(info.read),
        "noise_source": info.noise_source,
        "srgb": bool(info.has_color),
        "metadata": None if info.metadata_path is None else str(info.metadata_path),
    }


def report_dict(ev: SiddEvaluation, files: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """Everything of the report as a JSON-able dict.

    Keys: ``format``, ``raw_synth_version``, ``created``, ``split``, ``files``, ``n_images``,
    ``total_images``, ``n_blocks``, ``block_shape``, ``settings``, ``images``, ``methods``,
    ``published``, ``rows``, ``notes``, ``outputs``.
    """
    from raw_synth import __version__

    split = ev.split
    return _clean({
        "format": REPORT_FORMAT,
        "raw_synth_version": __version__,
        "created": ev.created,
        "split": split.name,
        "files": {"noisy": str(split.noisy_path), "gt": None if split.gt_path is None else str(split.gt_path)},
        "n_images": split.n_images,
        "total_images": split.total_images,
        "n_blocks": split.n_blocks,
        "block_shape": list(split.block_shape),
        "settings": ev.settings,
        "images": [_image_dict(info) for info in ev.infos],
        "methods": [_method_dict(ev, res) for res in ev.methods],
        "published": published_rows(),
        "rows": comparison_rows(ev),
        "notes": list(ev.notes),
        "outputs": files or {},
    })


# ============================================================================ markdown


def _fmt(value: Optional[float], metric: str) -> str:
    if value is None or not math.isfinite(float(value)):
        return "-"
    return f"{value:.2f}" if metric.endswith("psnr") else f"{value:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _breakdown_table(ev: SiddEvaluation, key: str, label: str) -> list[str]:
    """Rows = groups (camera / ISO), columns = method x (RAW PSNR, RAW SSIM, sRGB PSNR)."""
    if not ev.has_gt or not ev.methods:
        return ["No scores (no ground truth in this split)."]
    metrics = [m for m in ("raw_psnr", "raw_ssim", "srgb_psnr") if ev.methods[0].metric(m) is not None]
    groups = list((ev.breakdown(ev.methods[0], "raw_psnr") or {}).get(key, {}).keys())
    header = [label] + [f"{res.method.name} {_HEAD[m]}" for res in ev.methods for m in metrics]
    counts: dict[str, int] = {}
    for info in ev.infos:
        g = {"per_camera": info.camera, "per_iso": "unknown" if info.iso is None else str(info.iso)}.get(key, "")
        counts[g] = counts.get(g, 0) + 1
    rows = []
    for g in groups:
        cells = [f"{g} ({counts.get(g, 0)} img)"]
        for res in ev.methods:
            for m in metrics:
                cells.append(_fmt((ev.breakdown(res, m) or {}).get(key, {}).get(g), m))
        rows.append(cells)
    return _table(header, rows)


def report_markdown(ev: SiddEvaluation, files: Optional[dict[str, str]] = None) -> str:
    """The report as Markdown (headings :data:`MD_SECTIONS`; ``Submissions`` only for benchmark)."""
    split = ev.split
    files = files or {}
    lines = [f"# SIDD RAW denoising: {split.name} split", ""]

    lines += ["## Setup", ""]
    partner = f" and `{split.gt_path}`" if split.gt_path else " (no ground truth)"
    lines.append(f"- Blocks: `{split.noisy_path}`{partner}")
    lines.append(f"- Images: {split.n_images} of {split.total_images}, {split.n_blocks} blocks each, "
                 f"{split.block_shape[0]}x{split.block_shape[1]} pixels (native CFA phase), stored as {split.dtype}")
    meta = ev.settings.get("metadata_dir")
    lines.append(f"- Metadata: `{meta}` (matched to images in sorted scene-folder order)" if meta
                 else "- Metadata: none")
    lines.append(f"- Noise mode: {ev.settings.get('noise')}, batch size {ev.settings.get('batch_size')}, "
                 f"device {ev.settings.get('device', 'cpu')}")
    lines.append(f"- Created: {ev.created}")
    lines.append("")
    img_rows = []
    for info in ev.infos:
        noise = "-" if info.shot is None else f"{np.mean(info.shot):.3g} / {np.mean(info.read):.3g}"
        img_rows.append([str(info.index), info.camera, "-" if info.iso is None else str(info.iso),
                         f"{info.cfa} ({info.cfa_source})", noise, info.noise_source])
    lines += _table(["image", "camera", "ISO", "CFA (source)", "mean shot / read", "noise source"], img_rows)
    lines.append("")

    lines += ["## Results", ""]
    if ev.has_gt:
        header = ["method", "kind"] + [_HEAD[m] for m in _METRICS] + ["seconds"]
        rows = []
        for res in ev.methods:
            s = ev.summary(res)
            rows.append([res.method.name, res.method.kind] + [_fmt(s[m], m) for m in _METRICS] + [f"{res.seconds:.1f}"])
        lines += _table(header, rows)
        lines += ["", "Scores are means of per-block values over all blocks (SIDD's way)."]
    else:
        lines.append("No scores: the benchmark split has no ground truth. See Submissions.")
    lines.append("")

    lines += ["## Comparison with published results", ""]
    rows = []
    for r in comparison_rows(ev):
        rows.append([r["method"], r["kind"]] + [_fmt(r[m], m) for m in _METRICS] + [r["split"], r["source"]])
    lines += _table(["method", "kind"] + [_HEAD[m] for m in _METRICS] + ["split", "source"], rows)
    lines.append("")

    lines += ["## Per camera", ""] + _breakdown_table(ev, "per_camera", "camera") + [""]
    lines += ["## Per ISO", ""] + _breakdown_table(ev, "per_iso", "ISO") + [""]

    lines += ["## Per image", ""]
    if ev.has_gt:
        header = ["image", "camera", "ISO"] + [f"{res.method.name} RAW PSNR" for res in ev.methods]
        rows = []
        for info in ev.infos:
            cells = [str(info.index), info.camera, "-" if info.iso is None else str(info.iso)]
            for res in ev.methods:
                cells.append(_fmt((ev.breakdown(res, "raw_psnr") or {})["per_image"][info.index], "raw_psnr"))
            rows.append(cells)
        lines += _table(header, rows)
    else:
        lines.append("No scores (no ground truth in this split).")
    lines.append("")

    if not ev.has_gt:
        lines += ["## Submissions", ""]
        rows = [[res.method.name, f"`{res.submissions.get('mat', '-')}`", f"`{res.submissions.get('csv', '-')}`"]
                for res in ev.methods]
        lines += _table(["method", "SubmitRaw.mat (key SubmitRaw)", "SubmitRaw.csv (ID, BLOCK base64)"], rows)
        lines += ["", "Upload SubmitRaw.mat to the SIDD benchmark site, or SubmitRaw.csv to the Kaggle competition "
                  "`sidd-benchmark-raw-psnr`.", ""]

    lines += ["## Notes", ""] + [f"- {n}" for n in ev.notes] + [""]

    lines += ["## Figures", ""]
    for key, title in (("psnr_per_camera", "RAW PSNR per camera"), ("crops", "Noisy / denoised / ground truth (sRGB)")):
        if key in files:
            lines.append(f"![{title}]({files[key]})")
            lines.append("")
    if not any(k in files for k in ("psnr_per_camera", "crops")):
        lines += ["No figures.", ""]
    return "\n".join(lines)


# ============================================================================ plots


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_psnr_per_camera(ev: SiddEvaluation, path: PathLike) -> Optional[Path]:
    """Grouped bar chart of RAW PSNR per camera (one bar per method). ``None`` without scores."""
    if not ev.has_gt or not ev.methods:
        return None
    cameras = list((ev.breakdown(ev.methods[0], "raw_psnr") or {}).get("per_camera", {}).keys())
    if not cameras:
        return None
    fig = _figure(max(5.0, 1.2 * len(cameras) * max(1, len(ev.methods)) / 2 + 3), 4.0)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(ev.methods)
    x = np.arange(len(cameras))
    for k, res in enumerate(ev.methods):
        table = (ev.breakdown(res, "raw_psnr") or {}).get("per_camera", {})
        values = [table.get(c) if table.get(c) is not None else np.nan for c in cameras]
        bars = ax.bar(x + (k - (len(ev.methods) - 1) / 2) * width, values, width, label=res.method.name)
        for bar, v in zip(bars, values):
            if np.isfinite(v):
                ax.annotate(f"{v:.1f}", (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x)
    ax.set_xticklabels(cameras)
    ax.set_ylabel("RAW PSNR (dB), mean over blocks")
    ax.set_title(f"SIDD {ev.split.name}: RAW PSNR per camera")
    finite = [v for res in ev.methods for v in ((ev.breakdown(res, "raw_psnr") or {}).get("per_camera", {}).values())
              if v is not None]
    if finite:
        ax.set_ylim(max(0.0, min(finite) - 5.0), max(finite) + 3.0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    return p


def plot_crops(ev: SiddEvaluation, path: PathLike) -> Optional[Path]:
    """Grid: one row per crop block; columns noisy, each method, ground truth (sRGB renderings)."""
    if not ev.crops:
        return None
    columns = ["noisy"] + [res.method.name for res in ev.methods] + (["ground truth"] if ev.has_gt else [])
    fig = _figure(2.2 * len(columns), 2.6 * len(ev.crops))
    for r, crop in enumerate(ev.crops):
        images = [crop.noisy] + [res.crops[r] for res in ev.methods] + ([crop.gt] if ev.has_gt else [])
        for c, (title, img) in enumerate(zip(columns, images)):
            ax = fig.add_subplot(len(ev.crops), len(columns), r * len(columns) + c + 1)
            ax.imshow(np.clip(img, 0, 1) if img is not None else np.zeros((8, 8, 3)))
            ax.set_xticks([])
            ax.set_yticks([])
            label = title
            if 0 < c <= len(ev.methods) and ev.has_gt:
                value = ev.methods[c - 1].raw_psnr[crop.image, crop.block]  # type: ignore[index]
                label += f"\n{value:.2f} dB"
            elif c == 0 and ev.has_gt:
                label += f"\nimg {crop.image} blk {crop.block} {crop.camera}"
            elif c == 0:
                label += f"\nimg {crop.image} blk {crop.block}"
            ax.set_title(label, fontsize=7)
    if not all(crop.calibrated for crop in ev.crops):
        fig.suptitle("uncalibrated colour (no metadata)", fontsize=8)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    return p


# ============================================================================ files


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(ev: SiddEvaluation, out_dir: PathLike, plots: bool = True) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and (if ``plots``) the plots into ``out_dir`` (created).

    Returns:
        ``{"json": ..., "md": ..., "psnr_per_camera": ..., "crops": ...}`` (plots only when drawn).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if plots:
        bars = plot_psnr_per_camera(ev, out / "plots" / "psnr_per_camera.png")
        if bars is not None:
            written["psnr_per_camera"] = bars
        crops = plot_crops(ev, out / "plots" / "crops.png")
        if crops is not None:
            written["crops"] = crops
    relative = {k: p.relative_to(out).as_posix() for k, p in written.items()}
    written["json"] = out / "report.json"
    written["md"] = out / "report.md"
    relative.update({"json": "report.json", "md": "report.md"})
    _atomic_write(written["json"], json.dumps(report_dict(ev, relative), indent=1, allow_nan=False) + "\n")
    _atomic_write(written["md"], report_markdown(ev, relative) + "\n")
    return written


def format_summary(ev: SiddEvaluation, out_dir: Optional[PathLike] = None) -> str:
    """Short text for the terminal: the measured rows, the best published rows, where the report is."""
    lines = [f"SIDD {ev.split.name}: {ev.split.n_images} images x {ev.split.n_blocks} blocks"]
    if ev.has_gt:
        header = f"{'method':<24} {'RAW PSNR':>9} {'RAW SSIM':>9} {'sRGB PSNR':>10} {'sRGB SSIM':>10}"
        lines += [header]
        for res in ev.methods:
            s = ev.summary(res)
            cells = [f"{_fmt(s[m], m):>{9 if m.startswith('raw') else 10}}" for m in _METRICS]
            lines.append(f"{res.method.name:<24} " + " ".join(cells))
        table5 = [r for r in PUBLISHED if r.split == SSDNET_TABLE5_SPLIT]
        best = sorted(table5, key=lambda r: -r.raw_psnr)[:3]
        lines.append("published RAW PSNR (SIDD benchmark, other split): "
                     + ", ".join(f"{r.method} {r.raw_psnr:.2f}" for r in best) + "; full table in report.md")
    else:
        for res in ev.methods:
            lines.append(f"{res.method.name}: {res.submissions.get('mat', '-')} and {res.submissions.get('csv', '-')}")
    if out_dir is not None:
        lines.append(f"report: {Path(out_dir) / 'report.md'}")
    return "\n".join(lines)
