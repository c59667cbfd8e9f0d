"""Building blocks of SSDNet: channel LayerNorm, context-fusion attention, gated FFN, resamplers.

SSDNet (Zou & Zhang, "Learned Reverse ISP with Soft Supervision", ECCVW 2022) is a
Restormer-style U-Net whose transformer block is the *Context Fusion Module* (CFM):

.. code-block:: text

    x = x + ContextFusionAttention(LayerNorm2d(x))
    x = x + FeedForward(LayerNorm2d(x))

Every module works on channels-first feature maps ``(B, C, H, W)`` of any float dtype and keeps
the spatial size, except :class:`Downsample` (``(B, C, H, W) -> (B, 2C, H/2, W/2)``) and
:class:`Upsample` (``(B, C, H, W) -> (B, C/2, 2H, 2W)``). Convolutions carry no bias unless a
``bias`` argument says otherwise; the depthwise large-kernel branch of the attention always has
one (as in the released SSDNet code).

The attention is "transposed": a ``(C/h x C/h)`` map per head over channels, so cost grows
linearly with the number of pixels.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from raw_synth.errors import RawSynthError

__all__ = [
    "LayerNormKind",
    "FFNKind",
    "layer_norm_2d",
    "pointwise",
    "PointwiseConv",
    "LayerNorm2d",
    "ContextFusionAttention",
    "GatedFeedForward",
    "TransformerBlock",
    "Downsample",
    "Upsample",
]

LayerNormKind = Literal["BiasFree", "WithBias"]
FFNKind = Literal["gdfn", "simple"]

LAYER_NORM_KINDS: tuple[str, ...] = ("BiasFree", "WithBias")
FFN_KINDS: tuple[str, ...] = ("gdfn", "simple")


def _check_positive(value: int, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RawSynthError(f"{name} must be a positive integer, got {value!r}")


def _no_grad_mode() -> bool:
    """True under ``torch.no_grad``/``inference_mode``: fresh intermediates may be reused in place."""
    return not torch.is_grad_enabled()


def layer_norm_2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Normalise each pixel's feature vector over the channel axis.

    With ``bias=None`` this is the "bias-free" variant: ``x / sqrt(var_c(x) + eps) * weight``,
    where the variance is taken over channels but ``x`` is *not* centred. With a bias it is the
    usual ``(x - mean_c(x)) / sqrt(var_c(x) + eps) * weight + bias``.

    Args:
        x: Feature map ``(B, C, H, W)``, float.
        weight: Per-channel scale ``(C,)``.
        bias: Per-channel shift ``(C,)`` or ``None`` for the bias-free form.
        eps: Added to the (biased) variance.

    Returns:
        Tensor of the same shape and dtype as ``x``.
    """
    # Two-pass mean/variance: torch.var_mean over dim 1 is an order of magnitude slower on CPU.
    centred = x - x.mean(dim=1, keepdim=True)
    inv_std = torch.rsqrt((centred * centred).mean(dim=1, keepdim=True) + eps)
    scale = weight.view(1, -1, 1, 1)
    if _no_grad_mode():  # same arithmetic, reusing fresh buffers
        out = x * inv_std if bias is None else centred.mul_(inv_std)
        out.mul_(scale)
        return out if bias is None else out.add_(bias.view(1, -1, 1, 1))
    if bias is None:
        return x * inv_std * scale
    return centred * inv_std * scale + bias.view(1, -1, 1, 1)


def pointwise(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    add: torch.Tensor | None = None,
) -> torch.Tensor:
    """1x1 convolution as a matrix product: ``(B, C, H, W) -> (B, O, H, W)``.

    Same result as ``F.conv2d(x, weight, bias) + add`` for a ``(O, C, 1, 1)`` weight, but several
    times faster than oneDNN's NCHW path on CPU for the small channel counts of SSDNet.

    Args:
        x: Feature map ``(B, C, H, W)``.
        weight: ``(O, C, 1, 1)`` or ``(O, C)``.
        bias: ``(O,)`` or ``None``.
        add: Optional ``(B, O, H, W)`` added to the result in the same kernel (not modified).
    """
    batch, _, height, width = x.shape
    matrix = weight.reshape(weight.shape[0], -1)
    out_channels = matrix.shape[0]
    flat = x.reshape(batch, x.shape[1], height * width)
    # bmm with the weight broadcast over the batch: torch.matmul would transpose-copy ``flat``.
    stacked = matrix.unsqueeze(0).expand(batch, -1, -1)
    base: torch.Tensor | None = None if add is None else add.reshape(batch, out_channels, height * width)
    if bias is not None:
        base = bias.view(1, -1, 1) if base is None else base + bias.view(1, -1, 1)
    out = torch.bmm(stacked, flat) if base is None else torch.baddbmm(base, stacked, flat)
    return out.view(batch, out_channels, height, width)


class PointwiseConv(nn.Conv2d):
    """A 1x1 :class:`torch.nn.Conv2d` (same parameters and state dict) computed by :func:`pointwise`."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False) -> None:
        super().__init__(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H, W)``."""
        return pointwise(x, self.weight, self.bias)


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of every pixel of a ``(B, C, H, W)`` map.

    Args:
        channels: Number of channels ``C``.
        kind: ``"BiasFree"`` (SSDNet's default: scale only, no centring) or ``"WithBias"``
            (Restormer's default: centred, scale and shift).
        eps: Numerical floor added to the variance.
    """

    def __init__(self, channels: int, kind: LayerNormKind = "BiasFree", eps: float = 1e-5) -> None:
        super().__init__()
        _check_positive(channels, "channels")
        if kind not in LAYER_NORM_KINDS:
            raise RawSynthError(f"layernorm: unknown kind {kind!r}: expected one of {', '.join(LAYER_NORM_KINDS)}")
        self.kind = kind
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if kind == "WithBias" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` ``(B, C, H, W)``; returns the same shape."""
        return layer_norm_2d(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, kind={self.kind}, eps={self.eps}"


class ContextFusionAttention(nn.Module):
    """SSDNet's attention: channel ("transposed") self-attention fused with a large-kernel conv.

    Two branches read the same normalised input ``y``:

    * attention: ``q, k, v = dw3x3(conv1x1(y))`` (``C -> 3C``); per head, ``q`` and ``k`` are
      L2-normalised along the pixel axis and ``A = softmax(q k^T * t)`` is a ``(C/h, C/h)``
      map with a learnable temperature ``t`` per head (initialised to 1). The values are first
      scaled per channel by the dynamic channel weight ``w_c`` (below): ``out = A (w_c * v)``.
    * convolution: a ``k x k`` depthwise conv of ``y`` (with bias), ``c = dwconv(y)``.

    Interactions: ``w_c = sigmoid(conv1x1(gelu(conv1x1(avgpool(c)))))`` is ``(B, C, 1, 1)`` from
    the conv branch; ``w_s = sigmoid(conv1x1(gelu(conv1x1(out))))`` is a full ``(B, C, H, W)``
    map from the attention output. The result is ``conv1x1([w_s * c, out])`` (``2C -> C``).

    Args:
        dim: Channels ``C``.
        heads: Number of attention heads; must divide ``dim``.
        bias: Bias of the 1x1/3x3 projections, the spatial-weight and the fusion convs. The
            channel-weight convs never have one; the large-kernel conv always has one.
        kernel_size: Odd size of the depthwise conv branch (SSDNet uses 7).
    """

    def __init__(self, dim: int, heads: int = 1, bias: bool = False, kernel_size: int = 7) -> None:
        super().__init__()
        _check_positive(dim, "dim")
        _check_positive(heads, "heads")
        _check_positive(kernel_size, "kernel_size")
        if dim % heads:
            raise RawSynthError(f"heads: {heads} heads do not divide {dim} channels")
        if kernel_size % 2 == 0:
            raise RawSynthError(f"kernel_size must be odd, got {kernel_size}")
        self.dim = dim
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = PointwiseConv(dim, 3 * dim, bias=bias)
        self.qkv_dwconv = nn.Conv2d(3 * dim, 3 * dim, 3, padding=1, groups=3 * dim, bias=bias)
        self.conv_branch = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim, bias=True)
        self.channel_weight = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            PointwiseConv(dim, dim, bias=False),
            nn.GELU(),
            PointwiseConv(dim, dim, bias=False),
            nn.Sigmoid(),
        )
        self.spatial_weight = nn.Sequential(
            PointwiseConv(dim, dim, bias=bias),
            nn.GELU(),
            PointwiseConv(dim, dim, bias=bias),
            nn.Sigmoid(),
        )
        self.fuse = PointwiseConv(2 * dim, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over ``x`` ``(B, C, H, W)`` (already normalised); returns ``(B, C, H, W)``."""
        batch, channels, height, width = x.shape
        per_head = channels // self.heads
        qkv = self.qkv_dwconv(self.qkv(x)).reshape(batch, 3, self.heads, per_head, height * width)
        q, k, v = qkv.unbind(dim=1)  # each (B, heads, C/heads, HW)
        conv = self.conv_branch(x)
        w_c = self.channel_weight(conv).view(batch, self.heads, 1, per_head)

        # Equal to softmax(normalize(q) @ normalize(k)^T * t) @ (w_c * v), with the L2
        # normalisation and the channel weight folded into the small (C/h x C/h) matrix
        # instead of rescaling the full-size q, k and v.
        q_norm = torch.linalg.vector_norm(q, dim=-1).clamp_min(1e-12)
        k_norm = torch.linalg.vector_norm(k, dim=-1).clamp_min(1e-12)
        logits = (q @ k.transpose(-2, -1)) / (q_norm.unsqueeze(-1) * k_norm.unsqueeze(-2))
        attn = torch.softmax(logits * self.temperature, dim=-1)
        out = ((attn * w_c) @ v).view(batch, channels, height, width)

        # fuse(cat([w_s * conv, out])) without materialising the concatenation.
        w_s = self.spatial_weight(out)
        gated = w_s.mul_(conv) if _no_grad_mode() else w_s * conv
        weight = self.fuse.weight.view(channels, 2 * channels)
        return pointwise(gated, weight[:, :channels], self.fuse.bias, add=pointwise(out, weight[:, channels:]))


class GatedFeedForward(nn.Module):
    """Gated depthwise feed-forward network (Restormer's GDFN) and a lighter variant.

    ``"gdfn"`` (the released SSDNet code): ``h = int(C * factor)``;
    ``x1, x2 = dw3x3(conv1x1(x))`` (``C -> 2h``); ``out = conv1x1(gelu(x1) * x2)`` (``h -> C``).

    ``"simple"``: the paper describes a "simplified GDFN with compressed depthwise conv" but the
    released code contains none, so this variant is our own reading of it: the depthwise 3x3 is
    applied to the gate half only (``h`` channels instead of ``2h``), the value half passes
    straight from the 1x1 expansion: ``x1, x2 = conv1x1(x)``; ``out = conv1x1(gelu(dw3x3(x1)) * x2)``.
    It halves the depthwise cost and parameters while keeping the gate's spatial context.

    Args:
        dim: Channels ``C``.
        ffn_factor: Hidden expansion factor (SSDNet 2.66); ``h = int(dim * ffn_factor)`` >= 1.
        bias: Bias of all convs.
        kind: ``"gdfn"`` or ``"simple"``.
    """

    def __init__(self, dim: int, ffn_factor: float = 2.66, bias: bool = False, kind: FFNKind = "gdfn") -> None:
        super().__init__()
        _check_positive(dim, "dim")
        if kind not in FFN_KINDS:
            raise RawSynthError(f"ffn: unknown kind {kind!r}: expected one of {', '.join(FFN_KINDS)}")
        if not 0 < ffn_factor < 1e6 or int(dim * ffn_factor) < 1:
            raise RawSynthError(f"ffn_factor must give at least one hidden channel, got {ffn_factor!r} for dim {dim}")
        hidden = int(dim * ffn_factor)
        self.kind = kind
        self.hidden = hidden
        self.project_in = PointwiseConv(dim, 2 * hidden, bias=bias)
        dw_channels = 2 * hidden if kind == "gdfn" else hidden
        self.dwconv = nn.Conv2d(dw_channels, dw_channels, 3, padding=1, groups=dw_channels, bias=bias)
        self.project_out = PointwiseConv(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the FFN to ``x`` ``(B, C, H, W)``; returns ``(B, C, H, W)``."""
        if self.kind == "gdfn":
            gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        else:
            gate, value = self.project_in(x).chunk(2, dim=1)
            gate = self.dwconv(gate)
        activated = F.gelu(gate)
        return self.project_out(activated.mul_(value) if _no_grad_mode() else activated * value)


class TransformerBlock(nn.Module):
    """One Context Fusion Module: pre-norm attention and pre-norm FFN, each with a residual.

    Args:
        dim: Channels ``C``.
        heads: Attention heads (divides ``dim``).
        ffn_factor: FFN hidden expansion factor.
        bias: Bias of the convs (see :class:`ContextFusionAttention`).
        layernorm: ``"BiasFree"`` or ``"WithBias"``.
        ffn: ``"gdfn"`` or ``"simple"`` (see :class:`GatedFeedForward`).
        kernel_size: Size of the attention's depthwise conv branch.
    """

    def __init__(
        self,
        dim: int,
        heads: int = 1,
        ffn_factor: float = 2.66,
        bias: bool = False,
        layernorm: LayerNormKind = "BiasFree",
        ffn: FFNKind = "gdfn",
        kernel_size: int = 7,
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim, layernorm)
        self.attn = ContextFusionAttention(dim, heads, bias, kernel_size)
        self.norm2 = LayerNorm2d(dim, layernorm)
        self.ffn = GatedFeedForward(dim, ffn_factor, bias, ffn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, C, H, W)`` -> ``(B, C, H, W)``."""
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class _ShuffleResample(nn.Module):
    """A 3x3 conv then a pixel (un)shuffle by 2: the base of :class:`Downsample` and :class:`Upsample`.

    Args:
        dim: Input channels ``C`` (even).
        down: ``True``: conv ``C -> C/2`` and PixelUnshuffle(2); ``False``: conv ``C -> 2C`` and
            PixelShuffle(2).
    """

    def __init__(self, dim: int, down: bool) -> None:
        super().__init__()
        _check_positive(dim, "dim")
        if dim % 2:
            raise RawSynthError(f"dim: {type(self).__name__} needs an even channel count, got {dim}")
        out_channels, shuffle = (dim // 2, nn.PixelUnshuffle(2)) if down else (2 * dim, nn.PixelShuffle(2))
        self.body = nn.Sequential(nn.Conv2d(dim, out_channels, 3, padding=1, bias=False), shuffle)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Resample ``x`` ``(B, C, H, W)`` (see the class)."""
        return self.body(x)


class Downsample(_ShuffleResample):
    """Halve the resolution, double the channels: 3x3 conv ``C -> C/2`` then PixelUnshuffle(2).

    ``(B, C, H, W)`` with even ``H, W`` -> ``(B, 2C, H/2, W/2)``.

    Args:
        dim: Input channels ``C`` (even).
    """

    def __init__(self, dim: int) -> None:
        super().__init__(dim, down=True)


class Upsample(_ShuffleResample):
    """Double the resolution, halve the channels: 3x3 conv ``C -> 2C`` then PixelShuffle(2).

    ``(B, C, H, W)`` -> ``(B, C/2, 2H, 2W)``.

    Args:
        dim: Input channels ``C`` (even).
    """

    def __init__(self, dim: int) -> None:
        super().__init__(dim, down=False)
