"""Soft-supervision losses for training SSDNet (paper Sec. 3.2, Eq. 4).

All functions take packed RAW tensors ``(B, 4, h, w)`` (any shape works as long as the three
agree) in [0, 1] and return a scalar tensor, the mean over all elements.

Training resampling (Eq. 4). With the prediction ``mu``, the variance head's output ``sigma``
and the ground truth ``gt``:

.. code-block:: text

    e_gt = |mu - gt|                       per-element error
    x_rp = gt + z * e_gt,  z ~ N(0, 1)     a target resampled from N(gt, e_gt)
    L    = mean|mu - x_rp| + alpha * mean|sigma - e_gt|,   alpha = 1e-3

Choices where the released code differs from the paper (facts 1.3); this module follows the paper:

* **sigma is compared with e_gt**, not with ``gt``. The released ``SSL1LossTrain`` regresses
  ``sigma`` onto the ground-truth image, which would make the variance head predict the image,
  contradicting both the paper and the test-time use ``mu + sigma * z``.
* **No clamping.** The released code clamps every absolute error into ``[1/1024, 1]``. That
  zeroes the gradient of every error below one 10-bit code (AIM22 data is 10-bit), which is
  wrong for the 12-14-bit sensors raw-synth targets and biases the loss; without it the loss is
  exactly Eq. 4.
* **e_gt is detached by default** (``detach_error=True``): ``x_rp`` is a *target* sampled
  from ``N(gt, e_gt)``, so no gradient flows through it. The released code does not detach;
  then ``|mu - gt - z|mu - gt|| = |mu - gt| * |1 - z*sign(mu - gt)|`` and the resampling only
  reweights a plain L1 by a random positive factor, never moving the target. Pass
  ``detach_error=False`` to reproduce the released behaviour of the main term. In the auxiliary
  term ``e_gt`` is always a detached target (the variance head must not pull ``mu``).
* ``z`` is drawn as ``torch.randn(mu.shape, generator=generator, device=mu.device,
  dtype=mu.dtype)``, so a seeded generator reproduces the loss exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from raw_synth.errors import RawSynthError

__all__ = ["l1_loss", "resampling_loss", "L1Loss", "ResamplingLoss"]

#: Weight of the variance-head term in Eq. 4 (paper value).
DEFAULT_ALPHA = 1e-3


def _check_pair(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    for value, name in ((a, name_a), (b, name_b)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            kind = getattr(value, "dtype", type(value).__name__)
            raise RawSynthError(f"{name}: expected a float tensor, got {kind}")
    if a.shape != b.shape:
        raise RawSynthError(f"{name_b}: shape {tuple(b.shape)} does not match {name_a} shape {tuple(a.shape)}")


def l1_loss(mu: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean absolute error ``mean|mu - gt|`` (plain supervision).

    Args:
        mu: Prediction, e.g. packed RAW ``(B, 4, h, w)``.
        gt: Ground truth of the same shape.

    Returns:
        Scalar tensor.

    Raises:
        RawSynthError: On non-float inputs or mismatched shapes.
    """
    _check_pair(mu, gt, "mu", "gt")
    return (mu - gt).abs().mean()


def resampling_loss(
    mu: torch.Tensor,
    sigma: torch.Tensor,
    gt: torch.Tensor,
    alpha: float = DEFAULT_ALPHA,
    generator: torch.Generator | None = None,
    detach_error: bool = True,
) -> torch.Tensor:
    """Training-resampling soft-supervision loss, paper Eq. 4 (see the module docstring).

    ``L = mean|mu - (gt + z * e_gt)| + alpha * mean|sigma - e_gt|`` with ``e_gt = |mu - gt|`` and
    ``z = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)``.

    Args:
        mu: Predicted packed RAW ``(B, 4, h, w)``.
        sigma: Variance-head output, same shape.
        gt: Ground-truth packed RAW, same shape.
        alpha: Weight of the variance term, >= 0 (paper: 1e-3).
        generator: Random generator on ``mu``'s device, or ``None`` for the global one.
        detach_error: Treat ``e_gt`` as a constant in the main term (paper reading, default);
            ``False`` lets gradients flow through it as the released code does.

    Returns:
        Scalar tensor.

    Raises:
        RawSynthError: On missing ``sigma``, non-float inputs, mismatched shapes or negative
            ``alpha``.
    """
    if sigma is None:
        raise RawSynthError("sigma: the resampling loss needs the variance head's output (got None)")
    _check_pair(mu, gt, "mu", "gt")
    _check_pair(mu, sigma, "mu", "sigma")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0:
        raise RawSynthError(f"alpha must be a non-negative number, got {alpha!r}")
    error = (mu - gt).abs()
    target_error = error.detach()
    z = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    resampled = gt + z * (target_error if detach_error else error)
    return (mu - resampled).abs().mean() + alpha * (sigma - target_error).abs().mean()


class L1Loss(nn.Module):
    """Module form of :func:`l1_loss`."""

    def forward(self, mu: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """Return ``mean|mu - gt|``."""
        return l1_loss(mu, gt)


class ResamplingLoss(nn.Module):
    """Module form of :func:`resampling_loss`.

    Args:
        alpha: Weight of the variance term (paper: 1e-3).
        detach_error: See :func:`resampling_loss`.
    """

    def __init__(self, alpha: float = DEFAULT_ALPHA, detach_error: bool = True) -> None:
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0:
            raise RawSynthError(f"alpha must be a non-negative number, got {alpha!r}")
        self.alpha = float(alpha)
        self.detach_error = detach_error

    def forward(
        self,
        mu: torch.Tensor,
        sigma: torch.Tensor,
        gt: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Return the Eq. 4 loss of ``mu``/``sigma`` against ``gt`` (all ``(B, 4, h, w)``)."""
        return resampling_loss(mu, sigma, gt, self.alpha, generator, self.detach_error)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, detach_error={self.detach_error}"
