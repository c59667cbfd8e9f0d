"""One tiler: run an image-to-image function on a large image piece by piece.

:func:`tiled_apply` cuts the ``(B, C, H, W)`` inputs of a function into tiles, runs the function
on each tile (optionally several tiles per call, optionally padded to a multiple, on a chosen
device) and puts the outputs back together under one of two policies:

* ``"blend"`` - overlapping tiles of at most ``tile`` pixels (:func:`blend_layout`), weighted by
  separable raised-cosine ramps across each overlap (:func:`blend_window`) and normalised by the
  summed weights. The inverse ISP engine uses it (:func:`raw_synth.inference.predict_tiled`).
* ``"crop"`` - ``tile x tile`` cores, each run with ``overlap`` pixels of context on every side
  (cut at the image border); only the core of each output is kept (:func:`crop_layout`). The
  denoiser uses it (:func:`denoise.inference.denoise_packed`).

The function may shrink its input by an integer ``scale`` (the inverse ISP maps ``H x W`` sRGB to
``H/2 x W/2`` packed RAW). An input that fits one tile (or ``tile=None``) goes through the function
in one call, unsliced, so its result is exactly the untiled one. Inputs and outputs stay on the
inputs' device; only the tiles travel to ``device``, so device memory is bounded by a tile.

Example:
    >>> import torch
    >>> x = torch.arange(2 * 10 * 12, dtype=torch.float32).reshape(1, 2, 10, 12)
    >>> out = tiled_apply(lambda t: {"y": t * 2}, [x], tile=4, overlap=2, policy="crop")
    >>> torch.equal(out["y"], x * 2)
    True
"""

from __future__ import annotations

import math
from typing import Callable, Iterator, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F

from raw_synth.errors import RawSynthError

__all__ = [
    "TilePolicy",
    "TILE_POLICIES",
    "blend_layout",
    "crop_layout",
    "blend_window",
    "blend_windows",
    "pad_bottom_right",
    "tiled_apply",
]

#: How tile outputs are put together: weighted blending of overlaps, or keeping each tile's core.
TilePolicy = Literal["blend", "crop"]
TILE_POLICIES: tuple[str, ...] = ("blend", "crop")

#: A tile function: the tiles of every input, ``(b, C_i, h, w)`` each, to named outputs
#: ``(b, C_k, h / scale, w / scale)``.
TileFunction = Callable[..., Mapping[str, torch.Tensor]]
#: A tile's (row, column) index and its slices of every input.
_Tile = tuple[tuple[int, int], list[torch.Tensor]]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def blend_layout(size: int, tile: int, overlap: int, *, align: int = 16, step: int = 2) -> tuple[int, list[int]]:
    """Tile length and start offsets along one axis of length ``size`` (``"blend"`` policy).

    An axis no longer than ``tile`` is one piece. Otherwise it takes the fewest tiles that can
    overlap by at least ``overlap``, ``n = ceil((size - overlap) / (tile - overlap))``; their
    length is the smallest multiple of ``align`` (at most ``tile``) that still gives that overlap,
    so little work is wasted when ``size`` is just above a multiple of the tile; the starts are
    spread evenly from 0 to ``size - length``, rounded down to multiples of ``step``.

    Args:
        size: Axis length, a multiple of ``step``.
        tile: Maximum tile length, a multiple of ``align``.
        overlap: Minimum overlap, ``< tile``.
        align: Tile lengths are multiples of this (e.g. the network's padding multiple).
        step: Starts are multiples of this (2 keeps the Bayer phase of every tile).

    Returns:
        ``(length, starts)``: increasing starts, the first 0 and the last ``size - length``.
    """
    if size <= tile:
        return size, [0]
    count = -(-(size - overlap) // (tile - overlap))  # ceil
    needed = -(-(size + (count - 1) * overlap) // count)
    length = min(tile, -(-needed // align) * align)
    span = (size - length) // step  # in units of step
    return length, [step * ((i * span) // (count - 1)) for i in range(count)]


def crop_layout(size: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Cores and their context windows along one axis of length ``size`` (``"crop"`` policy).

    Cores of ``tile`` pixels (the last one shorter) start at ``0, tile, 2 tile, ...``; each is read
    with ``overlap`` pixels of context on either side, cut at the ends of the axis.

    Args:
        size: Axis length, >= 1.
        tile: Core length, >= 1.
        overlap: Context per side, >= 0.

    Returns:
        ``(core_start, core_stop, read_start, read_stop)`` per tile, in order.
    """
    spans = []
    for start in range(0, size, tile):
        stop = min(start + tile, size)
        spans.append((start, stop, max(0, start - overlap), min(size, stop + overlap)))
    return spans


def blend_window(length: int, ramp: int, rise: bool, fall: bool, device: torch.device | None = None) -> torch.Tensor:
    """One axis of the blending window: raised-cosine ramps of ``ramp`` samples at either end.

    ``w[i] = (1 - cos(pi * (i + 0.5) / ramp)) / 2`` for ``i < ramp`` when ``rise`` (mirrored at the
    end when ``fall``), else 1. Every weight is > 0, so normalising by the summed weights is safe.

    Args:
        length: Window length (output pixels).
        ramp: Ramp length, ``0 <= ramp <= length / 2``; 0 gives a flat window.
        rise: Ramp up at the start (there is a tile before this one).
        fall: Ramp down at the end (there is a tile after this one).
        device: Where to build it.

    Returns:
        float32 ``(length,)`` in ``(0, 1]``.
    """
    window = torch.ones(length, dtype=torch.float32, device=device)
    if ramp > 0:
        steps = torch.arange(ramp, dtype=torch.float32, device=device)
        up = 0.5 - 0.5 * torch.cos(math.pi * (steps + 0.5) / ramp)
        if rise:
            window[:ramp] = up
        if fall:
            window[length - ramp :] = torch.minimum(window[length - ramp :], up.flip(0))
    return window


def blend_windows(starts: Sequence[int], length: int, scale: int = 1,
                  device: torch.device | None = None) -> list[torch.Tensor]:
    """Blending windows (output pixels) of the tiles of ``length`` input pixels starting at ``starts``.

    A side that overlaps a neighbour ramps over that overlap, at most half the window.

    Args:
        starts: Increasing tile starts (input pixels), from :func:`blend_layout`.
        length: Tile length (input pixels).
        scale: Input pixels per output pixel.
        device: Where to build them.

    Returns:
        float32 ``(length / scale,)`` per tile.
    """
    half = length // scale
    windows = []
    for i, start in enumerate(starts):
        before = (starts[i - 1] + length - start) // scale if i > 0 else 0
        after = (start + length - starts[i + 1]) // scale if i + 1 < len(starts) else 0
        rise = blend_window(half, min(before, half // 2), before > 0, False, device)
        fall = blend_window(half, min(after, half // 2), False, after > 0, device)
        windows.append(rise * fall)
    return windows


def pad_bottom_right(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom and right of ``(..., H, W)`` up to multiples of ``multiple``.

    Both axes are reflected when both paddings are smaller than their axis, else both are
    replicated. Padding only the bottom/right keeps every original pixel where it was.

    Args:
        x: ``(B, C, H, W)`` tensor.
        multiple: Target multiple, >= 1.

    Returns:
        The padded tensor, or ``x`` itself when no padding is needed.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def _check_args(inputs: Sequence[torch.Tensor], tile: int | None, overlap: int, policy: str, scale: int,
                pad_multiple: int, tile_batch: int) -> tuple[int, int]:
    if not inputs or not all(isinstance(x, torch.Tensor) and x.ndim == 4 for x in inputs):
        raise RawSynthError("tiled_apply: inputs must be one or more (B, C, H, W) tensors")
    batch, _, height, width = inputs[0].shape
    if any(x.shape[0] != batch or x.shape[-2:] != inputs[0].shape[-2:] for x in inputs):
        raise RawSynthError(f"tiled_apply: inputs differ in batch or size: {[tuple(x.shape) for x in inputs]}")
    if policy not in TILE_POLICIES:
        raise RawSynthError(f"tiled_apply: policy must be one of {', '.join(TILE_POLICIES)}, got {policy!r}")
    for name, value in (("scale", scale), ("pad_multiple", pad_multiple), ("tile_batch", tile_batch)):
        if not _is_int(value) or value < 1:
            raise RawSynthError(f"tiled_apply: {name} must be a positive integer, got {value!r}")
    if tile is not None and (not _is_int(tile) or tile < 1):
        raise RawSynthError(f"tiled_apply: tile must be a positive integer or None, got {tile!r}")
    if not _is_int(overlap) or overlap < 0 or (policy == "blend" and tile is not None and overlap >= tile):
        raise RawSynthError(f"tiled_apply: overlap must be an integer >= 0 (< tile for blending), got {overlap!r}")
    if height % scale or width % scale:
        raise RawSynthError(f"tiled_apply: size {height}x{width} is not a multiple of scale {scale}")
    return height, width


def _run(fn: TileFunction, tiles: Sequence[Sequence[torch.Tensor]], device: torch.device | None,
         pad_multiple: int, scale: int) -> list[dict[str, torch.Tensor]]:
    """``fn`` on tiles of one size stacked along the batch; the outputs split back per tile."""
    parts = tiles[0] if len(tiles) == 1 else [torch.cat(group, dim=0) for group in zip(*tiles)]
    if device is not None:
        parts = [part.to(device) for part in parts]
    height, width = parts[0].shape[-2:]
    if pad_multiple > 1:
        parts = [pad_bottom_right(part, pad_multiple) for part in parts]
    out = dict(fn(*parts))
    if pad_multiple > 1:
        out = {key: value[..., : height // scale, : width // scale] for key, value in out.items()}
    if len(tiles) == 1:
        return [out]
    return [dict(zip(out, values)) for values in zip(*(value.chunk(len(tiles), dim=0) for value in out.values()))]


def _check_output(out: Mapping[str, torch.Tensor], tile: torch.Tensor, scale: int) -> None:
    expected = (tile.shape[0], tile.shape[-2] // scale, tile.shape[-1] // scale)
    for key, value in out.items():
        if value.ndim != 4 or (value.shape[0], *value.shape[-2:]) != expected:
            raise RawSynthError(f"tiled_apply: output {key!r} has shape {tuple(value.shape)} for a tile of shape "
                                f"{tuple(tile.shape)} (scale {scale})")


def _grouped(tiles: Iterator[_Tile], size: int) -> Iterator[list[_Tile]]:
    """Tiles of one shape, at most ``size`` at a time, shapes in order of first appearance."""
    by_shape: dict[tuple[int, ...], list[_Tile]] = {}
    for item in tiles:
        by_shape.setdefault(tuple(item[1][0].shape), []).append(item)
    for group in by_shape.values():
        for first in range(0, len(group), size):
            yield group[first : first + size]


def tiled_apply(
    fn: TileFunction,
    inputs: Sequence[torch.Tensor],
    tile: int | None,
    overlap: int = 0,
    *,
    policy: TilePolicy = "blend",
    scale: int = 1,
    align: int = 1,
    pad_multiple: int = 1,
    tile_batch: int = 1,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """Run ``fn`` over tiles of ``inputs`` and assemble its outputs under a tiling policy.

    Gradient mode is the caller's. Tiles are visited row by row (``"blend"`` tiles all have one
    shape); with ``tile_batch > 1`` up to that many tiles of one shape are concatenated along the
    batch axis into one call, and the shapes (border tiles of ``"crop"``) are taken in turn.

    Args:
        fn: ``fn(*tiles) -> {name: (b, C_k, h / scale, w / scale)}`` for tiles ``(b, C_i, h, w)``
            of each input (one positional argument per input).
        inputs: ``(B, C_i, H, W)`` tensors of one batch and size; ``H`` and ``W`` multiples of
            ``scale``.
        tile: ``"blend"``: maximum tile side (a multiple of ``align``); ``"crop"``: core side.
            ``None``: the whole input in one call.
        overlap: ``"blend"``: minimum overlap of neighbours (``< tile``); ``"crop"``: context per side.
        policy: ``"blend"`` (raised-cosine blending of overlaps) or ``"crop"`` (keep the cores).
        scale: Input pixels per output pixel along each axis.
        align: ``"blend"``: tile lengths are multiples of this; starts are multiples of ``scale``.
        pad_multiple: Pad every tile's inputs at the bottom/right to this multiple
            (:func:`pad_bottom_right`) and crop the outputs back.
        tile_batch: Most tiles per call of ``fn``.
        device: Where ``fn`` runs (tiles are moved there, outputs back); ``None``: the inputs' device.

    Returns:
        ``{name: (B, C_k, H / scale, W / scale)}`` on the inputs' device: ``fn``'s own outputs when
        the input is one tile, else float32.

    Raises:
        RawSynthError: On bad arguments or a tile output of the wrong shape.
    """
    height, width = _check_args(inputs, tile, overlap, policy, scale, pad_multiple, tile_batch)
    home = inputs[0].device
    run_on = None if device is None else torch.device(device)
    if tile is None or (height <= tile and width <= tile):
        out = _run(fn, [list(inputs)], run_on, pad_multiple, scale)[0]
        return {key: value.to(home) for key, value in out.items()}

    if policy == "blend":
        tile_h, ys = blend_layout(height, tile, overlap, align=align, step=scale)
        tile_w, xs = blend_layout(width, tile, overlap, align=align, step=scale)
        rows = [(y, y + tile_h, y, y + tile_h) for y in ys]
        cols = [(x, x + tile_w, x, x + tile_w) for x in xs]
        windows_y, windows_x = blend_windows(ys, tile_h, scale, home), blend_windows(xs, tile_w, scale, home)
        weight_sum = torch.zeros(height // scale, width // scale, dtype=torch.float32, device=home)
    else:
        rows, cols = crop_layout(height, tile, overlap), crop_layout(width, tile, overlap)

    def tiles() -> Iterator[_Tile]:
        for i, (_, _, y0, y1) in enumerate(rows):
            for j, (_, _, x0, x1) in enumerate(cols):
                yield (i, j), [x[:, :, y0:y1, x0:x1] for x in inputs]

    acc: dict[str, torch.Tensor] = {}
    batch = inputs[0].shape[0]
    for group in _grouped(tiles(), tile_batch):
        outputs = _run(fn, [parts for _, parts in group], run_on, pad_multiple, scale)
        for ((i, j), parts), out in zip(group, outputs):
            _check_output(out, parts[0], scale)
            (core_y0, core_y1, y0, _), (core_x0, core_x1, x0, _) = rows[i], cols[j]
            out_y, out_x = slice(core_y0 // scale, core_y1 // scale), slice(core_x0 // scale, core_x1 // scale)
            for key, value in out.items():
                if key not in acc:
                    shape = (batch, value.shape[1], height // scale, width // scale)
                    acc[key] = torch.zeros(shape, dtype=torch.float32, device=home)
            if policy == "blend":
                weight = windows_y[i][:, None] * windows_x[j][None, :]
                for key, value in out.items():
                    acc[key][..., out_y, out_x].addcmul_(value.to(home), weight)
                weight_sum[out_y, out_x].add_(weight)
            else:
                kept_y = slice((core_y0 - y0) // scale, (core_y1 - y0) // scale)
                kept_x = slice((core_x0 - x0) // scale, (core_x1 - x0) // scale)
                for key, value in out.items():
                    acc[key][..., out_y, out_x] = value[..., kept_y, kept_x]
            del out
    if policy == "blend":
        return {key: value.div_(weight_sum) for key, value in acc.items()}
    return acc
