"""Colour transforms of the ISP: transfer functions, tone curve and colour-correction matrices.

Every function accepts a numpy array or a torch tensor and returns the same kind, dtype and
device. The torch versions are differentiable (the branches of piecewise functions are guarded
so that no NaN gradient leaks from the unused branch). torch and kornia are imported in the
tensor branches only, so numpy callers never load them.

* :func:`srgb_encode` / :func:`srgb_decode`: the piecewise sRGB transfer function of
  IEC 61966-2-1 (linear segment below 0.0031308, exponent 1/2.4 above). Torch images
  ``(*, 3, H, W)`` are encoded by :func:`kornia.color.linear_rgb_to_rgb` (bit-identical values
  and gradients); decoding keeps its own formula (see :func:`srgb_decode`).
* :func:`gamma_encode` / :func:`gamma_decode`: the plain power law used by Brooks et al.
  (2019), ``max(x, 1e-8) ** (1/2.2)`` and ``max(x, 1e-8) ** 2.2``. Not
  :func:`kornia.enhance.adjust_gamma`, which has no floor and clips to [0, 1]: at 0 it gives 0
  (here 2.3e-4 for encoding) with an infinite gradient, NaN below 0, and 1.0 for 1.2 (here 1.086).
* :func:`smoothstep` / :func:`inverse_smoothstep`: the global tone curve ``3x^2 - 2x^3`` and its
  inverse ``0.5 - sin(asin(1 - 2y) / 3)`` on [0, 1].
* :data:`RGB_TO_XYZ`: linear sRGB (D65) to CIE XYZ (a numpy matrix for building camera
  matrices; kornia's ``rgb_to_xyz`` uses 6-digit constants, up to 7.7e-5 away from these).
* :func:`rgb_to_cam_from_xyz_to_cam` / :func:`cam_to_rgb_from_xyz_to_cam`: the DNG-style
  construction of a camera colour matrix from an XYZ->camera ``ColorMatrix``.
* :func:`apply_ccm`: apply a 3x3 matrix to every pixel.

Example:
    >>> import numpy as np
    >>> x = np.array([0.0, 0.5, 1.0])
    >>> np.allclose(srgb_decode(srgb_encode(x)), x)
    True
    >>> np.allclose(inverse_smoothstep(smoothstep(x)), x)
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

from raw_synth.errors import RawSynthError
from raw_synth.lazy_torch import is_tensor

if TYPE_CHECKING:
    import torch

__all__ = [
    "RGB_TO_XYZ",
    "srgb_encode",
    "srgb_decode",
    "gamma_encode",
    "gamma_decode",
    "smoothstep",
    "inverse_smoothstep",
    "rgb_to_cam_from_xyz_to_cam",
    "cam_to_rgb_from_xyz_to_cam",
    "xyz_to_cam_from_rgb_to_cam",
    "apply_ccm",
]

Array = TypeVar("Array", np.ndarray, "torch.Tensor")

#: Linear sRGB (D65 white) to CIE XYZ, row-major: ``xyz = RGB_TO_XYZ @ rgb``.
RGB_TO_XYZ: np.ndarray = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float64,
)
RGB_TO_XYZ.setflags(write=False)

_SRGB_LINEAR_LIMIT = 0.0031308  # linear value where the encode curve switches branch
_SRGB_ENCODED_LIMIT = 0.04045  # encoded value where the decode curve switches branch
_GAMMA_FLOOR = 1e-8  # Brooks et al. clamp before the power law


def _is_torch_image(x: torch.Tensor) -> bool:
    """True for a tensor with a colour axis of 3 at ``-3`` (kornia's ``(*, 3, H, W)``)."""
    return x.ndim >= 3 and x.shape[-3] == 3


def _as_float(x: Array) -> Array:
    """Return ``x`` as a floating array (numpy float64 unless already floating)."""
    if is_tensor(x):
        import torch

        return x if x.is_floating_point() else x.to(torch.get_default_dtype())
    arr = np.asarray(x)
    return arr if np.issubdtype(arr.dtype, np.floating) else arr.astype(np.float64)


def srgb_encode(linear: Array) -> Array:
    """Encode linear values with the sRGB transfer function (IEC 61966-2-1).

    ``12.92 x`` for ``x <= 0.0031308``, else ``1.055 x^(1/2.4) - 0.055``. A torch image
    ``(*, 3, H, W)`` is encoded by :func:`kornia.color.linear_rgb_to_rgb`, which computes this
    with the same clamp of the power branch (bit-identical values and gradients, tested in
    ``tests/test_kornia_paths.py``); other shapes and numpy use the formula element-wise.

    Args:
        linear: Linear-light values of any shape, nominally in [0, 1] (not clipped).

    Returns:
        Encoded values, same shape, type and (floating) dtype.
    """
    x = _as_float(linear)
    if is_tensor(x) and _is_torch_image(x):
        from kornia.color import linear_rgb_to_rgb

        return linear_rgb_to_rgb(x)
    if is_tensor(x):
        import torch

        safe = torch.clamp(x, min=_SRGB_LINEAR_LIMIT)
        return torch.where(x <= _SRGB_LINEAR_LIMIT, 12.92 * x, 1.055 * safe ** (1.0 / 2.4) - 0.055)
    safe = np.maximum(x, _SRGB_LINEAR_LIMIT)
    return np.where(x <= _SRGB_LINEAR_LIMIT, 12.92 * x, 1.055 * safe ** (1.0 / 2.4) - 0.055).astype(x.dtype)


def srgb_decode(encoded: Array) -> Array:
    """Decode sRGB-encoded values to linear light (inverse of :func:`srgb_encode`).

    ``x / 12.92`` for ``x <= 0.04045``, else ``((x + 0.055) / 1.055)^2.4``.

    Not :func:`kornia.color.rgb_to_linear_rgb`: kornia 0.9 computes exactly this (bit-identical
    values and gradients), but kornia 0.7.0 to 0.8.3, which ``kornia>=0.7`` admits (0.9 needs
    Python >= 3.11; raw-synth supports 3.10), raise the unclamped ``(x + 0.055) / 1.055`` to the
    power 2.4, so every input below -0.055 gets a NaN gradient through the unused branch
    (measured with 0.7.0 and 0.8.3: all 161 such values of a random ``(2, 3, 16, 16)`` batch).
    This function guards that branch.

    Args:
        encoded: sRGB-encoded values of any shape, nominally in [0, 1].

    Returns:
        Linear values, same shape, type and (floating) dtype.
    """
    x = _as_float(encoded)
    if is_tensor(x):
        import torch

        safe = torch.clamp(x, min=_SRGB_ENCODED_LIMIT)
        return torch.where(x <= _SRGB_ENCODED_LIMIT, x / 12.92, ((safe + 0.055) / 1.055) ** 2.4)
    safe = np.maximum(x, _SRGB_ENCODED_LIMIT)
    return np.where(x <= _SRGB_ENCODED_LIMIT, x / 12.92, ((safe + 0.055) / 1.055) ** 2.4).astype(x.dtype)


def gamma_encode(linear: Array, gamma: float = 2.2) -> Array:
    """Brooks et al. gamma compression: ``max(x, 1e-8) ** (1 / gamma)``.

    Args:
        linear: Linear values of any shape, nominally in [0, 1].
        gamma: The display gamma (2.2 in Brooks et al.).

    Returns:
        Encoded values, same shape, type and (floating) dtype.
    """
    x = _as_float(linear)
    if is_tensor(x):
        import torch

        return torch.clamp(x, min=_GAMMA_FLOOR) ** (1.0 / gamma)
    out = np.maximum(x, _GAMMA_FLOOR)
    if isinstance(out, np.ndarray):  # in place on the new array (a 0-d input gives a scalar)
        return np.power(out, 1.0 / gamma, out=out)
    return (out ** (1.0 / gamma)).astype(x.dtype)


def gamma_decode(encoded: Array, gamma: float = 2.2) -> Array:
    """Brooks et al. gamma expansion: ``max(x, 1e-8) ** gamma``.

    Args:
        encoded: Gamma-encoded values of any shape, nominally in [0, 1].
        gamma: The display gamma (2.2 in Brooks et al.).

    Returns:
        Linear values, same shape, type and (floating) dtype.
    """
    x = _as_float(encoded)
    if is_tensor(x):
        import torch

        return torch.clamp(x, min=_GAMMA_FLOOR) ** gamma
    out = np.maximum(x, _GAMMA_FLOOR)
    if isinstance(out, np.ndarray):  # in place on the new array (a 0-d input gives a scalar)
        return np.power(out, gamma, out=out)
    return (out**gamma).astype(x.dtype)


def _gamma_decode_inplace(x: np.ndarray, gamma: float = 2.2) -> np.ndarray:
    """In-place numpy :func:`gamma_decode` of a float32 or float64 array: ``exp(gamma * log(max(x, 1e-8)))``.

    The same values as ``max(x, 1e-8) ** gamma`` within a few units in the last place (the
    logarithm is at most 18.5 in size here), about 15 % faster than ``np.power``.

    Args:
        x: Writable float64 array; overwritten with the result.

    Returns:
        ``x`` itself.
    """
    np.maximum(x, _GAMMA_FLOOR, out=x)
    np.log(x, out=x)
    x *= gamma
    return np.exp(x, out=x)


def smoothstep(x: Array) -> Array:
    """Global tone curve ``3x^2 - 2x^3`` (maps [0, 1] onto [0, 1], monotone there).

    Args:
        x: Values of any shape, nominally in [0, 1] (not clipped).

    Returns:
        Tone-mapped values, same shape, type and (floating) dtype.
    """
    x = _as_float(x)
    return 3.0 * x * x - 2.0 * x * x * x


def inverse_smoothstep(y: Array) -> Array:
    """Inverse of :func:`smoothstep` on [0, 1]: ``0.5 - sin(asin(1 - 2y) / 3)``.

    The input is clipped to [0, 1] first, as in Brooks et al. The torch gradient is finite
    inside (0, 1) and infinite at the two end points (the curve is vertical there). numpy input
    is solved with arithmetic and one square root (:func:`_inverse_smoothstep_inplace`), within
    3e-16 (float64) or 1e-7 (float32; float16 is computed in float32) of the exact value, which
    is closer than the ``asin`` formula gets in float32 near 0 and 1.

    Args:
        y: Tone-mapped values of any shape.

    Returns:
        Values in [0, 1], same shape, type and (floating) dtype.
    """
    y = _as_float(y)
    if is_tensor(y):
        import torch

        y = torch.clamp(y, 0.0, 1.0)
        return 0.5 - torch.sin(torch.asin(1.0 - 2.0 * y) / 3.0)
    work = np.promote_types(y.dtype, np.float32)  # float16 is computed in float32
    out = _inverse_smoothstep_inplace(np.asarray(np.clip(y, 0.0, 1.0), dtype=work)).astype(y.dtype, copy=False)
    return out[()] if out.ndim == 0 else out  # a 0-d input gives a scalar, as numpy ufuncs do


#: Polynomial start ``v0(s)`` of :func:`_inverse_smoothstep_inplace` (max error 1.8e-4 on [0, sqrt(0.5)]).
_INV_SMOOTHSTEP_START = (0.57745352, 0.10706654, 0.08919238, -0.07968219, 0.14939607)


def _inverse_smoothstep_inplace(y: np.ndarray) -> np.ndarray:
    """In-place numpy :func:`inverse_smoothstep` of values already in [0, 1] (no clipping).

    Same values as ``0.5 - sin(asin(1 - 2y) / 3)`` to a few units in the last place of
    ``y``'s dtype, from arithmetic and one square root only, which is several times faster than
    the two transcendental functions. By symmetry ``x(y) = 1 - x(1 - y)`` it solves
    ``3x^2 - 2x^3 = u`` for ``u = min(y, 1 - y)`` in [0, 1/2]; writing ``x = s v`` with
    ``s = sqrt(u)`` gives ``v^2 (3 - 2 s v) = 1``, whose root ``v`` lies in ``[1/sqrt(3),
    1/sqrt(2)]`` and is well conditioned everywhere (the derivative ``6 v (1 - s v) >= 3 v``).
    A quartic in ``s`` starts it within 2e-4 and two Newton steps finish it (error squares each
    step: below 1e-15).

    Args:
        y: Writable numpy float array with values in [0, 1]; overwritten with the result.

    Returns:
        ``y`` itself.
    """
    upper = y > 0.5
    t = np.subtract(1.0, y)
    np.minimum(y, t, out=y)  # u = min(y, 1 - y); 1 - y is exact for y >= 1/2
    s = np.sqrt(y, out=y)
    c = _INV_SMOOTHSTEP_START
    v = np.multiply(s, c[-1])
    for coefficient in c[-2:0:-1]:  # Horner
        v += coefficient
        v *= s
    v += c[0]
    a = np.empty_like(v)
    for _ in range(2):  # Newton on F(v) = v^2 (3 - 2 s v) - 1, F'(v) = 6 v (1 - s v)
        np.multiply(s, v, out=t)
        np.multiply(t, -2.0, out=a)
        a += 3.0
        a *= v
        a *= v
        a -= 1.0
        np.subtract(1.0, t, out=t)
        t *= v
        t *= 6.0
        a /= t
        v -= a
    np.multiply(s, v, out=y)  # x' = x(u) in [0, 1/2]
    np.multiply(y, -2.0, out=t)  # x = x' + upper * (1 - 2 x'): x' below 1/2, 1 - x' above (no masked loops)
    t += 1.0
    t *= upper
    y += t
    return y


def _check_matrix(matrix: Array, name: str) -> None:
    if matrix.ndim < 2 or tuple(matrix.shape[-2:]) != (3, 3):
        raise RawSynthError(f"{name}: expected shape (3, 3) or (B, 3, 3), got {tuple(matrix.shape)}")


def rgb_to_cam_from_xyz_to_cam(xyz_to_cam: Array) -> Array:
    """Linear sRGB -> camera matrix from an XYZ -> camera matrix (DNG ``ColorMatrix``).

    ``rgb2cam = xyz2cam @ RGB_TO_XYZ`` with every row divided by its sum, so that sRGB white
    maps to camera white ``(1, 1, 1)`` (Brooks et al. 2019; simple-camera-pipeline).

    Args:
        xyz_to_cam: ``(3, 3)`` or batched ``(B, 3, 3)``, numpy or torch.

    Returns:
        ``rgb2cam`` of the same shape and type (numpy: float64).

    Raises:
        RawSynthError: On a wrong shape or a row that sums to (nearly) zero.
    """
    _check_matrix(xyz_to_cam, "xyz_to_cam")
    if is_tensor(xyz_to_cam):
        import torch

        m = _as_float(xyz_to_cam)
        rgb2xyz = torch.tensor(RGB_TO_XYZ, dtype=m.dtype, device=m.device)
        product = m @ rgb2xyz
    else:
        product = np.asarray(xyz_to_cam, dtype=np.float64) @ RGB_TO_XYZ
    sums = product.sum(-1, keepdims=True) if not is_tensor(product) else product.sum(-1, keepdim=True)
    if bool((abs(sums) < 1e-12).any()):
        raise RawSynthError("xyz_to_cam: a row of xyz_to_cam @ RGB_TO_XYZ sums to zero; cannot normalise")
    return product / sums


def cam_to_rgb_from_xyz_to_cam(xyz_to_cam: Array) -> Array:
    """Camera -> linear sRGB matrix from an XYZ -> camera matrix (DNG convention).

    The inverse of the row-normalised ``xyz2cam @ RGB_TO_XYZ`` (see
    :func:`rgb_to_cam_from_xyz_to_cam`). Rows of the result sum to 1, so camera white
    ``(1, 1, 1)`` (after white balance) maps to sRGB white.

    Args:
        xyz_to_cam: ``(3, 3)`` or batched ``(B, 3, 3)``, numpy or torch.

    Returns:
        ``cam2rgb`` of the same shape and type (numpy: float64).

    Raises:
        RawSynthError: On a wrong shape, a zero row sum or a singular matrix.
    """
    rgb2cam = rgb_to_cam_from_xyz_to_cam(xyz_to_cam)
    try:
        if is_tensor(rgb2cam):
            import torch

            return torch.linalg.inv(rgb2cam)
        return np.linalg.inv(rgb2cam)
    except (np.linalg.LinAlgError, RuntimeError) as exc:  # torch raises a RuntimeError subclass
        raise RawSynthError(f"xyz_to_cam: camera matrix is singular and cannot be inverted ({exc})") from None


def xyz_to_cam_from_rgb_to_cam(rgb_to_cam: np.ndarray) -> np.ndarray:
    """XYZ -> camera matrix (DNG ``ColorMatrix``) of a linear-sRGB -> camera matrix.

    ``rgb_to_cam @ inv(RGB_TO_XYZ)``: the inverse of :func:`rgb_to_cam_from_xyz_to_cam` for a
    ``rgb_to_cam`` whose rows sum to 1 (any other row scaling is undone by that normalisation).

    Args:
        rgb_to_cam: ``(3, 3)`` numpy matrix.

    Returns:
        ``(3, 3)`` float64 ``xyz_to_cam``.

    Raises:
        RawSynthError: On a wrong shape.
    """
    matrix = np.asarray(rgb_to_cam, dtype=np.float64)
    if matrix.shape != (3, 3):
        raise RawSynthError(f"rgb_to_cam: expected shape (3, 3), got {matrix.shape}")
    return matrix @ np.linalg.inv(RGB_TO_XYZ)


def apply_ccm(image: Array, ccm: Array) -> Array:
    """Apply a 3x3 colour matrix to every pixel: ``out_pixel = ccm @ in_pixel``.

    Args:
        image: torch ``(B, 3, H, W)`` (channels-first) or numpy ``(H, W, 3)`` (channels-last).
        ccm: torch ``(3, 3)`` or ``(B, 3, 3)`` (one matrix per sample) for torch images;
            numpy ``(3, 3)`` for numpy images.

    Returns:
        Image of the same shape and type. numpy output keeps the image's floating dtype
        (float64 for integer input); torch output has the image's dtype and device.

    Raises:
        RawSynthError: On mismatched types or shapes.
    """
    if is_tensor(image):
        import torch

        if image.ndim != 4 or image.shape[1] != 3:
            raise RawSynthError(f"image: expected torch shape (B, 3, H, W), got {tuple(image.shape)}")
        matrix = torch.as_tensor(ccm, dtype=image.dtype, device=image.device)
        if matrix.shape == (3, 3):
            return torch.einsum("ij,bjhw->bihw", matrix, image)
        if matrix.shape == (image.shape[0], 3, 3):
            return torch.einsum("bij,bjhw->bihw", matrix, image)
        raise RawSynthError(
            f"ccm: expected shape (3, 3) or ({image.shape[0]}, 3, 3), got {tuple(matrix.shape)}"
        )
    if is_tensor(ccm):
        raise RawSynthError("ccm: got a torch tensor for a numpy image; pass a numpy (3, 3) matrix")
    arr = _as_float(np.asarray(image))
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise RawSynthError(f"image: expected numpy shape (H, W, 3), got {tuple(arr.shape)}")
    matrix = np.asarray(ccm)
    if matrix.shape != (3, 3):
        raise RawSynthError(f"ccm: expected shape (3, 3), got {tuple(matrix.shape)}")
    return (arr @ matrix.T.astype(arr.dtype)).astype(arr.dtype)

