"""Physics-based sensor noise (ELD, Wei et al., CVPR 2020 / TPAMI 2021), plus Tukey-lambda helpers.

Formation model, in DN, for a clean normalised packed image ``x``:

    D = K * Poisson(x * (white - black) / K)     photon shot noise, system gain K (DN/electron)
      + N_read                                   read noise: Gaussian N(0, s^2), or Tukey-lambda
                                                 TL(lambda) scaled by s (heavy tails)
      + N_row                                    row noise N(0, sigma_r^2), one value per mosaic row
      + bias[c]                                  per-plane black-level error (DN)
      + F[c, i, j]                               optional fixed-pattern (dark shading) map (DN)
    raw = round(black + D)                       quantisation to integer DN (optional)
    raw = clip(raw, 0, white)                    sensor range (optional)
    noisy = (raw - black) / (white - black)

Row noise is shared by every pixel of a row of the *full-resolution mosaic*. In a packed image
the planes R and Gr come from the same mosaic rows (Gr is, by definition, the green on red's
rows) and so do Gb and B, whatever the native CFA phase: packed row ``i`` of R and Gr gets one
value and packed row ``i`` of Gb and B gets another, independent one.

Equivalent noise level (normalised units): ``shot = K / (white - black)`` and
``read = (Var(N_read) + sigma_r^2 + 1/12) / (white - black)^2``, where ``1/12`` is the
quantisation variance (only when quantising; exact when the noise spans several DN) and
``Var(N_read) = s^2`` (Gaussian) or ``s^2 * tukey_lambda_variance(lambda)``. The bias and the
fixed pattern are deterministic offsets and are not part of ``read``. The equivalents hold away
from clipping.

Tukey-lambda: quantile function ``Q(u) = (u^l - (1 - u)^l) / l`` (logistic ``ln(u / (1 - u))`` at
``l = 0``); variance ``2 / l^2 * (1 / (1 + 2 l) - Gamma(l + 1)^2 / Gamma(2 l + 2))``, ``pi^2 / 3`` at
``l = 0``, finite only for ``l > -1/2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Union

import numpy as np

from raw_synth.errors import RawSynthError
from raw_synth.lazy_torch import is_tensor
from raw_synth.noise._base import (
    ROW_GROUP,
    Array,
    NoiseResult,
    PerPlane,
    PerSample,
    RandomSource,
    check_levels,
    check_packed,
    check_per_plane,
    check_per_sample,
    numpy_rng,
    per_plane_np,
    per_plane_t,
    per_sample_np,
    per_sample_t,
    to_numpy_values,
    torch_generator,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "PhysicsParams",
    "apply",
    "equivalent_read_dn2",
    "tukey_lambda_ppf",
    "tukey_lambda_variance",
    "sample_tukey_lambda",
]

ReadModel = Literal["gaussian", "tukey"]

_LAMBDA_ZERO = 1e-8  # |lambda| below this is the logistic limit in the quantile function
_VAR_SERIES = 0.05  # |lambda| below this: variance by series (the closed form cancels)
_SERIES_TERMS = 40  # (2 * 0.05) ** 40 = 1e-40
_U_MIN = 2.0**-54  # smallest uniform draw (keeps Q finite for lambda <= 0)


# ----------------------------------------------------------------------------- Tukey-lambda


def tukey_lambda_ppf(u: Array, lam: Union[float, Array]) -> Array:
    """Quantile function of the standard Tukey-lambda distribution.

    Args:
        u: probabilities in ``(0, 1)``, numpy array or torch tensor (any shape).
        lam: shape ``lambda``; a float, or an array/tensor broadcastable against ``u``.

    Returns:
        ``Q(u) = (u^lam - (1 - u)^lam) / lam``, or ``ln(u / (1 - u))`` where ``lam == 0``, same
        kind and shape as ``u`` (float64 for numpy).
    """
    if is_tensor(u):
        import torch

        lam_t = torch.as_tensor(lam, dtype=u.dtype, device=u.device)
        small = lam_t.abs() < _LAMBDA_ZERO
        safe = torch.where(small, torch.ones_like(lam_t), lam_t)
        log_u, log_v = torch.log(u), torch.log1p(-u)
        general = (torch.expm1(safe * log_u) - torch.expm1(safe * log_v)) / safe
        return torch.where(small, log_u - log_v, general)
    u64 = np.asarray(u, dtype=np.float64)
    lam_a = np.asarray(lam, dtype=np.float64)
    small = np.abs(lam_a) < _LAMBDA_ZERO
    safe = np.where(small, 1.0, lam_a)
    log_u, log_v = np.log(u64), np.log1p(-u64)
    general = (np.expm1(safe * log_u) - np.expm1(safe * log_v)) / safe
    return np.where(small, log_u - log_v, general)


def _tukey_var_series(lam: float) -> float:
    """Variance for small ``|lam|`` without cancellation.

    With ``Gamma(2 l + 2) = (1 + 2 l) Gamma(1 + 2 l)`` the variance is
    ``-2 expm1(E) / (l^2 (1 + 2 l))`` with ``E = 2 lnGamma(1 + l) - lnGamma(1 + 2 l)``. The series
    ``lnGamma(1 + z) = -euler_gamma z + sum_k zeta(k) (-z)^k / k`` makes the linear terms cancel
    exactly: ``E = sum_{k>=2} (-1)^k zeta(k) (2 - 2^k) l^k / k`` (converges for ``|l| < 1/2``).
    """
    from scipy.special import zeta  # here, not at the top: only the Tukey read model near lambda 0 needs scipy

    e = 0.0
    for k in range(_SERIES_TERMS, 1, -1):
        e += (-1) ** k * float(zeta(k)) * (2.0 - 2.0**k) * lam**k / k
    return -2.0 * math.expm1(e) / (lam * lam * (1.0 + 2.0 * lam)) if lam != 0.0 else math.pi**2 / 3.0


def tukey_lambda_variance(lam: float) -> float:
    """Variance of the standard Tukey-lambda distribution (scale 1).

    Args:
        lam: shape, ``> -0.5`` (the variance is infinite below).

    Returns:
        ``2 / lam^2 * (1 / (1 + 2 lam) - Gamma(lam + 1)^2 / Gamma(2 lam + 2))``; ``pi^2 / 3`` at 0
        (evaluated by a series near 0, where the closed form cancels).

    Raises:
        RawSynthError: if ``lam <= -0.5`` or is not finite.
    """
    lam = float(lam)
    if not math.isfinite(lam) or lam <= -0.5:
        raise RawSynthError(f"tukey_lambda: must be > -0.5 for a finite variance, got {lam}")
    if abs(lam) < _VAR_SERIES:
        return _tukey_var_series(lam)
    ratio = math.exp(2.0 * math.lgamma(lam + 1.0) - math.lgamma(2.0 * lam + 2.0))
    return 2.0 / lam**2 * (1.0 / (1.0 + 2.0 * lam) - ratio)


def sample_tukey_lambda(
    shape: tuple[int, ...], lam: float, scale: float = 1.0, rng: RandomSource = None
) -> np.ndarray:
    """Draw Tukey-lambda variates by inverse CDF.

    Args:
        shape: output shape.
        lam: shape parameter (any finite value; the variance is finite only for ``lam > -0.5``).
        scale: multiplies the standard variates.
        rng: numpy ``Generator`` or integer seed.

    Returns:
        float64 array of ``shape``: ``scale * Q(u)``, ``u ~ U(0, 1)``.
    """
    gen = numpy_rng(rng)
    u = np.maximum(gen.random(shape), _U_MIN)
    return scale * tukey_lambda_ppf(u, lam)


# ----------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class PhysicsParams:
    """Parameters of the physics-based model (all noise magnitudes in DN).

    Per-plane fields take a scalar, 4 values (R, Gr, Gb, B) or, for a torch batch, ``(B, 4)``.
    Per-sample fields take a scalar or, for a torch batch, ``(B,)``.

    Attributes:
        gain: system gain ``K``, DN per electron, ``> 0`` (per plane).
        read_scale: read-noise scale in DN, ``>= 0`` (per plane): the standard deviation of the
            Gaussian, or the Tukey-lambda scale ``sigma_TL``.
        black: black level in DN (per plane), ``>= 0``.
        white: white level in DN (per plane), ``black < white <= 65535``.
        read_model: ``"gaussian"`` or ``"tukey"``.
        tukey_lambda: Tukey-lambda shape (per sample), ``> -0.5``; used when ``read_model`` is
            ``"tukey"``.
        row_scale: row-noise standard deviation in DN (per sample), ``>= 0``; 0 disables it.
        bias: per-plane black-level error in DN added to every pixel (any sign).
        fixed_pattern: optional dark-shading map in DN, ``(4, h, w)`` matching the image (torch:
            also ``(B, 4, h, w)``), added to every pixel.
        quantize: round to integer DN.
        clip: clip the DN to ``[0, white]``, i.e. normalised ``[-black / (white - black), 1]``.
    """

    gain: PerPlane
    read_scale: PerPlane
    black: PerPlane
    white: PerPlane
    read_model: ReadModel = "gaussian"
    tukey_lambda: PerSample = 0.0
    row_scale: PerSample = 0.0
    bias: PerPlane = 0.0
    fixed_pattern: Union[np.ndarray, torch.Tensor, None] = field(default=None, compare=False)
    quantize: bool = True
    clip: bool = True

    def __post_init__(self) -> None:
        check_per_plane(self.gain, "gain", minimum=0.0, strict=True)
        check_per_plane(self.read_scale, "read_scale", minimum=0.0)
        check_levels(self.black, self.white)
        if self.read_model not in ("gaussian", "tukey"):
            raise RawSynthError(f"read_model: expected 'gaussian' or 'tukey', got {self.read_model!r}")
        check_per_sample(self.tukey_lambda, "tukey_lambda", minimum=-0.5, strict=True)
        check_per_sample(self.row_scale, "row_scale", minimum=0.0)
        check_per_plane(self.bias, "bias")
        if self.fixed_pattern is not None:
            fp = self.fixed_pattern
            if not (isinstance(fp, np.ndarray) or is_tensor(fp)):
                raise RawSynthError(f"fixed_pattern: expected a numpy array or torch tensor, got {type(fp).__name__}")
            if fp.ndim not in (3, 4) or fp.shape[-3] != 4:
                raise RawSynthError(f"fixed_pattern: expected shape (4, h, w) or (B, 4, h, w), got {tuple(fp.shape)}")
            to_numpy_values(fp, "fixed_pattern")
        for name in ("quantize", "clip"):
            if not isinstance(getattr(self, name), bool):
                raise RawSynthError(f"{name}: expected a bool, got {type(getattr(self, name)).__name__}")

    @classmethod
    def from_noise_level(
        cls,
        shot: PerPlane,
        read: PerPlane,
        black: PerPlane,
        white: PerPlane,
        quantize: bool = True,
        clip: bool = True,
    ) -> "PhysicsParams":
        """Gaussian-read physics parameters (no row noise) with equivalent noise ``(shot, read)``.

        ``gain = shot * (white - black)``; ``read_scale = sqrt(read * (white - black)^2 - 1/12)``
        when quantising (floored at 0, so a read level under one quantisation step is raised to
        it), else ``sqrt(read) * (white - black)``. Scalars or 4 values.
        """
        s = per_plane_np(shot, "shot")
        r = per_plane_np(read, "read")
        if np.any(s <= 0.0) or np.any(r < 0.0):
            raise RawSynthError(f"shot/read: need shot > 0 and read >= 0, got {s.tolist()}, {r.tolist()}")
        scale = per_plane_np(white, "white") - per_plane_np(black, "black")
        read_dn2 = r * scale**2 - (1.0 / 12.0 if quantize else 0.0)
        return cls(
            gain=tuple((s * scale).tolist()),
            read_scale=tuple(np.sqrt(np.maximum(read_dn2, 0.0)).tolist()),
            black=black,
            white=white,
            read_model="gaussian",
            quantize=quantize,
            clip=clip,
        )


def equivalent_read_dn2(params: PhysicsParams) -> np.ndarray:
    """Total signal-independent noise variance in DN^2: read + row + quantisation.

    Args:
        params: physics parameters.

    Returns:
        float64 array, ``(4,)`` for scalar/4-value parameters, ``(B, 4)`` when any per-plane or
        per-sample parameter is batched.
    """
    read = to_numpy_values(params.read_scale, "read_scale")
    var = read**2
    if params.read_model == "tukey":
        lam = to_numpy_values(params.tukey_lambda, "tukey_lambda")
        tl = np.vectorize(tukey_lambda_variance, otypes=[np.float64])(lam)
        var = var * (tl if tl.ndim == 0 else tl[:, None])
    row = to_numpy_values(params.row_scale, "row_scale")
    var = var + (row**2 if row.ndim == 0 else row[:, None] ** 2)
    if params.quantize:
        var = var + 1.0 / 12.0
    return np.broadcast_to(var, np.broadcast_shapes(np.shape(var), (4,))).copy()


def apply(x: Array, params: PhysicsParams, rng: RandomSource = None) -> NoiseResult:
    """Add physics-based sensor noise to a packed RAW image.

    Args:
        x: clean packed RAW, normalised; numpy float ``(4, h, w)`` or torch float ``(B, 4, h, w)``.
            Not modified. Negative values give zero electrons.
        params: the noise parameters.
        rng: numpy ``Generator`` for numpy input, torch ``Generator`` (on ``x``'s device) for
            torch input, or an integer seed; ``None`` draws fresh entropy.

    Returns:
        ``NoiseResult(noisy, shot, read)``: ``noisy`` float32 like ``x``, normalised; with
        ``quantize`` it maps exactly to integer DN (see :func:`raw_synth.noise.to_dn`). ``shot``
        and ``read`` float32 ``(4,)`` (numpy) or ``(B, 4)`` (torch), the equivalent noise level.

    Raises:
        RawSynthError: on a wrongly shaped input, parameter or generator.
    """
    if not isinstance(params, PhysicsParams):
        raise RawSynthError(f"params: expected PhysicsParams, got {type(params).__name__}")
    if check_packed(x):
        return _apply_torch(x, params, rng)
    gen = numpy_rng(rng)
    gain = per_plane_np(params.gain, "gain")
    read_scale = per_plane_np(params.read_scale, "read_scale")
    black = per_plane_np(params.black, "black")
    white = per_plane_np(params.white, "white")
    bias = per_plane_np(params.bias, "bias")
    lam = per_sample_np(params.tukey_lambda, "tukey_lambda")
    row = per_sample_np(params.row_scale, "row_scale")
    scale = white - black
    col = (slice(None), None, None)
    _, h, w = x.shape

    electrons = np.maximum(np.asarray(x, dtype=np.float64) * (scale / gain)[col], 0.0)
    dn = gain[col] * gen.poisson(electrons)
    if params.read_model == "tukey":
        dn += read_scale[col] * sample_tukey_lambda(dn.shape, lam, 1.0, gen)
    else:
        dn += read_scale[col] * gen.standard_normal(dn.shape)
    if row > 0.0:
        dn += (row * gen.standard_normal((2, h, 1)))[list(ROW_GROUP)]
    dn += (bias + black)[col]
    if params.fixed_pattern is not None:
        fp = params.fixed_pattern
        fp = fp.detach().cpu().numpy() if is_tensor(fp) else fp
        if fp.shape != x.shape:
            raise RawSynthError(f"fixed_pattern: shape {tuple(fp.shape)} does not match the image {x.shape}")
        dn += fp
    if params.quantize:
        np.rint(dn, out=dn)
    if params.clip:
        np.clip(dn, 0.0, white[col], out=dn)
    noisy = ((dn - black[col]) / scale[col]).astype(np.float32)
    shot = (gain / scale).astype(np.float32)
    read = (equivalent_read_dn2(params) / scale**2).astype(np.float32)
    return NoiseResult(noisy, shot, read)


def _apply_torch(x: torch.Tensor, params: PhysicsParams, rng: RandomSource) -> NoiseResult:
    import torch  # x is a tensor: torch is loaded already

    batch, device = x.shape[0], x.device
    gen = torch_generator(rng, device)
    gain = per_plane_t(params.gain, batch, "gain", device)
    read_scale = per_plane_t(params.read_scale, batch, "read_scale", device)
    black = per_plane_t(params.black, batch, "black", device)
    white = per_plane_t(params.white, batch, "white", device)
    bias = per_plane_t(params.bias, batch, "bias", device)
    lam = per_sample_t(params.tukey_lambda, batch, "tukey_lambda", device)
    row = per_sample_t(params.row_scale, batch, "row_scale", device).to(torch.float32)
    scale = white - black
    g, r, b, wl, s = (v[:, :, None, None] for v in (gain, read_scale, black, white, scale))
    _, _, h, w = x.shape

    electrons = (x.to(torch.float32) * (s / g)).clamp_min(0.0)
    dn = g * torch.poisson(electrons, generator=gen)
    if params.read_model == "tukey":
        u = torch.rand(dn.shape, generator=gen, device=device, dtype=torch.float64).clamp_min(_U_MIN)
        dn = dn + r * tukey_lambda_ppf(u, lam[:, None, None, None]).to(torch.float32)
    else:
        dn = dn + r * torch.randn(dn.shape, generator=gen, device=device, dtype=torch.float32)
    if bool((row > 0).any()):
        rows = torch.randn((batch, 2, h, 1), generator=gen, device=device, dtype=torch.float32)
        index = torch.tensor(ROW_GROUP, device=device)
        dn = dn + (row[:, None, None, None] * rows).index_select(1, index)
    dn = dn + (bias[:, :, None, None] + b)
    if params.fixed_pattern is not None:
        fp = torch.as_tensor(params.fixed_pattern, dtype=torch.float32, device=device)
        if fp.shape not in (x.shape, x.shape[1:]):
            raise RawSynthError(f"fixed_pattern: shape {tuple(fp.shape)} does not match the image {tuple(x.shape)}")
        dn = dn + fp
    if params.quantize:
        dn = torch.round(dn)
    if params.clip:
        dn = torch.minimum(dn.clamp_min(0.0), wl)
    noisy = (dn - b) / s
    read_dn2 = torch.as_tensor(equivalent_read_dn2(params), dtype=torch.float32, device=device)
    read = read_dn2.expand(batch, 4) / scale**2
    return NoiseResult(noisy, gain / scale, read.contiguous())
