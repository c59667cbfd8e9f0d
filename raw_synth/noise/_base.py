"""Shared plumbing of the noise models: the result type, input checks and random generators.

Private to :mod:`raw_synth.noise`. Every model works on a *packed* RAW image, numpy
``(4, h, w)`` or torch ``(B, 4, h, w)``, planes R, Gr, Gb, B, normalised as
``(DN - black) / (white - black)``. Per-plane parameters are given as a scalar (same value for
the four planes), four values, or (torch only) a ``(B, 4)`` array with one row per image.

torch is imported only for type checking and inside the torch paths (numpy-only callers never
load it); a tensor is recognised with :func:`raw_synth.lazy_torch.is_tensor`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Sequence, Union

import numpy as np

from raw_synth.errors import RawSynthError
from raw_synth.lazy_torch import is_tensor
from raw_synth.per_plane import per_plane

if TYPE_CHECKING:
    import torch

Array = Union[np.ndarray, "torch.Tensor"]
"""A numpy array or a torch tensor."""

PerPlane = Union[float, Sequence[float], np.ndarray, "torch.Tensor"]
"""A scalar, four values (R, Gr, Gb, B), or (torch path only) a ``(B, 4)`` array."""

PerSample = Union[float, np.ndarray, "torch.Tensor"]
"""A scalar, or (torch path only) a ``(B,)`` array with one value per image."""

RandomSource = Union[np.random.Generator, "torch.Generator", int, None]
"""A numpy ``Generator`` (numpy input), a torch ``Generator`` (torch input), an integer seed,
or ``None`` for fresh OS entropy (not reproducible)."""

# Planes R, Gr share a mosaic row and so do Gb, B (by definition of Gr/Gb): row group per plane.
ROW_GROUP = (0, 0, 1, 1)


class NoiseResult(NamedTuple):
    """What every noise model returns.

    Attributes:
        noisy: the noisy packed image, same kind, shape and device as the input, float32,
            normalised units.
        shot: equivalent per-plane shot coefficient, float32, numpy ``(4,)`` / torch ``(B, 4)``.
        read: equivalent per-plane read coefficient, float32, same shape as ``shot``;
            the noise variance at clean level ``x`` is ``shot * x + read`` (normalised units).
    """

    noisy: Array
    shot: Array
    read: Array


def to_numpy_values(value: object, name: str) -> np.ndarray:
    """Return ``value`` as a float64 numpy array (tensors are detached and copied to the CPU)."""
    if is_tensor(value):
        import torch

        value = value.detach().to("cpu", torch.float64).numpy()
    try:
        out = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise RawSynthError(f"{name}: expected a number or an array of numbers, got {type(value).__name__}") from None
    if not np.all(np.isfinite(out)):
        raise RawSynthError(f"{name}: values must be finite, got {out.tolist()}")
    return out


def check_per_plane(value: object, name: str, *, minimum: float | None = None, strict: bool = False) -> None:
    """Validate a per-plane parameter: scalar, ``(4,)`` or ``(B, 4)``, all values ``>= minimum``
    (``> minimum`` when ``strict``)."""
    arr = to_numpy_values(value, name)
    if not (arr.ndim == 0 or arr.shape == (4,) or (arr.ndim == 2 and arr.shape[1] == 4)):
        raise RawSynthError(f"{name}: expected a scalar, 4 values (R, Gr, Gb, B) or a (B, 4) array, "
                            f"got shape {arr.shape}")
    _check_minimum(arr, name, minimum, strict)


def check_per_sample(value: object, name: str, *, minimum: float | None = None, strict: bool = False) -> None:
    """Validate a per-sample parameter: a scalar or a 1-D ``(B,)`` array."""
    arr = to_numpy_values(value, name)
    if arr.ndim > 1:
        raise RawSynthError(f"{name}: expected a scalar or a (B,) array, got shape {arr.shape}")
    _check_minimum(arr, name, minimum, strict)


def _check_minimum(arr: np.ndarray, name: str, minimum: float | None, strict: bool) -> None:
    if minimum is None:
        return
    bad = arr <= minimum if strict else arr < minimum
    if np.any(bad):
        op = ">" if strict else ">="
        raise RawSynthError(f"{name}: values must be {op} {minimum:g}, got {arr.tolist()}")


def check_levels(black: object, white: object) -> None:
    """Validate black and white levels (DN): ``0 <= black < white <= 65535`` plane by plane."""
    check_per_plane(black, "black", minimum=0.0)
    check_per_plane(white, "white", minimum=0.0, strict=True)
    b = to_numpy_values(black, "black")
    w = to_numpy_values(white, "white")
    try:
        ok = np.all(np.broadcast_to(w, np.broadcast_shapes(b.shape, w.shape)) > b)
    except ValueError:
        raise RawSynthError(f"black/white: shapes {b.shape} and {w.shape} do not broadcast") from None
    if not ok:
        raise RawSynthError(f"white: must be greater than black, got black {b.tolist()} and white {w.tolist()}")
    if np.any(w > 65535):
        raise RawSynthError(f"white: must be <= 65535 (uint16 DN), got {w.tolist()}")


def check_packed(x: object, name: str = "x") -> bool:
    """Check a packed RAW input; return True for torch, False for numpy.

    numpy: floating ``(4, h, w)``; torch: floating ``(B, 4, h, w)``.
    """
    if is_tensor(x):
        if x.ndim != 4 or x.shape[1] != 4:
            raise RawSynthError(f"{name}: expected a torch tensor of shape (B, 4, h, w), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise RawSynthError(f"{name}: expected a floating-point tensor, got {x.dtype}")
        return True
    if isinstance(x, np.ndarray):
        if x.ndim != 3 or x.shape[0] != 4:
            raise RawSynthError(f"{name}: expected a numpy array of shape (4, h, w), got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            raise RawSynthError(f"{name}: expected a floating-point array, got {x.dtype}")
        return False
    raise RawSynthError(f"{name}: expected a numpy array or a torch tensor, got {type(x).__name__}")


def numpy_rng(rng: RandomSource, name: str = "rng") -> np.random.Generator:
    """Return a numpy Generator from a Generator, an integer seed or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise RawSynthError(f"{name}: expected a numpy Generator, an integer seed or None for numpy input, "
                        f"got {type(rng).__name__}")


def torch_generator(rng: RandomSource, device: torch.device, name: str = "rng") -> torch.Generator | None:
    """Return a torch Generator on ``device`` from a Generator, an integer seed, or None (global RNG)."""
    import torch  # callers are on the torch path: torch is loaded already

    if isinstance(rng, torch.Generator):
        if torch.device(rng.device).type != device.type:
            raise RawSynthError(f"{name}: generator is on {rng.device} but the input is on {device}")
        return rng
    if rng is None:
        return None
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return torch.Generator(device=device).manual_seed(int(rng))
    raise RawSynthError(f"{name}: expected a torch Generator, an integer seed or None for torch input, "
                        f"got {type(rng).__name__}")


def per_plane_np(value: object, name: str) -> np.ndarray:
    """A per-plane parameter as float64 ``(4,)`` for the numpy path (``(B, 4)`` is refused)."""
    arr = to_numpy_values(value, name)
    planes = per_plane(arr, flatten=False)
    if planes is None:
        raise RawSynthError(f"{name}: numpy input takes a scalar or 4 values (R, Gr, Gb, B), got shape {arr.shape}")
    return planes


def per_sample_np(value: object, name: str) -> float:
    """A per-sample parameter as a float for the numpy path."""
    arr = to_numpy_values(value, name)
    if arr.ndim != 0 and arr.size != 1:
        raise RawSynthError(f"{name}: numpy input takes a scalar, got shape {arr.shape}")
    return float(arr.reshape(()))


def per_plane_t(value: object, batch: int, name: str, device: torch.device) -> torch.Tensor:
    """A per-plane parameter as a float32 ``(B, 4)`` tensor on ``device``."""
    import torch  # callers are on the torch path: torch is loaded already

    if isinstance(value, torch.Tensor):
        t = value.detach().to(device=device, dtype=torch.float32)
    else:
        t = torch.as_tensor(to_numpy_values(value, name), dtype=torch.float32, device=device)
    if t.ndim == 0:
        return t.expand(batch, 4).clone()
    if t.shape == (4,):
        return t.unsqueeze(0).expand(batch, 4).clone()
    if t.shape == (batch, 4):
        return t.clone()
    raise RawSynthError(f"{name}: expected a scalar, 4 values or a ({batch}, 4) array for a batch of {batch}, "
                        f"got shape {tuple(t.shape)}")


def per_sample_t(value: object, batch: int, name: str, device: torch.device) -> torch.Tensor:
    """A per-sample parameter as a float64 ``(B,)`` tensor on ``device``."""
    import torch  # callers are on the torch path: torch is loaded already

    if isinstance(value, torch.Tensor):
        t = value.detach().to(device=device, dtype=torch.float64)
    else:
        t = torch.as_tensor(to_numpy_values(value, name), dtype=torch.float64, device=device)
    if t.ndim == 0 or (t.ndim == 1 and t.numel() == 1):
        return t.reshape(()).expand(batch).clone()
    if t.shape == (batch,):
        return t.clone()
    raise RawSynthError(f"{name}: expected a scalar or a ({batch},) array for a batch of {batch}, "
                        f"got shape {tuple(t.shape)}")

