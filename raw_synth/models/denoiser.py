"""The 4-channel SSDNet RAW denoiser: the shared SSDNet body with a residual RAW head.

The network works on packed RAW ``(B, 4, h, w)`` (planes R, Gr, Gb, B of an RGGB-phase mosaic,
normalised ``(DN - black) / (white - black)``) and predicts a residual that is added to the input:

.. code-block:: text

    in   = noisy                                  (blind, 4 channels)
         | cat(noisy, sqrt(variance))             (conditioned, 8 channels)
    d1   = SSDNetBody(in)                         2 dim channels, h x w
    out  = noisy + conv3x3(d1)                    4 channels (conv initialised to zero)

The body (:class:`~raw_synth.models.body.SSDNetBody`: context-fusion U-Net and refinement stage)
is the inverse ISP's. A conditioned model receives the per-pixel noise *variance*
``shot * noisy + read`` and feeds its square root (the noise standard deviation, on the same
scale as the signal) to the network.

Presets: ``denoiser-paper`` (SSDNet sizes: dim 48, blocks 4/6/6/8, refinement 4, heads 1/2/4/8,
GDFN 2.66) and ``denoiser-tiny`` (trains in minutes on a 2-core CPU; the bundled checkpoint).

Example:
    >>> import torch
    >>> import raw_synth
    >>> model = raw_synth.create_model("denoiser-tiny", conditioned=True).eval()
    >>> noisy = torch.rand(1, 4, 20, 30)
    >>> with torch.inference_mode():
    ...     out = model.predict(noisy, 1e-3 * noisy + 1e-5)
    >>> tuple(out.shape)
    (1, 4, 20, 30)
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from raw_synth.errors import RawSynthError
from raw_synth.models.body import NETWORK_STRIDE, SSDNetBody, check_batch, check_stride, pad_to_multiple
from raw_synth.models.config import DenoiserConfig
from raw_synth.models.registry import list_models, model_entry, register_model

__all__ = ["SSDNetDenoiser", "DENOISER_PRESETS"]


def _check_packed(x: Any, name: str) -> None:
    check_batch(x, name, 4, "packed RAW", "(B, 4, h, w)")


def _check_variance(variance: Any, noisy: torch.Tensor) -> None:
    _check_packed(variance, "variance")
    if variance.shape != noisy.shape:
        raise RawSynthError(f"variance: shape {tuple(variance.shape)} differs from noisy {tuple(noisy.shape)}")


class SSDNetDenoiser(SSDNetBody):
    """Packed RAW denoiser: ``model(noisy, variance=None) -> denoised``, all ``(B, 4, h, w)``.

    Args:
        config: Hyper-parameters (default: ``denoiser-paper``, blind).

    Attributes:
        config: The :class:`~raw_synth.models.config.DenoiserConfig` (stored in checkpoints).
    """

    config_class = DenoiserConfig
    architecture = "ssdnet-denoiser"
    kind = "denoiser"
    config: DenoiserConfig

    def __init__(self, config: DenoiserConfig | None = None) -> None:
        super().__init__(config)
        self.output = nn.Conv2d(2 * self.config.dim, 4, 3, padding=1, bias=False)
        nn.init.zeros_(self.output.weight)  # a fresh model is the identity: training starts at the noisy input

    def _inputs(self, noisy: torch.Tensor, variance: torch.Tensor | None) -> torch.Tensor:
        _check_packed(noisy, "noisy")
        if not self.config.conditioned:
            return noisy
        if variance is None:
            raise RawSynthError(
                "variance: this denoiser is conditioned on the noise level; pass variance = shot * noisy + read")
        _check_variance(variance, noisy)
        return torch.cat([noisy, variance.clamp_min(0.0).sqrt()], dim=1)

    def forward(self, noisy: torch.Tensor, variance: torch.Tensor | None = None) -> torch.Tensor:
        """Denoise a batch.

        Args:
            noisy: ``(B, 4, h, w)`` float packed RAW (normalised), ``h`` and ``w`` divisible by 8.
            variance: ``(B, 4, h, w)`` noise variance ``shot * noisy + read`` (negative values are
                treated as 0); required by a conditioned model, ignored by a blind one.

        Returns:
            ``(B, 4, h, w)`` denoised RAW, not clamped.

        Raises:
            RawSynthError: Wrong shapes or dtypes, a missing variance, sizes not divisible by 8.
        """
        x = self._inputs(noisy, variance)
        check_stride(noisy, "noisy: height and width must be multiples of {stride} for forward(), got "
                            "{height}x{width} (use predict() for any size)")
        return noisy + self.output(self.features(x))

    def predict(self, noisy: torch.Tensor, variance: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`forward` on any size: reflect-pad bottom/right to a multiple of 8, crop back.

        Padding the packed planes keeps every plane's colour, so the Bayer semantics hold.
        Gradient and train/eval mode are the caller's choice.

        Args:
            noisy: ``(B, 4, h, w)``, any ``h, w >= 1``.
            variance: As in :meth:`forward`.

        Returns:
            ``(B, 4, h, w)`` denoised RAW, not clamped.
        """
        _check_packed(noisy, "noisy")
        padded, (height, width) = pad_to_multiple(noisy, NETWORK_STRIDE)
        var = None
        if self.config.conditioned and variance is not None:
            _check_variance(variance, noisy)
            var = pad_to_multiple(variance, NETWORK_STRIDE)[0]
        return self.forward(padded, var)[..., :height, :width]


@register_model(SSDNetDenoiser)
def denoiser_paper() -> DenoiserConfig:
    """SSDNet sizes: dim 48, blocks 4/6/6/8, refinement 4, heads 1/2/4/8, GDFN 2.66 (blind by default)."""
    return DenoiserConfig()


@register_model(SSDNetDenoiser)
def denoiser_tiny() -> DenoiserConfig:
    """Trains in minutes on a 2-core CPU; the bundled checkpoint's size.

    Level 1 works at dim 16 with one block; most of the depth sits at the cheaper lower resolutions.
    """
    return DenoiserConfig(dim=16, enc_blocks=(1, 1, 2, 2), dec_blocks=(1, 1, 1), refinement_blocks=0,
                          heads=(1, 2, 2, 4), ffn_factor=2.0, ffn="simple", kernel_size=5)


#: The denoiser presets' configs by name (a snapshot of the registry's ``denoiser`` kind).
DENOISER_PRESETS: dict[str, DenoiserConfig] = {
    name: cast(DenoiserConfig, model_entry(name).config) for name in list_models(kind=SSDNetDenoiser.kind)
}
