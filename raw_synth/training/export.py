"""Camera facts stored with an exported inverse-ISP checkpoint.

An ``ssdnet-isp`` checkpoint predicts the RAW of the camera(s) it was trained on. Its
``extra["camera"]`` says which: ``{"name", "wb_gains": [R, Gr, Gb, B], "xyz_to_cam": 3x3}``,
the white balance and colour matrix a DNG writer needs to make that RAW render correctly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from raw_synth.errors import RawSynthError

__all__ = ["CameraInfo", "check_camera", "combined_camera", "fallback_camera", "FALLBACK_CAMERA"]

#: Used when the training data carry no colour metadata (AIM 2022, generic pairs): the mid-points of
#: Brooks et al.'s white-balance ranges and a camera with sRGB primaries. Marked ``"assumed": True``.
FALLBACK_CAMERA: dict[str, Any] = {
    "name": "unknown camera",
    "wb_gains": [2.15, 1.0, 1.0, 1.7],
    "xyz_to_cam": None,  # filled lazily with raw_synth.io.dng.SRGB_XYZ_TO_CAM
    "assumed": True,
}

CameraInfo = dict[str, Any]


def check_camera(value: Any, what: str = "camera") -> CameraInfo:
    """Validate camera facts and return them as a plain JSON-able dict.

    Args:
        value: Mapping with ``name`` (str), ``wb_gains`` (4 positive numbers, R, Gr, Gb, B) and
            ``xyz_to_cam`` (3x3 finite numbers); other keys are kept if JSON-able.
        what: Name used in error messages.

    Raises:
        RawSynthError: Naming the bad field.
    """
    if not isinstance(value, Mapping):
        raise RawSynthError(f"{what}: expected a mapping with name, wb_gains, xyz_to_cam, got {type(value).__name__}")
    missing = [key for key in ("name", "wb_gains", "xyz_to_cam") if key not in value]
    if missing:
        raise RawSynthError(f"{what}: missing key(s) {', '.join(missing)}")
    out = dict(value)
    if not isinstance(out["name"], str) or not out["name"]:
        raise RawSynthError(f"{what}.name: expected a non-empty string, got {out['name']!r}")
    gains = out["wb_gains"]
    if (not isinstance(gains, Sequence) or isinstance(gains, str) or len(gains) != 4
            or not all(_positive(g) for g in gains)):
        raise RawSynthError(f"{what}.wb_gains: expected 4 positive numbers (R, Gr, Gb, B), got {gains!r}")
    out["wb_gains"] = [float(g) for g in gains]
    try:
        matrix = np.asarray(out["xyz_to_cam"], dtype=np.float64)
    except (TypeError, ValueError):
        matrix = np.zeros(0)
    if matrix.shape != (3, 3) or not np.isfinite(matrix).all():
        raise RawSynthError(f"{what}.xyz_to_cam: expected a finite 3x3 matrix, got {out['xyz_to_cam']!r}")
    out["xyz_to_cam"] = matrix.tolist()
    return out


def _positive(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            and value > 0)


def fallback_camera() -> CameraInfo:
    """A copy of :data:`FALLBACK_CAMERA` with its sRGB-primaries colour matrix filled in."""
    from raw_synth.io.dng import SRGB_XYZ_TO_CAM

    camera = dict(FALLBACK_CAMERA)
    camera["xyz_to_cam"] = np.asarray(SRGB_XYZ_TO_CAM).tolist()
    return camera


def combined_camera(cameras: Sequence[tuple[CameraInfo | None, float]]) -> CameraInfo:
    """Camera facts of a model trained on one or several cameras.

    One camera (by name): its facts, white balance averaged over its images. Several: the model
    learns an average response, so the facts are averages too: ``name`` ``"mixed: A, B, ..."``,
    ``wb_gains`` the weighted mean, ``xyz_to_cam`` from the weighted mean of the cameras'
    row-normalised linear-sRGB-to-camera matrices (the same convex combination of colour matrices
    that Brooks et al. use to draw random cameras), and ``cameras`` listing each one with its
    weight. No known camera gives :func:`fallback_camera`.

    Args:
        cameras: ``(camera facts or None, weight)`` per training image; the weight is the
            image's share of training crops (e.g. 1 per image, or its training pixels).

    Returns:
        Camera facts (see :func:`check_camera`).
    """
    from raw_synth.isp.color import rgb_to_cam_from_xyz_to_cam, xyz_to_cam_from_rgb_to_cam

    pooled: dict[str, list[tuple[CameraInfo, float]]] = {}
    for camera, weight in cameras:
        if camera is not None and weight > 0:
            pooled.setdefault(camera["name"], []).append((camera, float(weight)))
    if not pooled:
        return fallback_camera()
    names = sorted(pooled)
    weights = np.array([sum(w for _, w in pooled[n]) for n in names])
    gains = [np.sum([np.asarray(c["wb_gains"], np.float64) * w for c, w in pooled[n]], axis=0) / weights[i]
             for i, n in enumerate(names)]
    if len(names) == 1:
        chosen = dict(pooled[names[0]][0][0])
        chosen["wb_gains"] = [float(g) for g in gains[0]]
        return check_camera(chosen, "camera")
    share = weights / weights.sum()
    rgb2cam = sum(s * rgb_to_cam_from_xyz_to_cam(np.asarray(pooled[n][0][0]["xyz_to_cam"], np.float64))
                  for s, n in zip(share, names))
    mixed = {
        "name": "mixed: " + ", ".join(names),
        "wb_gains": [float(g) for g in np.sum([s * g for s, g in zip(share, gains)], axis=0)],
        "xyz_to_cam": xyz_to_cam_from_rgb_to_cam(rgb2cam).tolist(),
        "cameras": [{"name": n, "weight": float(s), "wb_gains": [float(v) for v in g],
                     "xyz_to_cam": pooled[n][0][0]["xyz_to_cam"]} for n, s, g in zip(names, share, gains)],
    }
    return check_camera(mixed, "camera")
