"""The model registry: named presets of every task and the architectures checkpoints name.

A preset is a function that returns a config, registered with :func:`register_model` next to its
model class (timm-style); its name is the function's, ``_`` written ``-``::

    @register_model(SSDNet)
    def tiny() -> SSDNetConfig:
        return SSDNetConfig(dim=4, ...)

Registering a preset also registers its model class under the class's ``architecture`` name,
which is what :func:`build_model` (and so :func:`raw_synth.checkpoint.load_model`) resolves from
a checkpoint's metadata. Every model module of :mod:`raw_synth.models` registers its presets when
the package is imported, which any import from it does: nothing has to be imported "to register".

Presets (``list_models()``):

* inverse ISP (kind ``"ssdnet-isp"``): ``ssdnet-paper``, ``small``, ``tiny``;
* RAW denoiser (kind ``"denoiser"``): ``denoiser-paper``, ``denoiser-tiny``.

Example:
    >>> import raw_synth
    >>> raw_synth.list_models(kind="denoiser")
    ['denoiser-paper', 'denoiser-tiny']
    >>> raw_synth.create_model("tiny", sigma_head=False).config.dim
    4
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from torch import nn

from raw_synth.errors import RawSynthError
from raw_synth.models.body import SSDNetBody
from raw_synth.models.config import SSDNetBodyConfig, SSDNetConfig

__all__ = [
    "ModelEntry",
    "register_model",
    "register_architecture",
    "list_models",
    "list_architectures",
    "model_entry",
    "get_config",
    "create_model",
    "build_model",
    "SSDNetConfig",
]

#: Builds a (freshly initialised) model from the config dict a checkpoint stores.
ModelBuilder = Callable[[dict[str, Any]], nn.Module]

ConfigFn = TypeVar("ConfigFn", bound=Callable[[], SSDNetBodyConfig])

# What an error calls a model of each kind ("unknown denoiser 'x'"); other kinds are "model".
_KIND_NOUNS: dict[str, str] = {"denoiser": "denoiser"}


@dataclass(frozen=True)
class ModelEntry:
    """One registered preset.

    Attributes:
        name: Preset name, e.g. ``"denoiser-tiny"``.
        kind: What the model does (the checkpoint ``kind``): ``"ssdnet-isp"`` or ``"denoiser"``.
        architecture: Architecture name that checkpoints of the model store.
        model_class: The model class; ``model_class(config)`` builds it.
        config: The preset's config.
        description: First line of the preset function's docstring.
    """

    name: str
    kind: str
    architecture: str
    model_class: type[SSDNetBody]
    config: SSDNetBodyConfig
    description: str = ""


_MODELS: dict[str, ModelEntry] = {}
_ARCHITECTURES: dict[str, ModelBuilder] = {}


def register_architecture(name: str, builder: ModelBuilder) -> None:
    """Make :func:`build_model` (and checkpoint loading) able to rebuild ``name`` from a config dict.

    The model classes of :mod:`raw_synth.models` are registered with their presets; this is for
    other networks. The builder must work under ``with torch.device("meta")`` (no data-dependent
    code in ``__init__``): :func:`raw_synth.checkpoint.load_model` first builds the model there to
    check its size and shapes.

    Args:
        name: Architecture name as checkpoints store it.
        builder: ``builder(config_dict) -> nn.Module``.
    """
    _ARCHITECTURES[name] = builder


def register_model(model_class: type[SSDNetBody], name: str | None = None) -> Callable[[ConfigFn], ConfigFn]:
    """Decorator: register a function returning a config as the preset ``name`` of ``model_class``.

    Args:
        model_class: The model class the preset builds (its ``config_class``, ``architecture``
            and ``kind`` class attributes say the rest).
        name: Preset name; by default the function's, with ``_`` written ``-``.

    Returns:
        A decorator that registers the function (called once) and returns it unchanged.

    Raises:
        RawSynthError: If the name is taken or the function returns another class's config.
    """

    def decorator(fn: ConfigFn) -> ConfigFn:
        preset = name or fn.__name__.strip("_").replace("_", "-")
        if preset in _MODELS:
            raise RawSynthError(f"model {preset!r} is already registered")
        config = fn()
        if type(config) is not model_class.config_class:
            raise RawSynthError(f"model {preset!r}: expected a {model_class.config_class.__name__}, "
                                f"got {type(config).__name__}")
        description = (fn.__doc__ or "").strip().split("\n", 1)[0]
        _MODELS[preset] = ModelEntry(preset, model_class.kind, model_class.architecture, model_class, config,
                                     description)
        _ARCHITECTURES.setdefault(model_class.architecture, model_class.from_config)
        return fn

    return decorator


def list_models(filter: str = "", *, kind: str | None = None) -> list[str]:
    """Return the preset names, sorted.

    Args:
        filter: Shell-style pattern the names must match, e.g. ``"denoiser-*"`` (empty: all).
        kind: Only presets of this kind (``"ssdnet-isp"`` or ``"denoiser"``).
    """
    return sorted(name for name, entry in _MODELS.items()
                  if (kind is None or entry.kind == kind) and (not filter or fnmatch.fnmatchcase(name, filter)))


def list_architectures() -> list[str]:
    """Return the architecture names checkpoints may name, sorted."""
    return sorted(_ARCHITECTURES)


def model_entry(name: str, *, kind: str | None = None) -> ModelEntry:
    """Return a preset's registry entry.

    Args:
        name: Preset name (see :func:`list_models`).
        kind: Refuse a preset of another kind (as if unknown; the message lists this kind's).

    Raises:
        RawSynthError: ``"unknown model 'x': expected one of ..."`` (``denoiser`` for that kind).
    """
    entry = _MODELS.get(name) if isinstance(name, str) else None
    if entry is None or (kind is not None and entry.kind != kind):
        noun = _KIND_NOUNS.get(kind or "", "model")
        raise RawSynthError(f"unknown {noun} {name!r}: expected one of {', '.join(list_models(kind=kind))}")
    return entry


def get_config(name: str, *, kind: str | None = None, **overrides: Any) -> SSDNetBodyConfig:
    """Return a preset's config with fields replaced by ``overrides``.

    Args:
        name: Preset name (see :func:`list_models`).
        kind: Only accept a preset of this kind.
        **overrides: Any field of the preset's config, e.g. ``dim=16`` or ``conditioned=True``.

    Raises:
        RawSynthError: For an unknown preset (the message lists them), an unknown field or an
            invalid value.
    """
    entry = model_entry(name, kind=kind)
    entry.config.check_fields(overrides, f"model {name!r}: unknown override(s)")
    return dataclasses.replace(entry.config, **overrides)


def create_model(name: str, *, kind: str | None = None, **overrides: Any) -> Any:
    """Build any registered model from its preset (freshly initialised).

    Args:
        name: Preset name: ``tiny``, ``small``, ``ssdnet-paper`` (inverse ISP,
            :class:`~raw_synth.models.ssdnet.SSDNet`), ``denoiser-tiny``, ``denoiser-paper``
            (:class:`~raw_synth.models.denoiser.SSDNetDenoiser`); see :func:`list_models`.
        kind: Only accept a preset of this kind.
        **overrides: Fields of the preset's config to change.

    Returns:
        The model, on the current default device, in training mode.

    Raises:
        RawSynthError: See :func:`get_config`.
    """
    entry = model_entry(name, kind=kind)
    return entry.model_class(get_config(name, kind=kind, **overrides))


def build_model(architecture: str, config: dict[str, Any]) -> nn.Module:
    """Build a registered architecture from a config dict, as a checkpoint stores them.

    Args:
        architecture: Architecture name, e.g. ``"ssdnet"`` or ``"ssdnet-denoiser"``.
        config: The config dict (``config.to_dict()`` of the saved model).

    Raises:
        RawSynthError: ``"unknown architecture 'x' (known: ...)"``, or the builder's own error
            on an invalid config.
    """
    builder = _ARCHITECTURES.get(architecture)
    if builder is None:
        raise RawSynthError(f"unknown architecture {architecture!r} (known: {', '.join(list_architectures())})")
    return builder(config)
