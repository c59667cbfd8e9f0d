"""Inverse-ISP engines: one interface from an sRGB photo to a clean camera RAW image.

Two engines share the :class:`InverseISP` interface:

* ``upi`` - model-based Unprocessing (Brooks et al. 2019, :mod:`raw_synth.isp.unprocess`): a
  random camera colour matrix and white balance per image, inverse tone curve and gamma.
* ``ssdnet`` - the learned inverse ISP (SSDNet); available once a checkpoint is given.

An engine takes sRGB ``(H, W, 3)`` float32 in ``[0, 1]`` with even ``H`` and ``W`` and returns an
:class:`EngineResult`: the packed RAW ``(4, H/2, W/2)`` in RGGB order, normalised to ``[0, 1]``,
and the colour facts a RAW file needs (white-balance gains and XYZ-to-camera matrix).

Example:
    >>> import numpy as np
    >>> engine = create_engine("upi")
    >>> result = engine.convert(np.full((8, 8, 3), 0.5, np.float32), np.random.default_rng(0))
    >>> result.packed.shape
    (4, 4, 4)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from raw_synth.errors import RawSynthError

__all__ = ["EngineResult", "InverseISP", "UPIEngine", "create_engine", "list_engines", "check_rgb"]


@dataclass(frozen=True)
class EngineResult:
    """A clean RAW image made from one sRGB image.

    Attributes:
        packed: float32 ``(4, H/2, W/2)`` in R, Gr, Gb, B order, values in ``[0, 1]``.
        wb_gains: White-balance gains per plane (R, Gr, Gb, B) that the forward ISP applies; the
            camera's as-shot neutral is their reciprocal.
        xyz_to_cam: ``(3, 3)`` XYZ(D65)-to-camera matrix (DNG ColorMatrix1 convention).
        params: Engine-specific parameters, JSON-friendly (e.g. Unprocessing's gains).
    """

    packed: np.ndarray
    wb_gains: tuple[float, float, float, float]
    xyz_to_cam: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def as_shot_neutral(self) -> tuple[float, float, float]:
        """DNG AsShotNeutral (R, G, B): the camera response to a neutral grey, green = 1."""
        red, _, _, blue = self.wb_gains
        return (1.0 / red, 1.0, 1.0 / blue)


@runtime_checkable
class InverseISP(Protocol):
    """What every inverse-ISP engine offers."""

    name: str

    def convert(self, rgb: np.ndarray, rng: np.random.Generator) -> EngineResult:
        """Turn one sRGB image ``(H, W, 3)`` into a clean RAW image."""
        ...


def check_rgb(rgb: np.ndarray, what: str = "image") -> np.ndarray:
    """Validate an sRGB engine input and return it as float32.

    Raises:
        RawSynthError: If it is not ``(H, W, 3)``, has odd sides, or holds non-finite values.
    """
    array = np.asarray(rgb)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise RawSynthError(f"{what}: expected an sRGB array of shape (H, W, 3), got {array.shape}")
    if array.shape[0] % 2 or array.shape[1] % 2:
        raise RawSynthError(f"{what}: height and width must be even, got {array.shape[0]}x{array.shape[1]}")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise RawSynthError(f"{what}: holds NaN or infinite values")
    return array


class UPIEngine:
    """Brooks et al. Unprocessing as an engine: a random camera for every image."""

    name = "upi"

    def convert(self, rgb: np.ndarray, rng: np.random.Generator) -> EngineResult:
        """Unprocess one sRGB image.

        Args:
            rgb: float ``(H, W, 3)`` in ``[0, 1]``, even ``H`` and ``W``.
            rng: Generator for the random camera (colour matrix and gains).

        Returns:
            The packed RAW and its colour facts; ``params`` holds the Unprocessing parameters.
        """
        from raw_synth.isp.color import RGB_TO_XYZ
        from raw_synth.isp.unprocess import unprocess

        packed, params = unprocess(check_rgb(rgb), rng)
        # rgb2cam = rownorm(xyz2cam @ rgb2xyz), so rgb2cam @ xyz2rgb is an XYZ-to-camera matrix with
        # the same camera-white normalisation that DNG readers undo.
        xyz_to_cam = np.asarray(params.rgb2cam, dtype=np.float64) @ np.linalg.inv(np.asarray(RGB_TO_XYZ, dtype=np.float64))
        gains = (float(params.red_gain), 1.0, 1.0, float(params.blue_gain))
        return EngineResult(packed=packed.astype(np.float32, copy=False), wb_gains=gains,
                            xyz_to_cam=xyz_to_cam, params=params.to_dict())


_ENGINES = ("upi", "ssdnet")


def list_engines() -> list[str]:
    """Names accepted by :func:`create_engine`."""
    return list(_ENGINES)


def create_engine(name: str, **options: Any) -> InverseISP:
    """Build an inverse-ISP engine by name.

    Args:
        name: ``"upi"`` or ``"ssdnet"``.
        **options: Engine options (none for ``upi``).

    Raises:
        RawSynthError: For an unknown name, unknown options, or an engine that is not available.
    """
    if name == "upi":
        if options:
            raise RawSynthError(f"engine 'upi' takes no options, got {', '.join(sorted(options))}")
        return UPIEngine()
    if name == "ssdnet":
        raise RawSynthError("engine 'ssdnet' is not available yet in this version: use --engine upi")
    raise RawSynthError(f"unknown engine {name!r}: expected one of {', '.join(_ENGINES)}")
