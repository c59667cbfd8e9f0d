"""Model checkpoints: safetensors weights with the model config in the file's metadata.

A raw-synth checkpoint is a plain ``.safetensors`` file. Its string metadata holds:

* ``format`` - always :data:`CHECKPOINT_FORMAT`;
* ``kind`` - what the model does: ``"ssdnet-isp"`` (sRGB to RAW) or ``"denoiser"``;
* ``architecture`` - the network class, e.g. ``"ssdnet"``;
* ``config`` - JSON of the model's dataclass config, enough to rebuild it;
* ``extra`` - JSON of anything else (training data, steps, camera colour facts, metrics).

Loading never unpickles anything, and every problem is one :class:`RawSynthError` line that
names the file: missing, not safetensors, not a raw-synth checkpoint, the wrong kind of model,
or weights that do not fit the config.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from raw_synth.errors import RawSynthError

__all__ = [
    "CHECKPOINT_FORMAT",
    "save_model",
    "load_model",
    "read_checkpoint_metadata",
    "file_sha256",
    "register_architecture",
]

CHECKPOINT_FORMAT = "raw-synth-checkpoint/1"

# architecture name -> (builder from a config dict, config-to-dict function)
_ARCHITECTURES: dict[str, Callable[[dict[str, Any]], nn.Module]] = {}


def register_architecture(name: str, builder: Callable[[dict[str, Any]], nn.Module]) -> None:
    """Make :func:`load_model` able to rebuild ``name`` from its config dict."""
    _ARCHITECTURES[name] = builder


def _builtin_architectures() -> None:
    if "ssdnet" not in _ARCHITECTURES:
        from raw_synth.models import SSDNet, SSDNetConfig

        register_architecture("ssdnet", lambda config: SSDNet(SSDNetConfig.from_dict(config)))


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (identifies the engine checkpoint in a store's manifest)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(
    path: str | Path,
    model: nn.Module,
    *,
    kind: str,
    architecture: str = "ssdnet",
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a model's weights and config as a safetensors checkpoint.

    Args:
        path: Output ``.safetensors`` path (parent folders are created).
        model: A model with a ``config`` attribute that has ``to_dict()``.
        kind: ``"ssdnet-isp"`` or ``"denoiser"``.
        architecture: Registered architecture name.
        extra: JSON-able facts stored beside the config.

    Returns:
        The written path.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        raise RawSynthError(f"{path}: model {type(model).__name__} has no config to store")
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "kind": kind,
        "architecture": architecture,
        "config": json.dumps(config.to_dict()),
        "extra": json.dumps(extra or {}),
    }
    tensors = {name: value.detach().to("cpu").contiguous() for name, value in model.state_dict().items()}
    temporary = path.with_name(path.name + ".tmp")
    save_file(tensors, str(temporary), metadata=metadata)
    temporary.replace(path)
    return path


def read_checkpoint_metadata(path: str | Path) -> dict[str, Any]:
    """Read and decode a checkpoint's metadata without loading its weights.

    Returns:
        ``{"format", "kind", "architecture", "config": dict, "extra": dict}``.

    Raises:
        RawSynthError: If the file is missing, not safetensors or not a raw-synth checkpoint.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise RawSynthError(f"{path}: checkpoint file not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception:  # safetensors raises several exception types for foreign files
        raise RawSynthError(f"{path}: not a safetensors checkpoint") from None
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise RawSynthError(f"{path}: not a raw-synth checkpoint (no '{CHECKPOINT_FORMAT}' format tag)")
    try:
        return {
            "format": metadata["format"],
            "kind": metadata["kind"],
            "architecture": metadata["architecture"],
            "config": json.loads(metadata["config"]),
            "extra": json.loads(metadata.get("extra", "{}")),
        }
    except (KeyError, json.JSONDecodeError) as error:
        raise RawSynthError(f"{path}: checkpoint metadata is damaged ({error})") from None


def load_model(
    path: str | Path, *, kind: str, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from a checkpoint.

    Args:
        path: ``.safetensors`` checkpoint written by :func:`save_model`.
        kind: The kind of model the caller needs (``"ssdnet-isp"`` or ``"denoiser"``).
        device: Where to put the model.

    Returns:
        ``(model in eval mode, metadata)`` as :func:`read_checkpoint_metadata` gives it.

    Raises:
        RawSynthError: If the checkpoint is of another kind or architecture, or its weights do
            not fit its config.
    """
    from safetensors.torch import load_file

    metadata = read_checkpoint_metadata(path)
    if metadata["kind"] != kind:
        raise RawSynthError(f"{path}: checkpoint holds a {metadata['kind']!r} model, expected {kind!r}")
    _builtin_architectures()
    builder = _ARCHITECTURES.get(metadata["architecture"])
    if builder is None:
        raise RawSynthError(
            f"{path}: unknown architecture {metadata['architecture']!r} (known: {', '.join(sorted(_ARCHITECTURES))})")
    try:
        model = builder(metadata["config"])
    except RawSynthError as error:
        raise RawSynthError(f"{path}: invalid model config ({error})") from None
    state = load_file(str(path))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "mismatch"
        raise RawSynthError(f"{path}: weights do not match the {metadata['architecture']} config ({first})") from None
    return model.to(device).eval(), metadata
