"""Bayer colour filter arrays: packing, unpacking, mosaicking and phase unification.

A Bayer mosaic repeats a 2x2 tile. raw-synth names the four tiles by their rows read left to
right, top to bottom: ``RGGB``, ``GRBG``, ``GBRG`` and ``BGGR``. Inside the library a RAW image
is *packed*: shape ``(4, H/2, W/2)`` with planes in canonical order R, Gr, Gb, B ("RGGB order"),
whatever the sensor's native pattern. ``Gr`` is the green that shares a row with red, ``Gb`` the
green that shares a row with blue.

Every function here accepts a numpy array or a torch tensor and returns the same kind, with any
number of leading batch dimensions: a mosaic is ``(..., H, W)``, a packed image
``(..., 4, H/2, W/2)``. RGB images follow the library-wide rule: numpy RGB is channels-last
``(H, W, 3)``, torch RGB is channels-first ``(..., 3, H, W)``. No function mutates its input.

Example:
    >>> import numpy as np
    >>> m = np.arange(16, dtype=np.float32).reshape(4, 4)
    >>> packed = pack(m, "GRBG")          # R comes from row 0, column 1 of each tile
    >>> packed[0].tolist()
    [[1.0, 3.0], [9.0, 11.0]]
    >>> bool((unpack(packed, "GRBG") == m).all())
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeVar

import numpy as np

from raw_synth.errors import RawSynthError
from raw_synth.lazy_torch import is_tensor

if TYPE_CHECKING:
    import torch

__all__ = [
    "CFA_PATTERNS",
    "check_cfa",
    "cfa_from_raw_pattern",
    "site_offsets",
    "red_offset",
    "pack",
    "unpack",
    "mosaic",
    "unify",
    "restore",
]

Array = TypeVar("Array", np.ndarray, "torch.Tensor")

#: The four Bayer patterns, named by their 2x2 tile read row by row.
CFA_PATTERNS: tuple[str, ...] = ("RGGB", "GRBG", "GBRG", "BGGR")

#: Canonical plane order of a packed RAW image.
PLANES: tuple[str, ...] = ("R", "Gr", "Gb", "B")

UnifyMode = Literal["crop", "pad"]


def check_cfa(cfa: str) -> str:
    """Validate a CFA name and return it in canonical upper case.

    Args:
        cfa: One of ``RGGB``, ``GRBG``, ``GBRG``, ``BGGR`` (any case).

    Returns:
        The upper-case pattern name.

    Raises:
        RawSynthError: If ``cfa`` is not one of the four Bayer patterns.
    """
    name = str(cfa).strip().upper()
    if name not in CFA_PATTERNS:
        raise RawSynthError(f"unknown CFA pattern {cfa!r}: expected one of {', '.join(CFA_PATTERNS)}")
    return name


def cfa_from_raw_pattern(colors: "np.ndarray | list[list[int]]", color_desc: str = "RGBG") -> str:
    """Name the Bayer pattern of a 2x2 colour-index tile.

    Args:
        colors: A 2x2 array of colour indices, as rawpy's ``raw_pattern`` or the DNG/SIDD
            ``CFAPattern`` tag (where 0 = R, 1 = G, 2 = B).
        color_desc: The letters the indices refer to (rawpy's ``color_desc``). The DNG
            convention ``"RGB"`` maps 0, 1, 2 to R, G, B.

    Returns:
        The pattern name, e.g. ``"GRBG"``.

    Raises:
        RawSynthError: If the tile is not a Bayer tile.
    """
    tile = np.asarray(colors).reshape(-1)
    if tile.size != 4:
        raise RawSynthError(f"CFA tile must have 4 entries, got {tile.size}")
    # rawpy reports the two greens as different indices ("RGBG": 1 and 3); both are G here.
    name = "".join(color_desc[int(i)] for i in tile).upper()
    if name not in CFA_PATTERNS:
        raise RawSynthError(f"CFA tile {tile.tolist()} with colours {color_desc!r} is not a Bayer pattern")
    return name


def site_offsets(cfa: str) -> tuple[tuple[int, int], ...]:
    """Return the (row, column) offsets inside the 2x2 tile of R, Gr, Gb and B.

    Args:
        cfa: Bayer pattern name.

    Returns:
        Four ``(dy, dx)`` pairs in canonical plane order R, Gr, Gb, B.
    """
    name = check_cfa(cfa)
    red = (name.index("R") // 2, name.index("R") % 2)
    blue = (name.index("B") // 2, name.index("B") % 2)
    green_on_red_row = (red[0], 1 - red[1])
    green_on_blue_row = (blue[0], 1 - blue[1])
    return red, green_on_red_row, green_on_blue_row, blue


def red_offset(cfa: str) -> tuple[int, int]:
    """Return the (row, column) of the red site inside the 2x2 tile."""
    return site_offsets(cfa)[0]


def _check_even(shape: tuple[int, ...], what: str) -> None:
    height, width = shape[-2], shape[-1]
    if height % 2 or width % 2:
        raise RawSynthError(f"{what} height and width must be even for a Bayer mosaic, got {height}x{width}")


def _stack(planes: list[Array], like: Array, dim: int) -> Array:
    if is_tensor(like):
        import torch

        return torch.stack(planes, dim=dim)
    return np.stack(planes, axis=dim)


def pack(mosaic: Array, cfa: str) -> Array:
    """Pack a Bayer mosaic into four half-resolution planes in R, Gr, Gb, B order.

    Args:
        mosaic: Mosaic of shape ``(..., H, W)`` with even ``H`` and ``W``.
        cfa: The mosaic's Bayer pattern.

    Returns:
        Packed image of shape ``(..., 4, H/2, W/2)``, same dtype and array type as ``mosaic``.

    Raises:
        RawSynthError: If the pattern is unknown, the input has fewer than 2 dimensions, or
            ``H`` or ``W`` is odd.
    """
    if mosaic.ndim < 2:
        raise RawSynthError(f"mosaic must have at least 2 dimensions (H, W), got shape {tuple(mosaic.shape)}")
    _check_even(tuple(mosaic.shape), "mosaic")
    planes = [mosaic[..., dy::2, dx::2] for dy, dx in site_offsets(cfa)]
    return _stack(planes, mosaic, dim=-3)


def unpack(packed: Array, cfa: str) -> Array:
    """Inverse of :func:`pack`: interleave four planes back into a mosaic.

    Args:
        packed: Packed image of shape ``(..., 4, h, w)`` in R, Gr, Gb, B order.
        cfa: The Bayer pattern of the mosaic to build.

    Returns:
        Mosaic of shape ``(..., 2h, 2w)``.

    Raises:
        RawSynthError: If the input does not have 4 planes in dimension ``-3``.
    """
    if packed.ndim < 3 or packed.shape[-3] != 4:
        raise RawSynthError(f"packed RAW must have shape (..., 4, h, w), got {tuple(packed.shape)}")
    *lead, _, height, width = packed.shape
    out_shape = (*lead, 2 * height, 2 * width)
    if is_tensor(packed):
        out = packed.new_empty(out_shape)
    else:
        out = np.empty(out_shape, dtype=packed.dtype)
    for plane, (dy, dx) in enumerate(site_offsets(cfa)):
        out[..., dy::2, dx::2] = packed[..., plane, :, :]
    return out


def mosaic(rgb: Array, cfa: str) -> Array:
    """Sample a full-colour image through a Bayer filter.

    Args:
        rgb: numpy ``(H, W, 3)`` (channels-last) or torch ``(..., 3, H, W)`` (channels-first),
            even ``H`` and ``W``.
        cfa: Bayer pattern to sample with.

    Returns:
        Mosaic ``(H, W)`` for numpy input or ``(..., H, W)`` for torch input.

    Raises:
        RawSynthError: If the image has no 3-channel axis where expected or odd sizes.
    """
    if is_tensor(rgb):
        if rgb.ndim < 3 or rgb.shape[-3] != 3:
            raise RawSynthError(f"torch RGB must have shape (..., 3, H, W), got {tuple(rgb.shape)}")
        channels = rgb
    else:
        if rgb.ndim != 3 or rgb.shape[-1] != 3:
            raise RawSynthError(f"numpy RGB must have shape (H, W, 3), got {tuple(rgb.shape)}")
        channels = np.moveaxis(rgb, -1, 0)
    _check_even(tuple(channels.shape), "image")
    colour_of_plane = (0, 1, 1, 2)  # R, Gr, Gb, B take channels R, G, G, B
    planes = [
        channels[..., colour, dy::2, dx::2]
        for colour, (dy, dx) in zip(colour_of_plane, site_offsets(cfa))
    ]
    return unpack(_stack(planes, channels, dim=-3), cfa)


def _pad_or_crop_widths(cfa: str) -> tuple[int, int]:
    dy, dx = red_offset(cfa)
    return dy, dx


def unify(mosaic_in: Array, cfa: str, mode: UnifyMode = "pad") -> Array:
    """Shift a mosaic of any Bayer phase to RGGB phase by cropping or padding one pixel.

    This is "Bayer unification" (Liu et al., NTIRE 2019): where the red site is in row 1
    (or column 1) of the tile, one row (column) is removed from both ends (``"crop"``) or
    reflected onto both ends (``"pad"``). Reflection keeps the Bayer phase because the mosaic
    has period 2. The result's top-left tile is R, Gr / Gb, B.

    Args:
        mosaic_in: Mosaic ``(..., H, W)``, even ``H`` and ``W`` (numpy or torch).
        cfa: Native pattern of ``mosaic_in``.
        mode: ``"pad"`` (lossless; undo with :func:`restore`) or ``"crop"`` (drops a border).

    Returns:
        RGGB-phase mosaic of shape ``(..., H +/- 2dy, W +/- 2dx)``, where ``(dy, dx)`` is the
        red site offset of ``cfa``.

    Raises:
        RawSynthError: On odd sizes, an unknown pattern or an unknown mode.
    """
    _check_even(tuple(mosaic_in.shape), "mosaic")
    dy, dx = _pad_or_crop_widths(cfa)
    if mode == "crop":
        height, width = mosaic_in.shape[-2], mosaic_in.shape[-1]
        return mosaic_in[..., dy : height - dy, dx : width - dx]
    if mode == "pad":
        return _reflect_pad(mosaic_in, dy, dx)
    raise RawSynthError(f"unknown unification mode {mode!r}: expected 'crop' or 'pad'")


def restore(unified: Array, cfa: str, mode: UnifyMode = "pad") -> Array:
    """Undo :func:`unify`: bring an RGGB-phase mosaic back to the native phase and size.

    After ``mode="pad"`` the round trip is exact. After ``mode="crop"`` the removed border is
    filled by reflection, so only the interior equals the original.

    Args:
        unified: RGGB-phase mosaic ``(..., H', W')`` as returned by :func:`unify`.
        cfa: The native pattern to restore.
        mode: The mode that :func:`unify` used.

    Returns:
        Mosaic in the native phase with the original size.
    """
    dy, dx = _pad_or_crop_widths(cfa)
    if mode == "pad":
        height, width = unified.shape[-2], unified.shape[-1]
        return unified[..., dy : height - dy, dx : width - dx]
    if mode == "crop":
        return _reflect_pad(unified, dy, dx)
    raise RawSynthError(f"unknown unification mode {mode!r}: expected 'crop' or 'pad'")


def _reflect_pad(array: Array, dy: int, dx: int) -> Array:
    if dy == 0 and dx == 0:
        return array[...]  # a view with the same contents; never the caller's object to mutate
    if is_tensor(array):
        import torch

        lead = array.shape[:-2]
        flat = array.reshape(-1, 1, *array.shape[-2:])
        padded = torch.nn.functional.pad(flat, (dx, dx, dy, dy), mode="reflect")
        return padded.reshape(*lead, *padded.shape[-2:])
    widths = [(0, 0)] * (array.ndim - 2) + [(dy, dy), (dx, dx)]
    return np.pad(array, widths, mode="reflect")
