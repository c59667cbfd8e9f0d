"""Measure a trained inverse ISP's colour response, the way a camera is profiled with a chart.

A DNG needs the white balance and colour matrix of the camera whose RAW it holds. A model trained
on one camera predicts that camera's RAW, so the camera's own facts fit. A model trained on
several cameras predicts a blend that no single camera's facts describe, and averaging the
cameras' facts does not describe it either: DNGs made that way render with a colour cast.

:func:`measure_colour` therefore photographs a virtual colour chart with the model itself. Every
patch is a flat sRGB colour; the model's mean RAW response to it is a camera reading ``r`` (R, G,
B with G the mean of the two green planes). The RAW developer that rendered the training pairs
(LibRaw: white balance, then a row-normalised camera-to-sRGB matrix, then the BT.709 transfer
curve that rawpy applies by default, ``gamma=(2.222, 4.5)``) is inverted in closed form:

1. ``l = bt709_decode(s)`` is the linear sRGB of each patch;
2. a least-squares fit ``r ~ A @ l`` over the patches that are not clipped gives the model's
   linear response ``A`` (3x3);
3. camera white is ``A @ (1, 1, 1)``, so the white-balance gains are ``(w_G / w_R, 1, 1, w_G / w_B)``;
4. ``W A / w_G`` has rows that sum to 1: it is the row-normalised linear-sRGB-to-camera matrix
   that LibRaw and :func:`raw_synth.isp.color.rgb_to_cam_from_xyz_to_cam` build from a DNG
   ``ColorMatrix``, which is then ``(W A / w_G) @ inv(RGB_TO_XYZ)``.

A developer that applies those facts renders ``w_G * l``: the input's colours, with the exposure
scaled by ``w_G`` (reported as ``exposure``). For a model that is exactly linear (a camera's own
Unprocessing without tone curve) the measured facts equal the camera's; a test checks this.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from raw_synth.errors import RawSynthError

__all__ = ["ColourFit", "bt709_decode", "bt709_encode", "chart_colours", "fit_colour", "measure_colour"]

logger = logging.getLogger(__name__)

#: Raw readings at or above this (normalised) level are treated as clipped and left out of the fit.
CLIP_LEVEL = 0.95


def bt709_encode(linear: np.ndarray) -> np.ndarray:
    """LibRaw's default output curve (rawpy ``gamma=(2.222, 4.5)``): ITU-R BT.709.

    Args:
        linear: Values in ``[0, 1]`` (any shape).

    Returns:
        Encoded values, float64, same shape.
    """
    x = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    return np.where(x < 0.018, 4.5 * x, 1.099 * np.power(x, 0.45) - 0.099)


def bt709_decode(encoded: np.ndarray) -> np.ndarray:
    """Inverse of :func:`bt709_encode`.

    Args:
        encoded: Values in ``[0, 1]`` (any shape).

    Returns:
        Linear values, float64, same shape.
    """
    y = np.clip(np.asarray(encoded, dtype=np.float64), 0.0, 1.0)
    return np.where(y < 0.081, y / 4.5, np.power((y + 0.099) / 1.099, 1.0 / 0.45))


def chart_colours(levels: int = 7) -> np.ndarray:
    """The virtual chart: an even grid over the sRGB cube, ``levels ** 3`` colours.

    Codes run from 0.05 to 0.95, away from black (where the transfer curve is steep and noise-free
    models still round) and white (where RAW clips).

    Args:
        levels: Codes per channel, at least 2.

    Returns:
        float32 ``(levels ** 3, 3)`` sRGB codes in ``[0.05, 0.95]``.
    """
    if not isinstance(levels, int) or levels < 2:
        raise RawSynthError(f"levels must be an integer >= 2, got {levels!r}")
    codes = np.linspace(0.05, 0.95, levels)
    grid = np.stack(np.meshgrid(codes, codes, codes, indexing="ij"), axis=-1).reshape(-1, 3)
    return grid.astype(np.float32)


@dataclass(frozen=True)
class ColourFit:
    """Colour facts measured from an inverse ISP.

    Attributes:
        wb_gains: White-balance gains (R, Gr, Gb, B), green = 1.
        xyz_to_cam: ``(3, 3)`` XYZ(D65)-to-camera matrix (DNG ``ColorMatrix1`` convention; rows
            normalised so that ``xyz_to_cam @ RGB_TO_XYZ`` has rows summing to 1).
        response: ``(3, 3)`` fitted linear response ``A``: camera (R, G, B) = ``A @ linear sRGB``.
        exposure: Camera green for sRGB white, ``(A @ 1)[1]``; a developer using these facts renders
            ``exposure * linear`` input.
        rms: Root-mean-square residual of the fit, in normalised RAW units.
        patches: Number of chart patches used (not clipped).
    """

    wb_gains: tuple[float, float, float, float]
    xyz_to_cam: np.ndarray
    response: np.ndarray
    exposure: float
    rms: float
    patches: int

    def to_camera(self, name: str, **more: Any) -> dict[str, Any]:
        """As checkpoint camera facts (``extra["camera"]``), with the fit recorded under ``colour_fit``."""
        return {
            "name": name,
            "wb_gains": [float(g) for g in self.wb_gains],
            "xyz_to_cam": np.asarray(self.xyz_to_cam, dtype=np.float64).tolist(),
            "colour_fit": {
                "method": "virtual chart (raw_synth.training.colour), LibRaw BT.709 rendering inverted",
                "response": np.asarray(self.response).tolist(),
                "exposure": float(self.exposure),
                "rms": float(self.rms),
                "patches": int(self.patches),
            },
            **more,
        }


def fit_colour(srgb: np.ndarray, camera_rgb: np.ndarray, clip_level: float = CLIP_LEVEL) -> ColourFit:
    """Colour facts from chart readings.

    Args:
        srgb: ``(N, 3)`` sRGB codes in ``[0, 1]`` (BT.709-encoded, as LibRaw writes them).
        camera_rgb: ``(N, 3)`` camera readings (R, G, B) in ``[0, 1]`` for those patches.
        clip_level: Patches with any reading at or above this level are left out.

    Returns:
        The fitted :class:`ColourFit`.

    Raises:
        RawSynthError: On mismatched shapes, too few usable patches, or a response that is not
            invertible or has a non-positive white.
    """
    srgb = np.asarray(srgb, dtype=np.float64)
    camera_rgb = np.asarray(camera_rgb, dtype=np.float64)
    if srgb.ndim != 2 or srgb.shape[1] != 3 or camera_rgb.shape != srgb.shape:
        raise RawSynthError(f"fit_colour: expected two (N, 3) arrays, got {srgb.shape} and {camera_rgb.shape}")
    keep = (camera_rgb < clip_level).all(axis=1) & np.isfinite(camera_rgb).all(axis=1)
    if int(keep.sum()) < 9:
        raise RawSynthError(f"fit_colour: only {int(keep.sum())} unclipped patches; need at least 9")
    linear = bt709_decode(srgb[keep])
    solution, *_ = np.linalg.lstsq(linear, camera_rgb[keep], rcond=None)
    response = solution.T
    residual = camera_rgb[keep] - linear @ solution
    white = response @ np.ones(3)
    if (white <= 0).any() or abs(np.linalg.det(response)) < 1e-12:
        raise RawSynthError(f"fit_colour: the measured response is not a usable camera "
                            f"(white {white.round(4).tolist()})")
    gains = (white[1] / white[0], 1.0, 1.0, white[1] / white[2])
    rgb_to_cam = np.diag([gains[0], 1.0, gains[3]]) @ response / white[1]
    from raw_synth.isp.color import xyz_to_cam_from_rgb_to_cam

    xyz_to_cam = xyz_to_cam_from_rgb_to_cam(rgb_to_cam)
    return ColourFit(wb_gains=tuple(float(g) for g in gains), xyz_to_cam=xyz_to_cam, response=response,
                     exposure=float(white[1]), rms=float(np.sqrt(np.mean(residual**2))), patches=int(keep.sum()))


def measure_colour(predict: Callable[[np.ndarray], np.ndarray], levels: int = 7, size: int = 32,
                   batch_size: int = 64) -> ColourFit:
    """Photograph the virtual chart with an inverse ISP and fit its colour facts.

    Args:
        predict: Maps sRGB ``(B, size, size, 3)`` float32 in ``[0, 1]`` to packed RAW
            ``(B, 4, size/2, size/2)`` (R, Gr, Gb, B), e.g. a model's mean head.
        levels: Codes per channel of :func:`chart_colours`.
        size: Side of each flat patch image (even); the reading is the mean of its central half,
            away from border effects.
        batch_size: Patches per call of ``predict``.

    Returns:
        The :class:`ColourFit`.

    Raises:
        RawSynthError: On a bad ``size``, a ``predict`` output of the wrong shape, or a failed fit.
    """
    if not isinstance(size, int) or size < 8 or size % 4:
        raise RawSynthError(f"size must be a multiple of 4 and at least 8, got {size!r}")
    colours = chart_colours(levels)
    readings = []
    quarter = size // 8
    for first in range(0, len(colours), batch_size):
        chunk = colours[first : first + batch_size]
        images = np.broadcast_to(chunk[:, None, None, :], (len(chunk), size, size, 3)).astype(np.float32)
        packed = np.asarray(predict(images))
        if packed.shape != (len(chunk), 4, size // 2, size // 2):
            raise RawSynthError(f"measure_colour: predict returned shape {packed.shape}, expected "
                                f"{(len(chunk), 4, size // 2, size // 2)}")
        centre = packed[:, :, quarter : size // 2 - quarter, quarter : size // 2 - quarter].mean(axis=(2, 3))
        readings.append(np.stack([centre[:, 0], (centre[:, 1] + centre[:, 2]) / 2, centre[:, 3]], axis=1))
    fit = fit_colour(colours, np.concatenate(readings))
    logger.info("colour fit: gains %s, exposure %.3f, rms %.4f over %d patches",
                np.round(fit.wb_gains, 3).tolist(), fit.exposure, fit.rms, fit.patches)
    return fit


def model_predictor(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """A ``predict`` for :func:`measure_colour` from an SSDNet inverse ISP (mean head, CPU, eval mode)."""
    import torch

    def predict(images: np.ndarray) -> np.ndarray:
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
                device = next(model.parameters()).device
                return model.predict(x.to(device))["mu"].float().cpu().numpy()
        finally:
            model.train(was_training)

    return predict
