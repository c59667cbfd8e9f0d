"""SSDNet configurations: the :class:`SSDNetConfig` dataclass, named presets and the factory.

Presets:

* ``ssdnet-paper``: the released SSDNet (dim 48, blocks 4/6/6/8, refinement 4, heads 1/2/4/8,
  FFN factor 2.66, bias-free LayerNorm), 36.24M parameters (35.56M mean path + 0.68M variance
  head).
* ``small``: a narrower, shallower network for training on one GPU.
* ``tiny``: sized for CPU inference on a laptop (>= 1 megapixel/s on 2 cores); also what the
  test-suite uses.

Example:
    >>> from raw_synth.models import create_model
    >>> model = create_model("tiny", sigma_head=False)
    >>> model.config.dim
    4
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raw_synth.errors import RawSynthError
from raw_synth.models.blocks import FFN_KINDS, LAYER_NORM_KINDS

if TYPE_CHECKING:  # pragma: no cover
    from raw_synth.models.ssdnet import SSDNet

__all__ = ["SSDNetConfig", "PRESETS", "list_models", "get_config", "create_model"]

_TUPLE_LENGTHS: dict[str, int] = {"enc_blocks": 4, "dec_blocks": 3, "heads": 4}


@dataclass(frozen=True)
class SSDNetConfig:
    """Hyper-parameters of :class:`raw_synth.models.ssdnet.SSDNet`.

    Attributes:
        dim: Channels at the first level (even). Levels run at ``dim, 2dim, 4dim``, the latent at
            ``8dim``; decoder level 1, the refinement stage and the variance head at ``2dim``.
        enc_blocks: CFM blocks of encoder levels 1, 2, 3 and of the latent level.
        dec_blocks: CFM blocks of decoder levels 1, 2, 3 (SSDNet: the encoder's first three).
        refinement_blocks: CFM blocks of the refinement stage (full resolution, ``2dim``).
        heads: Attention heads at levels 1, 2, 3 and latent; decoder level ``k`` uses
            ``heads[k-1]`` and the refinement stage ``heads[0]``. The variance head uses 1.
        ffn_factor: Hidden expansion of the feed-forward networks.
        bias: Bias of the projections inside the blocks.
        layernorm: ``"BiasFree"`` or ``"WithBias"``.
        ffn: ``"gdfn"`` (released code) or ``"simple"`` (lighter depthwise conv).
        kernel_size: Size of the depthwise conv branch of the attention (SSDNet: 7).
        sigma_head: Build the variance ("sigma") sub-network.
        sigma_blocks: CFM blocks of the variance head.
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
    sigma_head: bool = True
    sigma_blocks: int = 4

    def __post_init__(self) -> None:
        for name, length in _TUPLE_LENGTHS.items():
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != length:
                raise RawSynthError(f"{name} must be a sequence of {length} integers, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for name in ("dim", "kernel_size"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise RawSynthError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("refinement_blocks", "sigma_blocks"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                raise RawSynthError(f"{name} must be a non-negative integer, got {getattr(self, name)!r}")
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
            raise RawSynthError(f"heads: {self.heads[0]} heads do not divide the {2 * self.dim} refinement channels")
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
        for name in ("bias", "sigma_head"):
            if not isinstance(getattr(self, name), bool):
                raise RawSynthError(f"{name} must be a boolean, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (tuples become lists); inverse of :meth:`from_dict`."""
        data = dataclasses.asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SSDNetConfig":
        """Build a config from a dict such as :meth:`to_dict` returns (missing keys take defaults).

        Raises:
            RawSynthError: On a non-dict, an unknown key or an invalid value.
        """
        if not isinstance(data, dict):
            raise RawSynthError(f"SSDNet config must be a dict, got {type(data).__name__}")
        unknown = sorted(set(data) - _field_names())
        if unknown:
            known = ", ".join(sorted(_field_names()))
            raise RawSynthError(f"SSDNet config: unknown field(s) {', '.join(map(str, unknown))}; known: {known}")
        return cls(**data)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field_names() -> set[str]:
    return {f.name for f in dataclasses.fields(SSDNetConfig)}


#: Named presets; the single source of model sizes for the library, CLI and configs.
PRESETS: dict[str, SSDNetConfig] = {
    "ssdnet-paper": SSDNetConfig(),
    "small": SSDNetConfig(
        dim=32,
        enc_blocks=(2, 3, 3, 4),
        dec_blocks=(2, 3, 3),
        refinement_blocks=2,
        heads=(1, 2, 4, 8),
        sigma_blocks=2,
    ),
    # Sized for CPU inference (>= 1 megapixel/s on 2 cores): at full resolution only the first
    # encoder block runs (4 channels); decoder level 1 and the refinement stage are empty.
    "tiny": SSDNetConfig(
        dim=4,
        enc_blocks=(1, 1, 1, 1),
        dec_blocks=(0, 1, 1),
        refinement_blocks=0,
        heads=(1, 1, 2, 4),
        ffn_factor=2.0,
        ffn="simple",
        sigma_blocks=1,
    ),
}


def list_models() -> list[str]:
    """Return the preset names, sorted."""
    return sorted(PRESETS)


def get_config(name: str, **overrides: Any) -> SSDNetConfig:
    """Return a preset's config with dataclass fields replaced by ``overrides``.

    Args:
        name: Preset name (see :func:`list_models`).
        **overrides: Any :class:`SSDNetConfig` field, e.g. ``dim=16`` or ``sigma_head=False``.

    Raises:
        RawSynthError: For an unknown preset (the message lists them), an unknown field or an
            invalid value.
    """
    if name not in PRESETS:
        raise RawSynthError(f"unknown model {name!r}: expected one of {', '.join(list_models())}")
    unknown = sorted(set(overrides) - _field_names())
    if unknown:
        raise RawSynthError(
            f"model {name!r}: unknown override(s) {', '.join(unknown)}; known: {', '.join(sorted(_field_names()))}"
        )
    return dataclasses.replace(PRESETS[name], **overrides)


def create_model(name: str, **overrides: Any) -> "SSDNet":
    """Build an :class:`~raw_synth.models.ssdnet.SSDNet` from a preset (freshly initialised).

    Args:
        name: Preset name: ``ssdnet-paper``, ``small`` or ``tiny``.
        **overrides: :class:`SSDNetConfig` fields to change.

    Returns:
        The model, on the current default device, in training mode.

    Raises:
        RawSynthError: See :func:`get_config`.
    """
    from raw_synth.models.ssdnet import SSDNet  # local: ssdnet imports this module

    return SSDNet(get_config(name, **overrides))

