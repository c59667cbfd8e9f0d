"""Aligned crops and Bayer-phase-safe flips / rotations of (sRGB, packed RAW) training pairs.

A training pair is an sRGB image ``(H, W, 3)`` and the packed RAW ``(4, H/2, W/2)`` whose
RGGB-phase mosaic is aligned pixel for pixel with it (mosaic pixel ``(y, x)`` was rendered into
RGB pixel ``(y, x)``; R sits at even rows and even columns).

Crops: an RGB crop at even ``(y, x)`` of even side ``s`` matches the packed crop at
``(y/2, x/2)`` of side ``s/2``.

Flips and rotations change the Bayer phase: mirroring an RGGB mosaic left-right gives a GRBG
mosaic. :func:`augment_pair` therefore works on a crop two pixels larger than the output,
applies one of the eight symmetries of the square to the RGB crop and to the full-resolution
mosaic together, finds where the red site of the transformed mosaic lies, and cuts the
``patch x patch`` window that starts at that red site (Bayer unification by cropping, as
:func:`raw_synth.cfa.unify` with ``mode="crop"``). The result is again an aligned RGGB pair:
the packed RAW equals ``pack(mosaic(rgb_aug, "RGGB"), "RGGB")`` wherever the original did.
"""

from __future__ import annotations

import numpy as np

from raw_synth.cfa import cfa_from_raw_pattern, pack, red_offset, unpack
from raw_synth.errors import RawSynthError

__all__ = ["N_TRANSFORMS", "dihedral", "crop_pair", "augment_pair", "colour_shift_pair", "transformed_cfa"]

#: Number of symmetries of the square: 4 rotations, each optionally mirrored.
N_TRANSFORMS = 8

# colour index of every site of an RGGB tile (0 = R, 1 = G, 2 = B)
_RGGB_CODES = np.array([[0, 1], [1, 2]], dtype=np.int8)


def dihedral(array: np.ndarray, k: int, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Apply symmetry ``k`` of the square to the two spatial ``axes`` of ``array``.

    ``k % 4`` quarter turns counter-clockwise (``np.rot90``), then a left-right mirror when
    ``k >= 4``. ``k = 0`` is the identity.

    Args:
        array: Any array with at least two dimensions.
        k: Transform index in ``0 .. 7``.
        axes: The (row, column) axes.

    Returns:
        A contiguous transformed copy (the input is not modified).
    """
    if not isinstance(k, (int, np.integer)) or not 0 <= int(k) < N_TRANSFORMS:
        raise RawSynthError(f"transform index must be an integer in 0..7, got {k!r}")
    out = np.rot90(array, int(k) % 4, axes=axes)
    if k >= 4:
        out = np.flip(out, axis=axes[1])
    return np.ascontiguousarray(out)


def transformed_cfa(k: int, height: int, width: int) -> str:
    """Bayer pattern of an RGGB mosaic of size ``height x width`` after :func:`dihedral` ``k``.

    Args:
        k: Transform index in ``0 .. 7``.
        height: Mosaic height (even).
        width: Mosaic width (even).

    Returns:
        The pattern name of the transformed mosaic's top-left tile.
    """
    if height % 2 or width % 2:
        raise RawSynthError(f"mosaic height and width must be even, got {height}x{width}")
    # Rotations and mirrors send row i to H-1-i or column j to W-1-j; with even H and W the
    # parity change is the same for every size, so a 4x4 RGGB tile stands for any even mosaic.
    out = dihedral(np.tile(_RGGB_CODES, (2, 2)), k)
    return cfa_from_raw_pattern(out[:2, :2], "RGB")


def _check_pair(rgb: np.ndarray, raw: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise RawSynthError(f"rgb: expected shape (H, W, 3), got {rgb.shape}")
    if raw.ndim != 3 or raw.shape[0] != 4:
        raise RawSynthError(f"raw: expected packed shape (4, h, w), got {raw.shape}")
    if rgb.shape[0] != 2 * raw.shape[1] or rgb.shape[1] != 2 * raw.shape[2]:
        raise RawSynthError(f"raw: packed shape {raw.shape} does not match rgb shape {rgb.shape} (expected half size)")


def crop_pair(rgb: np.ndarray, raw: np.ndarray, y: int, x: int, height: int, width: int | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Cut an aligned crop: RGB ``[y:y+h, x:x+w]`` and packed RAW ``[:, y/2:(y+h)/2, x/2:(x+w)/2]``.

    Args:
        rgb: ``(H, W, 3)`` image.
        raw: ``(4, H/2, W/2)`` packed RAW aligned with ``rgb``.
        y: Top row, even.
        x: Left column, even.
        height: Crop height, even.
        width: Crop width, even (default: ``height``).

    Returns:
        ``(rgb_crop (h, w, 3), raw_crop (4, h/2, w/2))``, views of the inputs.

    Raises:
        RawSynthError: On odd offsets or sizes, or a crop outside the image.
    """
    width = height if width is None else width
    _check_pair(rgb, raw)
    if y % 2 or x % 2 or height % 2 or width % 2:
        raise RawSynthError(f"crop offsets and sizes must be even to keep the Bayer phase, got "
                            f"y={y} x={x} {height}x{width}")
    if y < 0 or x < 0 or y + height > rgb.shape[0] or x + width > rgb.shape[1] or height < 2 or width < 2:
        raise RawSynthError(f"crop y={y} x={x} {height}x{width} is outside the {rgb.shape[0]}x{rgb.shape[1]} image")
    return rgb[y:y + height, x:x + width], raw[:, y // 2:(y + height) // 2, x // 2:(x + width) // 2]


def augment_pair(rgb: np.ndarray, raw: np.ndarray, k: int, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """Transform an aligned pair by symmetry ``k`` and re-align it to RGGB phase.

    Args:
        rgb: ``(S, S, 3)`` float RGB crop, ``S >= patch + 2`` for ``k != 0`` (``S >= patch`` for
            ``k == 0``), even ``S``.
        raw: ``(4, S/2, S/2)`` packed RGGB RAW aligned with ``rgb``.
        k: Transform index in ``0 .. 7`` (see :func:`dihedral`).
        patch: Output side (even).

    Returns:
        ``(rgb_out (patch, patch, 3), raw_out (4, patch/2, patch/2))``, new contiguous arrays,
        aligned and in RGGB phase.

    Raises:
        RawSynthError: On mismatched shapes, an odd ``patch`` or a crop too small for it.
    """
    _check_pair(rgb, raw)
    if patch % 2 or patch < 2:
        raise RawSynthError(f"patch must be even and >= 2, got {patch}")
    height, width = rgb.shape[:2]
    margin = 0 if k == 0 else 2
    if min(height, width) < patch + margin:
        raise RawSynthError(f"crop {height}x{width} is too small for patch {patch} with transform {k} "
                            f"(needs {patch + margin})")
    mosaic = unpack(raw, "RGGB")
    rgb_t = dihedral(rgb, k)
    mosaic_t = dihedral(mosaic, k)
    dy, dx = red_offset(transformed_cfa(k, height, width))
    rgb_out = np.ascontiguousarray(rgb_t[dy:dy + patch, dx:dx + patch])
    raw_out = np.ascontiguousarray(pack(mosaic_t[dy:dy + patch, dx:dx + patch], "RGGB"))
    return rgb_out, raw_out


def colour_shift_pair(rgb: np.ndarray, raw: np.ndarray, gains: "tuple[float, float, float] | np.ndarray",
                      cam_to_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recolour an aligned pair as if the scene had reflected light of other colours.

    The RAW is scaled per colour, ``raw'[R] = g_R raw[R]``, ``raw'[G] = g_G raw[G]``,
    ``raw'[B] = g_B raw[B]``: the camera reading of a scene whose spectra were tinted. Because
    the developer that rendered the sRGB (LibRaw: white balance, a row-normalised camera-to-sRGB
    matrix ``C``, BT.709 curve) is linear until the curve, the matching sRGB is
    ``bt709(clip(C diag(g) C^-1 bt709^-1(rgb)))`` with no demosaicing to redo. This is how a few
    real pairs teach a model colours they do not contain. The sRGB side is exact where the
    original was not clipped (saturated pixels lost their true value when the photo was made).

    Args:
        rgb: ``(H, W, 3)`` float sRGB in ``[0, 1]``, BT.709-encoded as LibRaw writes it.
        raw: ``(4, H/2, W/2)`` packed RGGB RAW aligned with ``rgb``, in ``[0, 1]``.
        gains: ``(g_R, g_G, g_B)``, positive; at most 1 keeps the RAW from clipping.
        cam_to_rgb: ``(3, 3)`` white-balanced camera to linear sRGB matrix of the camera that took
            the pair (rows sum to 1; :func:`raw_synth.isp.color.cam_to_rgb_from_xyz_to_cam`).

    Returns:
        ``(rgb_out, raw_out)``: new float32 arrays of the input shapes.

    Raises:
        RawSynthError: On mismatched shapes or non-positive gains.
    """
    from raw_synth.training.colour import bt709_decode, bt709_encode

    _check_pair(rgb, raw)
    gains = np.asarray(gains, dtype=np.float64)
    cam_to_rgb = np.asarray(cam_to_rgb, dtype=np.float64)
    if gains.shape != (3,) or not np.isfinite(gains).all() or (gains <= 0).any():
        raise RawSynthError(f"colour shift gains must be 3 positive numbers, got {gains.tolist()}")
    if cam_to_rgb.shape != (3, 3):
        raise RawSynthError(f"cam_to_rgb: expected shape (3, 3), got {cam_to_rgb.shape}")
    transform = cam_to_rgb @ np.diag(gains) @ np.linalg.inv(cam_to_rgb)
    linear = bt709_decode(rgb) @ transform.T
    rgb_out = bt709_encode(np.clip(linear, 0.0, 1.0)).astype(np.float32)
    plane_gains = np.array([gains[0], gains[1], gains[1], gains[2]], dtype=np.float32)
    raw_out = np.clip(raw * plane_gains[:, None, None], 0.0, 1.0).astype(np.float32)
    return rgb_out, raw_out
