"""Model configs: one dataclass family, one set of checks, for every network of :mod:`raw_synth.models`.

:class:`SSDNetBodyConfig` holds the shared U-Net hyper-parameters and their checks; each task adds
its head's fields:

* :class:`SSDNetConfig` - the inverse ISP (``sigma_head``, ``sigma_blocks``);
* :class:`DenoiserConfig` - the RAW denoiser (``conditioned``).

Every config is a frozen dataclass, validated on construction (one-line :class:`RawSynthError`),
and round-trips through JSON with :meth:`~SSDNetBodyConfig.to_dict` /
:meth:`~SSDNetBodyConfig.from_dict`: that dict is what checkpoints store.

Example:
    >>> from raw_synth.models.config import DenoiserConfig
    >>> cfg = DenoiserConfig(dim=8, conditioned=True)
    >>> cfg.in_channels, DenoiserConfig.from_dict(cfg.to_dict()) == cfg
    (8, True)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, TypeVar

from raw_synth.config_checks import check_known
from raw_synth.errors import RawSynthError
from raw_synth.models.blocks import FFN_KINDS, LAYER_NORM_KINDS

__all__ = ["SSDNetBodyConfig", "SSDNetConfig", "DenoiserConfig"]

ConfigT = TypeVar("ConfigT", bound="SSDNetBodyConfig")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class SSDNetBodyConfig:
    """Hyper-parameters of the shared SSDNet U-Net (:class:`~raw_synth.models.body.SSDNetBody`).

    Attributes:
        dim: Channels at the first level (even). Levels run at ``dim, 2dim, 4dim``, the latent at
            ``8dim``; decoder level 1 and the refinement stage at ``2dim``.
        enc_blocks: Context-fusion blocks of encoder levels 1, 2, 3 and of the latent level.
        dec_blocks: Blocks of decoder levels 1, 2, 3 (SSDNet: the encoder's first three).
        refinement_blocks: Blocks of the full-resolution refinement stage (``2dim``).
        heads: Attention heads at levels 1, 2, 3 and latent; decoder level ``k`` uses
            ``heads[k-1]`` and the refinement stage ``heads[0]``.
        ffn_factor: Hidden expansion of the feed-forward networks.
        bias: Bias of the projections inside the blocks.
        layernorm: ``"BiasFree"`` or ``"WithBias"``.
        ffn: ``"gdfn"`` (released code) or ``"simple"`` (lighter depthwise conv).
        kernel_size: Odd size of the depthwise conv branch of the attention (SSDNet: 7).
    """

    #: Name in checkpoint errors, e.g. ``"SSDNet config: unknown field(s) ..."``.
    label: ClassVar[str] = "model"
    #: Fields that count blocks (non-negative integers); a task adds its head's.
    count_fields: ClassVar[tuple[str, ...]] = ("refinement_blocks",)
    #: Boolean fields; a task adds its head's.
    flag_fields: ClassVar[tuple[str, ...]] = ("bias",)
    _tuple_lengths: ClassVar[dict[str, int]] = {"enc_blocks": 4, "dec_blocks": 3, "heads": 4}

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

    def __post_init__(self) -> None:
        for name, length in self._tuple_lengths.items():
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != length:
                raise RawSynthError(f"{name} must be a sequence of {length} integers, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for name in ("dim", "kernel_size"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise RawSynthError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in self.count_fields:
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
            raise RawSynthError(
                f"heads: {self.heads[0]} heads do not divide the {2 * self.dim} channels of decoder level 1"
            )
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
        for name in self.flag_fields:
            if not isinstance(getattr(self, name), bool):
                raise RawSynthError(f"{name} must be a boolean, got {getattr(self, name)!r}")

    @property
    def in_channels(self) -> int:
        """Channels that enter the body's embedding conv: 3 (RGB) unless the task's config says otherwise."""
        return 3

    @classmethod
    def field_names(cls) -> list[str]:
        """The config's field names, sorted."""
        return sorted(f.name for f in dataclasses.fields(cls))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (tuples become lists); inverse of :meth:`from_dict`."""
        data = dataclasses.asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}

    @classmethod
    def from_dict(cls: type[ConfigT], data: dict[str, Any]) -> ConfigT:
        """Build a config from a dict such as :meth:`to_dict` returns (missing keys take defaults).

        Raises:
            RawSynthError: On a non-dict, an unknown key or an invalid value.
        """
        if not isinstance(data, dict):
            raise RawSynthError(f"{cls.label} config must be a dict, got {type(data).__name__}")
        cls.check_fields(data, f"{cls.label} config: unknown field(s)")
        return cls(**data)

    @classmethod
    def check_fields(cls, names: Iterable[Any], what: str) -> None:
        """Refuse keys that are not fields: ``"WHAT a, b; known: ..."``.

        Raises:
            RawSynthError: If ``names`` holds a key that is not a field of this config.
        """
        check_known(set(map(str, names)), cls.field_names(), what)


@dataclass(frozen=True)
class SSDNetConfig(SSDNetBodyConfig):
    """Hyper-parameters of the inverse ISP :class:`~raw_synth.models.ssdnet.SSDNet`.

    The body fields are those of :class:`SSDNetBodyConfig`; the head adds:

    Attributes:
        sigma_head: Build the variance ("sigma") sub-network (one attention head, ``2dim``).
        sigma_blocks: CFM blocks of the variance head.
    """

    label: ClassVar[str] = "SSDNet"
    count_fields: ClassVar[tuple[str, ...]] = ("refinement_blocks", "sigma_blocks")
    flag_fields: ClassVar[tuple[str, ...]] = ("bias", "sigma_head")

    sigma_head: bool = True
    sigma_blocks: int = 4


@dataclass(frozen=True)
class DenoiserConfig(SSDNetBodyConfig):
    """Hyper-parameters of the RAW denoiser :class:`~raw_synth.models.denoiser.SSDNetDenoiser`.

    The body fields are those of :class:`SSDNetBodyConfig`; the head adds:

    Attributes:
        conditioned: Take the noise variance map as a second 4-channel input (8 input channels);
            ``False`` makes a blind model.
    """

    label: ClassVar[str] = "denoiser"
    flag_fields: ClassVar[tuple[str, ...]] = ("bias", "conditioned")

    conditioned: bool = False

    @property
    def in_channels(self) -> int:
        """4 for a blind model, 8 (noisy + noise map) for a conditioned one."""
        return 8 if self.conditioned else 4
