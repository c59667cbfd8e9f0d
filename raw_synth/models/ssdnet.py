"""SSDNet: the learned inverse ISP (sRGB -> packed RAW) with a variance head, and test-time helpers.

Architecture (Zou & Zhang, "Learned Reverse ISP with Soft Supervision", ECCVW 2022), with
``C = config.dim``:

.. code-block:: text

    x (B,3,H,W) -> conv3x3 3->3 -> conv3x3 3->C
      enc1 [C]  -> Down -> enc2 [2C] -> Down -> enc3 [4C] -> Down -> latent [8C]
      latent -> Up -> cat(enc3) -> 1x1 8C->4C -> dec3 [4C]
             -> Up -> cat(enc2) -> 1x1 4C->2C -> dec2 [2C]
             -> Up -> cat(enc1)               -> dec1 [2C] -> refinement [2C]
      y_r = x + gelu(conv3x3 2C->3)                       (refined RGB, (B,3,H,W))
      mu    = clamp(PixelUnshuffle2(conv3x3 3->1 (y_r)), 0, 1)                    (B,4,H/2,W/2)
      sigma = clamp(PixelUnshuffle2(conv3x3 2C->1 (CFM^n(gelu(conv3x3 3->2C (y_r))))), 0, 1)

The network predicts a one-channel full-resolution mosaic and packs it with PixelUnshuffle(2),
whose channel order is the tile positions (0,0), (0,1), (1,0), (1,1). For an RGGB mosaic these
are R, Gr, Gb, B, the library's canonical packed order: **the model predicts an RGGB-phase
mosaic aligned with the input's pixel grid**, i.e. ``mu == cfa.pack(mosaic, "RGGB")``.
A camera with another native pattern is trained on unified (RGGB-phase) data.

Inputs to :meth:`SSDNet.forward` must have ``H`` and ``W`` divisible by 8 (three 2x
down-samplings); :meth:`SSDNet.predict` takes any even size by reflect-padding the bottom/right
to a multiple of 16 (as the released inference script) and cropping back, which keeps the Bayer
phase.
"""

from __future__ import annotations

from typing import Callable, cast

import torch
import torch.nn.functional as F
from torch import nn

from raw_synth.cfa import pack, unpack
from raw_synth.errors import RawSynthError
from raw_synth.models.body import NETWORK_STRIDE, SSDNetBody, check_batch, check_stride, pad_to_multiple
from raw_synth.models.config import SSDNetConfig
from raw_synth.models.registry import list_models, model_entry, register_model

__all__ = ["SSDNet", "PRESETS", "pad_to_multiple", "test_resample", "self_ensemble_x8"]

#: Padding multiple of the released inference script.
INFERENCE_MULTIPLE = 16


def _check_rgb(x: torch.Tensor, name: str) -> None:
    check_batch(x, name, 3, "RGB", "(B, 3, H, W)", " in [0, 1]")


def _check_even(x: torch.Tensor, name: str) -> None:
    height, width = x.shape[-2:]
    if height % 2 or width % 2:
        raise RawSynthError(f"{name}: height and width must be even for a Bayer mosaic, got {height}x{width}")


class SSDNet(SSDNetBody):
    """SSDNet inverse ISP: sRGB ``(B, 3, H, W)`` in [0, 1] -> packed RGGB RAW ``(B, 4, H/2, W/2)``.

    The shared :class:`~raw_synth.models.body.SSDNetBody` with a 3x3 RGB stem in front and the
    mean/variance heads behind.

    Args:
        config: Hyper-parameters; defaults to the released model (``ssdnet-paper``).

    Attributes:
        config: The :class:`~raw_synth.models.config.SSDNetConfig` the model was built from
            (store it with checkpoints: ``config.to_dict()``).
    """

    config_class = SSDNetConfig
    architecture = "ssdnet"
    kind = "ssdnet-isp"
    config: SSDNetConfig

    def __init__(self, config: SSDNetConfig | None = None) -> None:
        super().__init__(config, stem=nn.Conv2d(3, 3, 3, padding=1, bias=False))
        cfg, dim = self.config, self.config.dim
        self.to_rgb = nn.Sequential(nn.Conv2d(2 * dim, 3, 3, padding=1, bias=False), nn.GELU())
        self.mean_head = nn.Sequential(nn.Conv2d(3, 1, 3, padding=1, bias=False), nn.PixelUnshuffle(2))

        self.sigma_head: nn.Sequential | None = None
        if cfg.sigma_head:
            self.sigma_head = nn.Sequential(
                nn.Conv2d(3, 2 * dim, 3, padding=1, bias=False),
                nn.GELU(),
                *self.stage(2 * dim, 1, cfg.sigma_blocks),
                nn.Conv2d(2 * dim, 1, 3, padding=1, bias=False),
                nn.PixelUnshuffle(2),
            )

    def refined_rgb(self, x: torch.Tensor) -> torch.Tensor:
        """Return the U-Net's refined RGB ``y_r = x + gelu(conv(features))``, ``(B, 3, H, W)``.

        Args:
            x: RGB ``(B, 3, H, W)``, ``H`` and ``W`` divisible by 8.
        """
        return self.to_rgb(self.features(x)) + x

    def forward(self, x: torch.Tensor, with_sigma: bool = True) -> dict[str, torch.Tensor | None]:
        """Predict the packed RAW and, optionally, its per-pixel error scale.

        Args:
            x: sRGB ``(B, 3, H, W)`` float in [0, 1] (not checked), ``H`` and ``W`` divisible by 8.
            with_sigma: Also run the variance head (ignored, giving ``None``, when the model has
                none). Skip it at inference to save time.

        Returns:
            ``{"mu": (B, 4, H/2, W/2), "sigma": (B, 4, H/2, W/2) or None}``, both clamped to
            [0, 1], planes in R, Gr, Gb, B order (RGGB phase of the input grid).

        Raises:
            RawSynthError: On a wrong shape or dtype, or ``H``/``W`` not divisible by 8.
        """
        _check_rgb(x, "x")
        check_stride(x, "x: height and width must be multiples of {stride} for SSDNet.forward, got "
                        "{height}x{width} (use SSDNet.predict for any even size)")
        rgb = self.refined_rgb(x)
        mu = self.mean_head(rgb).clamp(0.0, 1.0)
        sigma = None
        if with_sigma and self.sigma_head is not None:
            sigma = self.sigma_head(rgb).clamp(0.0, 1.0)
        return {"mu": mu, "sigma": sigma}

    def predict(
        self, x: torch.Tensor, with_sigma: bool = False, multiple: int = INFERENCE_MULTIPLE
    ) -> dict[str, torch.Tensor | None]:
        """Run :meth:`forward` on any even-sized input by padding and cropping back.

        The bottom and right edges are reflect-padded to a multiple of ``multiple`` (16, as the
        released inference script), which keeps the Bayer phase; outputs are cropped to
        ``(H/2, W/2)``. Gradient mode and train/eval mode are the caller's choice (wrap in
        ``torch.inference_mode()`` and call ``eval()`` for inference).

        Args:
            x: sRGB ``(B, 3, H, W)`` float in [0, 1], even ``H`` and ``W``.
            with_sigma: Also return the variance head's output.
            multiple: Padding multiple; must be a multiple of 8.

        Returns:
            ``{"mu": (B, 4, H/2, W/2), "sigma": (B, 4, H/2, W/2) or None}``.

        Raises:
            RawSynthError: On a wrong shape or dtype, odd ``H`` or ``W``, or a bad ``multiple``.
        """
        _check_rgb(x, "x")
        _check_even(x, "x")
        if not isinstance(multiple, int) or multiple < 1 or multiple % NETWORK_STRIDE:
            raise RawSynthError(f"multiple must be a positive multiple of {NETWORK_STRIDE}, got {multiple!r}")
        padded, (height, width) = pad_to_multiple(x, multiple)
        out = self.forward(padded, with_sigma=with_sigma)
        return {key: None if value is None else value[..., : height // 2, : width // 2] for key, value in out.items()}


def test_resample(
    model: SSDNet,
    x: torch.Tensor,
    n_samples: int = 50,
    generator: torch.Generator | None = None,
    clamp: bool = True,
) -> torch.Tensor:
    """Test-time resampling: the mean of ``n_samples`` draws ``mu + sigma * z``, ``z ~ N(0, 1)``.

    Draw ``i`` is ``torch.randn(mu.shape, generator=generator)`` (on ``mu``'s device and dtype),
    taken in order ``i = 0 .. n_samples-1``, so a seeded generator makes the result reproducible.
    The paper reports +0.7 dB on AIM22 S7 with 50 samples. Runs :meth:`SSDNet.predict`, so any
    even size works; gradient and eval mode are the caller's.

    Args:
        model: An SSDNet with a variance head.
        x: sRGB ``(B, 3, H, W)`` in [0, 1], even ``H`` and ``W``.
        n_samples: Number of draws, >= 1 (paper: 50).
        generator: Random generator on ``x``'s device, or ``None`` for the global one.
        clamp: Clamp the average to [0, 1] (the packed-RAW range).

    Returns:
        Packed RAW ``(B, 4, H/2, W/2)``.

    Raises:
        RawSynthError: If the model has no variance head or ``n_samples`` < 1.
    """
    if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 1:
        raise RawSynthError(f"n_samples must be a positive integer, got {n_samples!r}")
    out = model.predict(x, with_sigma=True)
    mu, sigma = cast(torch.Tensor, out["mu"]), out["sigma"]
    if sigma is None:
        raise RawSynthError("model: test-time resampling needs a variance head (built with sigma_head=True)")
    total = torch.zeros_like(mu)
    for _ in range(n_samples):
        z = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        total = total + (mu + sigma * z)
    mean = total / n_samples
    return mean.clamp(0.0, 1.0) if clamp else mean


test_resample.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name


# The eight symmetries of the square as (transpose, flip rows, flip columns), applied in that order.
_DIHEDRAL: tuple[tuple[bool, bool, bool], ...] = tuple(
    (t, r, c) for t in (False, True) for r in (False, True) for c in (False, True)
)


def _transform(x: torch.Tensor, transpose: bool, flip_rows: bool, flip_cols: bool) -> torch.Tensor:
    out = x.transpose(-2, -1) if transpose else x
    dims = [d for d, flag in ((-2, flip_rows), (-1, flip_cols)) if flag]
    return out.flip(dims) if dims else out


def _inverse_transform(x: torch.Tensor, transpose: bool, flip_rows: bool, flip_cols: bool) -> torch.Tensor:
    dims = [d for d, flag in ((-2, flip_rows), (-1, flip_cols)) if flag]
    out = x.flip(dims) if dims else x
    return out.transpose(-2, -1) if transpose else out


def self_ensemble_x8(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Bayer-phase-aware x8 self-ensemble of an sRGB -> packed-RGGB predictor.

    ``fn`` predicts the RGGB mosaic *of the grid it is given*. Flipping an even-sized image
    moves every pixel to a position of the other parity along that axis, so a plain
    flip/predict/unflip would put G values on R sites. Here, along every axis that a transform
    reverses, the input is first reflect-padded by one pixel on both sides: the reversed
    position of original pixel ``i`` is then ``n - i`` with ``n`` even, which has ``i``'s
    parity. Each prediction is unpacked to its full-resolution mosaic, transformed back,
    cropped to the original grid and re-packed in RGGB order; the eight results are averaged.
    A transpose keeps R and B sites but swaps the roles of Gr and Gb (harmless for a camera
    whose two greens match).

    For a predictor that commutes with the dihedral group (e.g. plain CFA sampling of the
    input) the result equals ``fn(x)`` exactly.

    Args:
        fn: Maps ``(B, 3, h, w)`` (even ``h, w``, here ``h, w`` in ``{H, W, H+2, W+2}``) to
            ``(B, 4, h/2, w/2)``, e.g. ``lambda t: model.predict(t)["mu"]``.
        x: sRGB ``(B, 3, H, W)``, even ``H`` and ``W`` >= 2.

    Returns:
        Averaged packed RAW ``(B, 4, H/2, W/2)``.

    Raises:
        RawSynthError: On a bad input shape or when ``fn`` returns a wrong shape.
    """
    _check_rgb(x, "x")
    _check_even(x, "x")
    height, width = x.shape[-2:]
    total: torch.Tensor | None = None
    for transpose, flip_rows, flip_cols in _DIHEDRAL:
        # Which axes of the original image end up reversed.
        reverse_rows = flip_cols if transpose else flip_rows
        reverse_cols = flip_rows if transpose else flip_cols
        pad_r, pad_c = int(reverse_rows), int(reverse_cols)
        padded = F.pad(x, (pad_c, pad_c, pad_r, pad_r), mode="reflect") if pad_r or pad_c else x
        moved = _transform(padded, transpose, flip_rows, flip_cols)
        pred = fn(moved)
        expected = (x.shape[0], 4, moved.shape[-2] // 2, moved.shape[-1] // 2)
        if not isinstance(pred, torch.Tensor) or tuple(pred.shape) != expected:
            got = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__
            raise RawSynthError(f"fn: expected a packed output of shape {expected}, got {got}")
        mosaic = _inverse_transform(unpack(pred, "RGGB"), transpose, flip_rows, flip_cols)
        packed = pack(mosaic[..., pad_r : pad_r + height, pad_c : pad_c + width], "RGGB")
        total = packed if total is None else total + packed
    assert total is not None
    return total / len(_DIHEDRAL)


@register_model(SSDNet)
def ssdnet_paper() -> SSDNetConfig:
    """The released SSDNet: dim 48, blocks 4/6/6/8, refinement 4, heads 1/2/4/8, GDFN 2.66; 36.24M parameters.

    35.56M in the mean path and 0.68M in the variance head; bias-free LayerNorm.
    """
    return SSDNetConfig()


@register_model(SSDNet)
def small() -> SSDNetConfig:
    """A narrower, shallower network for training on one GPU (dim 32, blocks 2/3/3/4)."""
    return SSDNetConfig(dim=32, enc_blocks=(2, 3, 3, 4), dec_blocks=(2, 3, 3), refinement_blocks=2,
                        heads=(1, 2, 4, 8), sigma_blocks=2)


@register_model(SSDNet)
def tiny() -> SSDNetConfig:
    """Sized for CPU inference on a laptop (>= 1 megapixel/s on 2 cores); the test-suite's model.

    At full resolution only the first encoder block runs (4 channels); decoder level 1 and the
    refinement stage are empty.
    """
    return SSDNetConfig(dim=4, enc_blocks=(1, 1, 1, 1), dec_blocks=(0, 1, 1), refinement_blocks=0,
                        heads=(1, 1, 2, 4), ffn_factor=2.0, ffn="simple", sigma_blocks=1)


#: The inverse-ISP presets' configs by name (a snapshot of the registry's ``ssdnet-isp`` kind).
PRESETS: dict[str, SSDNetConfig] = {
    name: cast(SSDNetConfig, model_entry(name).config) for name in list_models(kind=SSDNet.kind)
}
