"""Colour round trip of the inverse-ISP engines: photo -> engine -> DNG -> LibRaw -> photo.

A RAW file made by an engine is only as good as its colour metadata: a RAW developer uses the
file's white balance (AsShotNeutral) and colour matrix (ColorMatrix1) to turn it back into a
picture. This benchmark converts each built-in sample photo (``raw-synth convert`` does the same
thing), renders the DNG with LibRaw the way the training pairs were made (rawpy ``postprocess``
with the camera white balance, no auto-brightening, 16 bit, default BT.709 curve) and compares
the rendering with the photo that went in::

    python benchmarks/isp_colour.py [--model CKPT ...] [--size 512] [--json OUT.json] [--figure PNG]

For every engine and photo it reports:

* ``exposure``: the gain in linear light that best maps the input onto the rendering (a RAW
  developer's exposure slider fixes this; 1 = same brightness);
* ``PSNR``: sRGB PSNR (dB) of the rendering against the input after that gain is undone;
* ``dE00``: mean CIEDE2000 colour difference after the gain (scikit-image), the colour error a
  viewer sees (about 2 is just noticeable side by side, above 10 is a different colour);
* ``cast a* / b*``: the mean CIELAB a* (green-/magenta+) and b* (blue-/yellow+) shift.

Engines: ``upi`` (a random Brooks et al. camera per photo, seed 0) and ``ssdnet`` for each
``--model`` (default: the bundled checkpoint). ``--figure`` draws one row per photo: the input and
each engine's DNG as LibRaw renders it (``docs/convert_round_trip.png``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def compare(reference: np.ndarray, rendered: np.ndarray) -> dict[str, float]:
    """Exposure, PSNR, mean dE00 and mean a*/b* cast of ``rendered`` against ``reference`` (sRGB in [0, 1])."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    from raw_synth.metrics import psnr
    from raw_synth.training.colour import bt709_decode, bt709_encode

    lin_ref, lin_out = bt709_decode(reference), bt709_decode(rendered)
    usable = (rendered < 0.99).all(-1) & (reference < 0.99).all(-1)  # clipped pixels carry no exposure
    gain = float((lin_ref[usable] * lin_out[usable]).sum() / (lin_ref[usable] ** 2).sum())
    matched = bt709_encode(np.clip(lin_out / gain, 0, 1)).astype(np.float32)
    lab_ref, lab_out = rgb2lab(reference), rgb2lab(matched)
    return {
        "exposure": gain,
        "psnr": float(psnr(matched, reference.astype(np.float32), data_range=1.0)),
        "de00": float(deltaE_ciede2000(lab_ref, lab_out).mean()),
        "cast_a": float((lab_out[..., 1] - lab_ref[..., 1]).mean()),
        "cast_b": float((lab_out[..., 2] - lab_ref[..., 2]).mean()),
    }


def round_trip(engine: Any, name: str, rgb: np.ndarray, out_dir: Path, index: int) -> np.ndarray:
    """Convert ``rgb`` with ``engine`` to a DNG and render it back with LibRaw (float32 sRGB)."""
    import rawpy

    from raw_synth.camera import get_profile
    from raw_synth.convert import convert_image

    path = convert_image(rgb, engine, get_profile("canon-eos-550d"), out_dir / f"{name}.dng", seed=0, index=index)
    with rawpy.imread(str(path)) as raw:
        rendered = raw.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=16, user_flip=0)
    return rendered.astype(np.float32) / 65535.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=None, help="ssdnet checkpoint(s); default: bundled")
    parser.add_argument("--size", type=int, default=512, help="largest side used of each photo (top-left crop)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--figure", type=Path, default=None, help="PNG grid: input and each engine's LibRaw rendering")
    args = parser.parse_args(argv)

    from raw_synth.convert import crop_to_even
    from raw_synth.corpora.samples import load_sample, sample_names
    from raw_synth.engine import bundled_checkpoint, create_engine

    engines: list[tuple[str, Any]] = [("upi", create_engine("upi"))]
    for model in args.model or [str(bundled_checkpoint())]:
        label = Path(model).name if Path(model).name != "model.safetensors" else Path(model).parent.name
        engines.append((f"ssdnet {label}", create_engine("ssdnet", checkpoint=model)))
    rows = []
    pictures: dict[str, list[np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, engine in engines:
            for index, photo in enumerate(sample_names()):
                rgb = crop_to_even(load_sample(photo)[: args.size, : args.size])
                rendered = round_trip(engine, f"{index}-{photo}", rgb, Path(tmp), index)
                rows.append({"engine": label, "photo": photo, **compare(rgb, rendered)})
                pictures.setdefault(photo, [rgb]).append(rendered)
    print("| engine | photo | exposure | PSNR (dB) | dE00 | cast a* / b* |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for label, _ in engines:
        mine = [r for r in rows if r["engine"] == label]
        for r in mine + [{"photo": "**mean**", **{k: float(np.mean([m[k] for m in mine]))
                                                   for k in ("exposure", "psnr", "de00", "cast_a", "cast_b")}}]:
            print(f"| {label} | {r['photo']} | {r['exposure']:.2f} | {r['psnr']:.2f} | {r['de00']:.2f} | "
                  f"{r['cast_a']:+.1f} / {r['cast_b']:+.1f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.figure:
        figure(pictures, ["input photo"] + [f"{label} -> DNG -> LibRaw" for label, _ in engines], rows, args.figure)
    return 0


def figure(pictures: dict[str, list[np.ndarray]], titles: list[str], rows: list[dict[str, Any]], path: Path) -> None:
    """One row per photo: the input, then each engine's rendering, with its dE00 in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(pictures)
    fig, axes = plt.subplots(len(names), len(titles), figsize=(3.2 * len(titles), 3.0 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        for c, image in enumerate(pictures[name]):
            ax = axes[r, c]
            ax.imshow(np.clip(image, 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            title = titles[c] if r == 0 else ""
            if c > 0:
                score = [x for x in rows if x["photo"] == name][c - 1]
                title = (title + "\n" if title else "") + f"dE00 {score['de00']:.1f}, exposure {score['exposure']:.2f}"
            ax.set_title(title, fontsize=9)
        axes[r, 0].set_ylabel(name)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
