"""Build the inverse-ISP training folder of the bundled SSDNet checkpoint from ../shared/data.

Three real, MIT-licensed RAW captures become three DNG files that LibRaw renders:

* ``canon-550d.dng``: ``tinydng-canon550d/colorchart.dng`` copied byte for byte (Canon EOS 550D,
  RGGB, black 2056, white 15000, ColorMatrix1 + AsShotNeutral from the camera).
* ``openisp.dng``: ``openisp-test-raw/test.RAW`` (headerless 1920x1080 10-bit RGGB, black 0,
  white 1023). No colour metadata exists: the openISP config's CCM is the identity, so the DNG
  gets a camera with sRGB primaries (``SRGB_XYZ_TO_CAM``), and the config's AWB gains r 1.5 /
  b 1.1 (the config's "gb_gain 1.1"; grey-world on the chart gives 1.50 / 1.08) as AsShotNeutral.
* ``nokia-n900.dng``: ``halide-nokia-n900/bayer_small.png`` (344x256 GRBG, black 25, white 1023).
  Halide ships camera->sRGB matrices at 3200 K and 7000 K that include the white balance. Each is
  split into a neutral (``M n = 1``) and a white-preserving CCM. The 3200 K matrix implies a
  tungsten neutral and a CCM with a +0.56 blue->green term, implausible for this daylight scene;
  the 7000 K one (closest to D65, the illuminant of ColorMatrix1) gives gains R 1.57 / B 1.17
  and an ordinary CCM, so the DNG uses it.

Each image's right-most 25 % of columns is held out (``split.json``, ``right-columns``): training
crops never touch it and the held-out benchmark (``benchmarks/isp_holdout.py``) scores only it.

Usage::

    python benchmarks/make_isp_training_data.py --out build/isp-data [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from raw_synth.io import read_mosaic, write_dng  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from raw_synth.io import RawImage
from raw_synth.io.dng import SRGB_XYZ_TO_CAM  # noqa: E402
from raw_synth.isp.color import xyz_to_cam_from_rgb_to_cam  # noqa: E402
from raw_synth.training.datasets import SPLIT_FILE, SPLIT_FORMAT  # noqa: E402

logger = logging.getLogger("make_isp_training_data")

DEFAULT_SHARED = REPO.parent / "shared" / "data"
HOLDOUT_FRACTION = 0.25
FILES = {
    "canon": "tinydng-canon550d/colorchart.dng",
    "openisp": "openisp-test-raw/test.RAW",
    "n900": "halide-nokia-n900/bayer_small.png",
    "n900_matrix": "halide-nokia-n900/matrix_7000.mat",
}


def split_camera_matrix(cam_to_srgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a camera->linear-sRGB matrix that includes white balance into (gains, xyz_to_cam).

    The camera's neutral ``n`` solves ``M n = (1, 1, 1)``; gains are ``1 / n`` (green 1). The
    CCM ``C = M diag(n)`` (rows normalised to sum 1) maps white-balanced camera RGB to sRGB;
    ``xyz_to_cam = inv(C) @ inv(RGB_TO_XYZ)``, the DNG ColorMatrix from which LibRaw rebuilds ``C``.

    Args:
        cam_to_srgb: ``(3, 3)`` matrix.

    Returns:
        ``(wb (4,) R, Gr, Gb, B, xyz_to_cam (3, 3))``.
    """
    neutral = np.linalg.solve(cam_to_srgb, np.ones(3))
    neutral = neutral / neutral[1]
    ccm = cam_to_srgb @ np.diag(neutral)
    ccm = ccm / ccm.sum(axis=1, keepdims=True)
    xyz_to_cam = xyz_to_cam_from_rgb_to_cam(np.linalg.inv(ccm))
    gains = 1.0 / neutral
    return np.array([gains[0], 1.0, 1.0, gains[2]]), xyz_to_cam


def synthetic_dng(path: Path, camera: "RawImage", seed: int, height: int = 256, width: int = 384) -> Path:
    """Write a dead-leaves scene as a DNG of ``camera`` (its levels, white balance and colour matrix).

    The scene is a dead-leaves image read as LibRaw output (BT.709-encoded sRGB); its linear
    values go through the inverse of LibRaw's rendering for this camera (row-normalised
    sRGB-to-camera matrix, then the white balance undone), are mosaicked RGGB and written with the
    camera's facts, so LibRaw renders it back to (nearly) the scene. Such pairs show a model the
    camera's colour response over the whole gamut, which three real photos do not.
    """
    from raw_synth.cfa import mosaic, pack
    from raw_synth.corpora.deadleaves import dead_leaves
    from raw_synth.io import RawImage
    from raw_synth.isp.color import rgb_to_cam_from_xyz_to_cam
    from raw_synth.training.colour import bt709_decode

    scene = bt709_decode(dead_leaves(height, width, seed))
    cam = scene @ rgb_to_cam_from_xyz_to_cam(np.asarray(camera.xyz_to_cam)).T
    wb = np.asarray(camera.wb, dtype=np.float64)
    cam = np.clip(cam / np.array([wb[0], 1.0, wb[3]]), 0.0, 1.0)
    packed = pack(mosaic(cam, "RGGB"), "RGGB").astype(np.float32)
    raw = RawImage(packed=packed, cfa="RGGB", black_level=camera.black_level, white_level=camera.white_level,
                   wb=camera.wb, xyz_to_cam=np.asarray(camera.xyz_to_cam), camera=camera.camera)
    return write_dng(path, raw)


def build(shared: Path, out: Path, synthetic: int = 0) -> dict:
    """Write the three DNGs (and ``synthetic`` dead-leaves DNGs per camera), ``split.json`` and
    ``SOURCES.json`` into ``out``; return the manifest."""
    import scipy.io

    out.mkdir(parents=True, exist_ok=True)
    missing = [rel for rel in FILES.values() if not (shared / rel).is_file()]
    if missing:
        raise FileNotFoundError(f"{shared}: missing {', '.join(missing)}")

    shutil.copyfile(shared / FILES["canon"], out / "canon-550d.dng")

    openisp = read_mosaic(shared / FILES["openisp"], "RGGB", 0, 1023, shape=(1080, 1920))
    openisp = dataclasses.replace(openisp, wb=(1.5, 1.0, 1.0, 1.1), xyz_to_cam=np.asarray(SRGB_XYZ_TO_CAM),
                                  camera="openISP test sensor", source=None)
    write_dng(out / "openisp.dng", openisp)

    matrix = scipy.io.loadmat(shared / FILES["n900_matrix"])["matrix_7000"].T[:, :3]
    wb, xyz_to_cam = split_camera_matrix(matrix)
    n900 = read_mosaic(shared / FILES["n900"], "GRBG", 25, 1023)
    n900 = dataclasses.replace(n900, wb=tuple(float(g) for g in wb), xyz_to_cam=xyz_to_cam, camera="Nokia N900",
                               source=None)
    write_dng(out / "nokia-n900.dng", n900)

    synthetic_files = []
    if synthetic:
        from raw_synth.io import read_raw

        cameras = {"canon-550d": read_raw(out / "canon-550d.dng"), "openisp": openisp, "nokia-n900": n900}
        for c, (name, camera) in enumerate(cameras.items()):
            for k in range(synthetic):
                target = out / f"synthetic-{name}-{k}.dng"
                synthetic_dng(target, camera, seed=1000 * (c + 1) + k)
                synthetic_files.append(target.name)

    split = {"format": SPLIT_FORMAT, "holdout": "right-columns", "fraction": HOLDOUT_FRACTION}
    (out / SPLIT_FILE).write_text(json.dumps(split, indent=1) + "\n", encoding="utf-8")
    manifest = {
        "canon-550d.dng": {"from": FILES["canon"], "license": "MIT (syoyo/tinydng)", "cfa": "RGGB",
                           "black": 2056, "white": 15000, "colour": "camera ColorMatrix1 + AsShotNeutral"},
        "openisp.dng": {"from": FILES["openisp"], "license": "MIT (cruxopen/openISP)", "cfa": "RGGB",
                        "black": 0, "white": 1023, "wb_gains": [1.5, 1.0, 1.0, 1.1],
                        "colour": "identity CCM (camera with sRGB primaries), openISP config AWB gains"},
        "nokia-n900.dng": {"from": FILES["n900"], "license": "MIT (halide/Halide)", "cfa": "GRBG",
                           "black": 25, "white": 1023, "wb_gains": [round(float(g), 4) for g in wb],
                           "xyz_to_cam": np.round(xyz_to_cam, 5).tolist(),
                           "colour": "split of Halide's 7000 K camera->sRGB matrix into neutral + CCM"},
        "split": split,
        "synthetic": {"files": synthetic_files, "what": "dead-leaves scenes through each camera's inverse rendering"},
    }
    (out / "SOURCES.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared data folder (../shared/data)")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "isp-data", help="output data folder")
    parser.add_argument("--synthetic", type=int, default=0, help="dead-leaves DNGs per camera to add (default 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.shared.is_dir():
        logger.info("shared data folder %s is absent; nothing to build", args.shared)
        return 0
    try:
        build(args.shared, args.out, args.synthetic)
    except FileNotFoundError as error:
        logger.info("skipped: %s", error)
        return 0
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
