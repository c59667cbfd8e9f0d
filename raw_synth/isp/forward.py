"""Forward ISP: packed camera RAW -> display RGB (torch, batched, differentiable) and a numpy wrapper.

Pipeline of :func:`process_raw`, in order:

1. white balance: multiply the R, Gr, Gb, B planes by per-sample gains;
2. clip to [0, 1];
3. demosaic (``"bilinear"`` or ``"malvar"``, see :mod:`raw_synth.isp.demosaic`);
4. colour correction: apply ``cam_to_rgb`` (camera RGB -> linear sRGB) per pixel;
5. clip to [0, 1];
6. transfer function: the sRGB curve (IEC 61966-2-1, ``"srgb"``) or Brooks' power law
   ``max(x, 1e-8)^(1/2.2)`` (``"2.2"``);
7. optionally the smoothstep tone curve ``3x^2 - 2x^3``.

With ``gamma="2.2"``, ``tone=False``, gains ``[red, 1, 1, blue]`` and bilinear demosaicing this
is the forward process of Brooks et al. (2019) (:func:`raw_synth.isp.unprocess.process` calls
it that way). Gradients flow through everything except clipped values.

Importing this module does not import torch: the functions import it, and the ``nn.Module``
:class:`ForwardISP` is defined on first access (:func:`raw_synth.lazy_torch.lazy_attribute`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from raw_synth.errors import RawSynthError
from raw_synth.isp.color import apply_ccm, gamma_encode, smoothstep, srgb_encode
from raw_synth.isp.demosaic import DEMOSAIC_METHODS, TORCH_DEMOSAIC_METHODS, demosaic_numpy
from raw_synth.isp.demosaic import demosaic as _demosaic_torch  # process_raw's argument shadows the name
from raw_synth.lazy_torch import is_tensor, lazy_attribute

if TYPE_CHECKING:
    import torch

__all__ = ["GAMMAS", "process_raw", "ForwardISP", "render"]  # noqa: F822 (ForwardISP: see __getattr__)

Gamma = Literal["srgb", "2.2"]

#: Accepted transfer functions.
GAMMAS: tuple[str, ...] = ("srgb", "2.2")


def _check_gamma(gamma: str) -> None:
    if gamma not in GAMMAS:
        raise RawSynthError(f"gamma: unknown transfer function {gamma!r}: expected one of {', '.join(GAMMAS)}")


def _check_packed(packed: torch.Tensor) -> None:
    if not is_tensor(packed):
        raise RawSynthError(f"packed: expected a torch tensor of shape (B, 4, h, w), got {type(packed).__name__}")
    if packed.ndim != 4 or packed.shape[1] != 4:
        raise RawSynthError(f"packed: expected shape (B, 4, h, w), got {tuple(packed.shape)}")
    if not packed.is_floating_point():
        raise RawSynthError(f"packed: expected a floating-point tensor, got dtype {packed.dtype}")


def _wb_planes(wb: "torch.Tensor | np.ndarray | list[float]", like: torch.Tensor) -> torch.Tensor:
    """Return white-balance gains as ``(B, 4, 1, 1)`` in R, Gr, Gb, B order."""
    import torch  # like is a tensor: torch is loaded already

    batch = like.shape[0]
    gains = torch.as_tensor(wb, dtype=like.dtype, device=like.device)
    if gains.ndim == 1:
        gains = gains.unsqueeze(0).expand(batch, -1)
    if gains.ndim != 2 or gains.shape[0] != batch or gains.shape[1] not in (3, 4):
        raise RawSynthError(
            f"wb: expected shape ({batch}, 4) or ({batch}, 3) (or (4,)/(3,) for all samples), "
            f"got {tuple(gains.shape)}"
        )
    if gains.shape[1] == 3:  # R, G, B -> R, G, G, B
        gains = gains[:, [0, 1, 1, 2]]
    return gains[:, :, None, None]


def _ccm_batch(cam_to_rgb: "torch.Tensor | np.ndarray", like: torch.Tensor) -> torch.Tensor:
    import torch  # like is a tensor: torch is loaded already

    batch = like.shape[0]
    matrix = torch.as_tensor(cam_to_rgb, dtype=like.dtype, device=like.device)
    if matrix.shape == (3, 3):
        return matrix
    if matrix.shape != (batch, 3, 3):
        raise RawSynthError(
            f"cam_to_rgb: expected shape ({batch}, 3, 3) (or (3, 3) for all samples), got {tuple(matrix.shape)}"
        )
    return matrix


def white_balance(packed: torch.Tensor, wb: "torch.Tensor | np.ndarray | list[float]") -> torch.Tensor:
    """Multiply the packed planes by white-balance gains and clip to [0, 1].

    Args:
        packed: ``(B, 4, h, w)`` float tensor, R, Gr, Gb, B order, normalised.
        wb: Gains ``(B, 4)`` (R, Gr, Gb, B) or ``(B, 3)`` (R, G, B; green used for both greens),
            or ``(4,)`` / ``(3,)`` shared by the batch.

    Returns:
        ``(B, 4, h, w)`` in [0, 1].
    """
    _check_packed(packed)
    import torch

    return torch.clamp(packed * _wb_planes(wb, packed), 0.0, 1.0)


def finish_rgb(
    camera_rgb: torch.Tensor,
    cam_to_rgb: "torch.Tensor | np.ndarray",
    gamma: Gamma = "srgb",
    tone: bool = False,
) -> torch.Tensor:
    """Steps 4-7 of the pipeline: colour matrix, clip, transfer function, optional tone curve.

    Args:
        camera_rgb: Demosaiced, white-balanced camera RGB ``(B, 3, H, W)``.
        cam_to_rgb: ``(B, 3, 3)`` or ``(3, 3)`` camera -> linear sRGB matrices.
        gamma: ``"srgb"`` or ``"2.2"``.
        tone: Apply the smoothstep tone curve after the transfer function.

    Returns:
        Display RGB ``(B, 3, H, W)`` in [0, 1].
    """
    _check_gamma(gamma)
    if camera_rgb.ndim != 4 or camera_rgb.shape[1] != 3:
        raise RawSynthError(f"camera_rgb: expected shape (B, 3, H, W), got {tuple(camera_rgb.shape)}")
    import torch

    rgb = torch.clamp(apply_ccm(camera_rgb, _ccm_batch(cam_to_rgb, camera_rgb)), 0.0, 1.0)
    rgb = srgb_encode(rgb) if gamma == "srgb" else gamma_encode(rgb, 2.2)
    if tone:
        rgb = smoothstep(rgb)
    return rgb


def process_raw(
    packed: torch.Tensor,
    wb: "torch.Tensor | np.ndarray | list[float]",
    cam_to_rgb: "torch.Tensor | np.ndarray",
    demosaic: Literal["bilinear", "malvar"] = "bilinear",
    gamma: Gamma = "srgb",
    tone: bool = False,
) -> torch.Tensor:
    """Render packed camera RAW to display RGB.

    Args:
        packed: ``(B, 4, h, w)`` float tensor, R, Gr, Gb, B order, normalised to [0, 1]
            (``(DN - black) / (white - black)``), ``h, w >= 2``.
        wb: White-balance gains ``(B, 4)`` (R, Gr, Gb, B) or ``(B, 3)`` (R, G, B), or
            ``(4,)`` / ``(3,)`` shared by the batch. Typically ``1 / AsShotNeutral``.
        cam_to_rgb: Camera RGB -> linear sRGB matrices ``(B, 3, 3)``, or ``(3, 3)`` shared;
            rows usually sum to 1 (see :func:`raw_synth.isp.color.cam_to_rgb_from_xyz_to_cam`).
        demosaic: ``"bilinear"`` or ``"malvar"``.
        gamma: ``"srgb"`` (IEC 61966-2-1 curve) or ``"2.2"`` (Brooks' ``x^(1/2.2)``).
        tone: Apply the smoothstep tone curve ``3x^2 - 2x^3`` at the end.

    Returns:
        Display RGB ``(B, 3, 2h, 2w)`` in [0, 1], dtype and device of ``packed``.

    Raises:
        RawSynthError: On a wrong shape of any argument or an unknown option, naming the
            argument and the expected shape.
    """
    _check_packed(packed)
    _check_gamma(gamma)
    if demosaic not in TORCH_DEMOSAIC_METHODS:
        raise RawSynthError(
            f"demosaic: unknown method {demosaic!r}: expected one of {', '.join(TORCH_DEMOSAIC_METHODS)}"
        )
    ccm = _ccm_batch(cam_to_rgb, packed)
    balanced = white_balance(packed, wb)
    return finish_rgb(_demosaic_torch(balanced, demosaic), ccm, gamma, tone)



def _define_forward_isp() -> type:
    """Define :class:`ForwardISP`, on first access (it subclasses ``torch.nn.Module``: this imports torch)."""
    from torch import nn

    class ForwardISP(nn.Module):
        """``nn.Module`` wrapper of :func:`process_raw` (no parameters).

        Args:
            demosaic: ``"bilinear"`` or ``"malvar"``.
            gamma: ``"srgb"`` or ``"2.2"``.
            tone: Apply the smoothstep tone curve.

        Shape:
            ``forward(packed (B, 4, h, w), wb (B, 4)|(B, 3), cam_to_rgb (B, 3, 3)) -> (B, 3, 2h, 2w)``.
        """

        def __init__(
            self, demosaic: Literal["bilinear", "malvar"] = "bilinear", gamma: Gamma = "srgb", tone: bool = False
        ) -> None:
            super().__init__()
            if demosaic not in TORCH_DEMOSAIC_METHODS:
                raise RawSynthError(
                    f"demosaic: unknown method {demosaic!r}: expected one of {', '.join(TORCH_DEMOSAIC_METHODS)}"
                )
            _check_gamma(gamma)
            self.demosaic = demosaic
            self.gamma = gamma
            self.tone = bool(tone)

        def forward(
            self,
            packed: torch.Tensor,
            wb: "torch.Tensor | np.ndarray | list[float]",
            cam_to_rgb: "torch.Tensor | np.ndarray",
        ) -> torch.Tensor:
            """Render ``packed`` with per-sample ``wb`` and ``cam_to_rgb``; see :func:`process_raw`."""
            return process_raw(packed, wb, cam_to_rgb, demosaic=self.demosaic, gamma=self.gamma, tone=self.tone)

        def extra_repr(self) -> str:
            return f"demosaic={self.demosaic!r}, gamma={self.gamma!r}, tone={self.tone}"

    return ForwardISP


def render(
    packed: np.ndarray,
    wb: "np.ndarray | list[float] | tuple[float, ...]",
    cam_to_rgb: np.ndarray,
    demosaic: Literal["bilinear", "malvar", "menon"] = "bilinear",
    gamma: Gamma = "srgb",
    tone: bool = False,
) -> np.ndarray:
    """Render one packed RAW image given as numpy (convenience over :func:`process_raw`).

    Args:
        packed: ``(4, h, w)`` float array, R, Gr, Gb, B order, normalised.
        wb: Gains ``(4,)`` (R, Gr, Gb, B) or ``(3,)`` (R, G, B).
        cam_to_rgb: ``(3, 3)`` camera RGB -> linear sRGB.
        demosaic: ``"bilinear"``, ``"malvar"`` or ``"menon"`` (colour-demosaicing's Menon 2007,
            numpy-only, slow, best quality).
        gamma: ``"srgb"`` or ``"2.2"``.
        tone: Apply the smoothstep tone curve.

    Returns:
        Display RGB ``(2h, 2w, 3)`` float32 in [0, 1].

    Raises:
        RawSynthError: On a wrong shape or an unknown option.
    """
    arr = np.asarray(packed)
    if arr.ndim != 3 or arr.shape[0] != 4:
        raise RawSynthError(f"packed: expected shape (4, h, w), got {tuple(arr.shape)}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise RawSynthError(f"packed: expected a normalised floating-point array, got dtype {arr.dtype}")
    gains = np.asarray(wb, dtype=np.float32)
    if gains.shape not in ((4,), (3,)):
        raise RawSynthError(f"wb: expected shape (4,) or (3,), got {tuple(gains.shape)}")
    matrix = np.asarray(cam_to_rgb, dtype=np.float32)
    if matrix.shape != (3, 3):
        raise RawSynthError(f"cam_to_rgb: expected shape (3, 3), got {tuple(matrix.shape)}")
    if demosaic not in DEMOSAIC_METHODS:
        raise RawSynthError(f"demosaic: unknown method {demosaic!r}: expected one of {', '.join(DEMOSAIC_METHODS)}")
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None]
    with torch.no_grad():
        if demosaic == "menon":
            balanced = white_balance(tensor, torch.from_numpy(gains))
            camera_rgb = demosaic_numpy(balanced[0].numpy(), "menon")
            camera = torch.from_numpy(camera_rgb).permute(2, 0, 1)[None]
            out = finish_rgb(camera, torch.from_numpy(matrix), gamma, tone)
        else:
            out = process_raw(tensor, torch.from_numpy(gains), torch.from_numpy(matrix), demosaic, gamma, tone)
    return out[0].permute(1, 2, 0).contiguous().numpy()


def __getattr__(name: str) -> Any:
    """``ForwardISP`` on first access (see :func:`raw_synth.lazy_torch.lazy_attribute`)."""
    return lazy_attribute(__name__, name, {"ForwardISP": _define_forward_isp})
