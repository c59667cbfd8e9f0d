"""Unprocessing (Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019).

:func:`unprocess` turns an sRGB photo into a plausible packed camera RAW by inverting a simple
ISP with a randomly drawn camera; :func:`process` is the matching forward ISP. Constants and
order of steps follow the authors' released code (google-research ``unprocessing/``):

Random camera (:func:`random_ccm`, :func:`random_gains`):
    ``xyz2cam`` is a random convex combination of four measured XYZ->camera matrices (weights
    ``U(1e-8, 1e8)`` normalised to sum 1); ``rgb2cam = xyz2cam @ RGB_TO_XYZ`` with rows
    normalised to sum 1; ``cam2rgb = inv(rgb2cam)``. ``rgb_gain = 1 / N(0.8, 0.1)``,
    ``red_gain ~ U(1.9, 2.4)``, ``blue_gain ~ U(1.5, 1.9)``.

Inverse ISP (:func:`unprocess`), in order:
    1. inverse smoothstep tone curve (input clipped to [0, 1]);
    2. gamma expansion ``max(x, 1e-8) ** 2.2``;
    3. ``rgb2cam`` per pixel;
    4. inverse white balance and brightness with highlight preservation
       (:func:`safe_invert_gains`);
    5. clip to [0, 1];
    6. RGGB mosaic, packed to R, Gr, Gb, B planes.

Forward ISP (:func:`process`): gains ``[red, 1, 1, blue]`` (``rgb_gain`` not re-applied), clip,
demosaic, ``cam2rgb``, clip, ``max(x, 1e-8) ** (1/2.2)``. With ``round_trip=True`` it also
re-applies ``rgb_gain`` and the smoothstep tone curve, so ``process(unprocess(x)) == x``
wherever demosaicing is exact and nothing was clipped.

Differences from the released TensorFlow code: demosaicing is the standard bilinear CFA
interpolation of :mod:`raw_synth.isp.demosaic` (Brooks interpolate with image resizing);
numpy paths compute in float64 and return float32.

The torch functions :func:`unprocess_torch` and :func:`process_torch` do the same on batches
``(B, 3, H, W)`` with one camera per sample (GPU friendly, differentiable). torch is imported
where tensors are made or used, so :func:`unprocess` (the ``upi`` engine) never loads it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from raw_synth.cfa import mosaic, pack
from raw_synth.errors import RawSynthError
from raw_synth.isp.color import (
    RGB_TO_XYZ,
    _gamma_decode_inplace,
    _inverse_smoothstep_inplace,
    apply_ccm,
    gamma_decode,
    inverse_smoothstep,
)
from raw_synth.isp.forward import process_raw, render
from raw_synth.lazy_torch import is_tensor

if TYPE_CHECKING:
    import torch

__all__ = [
    "XYZ_TO_CAM_MATRICES",
    "UnprocessParams",
    "random_ccm",
    "random_gains",
    "safe_invert_gains",
    "unprocess",
    "process",
    "stack_params",
    "unprocess_torch",
    "process_torch",
]

Array = TypeVar("Array", np.ndarray, "torch.Tensor")

#: The four XYZ -> camera matrices of Brooks et al. (row-major).
XYZ_TO_CAM_MATRICES: tuple[np.ndarray, ...] = tuple(
    np.array(m, dtype=np.float64)
    for m in (
        [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
        [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
        [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
        [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]],
    )
)
for _matrix in XYZ_TO_CAM_MATRICES:
    _matrix.setflags(write=False)

_HIGHLIGHT_INFLECTION = 0.9  # gray level above which the inverse gains fade towards 1
_PARAM_KEYS = ("cam2rgb", "rgb2cam", "rgb_gain", "red_gain", "blue_gain")


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise RawSynthError(
            f"rng: expected a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
        )
    return rng


def random_ccm(rng: np.random.Generator) -> np.ndarray:
    """Draw a random linear sRGB -> camera matrix (Brooks et al.).

    Args:
        rng: Random generator; consumes 4 uniform draws.

    Returns:
        ``rgb2cam`` ``(3, 3)`` float64 whose rows sum to 1.
    """
    rng = _check_rng(rng)
    weights = rng.uniform(1e-8, 1e8, size=len(XYZ_TO_CAM_MATRICES))
    weights = weights / weights.sum()
    xyz2cam = sum(w * m for w, m in zip(weights, XYZ_TO_CAM_MATRICES))
    rgb2cam = xyz2cam @ RGB_TO_XYZ
    return rgb2cam / rgb2cam.sum(axis=-1, keepdims=True)


def random_gains(rng: np.random.Generator) -> tuple[float, float, float]:
    """Draw random brightness and white-balance gains (Brooks et al.).

    Args:
        rng: Random generator; consumes one normal and two uniform draws, in that order.

    Returns:
        ``(rgb_gain, red_gain, blue_gain)``: ``1 / N(0.8, 0.1)``, ``U(1.9, 2.4)``, ``U(1.5, 1.9)``.
    """
    rng = _check_rng(rng)
    rgb_gain = 1.0 / rng.normal(0.8, 0.1)
    red_gain = rng.uniform(1.9, 2.4)
    blue_gain = rng.uniform(1.5, 1.9)
    return float(rgb_gain), float(red_gain), float(blue_gain)


def _matrix_field(value: Any, name: str) -> np.ndarray:
    try:
        matrix = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise RawSynthError(f"{name}: expected a 3x3 matrix of numbers, got {value!r}") from None
    if matrix.shape != (3, 3):
        raise RawSynthError(f"{name}: expected shape (3, 3), got {tuple(matrix.shape)}")
    if not np.isfinite(matrix).all():
        raise RawSynthError(f"{name}: matrix has non-finite entries")
    matrix.setflags(write=False)
    return matrix


def _gain_field(value: Any, name: str) -> float:
    try:
        gain = float(value)
    except (TypeError, ValueError):
        raise RawSynthError(f"{name}: expected a positive number, got {value!r}") from None
    if not math.isfinite(gain) or gain <= 0:
        raise RawSynthError(f"{name}: expected a positive finite number, got {gain}")
    return gain


@dataclass(frozen=True, eq=False)
class UnprocessParams:
    """The random camera of one unprocessed image.

    Attributes:
        cam2rgb: ``(3, 3)`` float64 camera RGB -> linear sRGB (read-only array).
        rgb2cam: ``(3, 3)`` float64 linear sRGB -> camera RGB, ``inv(cam2rgb)``, rows sum to 1.
        rgb_gain: Brightness gain (the RAW was divided by it).
        red_gain: Red white-balance gain (the red plane was divided by it).
        blue_gain: Blue white-balance gain (the blue plane was divided by it).
    """

    cam2rgb: np.ndarray
    rgb2cam: np.ndarray
    rgb_gain: float
    red_gain: float
    blue_gain: float

    def __post_init__(self) -> None:
        cam2rgb = _matrix_field(self.cam2rgb, "cam2rgb")
        rgb2cam = _matrix_field(self.rgb2cam, "rgb2cam")
        if not np.allclose(cam2rgb @ rgb2cam, np.eye(3), atol=1e-6):
            raise RawSynthError("cam2rgb: not the inverse of rgb2cam (cam2rgb @ rgb2cam != identity)")
        object.__setattr__(self, "cam2rgb", cam2rgb)
        object.__setattr__(self, "rgb2cam", rgb2cam)
        for name in ("rgb_gain", "red_gain", "blue_gain"):
            object.__setattr__(self, name, _gain_field(getattr(self, name), name))

    @classmethod
    def from_rgb2cam(cls, rgb2cam: np.ndarray, rgb_gain: float, red_gain: float, blue_gain: float) -> UnprocessParams:
        """Build parameters from ``rgb2cam`` (``cam2rgb`` is its inverse).

        Raises:
            RawSynthError: If ``rgb2cam`` is not an invertible 3x3 matrix or a gain is not positive.
        """
        matrix = _matrix_field(rgb2cam, "rgb2cam")
        try:
            cam2rgb = np.linalg.inv(matrix)
        except np.linalg.LinAlgError:
            raise RawSynthError("rgb2cam: matrix is singular and cannot be inverted") from None
        return cls(cam2rgb, matrix, rgb_gain, red_gain, blue_gain)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> UnprocessParams:
        """Draw a random camera: :func:`random_ccm` then :func:`random_gains` (Brooks' order)."""
        rgb2cam = random_ccm(rng)
        return cls.from_rgb2cam(rgb2cam, *random_gains(rng))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict: matrices as nested lists of floats, gains as floats."""
        return {
            "cam2rgb": self.cam2rgb.tolist(),
            "rgb2cam": self.rgb2cam.tolist(),
            "rgb_gain": self.rgb_gain,
            "red_gain": self.red_gain,
            "blue_gain": self.blue_gain,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UnprocessParams:
        """Inverse of :meth:`to_dict`.

        Raises:
            RawSynthError: On a missing or unknown key or a bad value.
        """
        if not isinstance(data, Mapping):
            raise RawSynthError(f"unprocess params: expected a mapping, got {type(data).__name__}")
        missing = [key for key in _PARAM_KEYS if key not in data]
        if missing:
            raise RawSynthError(f"unprocess params: missing key(s) {', '.join(missing)}")
        unknown = sorted(set(data) - set(_PARAM_KEYS))
        if unknown:
            raise RawSynthError(f"unprocess params: unknown key(s) {', '.join(map(str, unknown))}")
        return cls(**{key: data[key] for key in _PARAM_KEYS})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UnprocessParams):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # holds arrays; equality is by value


def _inverse_gains_np(rgb_gain: float, red_gain: float, blue_gain: float) -> np.ndarray:
    return np.array([1.0 / red_gain, 1.0, 1.0 / blue_gain]) / rgb_gain


def safe_invert_gains(image: Array, rgb_gain: Any, red_gain: Any, blue_gain: Any) -> Array:
    """Inverse white balance and brightening that keeps highlights (Brooks et al.).

    ``g = [1/red, 1, 1/blue] / rgb_gain``; ``gray`` = channel mean; ``mask = (max(gray - 0.9,
    0) / 0.1) ** 2``; the applied gain is ``max(mask + (1 - mask) * g, g)``, so for gray >= 1
    the gain is ``max(1, g) >= 1`` and bright pixels stay saturated instead of turning grey.

    Args:
        image: Camera RGB, numpy ``(H, W, 3)`` or torch ``(B, 3, H, W)``.
        rgb_gain: Brightness gain; float (numpy) or float / ``(B,)`` tensor (torch).
        red_gain: Red white-balance gain, same kinds.
        blue_gain: Blue white-balance gain, same kinds.

    Returns:
        The scaled image, same shape and type (not clipped).
    """
    if is_tensor(image):
        import torch

        if image.ndim != 4 or image.shape[1] != 3:
            raise RawSynthError(f"image: expected torch shape (B, 3, H, W), got {tuple(image.shape)}")
        batch = image.shape[0]

        def per_sample(value: Any, name: str) -> torch.Tensor:
            t = torch.as_tensor(value, dtype=image.dtype, device=image.device).reshape(-1)
            if t.numel() == 1:
                t = t.expand(batch)
            if t.shape != (batch,):
                raise RawSynthError(f"{name}: expected a scalar or shape ({batch},), got {tuple(t.shape)}")
            return t

        rgb = per_sample(rgb_gain, "rgb_gain")
        ones = torch.ones_like(rgb)
        gains = torch.stack([1.0 / per_sample(red_gain, "red_gain"), ones, 1.0 / per_sample(blue_gain, "blue_gain")], 1)
        gains = (gains / rgb[:, None])[:, :, None, None]  # (B, 3, 1, 1)
        gray = image.mean(dim=1, keepdim=True)
        mask = (torch.clamp(gray - _HIGHLIGHT_INFLECTION, min=0.0) / (1.0 - _HIGHLIGHT_INFLECTION)) ** 2
        safe = torch.maximum(mask + (1.0 - mask) * gains, gains)
        return image * safe
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise RawSynthError(f"image: expected numpy shape (H, W, 3), got {tuple(arr.shape)}")
    gains = _inverse_gains_np(float(rgb_gain), float(red_gain), float(blue_gain))
    gray = arr.mean(axis=-1, keepdims=True)
    mask = (np.maximum(gray - _HIGHLIGHT_INFLECTION, 0.0) / (1.0 - _HIGHLIGHT_INFLECTION)) ** 2
    safe = np.maximum(mask + (1.0 - mask) * gains, gains)
    return (arr * safe).astype(np.result_type(arr.dtype, np.float32))


def _check_rgb_numpy(rgb: Any) -> np.ndarray:
    if not isinstance(rgb, np.ndarray):
        raise RawSynthError(f"rgb: expected a numpy array of shape (H, W, 3), got {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise RawSynthError(f"rgb: expected shape (H, W, 3), got {tuple(rgb.shape)}")
    if not np.issubdtype(rgb.dtype, np.floating):
        raise RawSynthError(f"rgb: expected floating-point values in [0, 1], got dtype {rgb.dtype}")
    height, width = rgb.shape[:2]
    if height < 2 or width < 2 or height % 2 or width % 2:
        raise RawSynthError(f"rgb: height and width must be even and >= 2, got {height}x{width}")
    if not np.isfinite(rgb).all():
        raise RawSynthError("rgb: image has non-finite values")
    return rgb


def unprocess(
    rgb: np.ndarray,
    rng: np.random.Generator | None,
    params: UnprocessParams | None = None,
) -> tuple[np.ndarray, UnprocessParams]:
    """Turn an sRGB image into a packed RAW image (Brooks et al. inverse ISP).

    Args:
        rgb: ``(H, W, 3)`` float sRGB in [0, 1] (values outside are clipped), ``H, W`` even.
        rng: Generator used to draw the camera when ``params`` is None (may be None otherwise).
        params: A fixed camera; drawn with :meth:`UnprocessParams.sample` when None.

    Returns:
        ``(packed, params)``: packed RAW ``(4, H/2, W/2)`` float32 in [0, 1] (R, Gr, Gb, B
        order) and the camera that made it.

    Raises:
        RawSynthError: On a bad image shape/dtype, or no ``rng`` and no ``params``.
    """
    image = _check_rgb_numpy(rgb)
    if params is None:
        if rng is None:
            raise RawSynthError("rng: a numpy Generator is required when params is None")
        params = UnprocessParams.sample(rng)
    elif not isinstance(params, UnprocessParams):
        raise RawSynthError(f"params: expected UnprocessParams or None, got {type(params).__name__}")
    return _unprocess_packed(image, params), params


#: RGGB sites in packed order (R, Gr, Gb, B): camera channel of each plane.
_RGGB_CHANNEL = (0, 1, 1, 2)


def _unprocess_packed(image: np.ndarray, params: UnprocessParams) -> np.ndarray:
    """The numpy inverse ISP of :func:`unprocess`, fused: ``(H, W, 3)`` -> packed float32 ``(4, H/2, W/2)``.

    Computes the published steps in float32, the precision of its input and output (within
    3e-7 of the float64 evaluation of the same float32 image, and four times faster: the inverse
    tone curve and gamma were two thirds of the cost), but lays the image out by CFA site first
    so that every later pass is contiguous, works in place, and evaluates the colour matrix and
    the gains only for the one camera channel each site keeps (plus the grey level the highlight
    rule needs).
    """
    height, width = image.shape[:2]
    h, w = height // 2, width // 2
    # (2, 2, 3, h, w): [site row, site column, channel] planes, i.e. packed order R, Gr, Gb, B.
    planes = np.empty((2, 2, 3, h, w), dtype=np.float32)
    np.copyto(planes, image.reshape(h, 2, w, 2, 3).transpose(1, 3, 4, 0, 2))
    np.clip(planes, 0.0, 1.0, out=planes)
    flat = planes.reshape(-1)
    _inverse_smoothstep_inplace(flat)
    _gamma_decode_inplace(flat, 2.2)
    # Per plane: the row of rgb2cam for the site's channel, and the mean row (grey level).
    rgb2cam = np.asarray(params.rgb2cam, dtype=np.float64)
    rows = np.empty((4, 2, 3), dtype=np.float32)
    rows[:, 0] = rgb2cam[list(_RGGB_CHANNEL)]
    rows[:, 1] = rgb2cam.mean(axis=0)
    cam_gray = np.einsum("pkj,pjn->pkn", rows, planes.reshape(4, 3, h * w))  # (4, 2, h*w), no BLAS threads
    cam, gray = cam_gray[:, 0], cam_gray[:, 1]
    inverse = _inverse_gains_np(params.rgb_gain, params.red_gain, params.blue_gain)
    gains = inverse[list(_RGGB_CHANNEL)].astype(np.float32)
    bright = gray > _HIGHLIGHT_INFLECTION
    if bright.any():  # highlight-preserving gain (safe_invert_gains) where the grey level is high
        plane, pixel = np.nonzero(bright)
        mask = ((gray[plane, pixel] - _HIGHLIGHT_INFLECTION) / (1.0 - _HIGHLIGHT_INFLECTION)) ** 2
        safe = np.maximum(mask + (1.0 - mask) * gains[plane], gains[plane])
        lifted = cam[plane, pixel] * safe
        cam *= gains[:, None]
        cam[plane, pixel] = lifted
    else:
        cam *= gains[:, None]
    np.clip(cam, 0.0, 1.0, out=cam)
    return cam.astype(np.float32).reshape(4, h, w)


def _forward_gains(params: UnprocessParams, round_trip: bool) -> np.ndarray:
    gains = np.array([params.red_gain, 1.0, 1.0, params.blue_gain])
    return gains * params.rgb_gain if round_trip else gains


def process(
    raw: np.ndarray,
    params: UnprocessParams,
    demosaic: Literal["bilinear", "malvar", "menon"] = "bilinear",
    round_trip: bool = False,
) -> np.ndarray:
    """Brooks et al. forward ISP for one packed RAW image.

    Args:
        raw: ``(4, h, w)`` float packed RAW (R, Gr, Gb, B), normalised.
        params: The camera (as returned by :func:`unprocess`).
        demosaic: ``"bilinear"`` (Brooks), ``"malvar"`` or ``"menon"``.
        round_trip: Also re-apply ``rgb_gain`` (gains ``[red, 1, 1, blue] * rgb_gain``) and
            the smoothstep tone curve, making this the exact inverse of :func:`unprocess`
            away from clipping. False gives Brooks' process (no brightness gain, no tone curve).

    Returns:
        sRGB ``(2h, 2w, 3)`` float32 in [0, 1].

    Raises:
        RawSynthError: On a bad shape or option.
    """
    if not isinstance(params, UnprocessParams):
        raise RawSynthError(f"params: expected UnprocessParams, got {type(params).__name__}")
    return render(
        raw, _forward_gains(params, round_trip), params.cam2rgb, demosaic=demosaic, gamma="2.2", tone=round_trip
    )


def stack_params(
    params: Sequence[UnprocessParams],
    device: torch.device | str | None = None,
    dtype: torch.dtype | Literal["float32"] = "float32",
) -> dict[str, torch.Tensor]:
    """Stack per-sample cameras into tensors for the torch functions.

    Args:
        params: One :class:`UnprocessParams` per sample.
        device: Target device.
        dtype: Target dtype; the default ``"float32"`` stands for ``torch.float32`` (a default
            that does not import torch when this module is imported).

    Returns:
        ``{"cam2rgb": (B, 3, 3), "rgb2cam": (B, 3, 3), "rgb_gain": (B,), "red_gain": (B,),
        "blue_gain": (B,)}``.
    """
    if isinstance(params, UnprocessParams) or not all(isinstance(p, UnprocessParams) for p in params):
        raise RawSynthError("params: expected a sequence of UnprocessParams, one per sample")
    if len(params) == 0:
        raise RawSynthError("params: empty sequence")
    import torch

    if isinstance(dtype, str) and dtype == "float32":
        dtype = torch.float32

    def tensor(values: Any) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=dtype, device=device)

    return {
        "cam2rgb": tensor([p.cam2rgb for p in params]),
        "rgb2cam": tensor([p.rgb2cam for p in params]),
        "rgb_gain": tensor([p.rgb_gain for p in params]),
        "red_gain": tensor([p.red_gain for p in params]),
        "blue_gain": tensor([p.blue_gain for p in params]),
    }


def _params_tensors(params: Any, like: torch.Tensor, keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
    import torch  # like is a tensor: torch is loaded already

    batch = like.shape[0]
    if isinstance(params, Mapping):
        missing = [key for key in keys if key not in params]
        if missing:
            raise RawSynthError(f"params: missing key(s) {', '.join(missing)}")
        tensors = {key: torch.as_tensor(params[key], dtype=like.dtype, device=like.device) for key in keys}
    else:
        stacked = stack_params(params, device=like.device, dtype=like.dtype)
        tensors = {key: stacked[key] for key in keys}
    for key, value in tensors.items():
        expected = (batch, 3, 3) if key in ("cam2rgb", "rgb2cam") else (batch,)
        if tuple(value.shape) != expected:
            raise RawSynthError(f"params[{key!r}]: expected shape {expected}, got {tuple(value.shape)}")
    return tensors


def unprocess_torch(
    rgb: torch.Tensor, params: "Sequence[UnprocessParams] | Mapping[str, torch.Tensor]"
) -> torch.Tensor:
    """Batched torch :func:`unprocess` with one camera per sample (differentiable).

    Args:
        rgb: ``(B, 3, H, W)`` float sRGB in [0, 1] (clipped), ``H, W`` even.
        params: ``B`` :class:`UnprocessParams`, or a mapping with tensors ``rgb2cam`` ``(B, 3, 3)``,
            ``rgb_gain``, ``red_gain``, ``blue_gain`` ``(B,)`` (see :func:`stack_params`).

    Returns:
        Packed RAW ``(B, 4, H/2, W/2)`` in [0, 1], dtype and device of ``rgb``.

    Raises:
        RawSynthError: On bad shapes.
    """
    if not is_tensor(rgb):
        raise RawSynthError(f"rgb: expected a torch tensor of shape (B, 3, H, W), got {type(rgb).__name__}")
    import torch  # rgb is a tensor: torch is loaded already

    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise RawSynthError(f"rgb: expected shape (B, 3, H, W), got {tuple(rgb.shape)}")
    if not rgb.is_floating_point():
        raise RawSynthError(f"rgb: expected a floating-point tensor in [0, 1], got dtype {rgb.dtype}")
    height, width = rgb.shape[-2:]
    if height < 2 or width < 2 or height % 2 or width % 2:
        raise RawSynthError(f"rgb: height and width must be even and >= 2, got {height}x{width}")
    p = _params_tensors(params, rgb, ("rgb2cam", "rgb_gain", "red_gain", "blue_gain"))
    image = inverse_smoothstep(rgb)
    image = gamma_decode(image, 2.2)
    image = apply_ccm(image, p["rgb2cam"])
    image = safe_invert_gains(image, p["rgb_gain"], p["red_gain"], p["blue_gain"])
    image = torch.clamp(image, 0.0, 1.0)
    return pack(mosaic(image, "RGGB"), "RGGB")


def process_torch(
    raw: torch.Tensor,
    params: "Sequence[UnprocessParams] | Mapping[str, torch.Tensor]",
    demosaic: Literal["bilinear", "malvar"] = "bilinear",
    round_trip: bool = False,
) -> torch.Tensor:
    """Batched torch :func:`process` with one camera per sample (differentiable).

    Args:
        raw: ``(B, 4, h, w)`` packed RAW.
        params: ``B`` :class:`UnprocessParams`, or a mapping with ``cam2rgb`` ``(B, 3, 3)`` and
            ``rgb_gain``, ``red_gain``, ``blue_gain`` ``(B,)``.
        demosaic: ``"bilinear"`` or ``"malvar"``.
        round_trip: See :func:`process`.

    Returns:
        sRGB ``(B, 3, 2h, 2w)`` in [0, 1].
    """
    if not is_tensor(raw) or raw.ndim != 4 or raw.shape[1] != 4:
        shape = tuple(raw.shape) if hasattr(raw, "shape") else type(raw).__name__
        raise RawSynthError(f"raw: expected a torch tensor of shape (B, 4, h, w), got {shape}")
    import torch  # raw is a tensor: torch is loaded already

    p = _params_tensors(params, raw, ("cam2rgb", "rgb_gain", "red_gain", "blue_gain"))
    ones = torch.ones_like(p["red_gain"])
    wb = torch.stack([p["red_gain"], ones, ones, p["blue_gain"]], dim=1)
    if round_trip:
        wb = wb * p["rgb_gain"][:, None]
    return process_raw(raw, wb, p["cam2rgb"], demosaic=demosaic, gamma="2.2", tone=round_trip)
