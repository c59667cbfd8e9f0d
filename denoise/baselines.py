"""Reference denoisers for the SIDD report: identity and a classical variance-stabilised NL-means.

Both work on packed RAW, numpy float ``(B, 4, h, w)`` (planes R, Gr, Gb, B, normalised) with the
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

Example:
    >>> import numpy as np
    >>> x = np.full((1, 4, 32, 32), 0.3, np.float32)
    >>> out = BASELINES["identity"](x, np.full(4, 1e-3), np.full(4, 1e-5))
    >>> bool((out == x).all())
    True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from skimage.restoration import denoise_nl_means

from raw_synth.errors import RawSynthError

__all__ = [
    "BlockDenoiser",
    "BASELINES",
    "BASELINE_DESCRIPTIONS",
    "CLASSICAL_BASELINE",
    "NLM_SETTINGS",
    "anscombe_forward",
    "anscombe_inverse",
    "identity_denoise",
    "nlm_plane",
    "anscombe_nlm_denoise",
]

#: ``fn(noisy (B, 4, h, w) float32, shot (4,), read (4,)) -> (B, 4, h, w) float32 in [0, 1]``.
BlockDenoiser = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

#: Settings of the NL-means step (in the variance-stabilised domain, noise sigma 1).
NLM_SETTINGS: dict[str, float] = {"patch_size": 5, "patch_distance": 6, "h": 0.8, "sigma": 1.0}

_GAUSSIAN_RATIO = 1e-9  # shot^2 below this times read: treat the noise as Gaussian


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


def identity_denoise(noisy: np.ndarray, shot: np.ndarray, read: np.ndarray) -> np.ndarray:
    """Return the noisy input (float32 copy); ``shot`` and ``read`` are ignored."""
    x = np.asarray(noisy)
    if x.ndim != 4 or x.shape[1] != 4:
        raise RawSynthError(f"noisy: expected packed RAW (B, 4, h, w), got shape {x.shape}")
    return np.array(x, dtype=np.float32, copy=True)


def nlm_plane(plane: np.ndarray, shot: float, read: float) -> np.ndarray:
    """Variance-stabilised NL-means of one packed plane ``(h, w)``; returns float64 ``(h, w)``."""
    z = anscombe_forward(plane, shot, read)
    size = int(NLM_SETTINGS["patch_size"])
    if min(z.shape) < size:
        return np.asarray(plane, dtype=np.float64).copy()
    den = denoise_nl_means(z, patch_size=size, patch_distance=int(NLM_SETTINGS["patch_distance"]),
                           h=NLM_SETTINGS["h"], sigma=NLM_SETTINGS["sigma"], fast_mode=True, preserve_range=True)
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
    """
    x, s, r = _check(noisy, shot, read)
    out = np.empty(x.shape, dtype=np.float32)
    for b in range(x.shape[0]):
        for c in range(4):
            out[b, c] = nlm_plane(x[b, c], float(s[c]), float(r[c]))
    return np.clip(out, 0.0, 1.0)


#: Name of the classical baseline.
CLASSICAL_BASELINE = "anscombe-nlm"

#: The built-in methods, by name.
BASELINES: dict[str, BlockDenoiser] = {
    "identity": identity_denoise,
    CLASSICAL_BASELINE: anscombe_nlm_denoise,
}

#: One-line descriptions for the report.
BASELINE_DESCRIPTIONS: dict[str, str] = {
    "identity": "noisy input, no denoising",
    CLASSICAL_BASELINE: "generalised Anscombe + scikit-image NL-means (patch 5, distance 6, h 0.8) per packed plane",
}
