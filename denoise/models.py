"""The 4-channel SSDNet RAW denoiser: a Restormer-style U-Net of context-fusion blocks.

The network works on packed RAW ``(B, 4, h, w)`` (planes R, Gr, Gb, B of an RGGB-phase mosaic,
normalised ``(DN - black) / (white - black)``) and predicts a residual that is added to the input:

.. code-block:: text

    in   = noisy                                  (blind, 4 channels)
         | cat(noisy, sqrt(variance))             (conditioned, 8 channels)
    f1   = enc1(embed(in))                        dim      channels, h x w
    f2   = enc2(down(f1))                         2 dim,   h/2
    f3   = enc3(down(f2))                         4 dim,   h/4
    z    = latent(down(f3))                       8 dim,   h/8
    d3   = dec3(reduce(cat(up(z), f3)))           4 dim
    d2   = dec2(reduce(cat(up(d3), f2)))          2 dim
    d1   = refinement(dec1(cat(up(d2), f1)))      2 dim    (as SSDNet/Restormer level 1)
    out  = noisy + conv3x3(d1)                    4 channels (conv initialised to zero)

The blocks (:class:`~raw_synth.models.blocks.TransformerBlock` = SSDNet's Context Fusion Module,
:class:`~raw_synth.models.blocks.Downsample`, :class:`~raw_synth.models.blocks.Upsample`) are the
shared ones of :mod:`raw_synth.models`. A conditioned model receives the per-pixel noise
*variance* ``shot * noisy + read`` and feeds its square root (the noise standard deviation, on the
same scale as the signal) to the network.

Presets (:data:`DENOISER_PRESETS`): ``denoiser-paper`` (SSDNet sizes: dim 48, blocks 4/6/6/8,
refinement 4, heads 1/2/4/8, GDFN 2.66) and ``denoiser-tiny`` (trains in minutes on a 2-core
CPU; the bundled checkpoint).

Example:
    >>> import torch
    >>> from denoise.models import create_denoiser
    >>> model = create_denoiser("denoiser-tiny", conditioned=True).eval()
    >>> noisy = torch.rand(1, 4, 20, 30)
    >>> with torch.inference_mode():
    ...     out = model.predict(noisy, 1e-3 * noisy + 1e-5)
    >>> tuple(out.shape)
    (1, 4, 20, 30)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from raw_synth.errors import RawSynthError
from raw_synth.models.blocks import FFN_KINDS, LAYER_NORM_KINDS, Downsample, PointwiseConv, TransformerBlock, Upsample
from raw_synth.models.ssdnet import pad_to_multiple

__all__ = [
    "ARCHITECTURE",
    "NETWORK_STRIDE",
    "DenoiserConfig",
    "SSDNetDenoiser",
    "DENOISER_PRESETS",
    "list_denoisers",
    "get_denoiser_config",
    "create_denoiser",
    "build_from_config",
    "register",
]

#: Architecture name under which checkpoints are saved and rebuilt.
ARCHITECTURE = "ssdnet-denoiser"
#: Total down-sampling factor of the U-Net (packed pixels); forward() needs h, w divisible by it.
NETWORK_STRIDE = 8

_TUPLE_LENGTHS: dict[str, int] = {"enc_blocks": 4, "dec_blocks": 3, "heads": 4}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class DenoiserConfig:
    """Hyper-parameters of :class:`SSDNetDenoiser`.

    Attributes:
        dim: Channels at level 1 (even); levels 2, 3 and the latent run at 2, 4 and 8 ``dim``;
            decoder level 1 and the refinement stage at ``2 dim``.
        enc_blocks: Context-fusion blocks of encoder levels 1, 2, 3 and of the latent level.
        dec_blocks: Blocks of decoder levels 1, 2, 3.
        refinement_blocks: Blocks of the full-resolution refinement stage.
        heads: Attention heads of levels 1, 2, 3 and the latent (decoder level ``k`` and the
            refinement use ``heads[k-1]``, ``heads[0]``).
        ffn_factor: Hidden expansion of the feed-forward networks.
        bias: Bias in the block projections.
        layernorm: ``"BiasFree"`` or ``"WithBias"``.
        ffn: ``"gdfn"`` or ``"simple"`` (see :class:`~raw_synth.models.blocks.GatedFeedForward`).
        kernel_size: Odd size of the attention's depthwise conv branch.
        conditioned: Take the noise variance map as a second 4-channel input (8 input channels);
            ``False`` makes a blind model.
    """

    dim: int = 48
    enc_blocks: tuple[int, int, int, int] = (4, 6, 6, 8)
    dec_blocks: tuple[int, int, int] = (4, 6, 6)
    refinement_blocks: int = 4
    heads: tuple[int, int, int, int] = (1, 2, 4, 8)
    ffn_factor: float = 2.66
    bias: bool = False
    layernorm: str = "BiasFree"
    ffn: str = "gdfn"
    kernel_size: int = 7
    conditioned: bool = False

    def __post_init__(self) -> None:
        for name, length in _TUPLE_LENGTHS.items():
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != length:
                raise RawSynthError(f"{name} must be a sequence of {length} integers, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for name in ("dim", "kernel_size"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise RawSynthError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not _is_int(self.refinement_blocks) or self.refinement_blocks < 0:
            raise RawSynthError(f"refinement_blocks must be a non-negative integer, got {self.refinement_blocks!r}")
        for name in ("enc_blocks", "dec_blocks"):
            if not all(_is_int(v) and v >= 0 for v in getattr(self, name)):
                raise RawSynthError(f"{name} must hold non-negative integers, got {getattr(self, name)!r}")
        if not all(_is_int(v) and v >= 1 for v in self.heads):
            raise RawSynthError(f"heads must hold positive integers, got {self.heads!r}")
        if self.dim % 2:
            raise RawSynthError(f"dim must be even (the down-samplers halve it), got {self.dim}")
        for level, head in enumerate(self.heads):
            width = self.dim * 2**level
            if width % head:
                raise RawSynthError(f"heads: {head} heads do not divide the {width} channels of level {level + 1}")
        if (2 * self.dim) % self.heads[0]:
            raise RawSynthError(f"heads: {self.heads[0]} heads do not divide the {2 * self.dim} level-1 decoder channels")
        factor = self.ffn_factor
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor < 1e6:
            raise RawSynthError(f"ffn_factor must be a positive number, got {factor!r}")
        if int(self.dim * factor) < 1:
            raise RawSynthError(f"ffn_factor {factor!r} gives no hidden channel at dim {self.dim}")
        if self.kernel_size % 2 == 0:
            raise RawSynthError(f"kernel_size must be odd, got {self.kernel_size}")
        if self.layernorm not in LAYER_NORM_KINDS:
            raise RawSynthError(f"layernorm must be one of {', '.join(LAYER_NORM_KINDS)}, got {self.layernorm!r}")
        if self.ffn not in FFN_KINDS:
            raise RawSynthError(f"ffn must be one of {', '.join(FFN_KINDS)}, got {self.ffn!r}")
        for name in ("bias", "conditioned"):
            if not isinstance(getattr(self, name), bool):
                raise RawSynthError(f"{name} must be a boolean, got {getattr(self, name)!r}")

    @property
    def in_channels(self) -> int:
        """4 for a blind model, 8 (noisy + noise map) for a conditioned one."""
        return 8 if self.conditioned else 4

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (tuples become lists); inverse of :meth:`from_dict`."""
        data = dataclasses.asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DenoiserConfig":
        """Build a config from a dict such as :meth:`to_dict` returns (missing keys take defaults).

        Raises:
            RawSynthError: On a non-dict, an unknown key or an invalid value.
        """
        if not isinstance(data, dict):
            raise RawSynthError(f"denoiser config must be a dict, got {type(data).__name__}")
        unknown = sorted(set(map(str, data)) - _field_names())
        if unknown:
            raise RawSynthError(
                f"denoiser config: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_field_names()))}"
            )
        return cls(**data)


def _field_names() -> set[str]:
    return {f.name for f in dataclasses.fields(DenoiserConfig)}


#: Named presets.
DENOISER_PRESETS: dict[str, DenoiserConfig] = {
    "denoiser-paper": DenoiserConfig(),
    # Trains in minutes on a 2-core CPU. Level 1 works at dim 16 with one block; most of the
    # depth sits at the cheaper lower resolutions.
    "denoiser-tiny": DenoiserConfig(
        dim=16,
        enc_blocks=(1, 1, 2, 2),
        dec_blocks=(1, 1, 1),
        refinement_blocks=0,
        heads=(1, 2, 2, 4),
        ffn_factor=2.0,
        ffn="simple",
        kernel_size=5,
    ),
}


def list_denoisers() -> list[str]:
    """The preset names, sorted."""
    return sorted(DENOISER_PRESETS)


def get_denoiser_config(name: str, **overrides: Any) -> DenoiserConfig:
    """A preset's config with fields replaced by ``overrides``.

    Raises:
        RawSynthError: Unknown preset (the message lists them), unknown field or invalid value.
    """
    if name not in DENOISER_PRESETS:
        raise RawSynthError(f"unknown denoiser {name!r}: expected one of {', '.join(list_denoisers())}")
    unknown = sorted(set(overrides) - _field_names())
    if unknown:
        raise RawSynthError(
            f"denoiser {name!r}: unknown override(s) {', '.join(unknown)}; known: {', '.join(sorted(_field_names()))}"
        )
    return dataclasses.replace(DENOISER_PRESETS[name], **overrides)


def _check_packed(x: Any, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise RawSynthError(f"{name}: expected a torch tensor (B, 4, h, w), got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != 4:
        raise RawSynthError(f"{name}: expected packed RAW of shape (B, 4, h, w), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise RawSynthError(f"{name}: expected a float tensor, got dtype {x.dtype}")


class SSDNetDenoiser(nn.Module):
    """Packed RAW denoiser: ``model(noisy, variance=None) -> denoised``, all ``(B, 4, h, w)``.

    Args:
        config: Hyper-parameters (default: ``denoiser-paper``, blind).

    Attributes:
        config: The :class:`DenoiserConfig` (stored in checkpoints).
    """

    def __init__(self, config: DenoiserConfig | None = None) -> None:
        super().__init__()
        cfg = config if config is not None else DenoiserConfig()
        if not isinstance(cfg, DenoiserConfig):
            raise RawSynthError(f"config: expected a DenoiserConfig, got {type(cfg).__name__}")
        self.config = cfg
        dim = cfg.dim

        def stage(channels: int, heads: int, count: int) -> nn.Sequential:
            return nn.Sequential(*[
                TransformerBlock(channels, heads, ffn_factor=cfg.ffn_factor, bias=cfg.bias,
                                 layernorm=cfg.layernorm, ffn=cfg.ffn,  # type: ignore[arg-type]
                                 kernel_size=cfg.kernel_size)
                for _ in range(count)
            ])

        self.embed = nn.Conv2d(cfg.in_channels, dim, 3, padding=1, bias=False)
        self.enc1 = stage(dim, cfg.heads[0], cfg.enc_blocks[0])
        self.down12 = Downsample(dim)
        self.enc2 = stage(2 * dim, cfg.heads[1], cfg.enc_blocks[1])
        self.down23 = Downsample(2 * dim)
        self.enc3 = stage(4 * dim, cfg.heads[2], cfg.enc_blocks[2])
        self.down34 = Downsample(4 * dim)
        self.latent = stage(8 * dim, cfg.heads[3], cfg.enc_blocks[3])

        self.up43 = Upsample(8 * dim)
        self.reduce3 = PointwiseConv(8 * dim, 4 * dim, bias=cfg.bias)
        self.dec3 = stage(4 * dim, cfg.heads[2], cfg.dec_blocks[2])
        self.up32 = Upsample(4 * dim)
        self.reduce2 = PointwiseConv(4 * dim, 2 * dim, bias=cfg.bias)
        self.dec2 = stage(2 * dim, cfg.heads[1], cfg.dec_blocks[1])
        self.up21 = Upsample(2 * dim)
        self.dec1 = stage(2 * dim, cfg.heads[0], cfg.dec_blocks[0])
        self.refinement = stage(2 * dim, cfg.heads[0], cfg.refinement_blocks)
        self.output = nn.Conv2d(2 * dim, 4, 3, padding=1, bias=False)
        nn.init.zeros_(self.output.weight)  # a fresh model is the identity: training starts at the noisy input

    def _inputs(self, noisy: torch.Tensor, variance: torch.Tensor | None) -> torch.Tensor:
        _check_packed(noisy, "noisy")
        if not self.config.conditioned:
            return noisy
        if variance is None:
            raise RawSynthError("variance: this denoiser is conditioned on the noise level; pass variance = shot * noisy + read")
        _check_packed(variance, "variance")
        if variance.shape != noisy.shape:
            raise RawSynthError(f"variance: shape {tuple(variance.shape)} differs from noisy {tuple(noisy.shape)}")
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
        height, width = noisy.shape[-2:]
        if height % NETWORK_STRIDE or width % NETWORK_STRIDE:
            raise RawSynthError(
                f"noisy: height and width must be multiples of {NETWORK_STRIDE} for forward(), got {height}x{width} "
                "(use predict() for any size)"
            )
        feat1 = self.enc1(self.embed(x))
        feat2 = self.enc2(self.down12(feat1))
        feat3 = self.enc3(self.down23(feat2))
        out = self.latent(self.down34(feat3))
        out = self.dec3(self.reduce3(torch.cat([self.up43(out), feat3], dim=1)))
        out = self.dec2(self.reduce2(torch.cat([self.up32(out), feat2], dim=1)))
        out = self.dec1(torch.cat([self.up21(out), feat1], dim=1))
        out = self.refinement(out)
        return noisy + self.output(out)

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
            _check_packed(variance, "variance")
            if variance.shape != noisy.shape:
                raise RawSynthError(f"variance: shape {tuple(variance.shape)} differs from noisy {tuple(noisy.shape)}")
            var = pad_to_multiple(variance, NETWORK_STRIDE)[0]
        return self.forward(padded, var)[..., :height, :width]

    def num_parameters(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())


def create_denoiser(name: str = "denoiser-tiny", **overrides: Any) -> SSDNetDenoiser:
    """Build a freshly initialised denoiser from a preset.

    Args:
        name: ``"denoiser-tiny"`` or ``"denoiser-paper"``.
        **overrides: :class:`DenoiserConfig` fields, e.g. ``conditioned=True``.

    Raises:
        RawSynthError: See :func:`get_denoiser_config`.
    """
    return SSDNetDenoiser(get_denoiser_config(name, **overrides))


def build_from_config(config: dict[str, Any]) -> SSDNetDenoiser:
    """Checkpoint builder: a model from the config dict stored in a checkpoint."""
    return SSDNetDenoiser(DenoiserConfig.from_dict(config))


def register() -> None:
    """Make :func:`raw_synth.checkpoint.load_model` able to rebuild ``ssdnet-denoiser`` checkpoints."""
    from raw_synth.checkpoint import register_architecture

    register_architecture(ARCHITECTURE, build_from_config)


register()
