"""Describing a store: :func:`summarize_store` (JSON-able dict), :func:`plot_store` (histograms)
and :func:`preview_grid` (rendered noisy/clean pairs).

The summary reads only the manifest and the small metadata columns of the complete shards, never
the images, so it is quick on large stores.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from raw_synth.errors import RawSynthError
from raw_synth.store.manifest import Manifest
from raw_synth.store.opener import open_shard_file

__all__ = ["summarize_store", "plot_store", "preview_grid", "log10_histogram", "iso_histogram"]

#: Bins per decade of the shot/read histograms.
BINS_PER_DECADE = 4


def log10_histogram(values: np.ndarray, bins_per_decade: int = BINS_PER_DECADE) -> dict[str, Any]:
    """Histogram of positive ``values`` on log10 bins aligned to ``1/bins_per_decade`` decades.

    Returns:
        ``{"log10_edges": [...], "counts": [...], "n_nonpositive": k}``; ``log10_edges`` has one
        more entry than ``counts`` (empty lists when there is no positive value).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    pos = v[v > 0]
    out: dict[str, Any] = {"log10_edges": [], "counts": [], "n_nonpositive": int((v <= 0).sum())}
    if pos.size == 0:
        return out
    logs = np.log10(pos)
    lo = math.floor(logs.min() * bins_per_decade) / bins_per_decade
    hi = math.floor(logs.max() * bins_per_decade) / bins_per_decade + 1.0 / bins_per_decade
    n_bins = max(1, int(round((hi - lo) * bins_per_decade)))
    edges = lo + np.arange(n_bins + 1) / bins_per_decade
    counts, _ = np.histogram(logs, bins=edges)
    out["log10_edges"] = [round(float(e), 6) for e in edges]
    out["counts"] = [int(c) for c in counts]
    return out


def iso_histogram(iso: np.ndarray) -> dict[str, Any]:
    """ISO histogram: counts per distinct value (rounded), plus the number of samples without ISO.

    Returns:
        ``{"values": [...], "counts": [...], "n_none": k}`` when at most 32 distinct ISOs, else
        ``{"log10_edges": [...], "counts": [...], "n_none": k}`` as :func:`log10_histogram`.
    """
    v = np.asarray(iso, dtype=np.float64).ravel()
    n_none = int(np.isnan(v).sum())
    v = v[~np.isnan(v)]
    rounded = np.round(v, 3)
    distinct, counts = np.unique(rounded, return_counts=True)
    if distinct.size <= 32:
        return {"values": [float(x) for x in distinct], "counts": [int(c) for c in counts], "n_none": n_none}
    hist = log10_histogram(v)
    return {"log10_edges": hist["log10_edges"], "counts": hist["counts"], "n_none": n_none}


def _collect(manifest: Manifest, root: Path) -> dict[str, Any]:
    cols: dict[str, list[Any]] = {k: [] for k in ("iso", "shot", "read", "camera", "cfa")}
    shape: list[int] | None = None
    for name, _ in manifest.complete_shards():
        shard = open_shard_file(root / name)
        try:
            for k in ("iso", "shot", "read"):
                cols[k].append(np.asarray(shard.columns[k][...], dtype=np.float64))
            cols["camera"].extend(shard.strings("camera"))
            cols["cfa"].extend(shard.strings("cfa"))
            if shape is None:
                shape = [int(s) for s in shard.columns["noisy"].shape[1:]]
        except KeyError as exc:
            raise RawSynthError(f"{root / name}: shard lacks the column {exc.args[0]!r}") from None
        finally:
            shard.close()
    out: dict[str, Any] = {"shape": shape, "camera": cols["camera"], "cfa": cols["cfa"]}
    out["iso"] = np.concatenate(cols["iso"]) if cols["iso"] else np.zeros(0)
    for k in ("shot", "read"):
        out[k] = np.concatenate(cols[k]) if cols[k] else np.zeros((0, 4))
    return out


def summarize_store(path: str | Path) -> dict[str, Any]:
    """Summary of the store in ``path`` as plain JSON data.

    Returns:
        Dict with ``path``, ``format``, ``n_samples`` (in complete shards), ``n_expected``
        (manifest target), ``n_shards`` (complete), ``n_shards_listed``, ``packed_shape``
        ``[4, h, w]``, ``patch_size`` ``[2h, 2w]`` (full-resolution pixels), ``cameras`` and
        ``cfa`` (name -> count), ``iso`` (:func:`iso_histogram`), ``shot`` and ``read``
        (:func:`log10_histogram` of each sample's mean over the four planes, plus ``min``,
        ``median``, ``max``), ``skipped`` (count) and ``skipped_reasons`` (reason -> count),
        ``engine``, ``raw_synth_version``, ``created``, ``updated``.

    Raises:
        RawSynthError: Not a store, or a complete shard that cannot be opened.
    """
    root = Path(path)
    manifest = Manifest.load(root)
    data = _collect(manifest, root)
    shape = data["shape"]
    summary: dict[str, Any] = {
        "path": str(root),
        "format": manifest.format,
        "n_samples": len(data["camera"]),
        "n_expected": manifest.n_samples,
        "n_shards": len(manifest.complete_shards()),
        "n_shards_listed": len(manifest.shards),
        "shard_size": manifest.shard_size,
        "packed_shape": shape,
        "patch_size": [2 * shape[1], 2 * shape[2]] if shape else None,
        "cameras": dict(sorted(Counter(data["camera"]).items())),
        "cfa": dict(sorted(Counter(data["cfa"]).items())),
        "iso": iso_histogram(data["iso"]),
    }
    for k in ("shot", "read"):
        level = data[k].mean(axis=1) if data[k].size else np.zeros(0)
        hist = log10_histogram(level)
        if level.size:
            hist.update(min=float(level.min()), median=float(np.median(level)), max=float(level.max()))
        summary[k] = hist
    summary["skipped"] = len(manifest.skipped)
    summary["skipped_reasons"] = dict(sorted(Counter(s.get("reason", "") for s in manifest.skipped).items()))
    summary["engine"] = dict(manifest.engine)
    summary["raw_synth_version"] = manifest.raw_synth_version
    summary["created"] = manifest.created
    summary["updated"] = manifest.updated
    return summary


def _bar_log(ax: Any, hist: dict[str, Any], label: str) -> None:
    edges = hist["log10_edges"]
    if edges:
        e = 10.0 ** np.asarray(edges)
        ax.bar(e[:-1], hist["counts"], width=np.diff(e), align="edge", edgecolor="black", linewidth=0.5)
        ax.set_xscale("log")
        from matplotlib.ticker import NullFormatter

        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(label)
    ax.set_ylabel("samples")


def plot_store(path: str | Path, png: str | Path) -> Path:
    """Save a figure with the ISO, shot-noise and read-noise histograms of the store.

    Args:
        path: Store folder.
        png: Output image path (PNG).

    Returns:
        ``png`` as a Path.

    Raises:
        RawSynthError: Not a store, or the image cannot be written.
    """
    from matplotlib.figure import Figure  # no pyplot: the Agg canvas, no global backend change

    summary = summarize_store(path)
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    iso = summary["iso"]
    if "values" in iso:
        labels = [f"{v:g}" for v in iso["values"]] + (["none"] if iso["n_none"] else [])
        counts = list(iso["counts"]) + ([iso["n_none"]] if iso["n_none"] else [])
        axes[0].bar(range(len(labels)), counts, edgecolor="black", linewidth=0.5)
        axes[0].set_xticks(range(len(labels)), labels, rotation=45, fontsize=7)
        axes[0].set_xlabel("ISO")
        axes[0].set_ylabel("samples")
    else:
        _bar_log(axes[0], iso, "ISO")
    _bar_log(axes[1], summary["shot"], "shot (mean over planes, normalised)")
    _bar_log(axes[2], summary["read"], "read variance (mean over planes, normalised)")
    axes[0].set_title("ISO")
    axes[1].set_title("shot noise")
    axes[2].set_title("read noise")
    cams = ", ".join(f"{k} {v}" for k, v in summary["cameras"].items())
    fig.suptitle(f"{summary['n_samples']} samples, {summary['n_shards']} shards ({summary['format']}): {cams}",
                 fontsize=9)
    out = Path(png)
    try:
        fig.savefig(out, dpi=100)
    except OSError as exc:
        raise RawSynthError(f"{out}: cannot write figure ({exc.strerror or exc})") from None
    return out


def preview_grid(path: str | Path, png: str | Path, n: int = 8) -> Path:
    """Save a grid of ``n`` noisy/clean pairs rendered with :func:`raw_synth.isp.render`.

    The samples are spread evenly over the store (first and last included). Each pair is rendered
    with its own white balance (``wb_gains``) and colour matrix (from ``xyz_to_cam``), noisy left
    of clean, labelled with the global index, camera and ISO.

    Args:
        path: Store folder.
        png: Output image path (PNG).
        n: Number of pairs (at least 1; fewer when the store is smaller).

    Returns:
        ``png`` as a Path.

    Raises:
        RawSynthError: Not a store, an empty store, bad ``n``, or the image cannot be written.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise RawSynthError(f"n: expected a positive integer, got {n!r}")
    from matplotlib.figure import Figure  # no pyplot: the Agg canvas, no global backend change

    from raw_synth.isp import cam_to_rgb_from_xyz_to_cam, render
    from raw_synth.store.reader import open_shards

    with open_shards(path) as ds:
        if len(ds) == 0:
            raise RawSynthError(f"{path}: store holds no complete shard to preview")
        k = min(n, len(ds))
        picks = sorted({int(round(x)) for x in np.linspace(0, len(ds) - 1, k)})
        samples = [ds[i] for i in picks]
    per_row = min(4, len(samples))
    rows = math.ceil(len(samples) / per_row)
    h, w = samples[0]["noisy"].shape[1:]
    panel = 2.2  # inches per image side (the longer one)
    fig = Figure(figsize=(2 * per_row * panel * w / max(h, w), rows * (panel * h / max(h, w) + 0.4)),
                 layout="constrained")
    axes = np.asarray(fig.subplots(rows, 2 * per_row, squeeze=False))
    for ax in axes.ravel():
        ax.set_axis_off()
    for k, s in enumerate(samples):
        ccm = cam_to_rgb_from_xyz_to_cam(s["xyz_to_cam"])
        iso = "ISO ?" if s["iso"] is None else f"ISO {s['iso']:.0f}"
        for c, key in enumerate(("noisy", "clean")):
            ax = axes[k // per_row, 2 * (k % per_row) + c]
            ax.imshow(render(s[key], s["wb_gains"], ccm), interpolation="nearest")
            ax.set_title(f"#{s['index']} {key}\n{s['camera']} {iso}", fontsize=7)
    out = Path(png)
    try:
        fig.savefig(out, dpi=100)
    except OSError as exc:
        raise RawSynthError(f"{out}: cannot write figure ({exc.strerror or exc})") from None
    return out
