"""Bayer demosaicing of packed RAW images (torch, batched, differentiable) plus a numpy wrapper.

Input is a packed RAW tensor ``(B, 4, h, w)`` in R, Gr, Gb, B order (the library convention);
it is interleaved into an RGGB mosaic ``(B, 1, 2h, 2w)`` and interpolated. Output is linear RGB
``(B, 3, 2h, 2w)``, same dtype and device, not clipped.

Methods:

* ``"bilinear"``: standard bilinear CFA interpolation (green from the 4-neighbour cross, red
  and blue from the 2 horizontal, 2 vertical or 4 diagonal neighbours), computed by
  :func:`kornia.color.raw_to_rgb` on the mosaic with ``CFA.BG`` (OpenCV's name for an RGGB
  sensor). In the interior it equals ``colour_demosaicing.demosaicing_CFA_Bayer_bilinear``.
  kornia pads red/blue by replication and green by reflection, which gives the same border
  values as the mirror padding below. Against the 5x5-kernel form that raw-synth used before
  (the Malvar machinery with bilinear kernels) it differs only in rounding, in about 4% of the
  pixels: at most 1.2e-7 in float32 and 2.2e-16 in float64 (one unit in the last place of 1.0;
  gradients 7.2e-7 / 1.3e-15), measured on 30 random batches per dtype with values in
  [-0.1, 1.1]. It is about 30% faster on the CPU.
* ``"malvar"``: Malvar, He and Cutler, "High-quality linear interpolation for demosaicing of
  Bayer-patterned color images", ICASSP 2004: bilinear estimates corrected by the Laplacian of
  the known channel, i.e. the paper's eight 5x5 filters (four distinct up to transposition),
  with its gains 1/2, 5/8, 3/4, one kernel per missing-colour case, each output pixel taking
  the kernel that fits its CFA site. In the interior it equals
  ``colour_demosaicing.demosaicing_CFA_Bayer_Malvar2004``. kornia has no Malvar demosaic.

Borders (bilinear gives the same values up to rounding): the mosaic is mirror-padded
(``torch`` ``"reflect"``: the edge pixel is not repeated), which keeps the Bayer phase, so
border pixels are interpolated from real samples of the right colour. colour-demosaicing
instead filters with scipy's half-sample ``"reflect"`` mode, which shifts the Bayer phase in
the padding; its outputs therefore differ from ours in the outer 1 (bilinear) or 2 (Malvar)
pixels. Running colour-demosaicing on a mosaic mirror-padded by an even number of pixels and
cropping gives exactly our result everywhere.

:func:`demosaic_numpy` adds ``"menon"``: Menon, Andriani and Calvagno (2007) directional
filtering with a-posteriori decision, taken from ``colour_demosaicing`` (numpy only, not
differentiable, much slower; use it for high-quality previews, not for training).

Importing this module does not import torch or kornia: the functions import them, and the
``nn.Module`` :class:`Demosaic` is defined on first access
(:func:`raw_synth.lazy_torch.lazy_attribute`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from raw_synth.errors import RawSynthError
from raw_synth.lazy_torch import is_tensor, lazy_attribute

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEMOSAIC_METHODS",
    "TORCH_DEMOSAIC_METHODS",
    "packed_to_mosaic",
    "demosaic_bilinear",
    "demosaic_malvar",
    "demosaic",
    "demosaic_numpy",
    "Demosaic",  # noqa: F822 (defined on first access, see __getattr__)
]

DemosaicMethod = Literal["bilinear", "malvar"]
NumpyDemosaicMethod = Literal["bilinear", "malvar", "menon"]

#: Methods of the torch functions.
TORCH_DEMOSAIC_METHODS: tuple[str, ...] = ("bilinear", "malvar")
#: Methods of :func:`demosaic_numpy` (``"menon"`` is numpy-only).
DEMOSAIC_METHODS: tuple[str, ...] = ("bilinear", "malvar", "menon")


def _kernel(rows: list[list[float]], scale: float) -> list[list[float]]:
    return [[value / scale for value in row] for row in rows]


# Each kernel is 5x5, centred on the pixel being estimated, applied to the raw mosaic. Names:
# G_AT_RB: green at a red or blue site. ROW: red (blue) at a green site whose left/right
# neighbours are red (blue). COL: the same with up/down neighbours. DIAG: red at blue / blue
# at red (diagonal neighbours).

# Malvar-He-Cutler 2004, Fig. 2 of the paper, coefficients in units of 1/8.
_MALVAR = {
    "G_AT_RB": _kernel(
        [
            [0, 0, -1, 0, 0],
            [0, 0, 2, 0, 0],
            [-1, 2, 4, 2, -1],
            [0, 0, 2, 0, 0],
            [0, 0, -1, 0, 0],
        ],
        8,
    ),
    "ROW": _kernel(
        [
            [0, 0, 0.5, 0, 0],
            [0, -1, 0, -1, 0],
            [-1, 4, 5, 4, -1],
            [0, -1, 0, -1, 0],
            [0, 0, 0.5, 0, 0],
        ],
        8,
    ),
    "COL": _kernel(
        [
            [0, 0, -1, 0, 0],
            [0, -1, 4, -1, 0],
            [0.5, 0, 5, 0, 0.5],
            [0, -1, 4, -1, 0],
            [0, 0, -1, 0, 0],
        ],
        8,
    ),
    "DIAG": _kernel(
        [
            [0, 0, -1.5, 0, 0],
            [0, 2, 0, 2, 0],
            [-1.5, 0, 6, 0, -1.5],
            [0, 2, 0, 2, 0],
            [0, 0, -1.5, 0, 0],
        ],
        8,
    ),
}

_KERNEL_ORDER = ("G_AT_RB", "ROW", "COL", "DIAG")
_PAD = 2  # kernel radius

# For each output channel (R, G, B) and each site of the RGGB tile (R, Gr, Gb, B), which
# estimate to take: "RAW" = the measured sample itself, else a kernel name.
_SITE_RULES: dict[str, tuple[str, str, str, str]] = {
    # site:   R          Gr      Gb      B
    "R": ("RAW", "ROW", "COL", "DIAG"),
    "G": ("G_AT_RB", "RAW", "RAW", "G_AT_RB"),
    "B": ("DIAG", "COL", "ROW", "RAW"),
}


def _check_packed(packed: torch.Tensor, name: str = "packed") -> None:
    if not is_tensor(packed):
        raise RawSynthError(f"{name}: expected a torch tensor of shape (B, 4, h, w), got {type(packed).__name__}")
    if packed.ndim != 4 or packed.shape[1] != 4:
        raise RawSynthError(f"{name}: expected shape (B, 4, h, w), got {tuple(packed.shape)}")
    if not packed.is_floating_point():
        raise RawSynthError(f"{name}: expected a floating-point tensor, got dtype {packed.dtype}")
    if packed.shape[2] < 2 or packed.shape[3] < 2:
        raise RawSynthError(
            f"{name}: packed planes must be at least 2x2 (a 4x4 mosaic) to demosaic, got "
            f"{packed.shape[2]}x{packed.shape[3]}"
        )


def packed_to_mosaic(packed: torch.Tensor) -> torch.Tensor:
    """Interleave packed R, Gr, Gb, B planes into an RGGB mosaic.

    Args:
        packed: ``(B, 4, h, w)`` float tensor in R, Gr, Gb, B order.

    Returns:
        Mosaic ``(B, 1, 2h, 2w)``; R at (0, 0), Gr at (0, 1), Gb at (1, 0), B at (1, 1).
    """
    if packed.ndim != 4 or packed.shape[1] != 4:
        raise RawSynthError(f"packed: expected shape (B, 4, h, w), got {tuple(packed.shape)}")
    import torch.nn.functional as F

    # pixel_shuffle sends channel 2*i + j to offset (i, j): exactly the R, Gr, Gb, B order.
    return F.pixel_shuffle(packed, 2)


def _demosaic_with(packed: torch.Tensor, kernels: dict[str, list[list[float]]]) -> torch.Tensor:
    _check_packed(packed)
    import torch
    import torch.nn.functional as F

    mosaic = packed_to_mosaic(packed)
    weight = torch.tensor(
        [kernels[name] for name in _KERNEL_ORDER], dtype=packed.dtype, device=packed.device
    ).unsqueeze(1)  # (4 kernels, 1, 5, 5)
    padded = F.pad(mosaic, (_PAD, _PAD, _PAD, _PAD), mode="reflect")
    estimates = F.conv2d(padded, weight)  # (B, 4 kernels, H, W); conv2d is cross-correlation
    # Split every full-resolution map into its 4 CFA sites: (B, K, 4 sites, h, w).
    estimates = F.pixel_unshuffle(estimates, 2).unflatten(1, (len(_KERNEL_ORDER), 4))
    channels = []
    for colour in ("R", "G", "B"):
        sites = []
        for site, rule in enumerate(_SITE_RULES[colour]):
            if rule == "RAW":
                sites.append(packed[:, site])
            else:
                sites.append(estimates[:, _KERNEL_ORDER.index(rule), site])
        channels.append(F.pixel_shuffle(torch.stack(sites, dim=1), 2))
    return torch.cat(channels, dim=1)


def demosaic_bilinear(packed: torch.Tensor) -> torch.Tensor:
    """Bilinear CFA demosaicing.

    Computed by :func:`kornia.color.raw_to_rgb` (``CFA.BG``, i.e. RGGB) on the interleaved
    mosaic; see the module docstring for its agreement with the 5x5-kernel form.

    Args:
        packed: ``(B, 4, h, w)`` float tensor, R, Gr, Gb, B order, ``h, w >= 2``.

    Returns:
        Linear RGB ``(B, 3, 2h, 2w)``, same dtype/device, not clipped. Measured samples pass
        through unchanged.

    Raises:
        RawSynthError: On a wrong shape or a non-floating dtype.
    """
    _check_packed(packed)
    from kornia.color import CFA, raw_to_rgb

    return raw_to_rgb(packed_to_mosaic(packed), CFA.BG)


def demosaic_malvar(packed: torch.Tensor) -> torch.Tensor:
    """Malvar-He-Cutler (2004) gradient-corrected bilinear demosaicing.

    Args:
        packed: ``(B, 4, h, w)`` float tensor, R, Gr, Gb, B order, ``h, w >= 2``.

    Returns:
        Linear RGB ``(B, 3, 2h, 2w)``, same dtype/device, not clipped (the filters have
        negative taps, so values can leave [0, 1] slightly near edges).

    Raises:
        RawSynthError: On a wrong shape or a non-floating dtype.
    """
    return _demosaic_with(packed, _MALVAR)


def demosaic(packed: torch.Tensor, method: DemosaicMethod = "bilinear") -> torch.Tensor:
    """Demosaic a packed RAW batch with the named method.

    Args:
        packed: ``(B, 4, h, w)`` float tensor, R, Gr, Gb, B order.
        method: ``"bilinear"`` or ``"malvar"``.

    Returns:
        Linear RGB ``(B, 3, 2h, 2w)``.

    Raises:
        RawSynthError: On an unknown method or a bad input.
    """
    if method == "bilinear":
        return demosaic_bilinear(packed)
    if method == "malvar":
        return demosaic_malvar(packed)
    if method == "menon":
        raise RawSynthError("demosaic: method 'menon' is numpy-only; use demosaic_numpy or render")
    raise RawSynthError(f"demosaic: unknown method {method!r}: expected one of {', '.join(TORCH_DEMOSAIC_METHODS)}")


def demosaic_numpy(packed: np.ndarray, method: NumpyDemosaicMethod = "bilinear") -> np.ndarray:
    """Demosaic one packed RAW image given as numpy.

    ``"bilinear"`` and ``"malvar"`` run the torch implementation (same results as
    :func:`demosaic`). ``"menon"`` calls
    ``colour_demosaicing.demosaicing_CFA_Bayer_Menon2007`` (with its refining step) on the
    RGGB mosaic: the highest quality of the three, numpy-only and slow (about 1 s per
    megapixel), with colour-demosaicing's own border handling.

    Args:
        packed: ``(4, h, w)`` float array, R, Gr, Gb, B order, normalised.
        method: ``"bilinear"``, ``"malvar"`` or ``"menon"``.

    Returns:
        Linear RGB ``(2h, 2w, 3)`` float32, not clipped.

    Raises:
        RawSynthError: On a wrong shape or an unknown method.
    """
    arr = np.asarray(packed)
    if arr.ndim != 3 or arr.shape[0] != 4:
        raise RawSynthError(f"packed: expected shape (4, h, w), got {tuple(arr.shape)}")
    if method not in DEMOSAIC_METHODS:
        raise RawSynthError(f"demosaic: unknown method {method!r}: expected one of {', '.join(DEMOSAIC_METHODS)}")
    import torch

    if method == "menon":
        from colour_demosaicing import demosaicing_CFA_Bayer_Menon2007  # slow import; only here

        if arr.shape[1] < 2 or arr.shape[2] < 2:
            raise RawSynthError(f"packed: planes must be at least 2x2 to demosaic, got {arr.shape[1]}x{arr.shape[2]}")
        mosaic = packed_to_mosaic(torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64))[None])
        rgb = demosaicing_CFA_Bayer_Menon2007(mosaic[0, 0].numpy(), "RGGB")
        return np.asarray(rgb, dtype=np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None]
    with torch.no_grad():
        rgb = demosaic(tensor, method)
    return rgb[0].permute(1, 2, 0).contiguous().numpy()


def _define_demosaic() -> type:
    """Define :class:`Demosaic`, on first access (it subclasses ``torch.nn.Module``: this imports torch)."""
    from torch import nn

    class Demosaic(nn.Module):
        """``nn.Module`` wrapper of :func:`demosaic` (no parameters).

        Args:
            method: ``"bilinear"`` or ``"malvar"``.

        Shape:
            input ``(B, 4, h, w)`` packed RAW, output ``(B, 3, 2h, 2w)`` linear RGB.
        """

        def __init__(self, method: DemosaicMethod = "bilinear") -> None:
            super().__init__()
            if method not in TORCH_DEMOSAIC_METHODS:
                raise RawSynthError(
                    f"method: unknown demosaic method {method!r}: "
                    f"expected one of {', '.join(TORCH_DEMOSAIC_METHODS)}"
                )
            self.method = method

        def forward(self, packed: torch.Tensor) -> torch.Tensor:
            """Demosaic ``packed`` ``(B, 4, h, w)`` into ``(B, 3, 2h, 2w)``."""
            return demosaic(packed, self.method)

        def extra_repr(self) -> str:
            return f"method={self.method!r}"

    return Demosaic


def __getattr__(name: str) -> Any:
    """``Demosaic`` on first access (see :func:`raw_synth.lazy_torch.lazy_attribute`)."""
    return lazy_attribute(__name__, name, {"Demosaic": _define_demosaic})
