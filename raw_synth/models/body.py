"""The shared SSDNet body: a U-Net of context-fusion blocks that every task head builds on.

With ``C = config.dim`` and ``in`` the task's input channels:

.. code-block:: text

    x (B,in,H,W) -> [stem] -> conv3x3 in->C
      enc1 [C]  -> Down -> enc2 [2C] -> Down -> enc3 [4C] -> Down -> latent [8C]
      latent -> Up -> cat(enc3) -> 1x1 8C->4C -> dec3 [4C]
             -> Up -> cat(enc2) -> 1x1 4C->2C -> dec2 [2C]
             -> Up -> cat(enc1)               -> dec1 [2C] -> refinement [2C]   (B,2C,H,W)

A task model subclasses :class:`SSDNetBody`, passes its config (and an optional stem) to
``__init__`` and adds its heads after it; :meth:`SSDNetBody.features` runs the body. The
submodule names are the checkpoints' tensor names, so they stay as they are.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from raw_synth.errors import RawSynthError
from raw_synth.models.blocks import Downsample, PointwiseConv, TransformerBlock, Upsample
from raw_synth.models.config import SSDNetBodyConfig

__all__ = ["NETWORK_STRIDE", "SSDNetBody", "check_batch", "check_stride", "pad_to_multiple"]

#: Total down-sampling factor of the U-Net; the body needs H and W divisible by it.
NETWORK_STRIDE = 8

ModelT = TypeVar("ModelT", bound="SSDNetBody")


class SSDNetBody(nn.Module):
    """The SSDNet U-Net: ``(B, in, H, W)`` -> features ``(B, 2C, H, W)``; base of the task models.

    A subclass sets the class attributes below (the registry and checkpoints read them), calls
    ``super().__init__(config, stem)`` and builds its heads.

    Args:
        config: Hyper-parameters, an instance of the class's :attr:`config_class` (``None``: its
            defaults); ``config.in_channels`` channels enter the embedding conv (after ``stem``).
        stem: Optional module applied to the input before the embedding; it is registered first,
            so the parameter order (and an optimizer state saved with it) is the task's own.

    Attributes:
        config: The config the model was built from (checkpoints store ``config.to_dict()``).
    """

    #: The config dataclass of the task.
    config_class: ClassVar[type[SSDNetBodyConfig]] = SSDNetBodyConfig
    #: Architecture name stored in (and resolved from) checkpoint metadata.
    architecture: ClassVar[str] = ""
    #: What the model does, as checkpoints say it: ``"ssdnet-isp"`` or ``"denoiser"``.
    kind: ClassVar[str] = ""

    def __init__(self, config: SSDNetBodyConfig | None = None, stem: nn.Module | None = None) -> None:
        super().__init__()
        cfg = config if config is not None else self.config_class()
        if not isinstance(cfg, self.config_class):
            raise RawSynthError(f"config: expected a {self.config_class.__name__}, got {type(cfg).__name__}")
        self.config = cfg
        dim = cfg.dim
        self.stem = stem
        self.embed = nn.Conv2d(cfg.in_channels, dim, 3, padding=1, bias=False)
        self.enc1 = self.stage(dim, cfg.heads[0], cfg.enc_blocks[0])
        self.down12 = Downsample(dim)
        self.enc2 = self.stage(2 * dim, cfg.heads[1], cfg.enc_blocks[1])
        self.down23 = Downsample(2 * dim)
        self.enc3 = self.stage(4 * dim, cfg.heads[2], cfg.enc_blocks[2])
        self.down34 = Downsample(4 * dim)
        self.latent = self.stage(8 * dim, cfg.heads[3], cfg.enc_blocks[3])

        self.up43 = Upsample(8 * dim)
        self.reduce3 = PointwiseConv(8 * dim, 4 * dim, bias=cfg.bias)
        self.dec3 = self.stage(4 * dim, cfg.heads[2], cfg.dec_blocks[2])
        self.up32 = Upsample(4 * dim)
        self.reduce2 = PointwiseConv(4 * dim, 2 * dim, bias=cfg.bias)
        self.dec2 = self.stage(2 * dim, cfg.heads[1], cfg.dec_blocks[1])
        self.up21 = Upsample(2 * dim)
        self.dec1 = self.stage(2 * dim, cfg.heads[0], cfg.dec_blocks[0])
        self.refinement = self.stage(2 * dim, cfg.heads[0], cfg.refinement_blocks)

    @classmethod
    def from_config(cls: type[ModelT], config: dict[str, Any]) -> ModelT:
        """Build the model from a config dict as checkpoints store it (freshly initialised).

        Raises:
            RawSynthError: On an unknown field or an invalid value.
        """
        return cls(cls.config_class.from_dict(config))

    def stage(self, channels: int, heads: int, count: int) -> nn.Sequential:
        """``count`` context-fusion blocks of ``channels`` channels, configured as the body's."""
        cfg = self.config
        return nn.Sequential(*[
            TransformerBlock(
                channels,
                heads,
                ffn_factor=cfg.ffn_factor,
                bias=cfg.bias,
                layernorm=cfg.layernorm,  # type: ignore[arg-type]
                ffn=cfg.ffn,  # type: ignore[arg-type]
                kernel_size=cfg.kernel_size,
            )
            for _ in range(count)
        ])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Run the stem (if any) and the U-Net.

        Args:
            x: ``(B, in, H, W)``, ``H`` and ``W`` divisible by :data:`NETWORK_STRIDE` (not checked).

        Returns:
            Features ``(B, 2C, H, W)`` after the refinement stage.
        """
        if self.stem is not None:
            x = self.stem(x)
        feat1 = self.enc1(self.embed(x))
        feat2 = self.enc2(self.down12(feat1))
        feat3 = self.enc3(self.down23(feat2))
        out = self.latent(self.down34(feat3))
        out = self.dec3(self.reduce3(torch.cat([self.up43(out), feat3], dim=1)))
        out = self.dec2(self.reduce2(torch.cat([self.up32(out), feat2], dim=1)))
        out = self.dec1(torch.cat([self.up21(out), feat1], dim=1))
        return self.refinement(out)

    def num_parameters(self) -> int:
        """Number of parameters (works on the meta device too)."""
        return sum(p.numel() for p in self.parameters())


def check_batch(x: Any, name: str, channels: int, what: str, shape: str, value_range: str = "") -> None:
    """Refuse anything but a float tensor ``(B, channels, H, W)``: the task models' input check.

    Args:
        x: The input.
        name: Its name in the errors, e.g. ``"noisy"``.
        channels: Required channel count.
        what: What it holds, e.g. ``"packed RAW"``.
        shape: Its shape as the errors write it, e.g. ``"(B, 4, h, w)"``.
        value_range: Written after "float tensor", e.g. ``" in [0, 1]"``.

    Raises:
        RawSynthError: ``"NAME: expected WHAT of shape SHAPE, got (...)"`` and the like.
    """
    if not isinstance(x, torch.Tensor):
        raise RawSynthError(f"{name}: expected a torch tensor {shape}, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != channels:
        raise RawSynthError(f"{name}: expected {what} of shape {shape}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise RawSynthError(f"{name}: expected a float tensor{value_range}, got dtype {x.dtype}")


def check_stride(x: torch.Tensor, message: str) -> None:
    """Refuse a ``(..., H, W)`` tensor whose ``H`` or ``W`` is not a multiple of :data:`NETWORK_STRIDE`.

    Raises:
        RawSynthError: ``message`` formatted with ``stride``, ``height`` and ``width``.
    """
    height, width = x.shape[-2:]
    if height % NETWORK_STRIDE or width % NETWORK_STRIDE:
        raise RawSynthError(message.format(stride=NETWORK_STRIDE, height=height, width=width))


def pad_to_multiple(
    x: torch.Tensor, multiple: int = 16, mode: str = "reflect"
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom and right of ``(..., H, W)`` up to multiples of ``multiple``.

    Reflection is used where the image is large enough (padding < size); a smaller image falls
    back to edge replication along that axis, so any size works. Padding only the bottom/right
    keeps the position (and so the Bayer phase) of every original pixel.

    Args:
        x: Tensor ``(B, C, H, W)`` (any float dtype).
        multiple: Target multiple, >= 1.
        mode: ``"reflect"`` or ``"replicate"``.

    Returns:
        ``(padded, (H, W))``: the padded tensor (``x`` itself when no padding is needed; never
        modified) and the original size, to crop back with ``padded[..., :H, :W]``.

    Raises:
        RawSynthError: On a non-4D tensor, a bad multiple or an unknown mode.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise RawSynthError(f"x: expected a tensor (B, C, H, W), got {getattr(x, 'shape', type(x).__name__)}")
    if not isinstance(multiple, int) or multiple < 1:
        raise RawSynthError(f"multiple must be a positive integer, got {multiple!r}")
    if mode not in ("reflect", "replicate"):
        raise RawSynthError(f"mode must be 'reflect' or 'replicate', got {mode!r}")
    height, width = x.shape[-2:]
    pad_h = -height % multiple
    pad_w = -width % multiple
    out = x
    if pad_h:
        out = F.pad(out, (0, 0, 0, pad_h), mode=mode if pad_h < height else "replicate")
    if pad_w:
        out = F.pad(out, (0, pad_w, 0, 0), mode=mode if pad_w < width else "replicate")
    return out, (height, width)
