"""Reference denoisers for the SIDD report: identity and two classical variance-stabilised methods.

All work on packed RAW, numpy float ``(B, 4, h, w)`` (planes R, Gr, Gb, B, normalised) with the
per-plane noise level ``variance = shot * x + read``, and return the same shape, float32, in [0, 1].

* ``identity``: returns the noisy input (the score of doing nothing).
* ``anscombe-nlm``: per packed plane, the generalised Anscombe transform (Starck, Murtagh &
  Bijaoui 1998; Makitalo & Foi 2013) makes the Poisson-Gaussian noise of
  ``variance = shot * x + read`` approximately unit-variance Gaussian:

  .. math::

     z = \\frac{2}{a}\\sqrt{a x + \\tfrac{3}{8} a^2 + b}, \\qquad a = \\text{shot},\\ b = \\text{read},

  then :func:`skimage.restoration.denoise_nl_means` with ``sigma = 1`` (patch 5, search
  distance 6, ``h = 0.8``, fast mode) and the asymptotically unbiased inverse
  ``x = a (z^2 / 4 - 1/8) - b / a``. Where ``shot`` is negligible (``a^2 < 1e-9 b``) the noise is
  Gaussian and the transform is ``z = x / sqrt(b)``. A wavelet variant is not offered because
  ``skimage.restoration.denoise_wavelet`` needs PyWavelets, which raw-synth does not depend on.
* ``anscombe-bm3d``: the same forward transform per packed plane, then the 4 stabilised planes
  are decorrelated with the fixed orthonormal transform :data:`PLANE_TRANSFORM` (rows
  ``(R + Gr + Gb + B) / 2``, ``(R - B) / sqrt 2``, ``(R + B - Gr - Gb) / 2``, ``(Gr - Gb) / sqrt 2``;
  orthonormal, so the noise stays white with sigma 1 in every channel) and denoised jointly by
  ``bm3d.bm3d`` (bm3d 4.x, profile ``"np"``, both stages: hard thresholding, then Wiener
  filtering; block matching on the first channel, the luminance-like sum, as CBM3D does with its
  opponent colour space), transformed back and inverted per plane with the closed-form
  approximation of the exact unbiased inverse (:func:`anscombe_inverse_unbiased`). Planes smaller
  than 16 x 16 are mirror-padded for BM3D and cropped back.

Why these choices (measured on packed RAW of ``skimage.data.astronaut`` (two 128 x 128-per-plane
crops, linearised and mosaicked) and a 2x2-binned ColorChecker crop, Poisson-Gaussian noise
``shot/read = 8e-4/4e-6, 3e-3/4e-5, 1.2e-2/6e-4``, mean PSNR over the 9 cases): NL-means 37.74 dB;
BM3D per plane 38.67 dB (profile ``np``, both stages; the best per-plane setting), jointly on the
decorrelated planes 39.13 dB (``np``, both stages; ``lc`` 38.98, ``high`` hard thresholding only
38.93, ``vn`` 38.92). ``high`` with hard thresholding only won 4 of the 9 cases (all three at the
lowest noise level, by 0.09-0.20 dB) but lost up to 1.55 dB at the highest; the ``refilter``
profile fails in bm3d 4.0.3 with a scalar sigma. The closed-form unbiased inverse beat
the asymptotic one by +0.001 dB on average there (at those levels ``sqrt(read) / shot`` is about 2,
where both inverses agree) and by +0.01 / +0.10 dB (astronaut / ColorChecker) with little read
noise (``shot/read = 1.2e-2/1e-6``), where the asymptotic inverse overestimates dark values (see
:func:`anscombe_inverse_unbiased`). BM3D takes about 100x the time of NL-means (a few seconds per
128 x 128 x 4 block on one busy 2-core machine), so ``eval-sidd`` runs it only when asked
(``--model anscombe-bm3d``). Most of that is a fixed cost of bm3d's exact-variance computation
for correlated noise (profile ``nf = 32``): ``nf = 16`` was 3x faster but 0.03 dB worse on average
(0.17 dB on the ColorChecker at the highest noise), so the profile is left as it is.

Optional packages: NL-means needs scikit-image (``pip install "raw-synth[nlm]"``), BM3D needs bm3d
(``pip install "raw-synth[bm3d]"``). Both are imported only when the method runs; a missing one
raises :class:`MissingPackageError` (a :class:`~raw_synth.errors.RawSynthError`) with a one-line
message, and :func:`require_package` checks up front.

Example:
    >>> import numpy as np
    >>> x = np.full((1, 4, 32, 32), 0.3, np.float32)
    >>> out = BASELINES["identity"](x, np.full(4, 1e-3), np.full(4, 1e-5))
    >>> bool((out == x).all())
    True
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from raw_synth.errors import RawSynthError

__all__ = [
    "BlockDenoiser",
    "BASELINES",
    "BASELINE_DESCRIPTIONS",
    "BM3D_BASELINE",
    "BM3D_MIN_SIZE",
    "BM3D_SETTINGS",
    "CLASSICAL_BASELINE",
    "MissingPackageError",
    "NLM_SETTINGS",
    "OPTIONAL_PACKAGES",
    "PLANE_TRANSFORM",
    "anscombe_forward",
    "anscombe_inverse",
    "anscombe_inverse_unbiased",
    "identity_denoise",
    "nlm_plane",
    "anscombe_nlm_denoise",
    "bm3d_planes",
    "anscombe_bm3d_denoise",
    "require_package",
]

logger = logging.getLogger(__name__)

#: ``fn(noisy (B, 4, h, w) float32, shot (4,), read (4,)) -> (B, 4, h, w) float32 in [0, 1]``.
BlockDenoiser = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

#: Name of the classical baseline that ``eval-sidd`` scores by default.
CLASSICAL_BASELINE = "anscombe-nlm"

#: Name of the BM3D method (optional extra ``bm3d``).
BM3D_BASELINE = "anscombe-bm3d"

#: Settings of the NL-means step (in the variance-stabilised domain, noise sigma 1).
NLM_SETTINGS: dict[str, float] = {"patch_size": 5, "patch_distance": 6, "h": 0.8, "sigma": 1.0}

#: Settings of the BM3D step (in the variance-stabilised domain, noise sigma 1 in every channel):
#: the bm3d profile name, the stages (``"all"``: hard thresholding then Wiener filtering) and
#: whether the 4 planes are denoised jointly after :data:`PLANE_TRANSFORM`.
BM3D_SETTINGS: dict[str, Any] = {"profile": "np", "stages": "all", "joint": True}

#: Smallest plane side given to bm3d: bm3d 4.0.3 crashes the interpreter (segmentation fault) on
#: an 8 x 8 image and refuses anything smaller than its 8 x 8 blocks, so smaller planes are
#: mirror-padded to this size first.
BM3D_MIN_SIZE = 16

_SQRT_HALF = float(np.sqrt(0.5))

#: Orthonormal decorrelating transform of the stabilised planes (R, Gr, Gb, B), ``(4, 4)``; rows:
#: luminance-like sum, red - blue, red + blue - greens, green - green. Its inverse is its transpose.
PLANE_TRANSFORM: np.ndarray = np.array([
    [0.5, 0.5, 0.5, 0.5],
    [_SQRT_HALF, 0.0, 0.0, -_SQRT_HALF],
    [0.5, -0.5, -0.5, 0.5],
    [0.0, _SQRT_HALF, -_SQRT_HALF, 0.0],
])
PLANE_TRANSFORM.setflags(write=False)

#: Optional packages of the classical methods: ``name -> (module to import, pip package, extra)``.
OPTIONAL_PACKAGES: dict[str, tuple[str, str, str]] = {
    CLASSICAL_BASELINE: ("skimage.restoration", "scikit-image", "nlm"),
    BM3D_BASELINE: ("bm3d", "bm3d", "bm3d"),
}

_GAUSSIAN_RATIO = 1e-9  # shot^2 below this times read: treat the noise as Gaussian
_SQRT_3_2 = float(np.sqrt(1.5))
_UNBIASED_MIN_Z = 2.0 * float(np.sqrt(0.375))  # E[z] of a zero Poisson count: the inverse is 0 there


class MissingPackageError(RawSynthError):
    """A method needs an optional package that is not installed (one-line message with the fix)."""


def require_package(method: str) -> ModuleType:
    """Import the optional package that ``method`` needs.

    Args:
        method: a name in :data:`OPTIONAL_PACKAGES` (``anscombe-nlm``, ``anscombe-bm3d``).

    Returns:
        The imported module (``skimage.restoration`` or ``bm3d``).

    Raises:
        MissingPackageError: if it cannot be imported, e.g.
            ``--model anscombe-bm3d: needs the optional 'bm3d' package: pip install "raw-synth[bm3d]"``.
        KeyError: if ``method`` needs no optional package.
    """
    module, package, extra = OPTIONAL_PACKAGES[method]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        logger.debug("import %s failed: %s", module, exc)
        raise MissingPackageError(
            f"--model {method}: needs the optional '{package}' package: pip install \"raw-synth[{extra}]\"") from exc


def _check(noisy: np.ndarray, shot: np.ndarray, read: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(noisy)
    if x.ndim != 4 or x.shape[1] != 4:
        raise RawSynthError(f"noisy: expected packed RAW (B, 4, h, w), got shape {x.shape}")
    s = np.asarray(shot, dtype=np.float64).reshape(-1)
    r = np.asarray(read, dtype=np.float64).reshape(-1)
    if s.shape != (4,) or r.shape != (4,):
        raise RawSynthError(f"shot/read: expected 4 values each (R, Gr, Gb, B), got {s.shape} and {r.shape}")
    if not (np.isfinite(s).all() and np.isfinite(r).all()) or (s < 0).any() or (r < 0).any():
        raise RawSynthError(f"shot/read: must be finite and >= 0, got {s.tolist()} and {r.tolist()}")
    if ((s == 0) & (r == 0)).any():
        raise RawSynthError("shot/read: a plane has zero noise (shot = read = 0); nothing to stabilise")
    return x, s, r


def _is_gaussian(shot: float, read: float) -> bool:
    return shot * shot < _GAUSSIAN_RATIO * read


def anscombe_forward(x: np.ndarray, shot: float, read: float) -> np.ndarray:
    """Generalised Anscombe transform of one plane (see the module docstring).

    Args:
        x: values of noise level ``variance = shot * x + read`` (any shape).
        shot: ``a >= 0``.
        read: ``b >= 0`` (``a + b > 0``).

    Returns:
        float64 array of the same shape whose noise is about unit-variance Gaussian.
    """
    arr = np.asarray(x, dtype=np.float64)
    if _is_gaussian(shot, read):
        return arr / np.sqrt(read)
    return (2.0 / shot) * np.sqrt(np.maximum(shot * arr + 0.375 * shot * shot + read, 0.0))


def anscombe_inverse(z: np.ndarray, shot: float, read: float) -> np.ndarray:
    """Asymptotically unbiased inverse of :func:`anscombe_forward`.

    ``x = a (z^2 / 4 - 1/8) - b / a`` (``z >= 0``), or ``x = z sqrt(b)`` in the Gaussian case.

    Returns:
        float64 array of the same shape.
    """
    arr = np.asarray(z, dtype=np.float64)
    if _is_gaussian(shot, read):
        return arr * np.sqrt(read)
    arr = np.maximum(arr, 0.0)
    return shot * (arr * arr / 4.0 - 0.125) - read / shot


def anscombe_inverse_unbiased(z: np.ndarray, shot: float, read: float) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse of :func:`anscombe_forward`.

    A denoiser estimates ``E[z]``, not ``f(E[x])``; the exact unbiased inverse maps ``E[z]`` back
    to ``x`` (Makitalo & Foi, IEEE TIP 20(1), 2011). In photon units ``y = x / a``,
    ``s^2 = b / a^2`` the closed-form approximation (the Poisson one of Makitalo & Foi, IEEE TIP
    20(9), 2011, minus ``s^2`` for the Gaussian part as in their generalised version, IEEE TIP
    22(1), 2013) is

    .. math::

       y = \\tfrac{1}{4} D^2 + \\tfrac{1}{4}\\sqrt{\\tfrac{3}{2}} D^{-1} - \\tfrac{11}{8} D^{-2}
           + \\tfrac{5}{8}\\sqrt{\\tfrac{3}{2}} D^{-3} - \\tfrac{1}{8} - s^2,

    with ``D = max(z, 2 sqrt(3/8))`` (the ``E[z]`` of a zero count, where the formula is 0 and
    increasing) and ``y`` clamped at 0; then ``x = a y``. Checked here against the exact inverse
    computed by quadrature (tests/test_baselines_bm3d.py): within 0.05 photons for ``y`` in
    [0.1, 100] and ``s`` in [0, 4], where the asymptotic inverse is off by up to 0.22 at low
    counts and small ``s``. In the Gaussian case (``a^2 < 1e-9 b``) it is ``x = z sqrt(b)``.

    Args:
        z: denoised stabilised values (any shape).
        shot: ``a >= 0``.
        read: ``b >= 0`` (``a + b > 0``).

    Returns:
        float64 array of the same shape (``>= 0`` unless Gaussian).
    """
    arr = np.asarray(z, dtype=np.float64)
    if _is_gaussian(shot, read):
        return arr * np.sqrt(read)
    d = np.maximum(arr, _UNBIASED_MIN_Z)
    y = (d * d / 4.0 + (_SQRT_3_2 / 4.0) / d - (11.0 / 8.0) / d**2 + (5.0 / 8.0) * _SQRT_3_2 / d**3
         - 0.125 - read / (shot * shot))
    return shot * np.maximum(y, 0.0)


def identity_denoise(noisy: np.ndarray, shot: np.ndarray, read: np.ndarray) -> np.ndarray:
    """Return the noisy input (float32 copy); ``shot`` and ``read`` are ignored."""
    x = np.asarray(noisy)
    if x.ndim != 4 or x.shape[1] != 4:
        raise RawSynthError(f"noisy: expected packed RAW (B, 4, h, w), got shape {x.shape}")
    return np.array(x, dtype=np.float32, copy=True)


# ============================================================================ NL-means


def nlm_plane(plane: np.ndarray, shot: float, read: float) -> np.ndarray:
    """Variance-stabilised NL-means of one packed plane ``(h, w)``; returns float64 ``(h, w)``.

    Raises:
        MissingPackageError: without scikit-image.
    """
    restoration = require_package(CLASSICAL_BASELINE)
    z = anscombe_forward(plane, shot, read)
    size = int(NLM_SETTINGS["patch_size"])
    if min(z.shape) < size:
        return np.asarray(plane, dtype=np.float64).copy()
    den = restoration.denoise_nl_means(z, patch_size=size, patch_distance=int(NLM_SETTINGS["patch_distance"]),
                                       h=NLM_SETTINGS["h"], sigma=NLM_SETTINGS["sigma"], fast_mode=True,
                                       preserve_range=True)
    return anscombe_inverse(den, shot, read)


def anscombe_nlm_denoise(noisy: np.ndarray, shot: np.ndarray, read: np.ndarray) -> np.ndarray:
    """The classical baseline: generalised Anscombe + NL-means + inverse, per packed plane.

    Args:
        noisy: ``(B, 4, h, w)`` packed RAW, normalised.
        shot: ``(4,)`` per-plane shot coefficient (``>= 0``).
        read: ``(4,)`` per-plane read coefficient (``>= 0``; not both zero in a plane).

    Returns:
        float32 ``(B, 4, h, w)`` clipped to [0, 1].

    Raises:
        RawSynthError: on a wrong shape or an invalid noise level.
        MissingPackageError: without scikit-image.
    """
    x, s, r = _check(noisy, shot, read)
    require_package(CLASSICAL_BASELINE)
    out = np.empty(x.shape, dtype=np.float32)
    for b in range(x.shape[0]):
        for c in range(4):
            out[b, c] = nlm_plane(x[b, c], float(s[c]), float(r[c]))
    return np.clip(out, 0.0, 1.0)


# ============================================================================ BM3D


def bm3d_planes(z: np.ndarray) -> np.ndarray:
    """BM3D of 4 variance-stabilised planes with unit-variance white noise, as :data:`BM3D_SETTINGS` says.

    Args:
        z: float ``(4, h, w)`` stabilised planes R, Gr, Gb, B (any ``h, w >= 1``).

    Returns:
        float64 ``(4, h, w)``, the denoised stabilised planes.

    Raises:
        MissingPackageError: without bm3d.
    """
    bm3d = require_package(BM3D_BASELINE)
    planes = np.asarray(z, dtype=np.float64)
    h, w = planes.shape[-2:]
    pad_h, pad_w = max(BM3D_MIN_SIZE - h, 0), max(BM3D_MIN_SIZE - w, 0)
    if pad_h or pad_w:
        planes = np.pad(planes, ((0, 0), (0, pad_h), (0, pad_w)), mode="symmetric")
    profile = BM3D_SETTINGS["profile"]
    stages = bm3d.BM3DStages.ALL_STAGES if BM3D_SETTINGS["stages"] == "all" else bm3d.BM3DStages.HARD_THRESHOLDING
    if BM3D_SETTINGS["joint"]:
        channels = np.einsum("ij,jhw->hwi", PLANE_TRANSFORM, planes)  # (h, w, 4), block matching on channel 0
        den = np.asarray(bm3d.bm3d(channels, [1.0] * 4, profile, stages), dtype=np.float64)
        out = np.einsum("ji,hwj->ihw", PLANE_TRANSFORM, den)  # the transpose is the inverse
    else:
        out = np.stack([np.asarray(bm3d.bm3d(p, 1.0, profile, stages), dtype=np.float64) for p in planes])
    return out[:, :h, :w]


def anscombe_bm3d_denoise(noisy: np.ndarray, shot: np.ndarray, read: np.ndarray) -> np.ndarray:
    """Generalised Anscombe per plane + joint BM3D of the decorrelated planes + unbiased inverse.

    See the module docstring for the exact steps and why.

    Args:
        noisy: ``(B, 4, h, w)`` packed RAW, normalised.
        shot: ``(4,)`` per-plane shot coefficient (``>= 0``).
        read: ``(4,)`` per-plane read coefficient (``>= 0``; not both zero in a plane).

    Returns:
        float32 ``(B, 4, h, w)`` clipped to [0, 1].

    Raises:
        RawSynthError: on a wrong shape or an invalid noise level.
        MissingPackageError: without bm3d.
    """
    x, s, r = _check(noisy, shot, read)
    require_package(BM3D_BASELINE)
    out = np.empty(x.shape, dtype=np.float32)
    for b in range(x.shape[0]):
        z = np.stack([anscombe_forward(x[b, c], float(s[c]), float(r[c])) for c in range(4)])
        den = bm3d_planes(z)
        for c in range(4):
            out[b, c] = anscombe_inverse_unbiased(den[c], float(s[c]), float(r[c]))
    return np.clip(out, 0.0, 1.0)


#: The built-in methods, by name.
BASELINES: dict[str, BlockDenoiser] = {
    "identity": identity_denoise,
    CLASSICAL_BASELINE: anscombe_nlm_denoise,
    BM3D_BASELINE: anscombe_bm3d_denoise,
}

#: One-line descriptions for the report.
BASELINE_DESCRIPTIONS: dict[str, str] = {
    "identity": "noisy input, no denoising",
    CLASSICAL_BASELINE: "generalised Anscombe + scikit-image NL-means (patch 5, distance 6, h 0.8) per packed plane",
    BM3D_BASELINE: ("generalised Anscombe per packed plane, orthonormal 4-plane decorrelation, joint BM3D "
                    "(bm3d 'np' profile, hard thresholding + Wiener), closed-form unbiased inverse (Makitalo & Foi)"),
}
