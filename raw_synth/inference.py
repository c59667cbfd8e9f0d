"""SSDNet inference: tiled prediction with smooth blending, device/precision options, test-time extras.

:func:`predict_tiled` runs an SSDNet on an image of any (even) size in overlapping tiles, so the
memory it needs is bounded by the tile size, not the image size. It is the ``"blend"`` policy of
the project's one tiler, :func:`raw_synth.tiling.tiled_apply`. Tile offsets are even, so every
tile starts on an R site and the Bayer phase of the packed output is kept. The tiles' packed
predictions are blended with a separable raised-cosine ramp across each overlap (at packed
resolution) and normalised by the summed weights.

Tiled and untiled outputs agree exactly (bit for bit: the same call) when the image fits in one
tile. With several tiles they differ slightly, and not only at the seams: SSDNet has *global*
operations - the channel-attention weight of every block is a global average pool of its
input, and the transposed attention builds its ``(C/h x C/h)`` map from all the pixels of its
input - so a tile sees statistics of its own content rather than of the whole image. On natural
photographs the difference is small (the test-suite bounds it at PSNR > 45 dB between tiled and
untiled output with an untrained tiny model; see ``tests/test_inference.py``).

:func:`run_inference` adds what an engine needs around it: ``torch.inference_mode``, CUDA
autocast, channels-last weights and inputs, the Bayer-aware x8 self-ensemble and test-time
resampling with one seeded generator per image. :class:`InferenceOptions` holds these settings.

:func:`tune_cpu_allocator` (from :mod:`raw_synth.cpu_tuning`) raises glibc's mmap and trim
thresholds: without it every large intermediate tensor is a fresh ``mmap`` whose pages fault in
on first touch, which made CPU inference several times slower on the 2-core VM of
``benchmarks/isp_speed.py``.

Example:
    >>> import torch
    >>> from raw_synth.models import create_model
    >>> model = create_model("tiny").eval()
    >>> out = predict_tiled(model, torch.rand(1, 3, 96, 80), tile=64, overlap=16)
    >>> tuple(out["mu"].shape)
    (1, 4, 48, 40)
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import nn

from raw_synth.cpu_tuning import tune_cpu_allocator
from raw_synth.errors import RawSynthError
from raw_synth.tiling import blend_layout, blend_window, tiled_apply

__all__ = [
    "DEVICES",
    "InferenceOptions",
    "resolve_device",
    "tune_cpu_allocator",
    "prepare_model",
    "tile_layout",
    "blend_window",
    "predict_tiled",
    "run_inference",
]

logger = logging.getLogger(__name__)

#: Device names accepted by :class:`InferenceOptions` (``"cuda:1"`` style indices are accepted too).
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")

#: Tiles are processed at multiples of this size (SSDNet's padding multiple), so no tile is padded.
TILE_MULTIPLE = 16


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class InferenceOptions:
    """How an SSDNet runs at inference.

    Attributes:
        device: ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``)
            or ``"mps"``.
        amp: Mixed precision (bfloat16 where the GPU supports it, else float16 autocast). Used on
            CUDA only; ignored elsewhere. Outputs are float32 either way.
        channels_last: Keep weights and input tiles in channels-last memory format.
        tile: Tile side in full-resolution pixels, a multiple of 16 and >= 32. Images up to
            ``tile x tile`` run in one piece.
        overlap: Minimum overlap of neighbouring tiles in full-resolution pixels, even,
            ``0 <= overlap <= tile / 2``; the blending ramp spans each actual overlap.
        test_resample: Number of test-time resampling draws ``mu + sigma * z`` to average (the
            paper uses 50); ``0`` returns the mean head ``mu`` alone.
        self_ensemble: Average the Bayer-aware x8 dihedral self-ensemble (8x the cost).
        batch_size: Images of one size stacked into one forward pass by the engine, >= 1.

    Raises:
        RawSynthError: On an invalid value (the message names the field).
    """

    device: str = "auto"
    amp: bool = False
    channels_last: bool = False
    tile: int = 512
    overlap: int = 32
    test_resample: int = 0
    self_ensemble: bool = False
    batch_size: int = 8

    def __post_init__(self) -> None:
        if not isinstance(self.device, str) or not _valid_device_name(self.device):
            raise RawSynthError(f"device must be one of {', '.join(DEVICES)} (or cuda:N), got {self.device!r}")
        for name in ("amp", "channels_last", "self_ensemble"):
            if not isinstance(getattr(self, name), bool):
                raise RawSynthError(f"{name} must be a boolean, got {getattr(self, name)!r}")
        _check_tiling(self.tile, self.overlap)
        if not _is_int(self.test_resample) or self.test_resample < 0:
            raise RawSynthError(f"test_resample must be a non-negative integer, got {self.test_resample!r}")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise RawSynthError(f"batch_size must be a positive integer, got {self.batch_size!r}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the options (keyword arguments of :func:`raw_synth.engine.create_engine`)."""
        return tuple(f.name for f in dataclasses.fields(cls))


def _valid_device_name(name: str) -> bool:
    if name in DEVICES:
        return True
    prefix, _, index = name.partition(":")
    return prefix == "cuda" and index.isdigit()


def _check_tiling(tile: int, overlap: int) -> None:
    if not _is_int(tile) or tile < 2 * TILE_MULTIPLE or tile % TILE_MULTIPLE:
        raise RawSynthError(f"tile must be a multiple of {TILE_MULTIPLE} and >= {2 * TILE_MULTIPLE}, got {tile!r}")
    if not _is_int(overlap) or overlap < 0 or overlap % 2 or overlap > tile // 2:
        raise RawSynthError(f"overlap must be an even integer in [0, tile/2 = {tile // 2}], got {overlap!r}")


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a device option into a :class:`torch.device`.

    Args:
        name: ``"auto"`` picks CUDA if available, then MPS, then CPU; ``"cpu"``, ``"cuda"``,
            ``"cuda:N"`` or ``"mps"`` are taken as given but must be available.

    Raises:
        RawSynthError: For an unknown name or a device this machine does not have.
    """
    if not isinstance(name, str) or not _valid_device_name(name):
        raise RawSynthError(f"device must be one of {', '.join(DEVICES)} (or cuda:N), got {name!r}")
    mps = getattr(torch.backends, "mps", None)
    mps_available = bool(mps is not None and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_available else torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RawSynthError(f"device {name!r}: CUDA is not available on this machine (use --device cpu or auto)")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RawSynthError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return device
    if name == "mps" and not mps_available:
        raise RawSynthError("device 'mps': Apple MPS is not available on this machine (use --device cpu or auto)")
    return torch.device(name)


def prepare_model(model: nn.Module, options: InferenceOptions) -> tuple[nn.Module, torch.device]:
    """Put a model on the options' device, in eval mode and the requested memory format.

    Args:
        model: An SSDNet (moved in place, as :meth:`torch.nn.Module.to` does).
        options: Supplies ``device`` and ``channels_last``.

    Returns:
        ``(model, device)``.
    """
    device = resolve_device(options.device)
    if device.type == "cpu":
        tune_cpu_allocator()
    model = model.to(device).eval()
    if options.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, device


def tile_layout(size: int, tile: int, overlap: int) -> tuple[int, list[int]]:
    """Tile length and even start offsets along one axis of length ``size``, as :func:`predict_tiled` cuts it.

    :func:`raw_synth.tiling.blend_layout` with tile lengths in multiples of 16 and even starts.

    Args:
        size: Axis length, even.
        tile: Maximum tile length, a multiple of 16.
        overlap: Minimum overlap, even, ``< tile``.

    Returns:
        ``(length, starts)``: increasing starts, the first 0 and the last ``size - length``.
    """
    return blend_layout(size, tile, overlap, align=TILE_MULTIPLE, step=2)


def _check_input(rgb: torch.Tensor) -> None:
    if not isinstance(rgb, torch.Tensor):
        raise RawSynthError(f"rgb: expected a torch tensor (B, 3, H, W), got {type(rgb).__name__}")
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise RawSynthError(f"rgb: expected RGB of shape (B, 3, H, W), got {tuple(rgb.shape)}")
    if not rgb.is_floating_point():
        raise RawSynthError(f"rgb: expected a float tensor in [0, 1], got dtype {rgb.dtype}")
    if rgb.shape[-2] % 2 or rgb.shape[-1] % 2:
        raise RawSynthError(f"rgb: height and width must be even for a Bayer mosaic, got "
                            f"{rgb.shape[-2]}x{rgb.shape[-1]}")


def _predict_tile(model: nn.Module, rgb: torch.Tensor, with_sigma: bool, channels_last: bool,
                  autocast: torch.autocast | None) -> dict[str, torch.Tensor | None]:
    # A dense tile in the memory format the model expects (a slice, or an NHWC-strided view of a
    # numpy image, would otherwise switch convolutions to another, slower layout).
    rgb = rgb.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    with autocast if autocast is not None else contextlib.nullcontext():
        out = model.predict(rgb, with_sigma=with_sigma)
    if with_sigma and out.get("sigma") is None:
        raise RawSynthError("model: has no variance head (sigma) but the call needs one")
    return {key: None if value is None else value.float().contiguous() for key, value in out.items()}


def predict_tiled(
    model: nn.Module,
    rgb: torch.Tensor,
    tile: int = 512,
    overlap: int = 32,
    with_sigma: bool = False,
    *,
    channels_last: bool = False,
    autocast: torch.autocast | None = None,
) -> dict[str, torch.Tensor]:
    """Run ``model.predict`` over overlapping tiles and blend them into one packed RAW.

    Images no larger than ``tile x tile`` go through ``model.predict`` in one call (the result is
    then exactly the untiled one). Larger images are cut into tiles of at most ``tile x tile``
    at even offsets (:func:`tile_layout`), so each tile keeps the Bayer phase;
    each tile's prediction is weighted by the outer product of two :func:`blend_window` ramps of
    ``overlap // 2`` packed pixels on the sides that touch another tile, and the sum is divided
    by the summed weights. Memory is the output plus one tile's activations. Because SSDNet has
    global operations (channel-attention pooling, transposed attention), a multi-tile result is
    close to but not equal to the untiled one (see the module docstring).

    Gradient mode and device are the caller's (the engine wraps this in ``torch.inference_mode``).

    Args:
        model: An SSDNet (or any module with the same ``predict(x, with_sigma)``), in eval mode.
        rgb: sRGB ``(B, 3, H, W)`` float in [0, 1], even ``H`` and ``W``, on the model's device.
        tile: Tile side in full-resolution pixels: a multiple of 16, >= 32.
        overlap: Minimum overlap of neighbouring tiles in full-resolution pixels: even, <= ``tile / 2``.
        with_sigma: Also return the variance head's output.
        channels_last: Feed tiles in channels-last memory format.
        autocast: An autocast context to run the model under (or ``None``).

    Returns:
        ``{"mu": (B, 4, H/2, W/2)}`` float32, plus ``"sigma"`` of the same shape when
        ``with_sigma``; values in [0, 1].

    Raises:
        RawSynthError: On a bad input, bad tiling arguments, or ``with_sigma`` with a model that
            has no variance head.
    """
    _check_input(rgb)
    _check_tiling(tile, overlap)
    keys = ("mu", "sigma") if with_sigma else ("mu",)

    def predict(tile_rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        out = _predict_tile(model, tile_rgb, with_sigma, channels_last, autocast)
        return {key: value for key in keys if (value := out[key]) is not None}

    return tiled_apply(predict, [rgb], tile, overlap, policy="blend", scale=2, align=TILE_MULTIPLE)


def _autocast_for(device: torch.device, amp: bool) -> torch.autocast | None:
    if not amp or device.type != "cuda":
        return None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def _chunks(count: int, size: int) -> Iterator[slice]:
    for first in range(0, count, size):
        yield slice(first, min(first + size, count))


def run_inference(
    model: nn.Module,
    rgb: torch.Tensor,
    options: InferenceOptions | None = None,
    generators: Sequence[torch.Generator] | None = None,
    with_sigma: bool = False,
) -> dict[str, torch.Tensor]:
    """Full SSDNet inference on a batch: tiling, self-ensemble, test-time resampling, AMP.

    Runs under ``torch.inference_mode``. The batch is processed ``options.batch_size`` images at
    a time. With ``options.self_ensemble`` the Bayer-aware x8 ensemble
    (:func:`raw_synth.models.self_ensemble_x8`) averages ``mu`` (and ``sigma`` when needed) over
    the eight dihedral transforms, each predicted with :func:`predict_tiled`. With
    ``options.test_resample = N > 0`` the returned ``mu`` is ``clamp(mu + sigma * mean(z_1..z_N),
    0, 1)`` where ``z_i = torch.randn(mu_b.shape, generator=generators[b])`` are drawn in order
    for image ``b``, i.e. the average of the N draws ``mu + sigma * z_i`` of
    :func:`raw_synth.models.test_resample`, with a generator per image so that each image's
    result does not depend on the rest of its batch.

    Args:
        model: A prepared SSDNet (see :func:`prepare_model`) on ``rgb``'s device.
        rgb: sRGB ``(B, 3, H, W)`` float in [0, 1], even ``H`` and ``W``.
        options: Inference settings (``device`` is not used here: move ``rgb`` yourself).
        generators: One :class:`torch.Generator` per image, on ``rgb``'s device; required when
            ``options.test_resample > 0``.
        with_sigma: Also return the (ensembled) per-pixel error scale.

    Returns:
        ``{"mu": (B, 4, H/2, W/2)}`` float32 in [0, 1], plus ``"sigma"`` when ``with_sigma``.

    Raises:
        RawSynthError: On a bad input, missing generators, or a model without variance head when
            resampling or ``with_sigma`` needs one.
    """
    from raw_synth.models import self_ensemble_x8

    opts = options if options is not None else InferenceOptions()
    _check_input(rgb)
    batch = rgb.shape[0]
    resample = opts.test_resample
    if resample and (generators is None or len(generators) != batch):
        got = "none" if generators is None else len(generators)
        raise RawSynthError(f"generators: test_resample needs one torch.Generator per image ({batch}), got {got}")
    need_sigma = with_sigma or resample > 0
    autocast = _autocast_for(rgb.device, opts.amp)

    def tiled(x: torch.Tensor, sigma: bool) -> dict[str, torch.Tensor]:
        return predict_tiled(model, x, opts.tile, opts.overlap, sigma, channels_last=opts.channels_last,
                             autocast=autocast)

    def one_chunk(x: torch.Tensor) -> dict[str, torch.Tensor]:
        if not opts.self_ensemble:
            return tiled(x, need_sigma)
        if not need_sigma:
            return {"mu": self_ensemble_x8(lambda t: tiled(t, False)["mu"], x)}
        # Ensemble mu and sigma in one pass: the doubled batch carries sigma in its second half.
        size = x.shape[0]

        def both(t: torch.Tensor) -> torch.Tensor:
            out = tiled(t[:size], True)
            return torch.cat([out["mu"], out["sigma"]], dim=0)

        stacked = self_ensemble_x8(both, torch.cat([x, x], dim=0))
        return {"mu": stacked[:size], "sigma": stacked[size:]}

    with torch.inference_mode():
        parts = [one_chunk(rgb[part]) for part in _chunks(batch, opts.batch_size)]
        out = {key: torch.cat([p[key] for p in parts], dim=0) if len(parts) > 1 else parts[0][key]
               for key in parts[0]}
        if resample:
            assert generators is not None
            mu, sigma = out["mu"], out["sigma"]
            resampled = torch.empty_like(mu)
            for index in range(batch):
                noise = torch.zeros_like(mu[index])
                for _ in range(resample):
                    noise.add_(torch.randn(mu.shape[1:], generator=generators[index], device=mu.device,
                                           dtype=mu.dtype))
                resampled[index] = (mu[index] + sigma[index] * noise.div_(resample)).clamp_(0.0, 1.0)
            out["mu"] = resampled
    result = {"mu": out["mu"]}
    if with_sigma:
        result["sigma"] = out["sigma"]
    return result
