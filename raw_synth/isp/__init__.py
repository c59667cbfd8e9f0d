"""Forward ISP (packed RAW -> display RGB) and Brooks et al. unprocessing (sRGB -> RAW).

* :mod:`raw_synth.isp.color`: sRGB and 2.2 transfer functions, smoothstep tone curve,
  colour matrices.
* :mod:`raw_synth.isp.demosaic`: bilinear and Malvar-He-Cutler demosaicing (torch, batched,
  differentiable) and a numpy wrapper with colour-demosaicing's Menon 2007.
* :mod:`raw_synth.isp.forward`: :func:`process_raw` / :class:`ForwardISP` (torch) and
  :func:`render` (numpy).
* :mod:`raw_synth.isp.unprocess`: :func:`unprocess` / :func:`process` (numpy) and their batched
  torch versions, with the random camera of Brooks et al.

Packed RAW is ``(4, h, w)`` numpy or ``(B, 4, h, w)`` torch in R, Gr, Gb, B order; numpy RGB is
``(H, W, 3)``, torch RGB ``(B, 3, H, W)``.

Importing this package does not import torch (nor kornia): the modules load it where they work on
tensors, and the ``nn.Module`` classes :class:`Demosaic` and :class:`ForwardISP` are defined on
first access.
"""

from __future__ import annotations

from typing import Any

from raw_synth.isp.color import (
    RGB_TO_XYZ,
    apply_ccm,
    cam_to_rgb_from_xyz_to_cam,
    gamma_decode,
    gamma_encode,
    inverse_smoothstep,
    rgb_to_cam_from_xyz_to_cam,
    smoothstep,
    srgb_decode,
    srgb_encode,
    xyz_to_cam_from_rgb_to_cam,
)
from raw_synth.isp.demosaic import (
    demosaic,
    demosaic_bilinear,
    demosaic_malvar,
    demosaic_numpy,
    packed_to_mosaic,
)
from raw_synth.isp.forward import process_raw, render
from raw_synth.isp.unprocess import (
    XYZ_TO_CAM_MATRICES,
    UnprocessParams,
    process,
    process_torch,
    random_ccm,
    random_gains,
    safe_invert_gains,
    stack_params,
    unprocess,
    unprocess_torch,
)
from raw_synth.lazy_torch import lazy_attribute

__all__ = [
    "RGB_TO_XYZ",
    "XYZ_TO_CAM_MATRICES",
    "apply_ccm",
    "cam_to_rgb_from_xyz_to_cam",
    "rgb_to_cam_from_xyz_to_cam",
    "xyz_to_cam_from_rgb_to_cam",
    "gamma_decode",
    "gamma_encode",
    "inverse_smoothstep",
    "smoothstep",
    "srgb_decode",
    "srgb_encode",
    "Demosaic",
    "demosaic",
    "demosaic_bilinear",
    "demosaic_malvar",
    "demosaic_numpy",
    "packed_to_mosaic",
    "ForwardISP",
    "process_raw",
    "render",
    "UnprocessParams",
    "process",
    "process_torch",
    "random_ccm",
    "random_gains",
    "safe_invert_gains",
    "stack_params",
    "unprocess",
    "unprocess_torch",
]


def _demosaic_class() -> type:
    from raw_synth.isp.demosaic import Demosaic

    return Demosaic


def _forward_isp_class() -> type:
    from raw_synth.isp.forward import ForwardISP

    return ForwardISP


def __getattr__(name: str) -> Any:
    """``Demosaic`` and ``ForwardISP`` on first access (see :func:`raw_synth.lazy_torch.lazy_attribute`)."""
    return lazy_attribute(__name__, name, {"Demosaic": _demosaic_class, "ForwardISP": _forward_isp_class})
