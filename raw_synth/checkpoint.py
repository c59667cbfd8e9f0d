"""Model checkpoints: safetensors weights with the model config in the file's metadata.

A raw-synth checkpoint is a plain ``.safetensors`` file. Its string metadata holds:

* ``format`` - always :data:`CHECKPOINT_FORMAT`;
* ``kind`` - what the model does: ``"ssdnet-isp"`` (sRGB to RAW) or ``"denoiser"``;
* ``architecture`` - the network class, e.g. ``"ssdnet"`` or ``"ssdnet-denoiser"``, resolved
  through the model registry (:func:`raw_synth.models.build_model`; nothing to import first);
* ``config`` - JSON of the model's dataclass config, enough to rebuild it;
* ``extra`` - JSON of anything else (training data, steps, camera colour facts, metrics).

Loading never unpickles anything, and every problem is one :class:`RawSynthError` line that
names the file: missing, not safetensors, not a raw-synth checkpoint, the wrong kind of model,
weights that do not fit the config, an absurd config, or non-finite weights.

:func:`load_model` is the one way every command (``convert``, ``generate``, ``denoise``,
``eval-sidd --model``) loads a model, and it trusts nothing in the file before checking it:

1. every integer in the config is at most :data:`MAX_CONFIG_INT`, and a block count is at most
   the number of tensors in the file (each block holds at least one);
2. the model is built on PyTorch's ``meta`` device (shapes only, no memory) and refused above
   :data:`MAX_PARAMETERS` parameters;
3. its tensor names and shapes are compared with the file's safetensors header (no data read);
4. only then are the weights read, and a weight that is NaN or infinite refused
   (:func:`check_finite_tensors`, also used for training states); the meta model takes them
   as its own.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from raw_synth.errors import RawSynthError, one_line
from raw_synth.models.registry import build_model, list_architectures, register_architecture

__all__ = [
    "CHECKPOINT_FORMAT",
    "save_model",
    "load_model",
    "read_checkpoint_metadata",
    "file_sha256",
    "register_architecture",
    "check_finite_tensors",
    "MAX_CONFIG_INT",
    "MAX_PARAMETERS",
]

CHECKPOINT_FORMAT = "raw-synth-checkpoint/1"

#: Largest integer a stored model config may hold (channels, widths, block counts, kernel sizes).
MAX_CONFIG_INT = 4096
#: Most parameters (weights and buffers) a checkpoint's model may have.
MAX_PARAMETERS = 1_000_000_000

_NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64, torch.complex64, torch.complex128)

# Config fields that count blocks or layers: each one holds at least one tensor of the file.
_DEPTH_FIELD = re.compile(r"(blocks|depths?|layers)$")

def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (identifies the engine checkpoint in a store's manifest)."""
    from raw_synth import file_hash

    return file_hash.file_sha256(path)


def save_model(
    path: str | Path,
    model: nn.Module,
    *,
    kind: str,
    architecture: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a model's weights and config as a safetensors checkpoint.

    Args:
        path: Output ``.safetensors`` path (parent folders are created).
        model: A model with a ``config`` attribute that has ``to_dict()``.
        kind: ``"ssdnet-isp"`` or ``"denoiser"``.
        architecture: Registered architecture name (default: the model class's ``architecture``,
            e.g. ``"ssdnet"`` or ``"ssdnet-denoiser"``; ``"ssdnet"`` for a class without one).
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
        "architecture": architecture or getattr(type(model), "architecture", None) or "ssdnet",
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


def check_finite_tensors(path: str | Path, tensors: Mapping[str, torch.Tensor], *,
                         what: str = "checkpoint holds non-finite weights") -> None:
    """Refuse tensors that hold NaN or infinite values.

    The one finiteness check of saved weights: :func:`load_model` runs it on every checkpoint
    and :func:`raw_synth.training.state.load_training_state` on every training state.

    Args:
        path: The file the tensors come from (named in the error).
        tensors: Tensors by name; integer and boolean ones are skipped.
        what: The problem as the error states it.

    Raises:
        RawSynthError: ``"PATH: WHAT (tensor 'NAME': N NaN/inf values)"`` for the first bad
            tensor, with the count of bad tensors when there are several.
    """
    bad: list[tuple[str, int]] = []
    for name, tensor in tensors.items():
        if not (tensor.is_floating_point() or tensor.is_complex()) or tensor.is_meta:
            continue
        tensor = tensor.detach()
        if tensor.device.type == "cpu" and tensor.dtype in _NUMPY_FLOATS:
            finite = bool(np.isfinite(tensor.numpy()).all())  # several times faster than torch per small tensor
        else:
            finite = bool(torch.isfinite(tensor).all())
        if not finite:
            bad.append((name, int((~torch.isfinite(tensor)).sum())))
    if bad:
        name, count = bad[0]
        more = f"; {len(bad)} tensors in all" if len(bad) > 1 else ""
        raise RawSynthError(f"{path}: {what} (tensor {name!r}: {count} NaN/inf values{more})")


def _config_numbers(value: Any, field: str) -> list[tuple[str, Any]]:
    """``(field, number)`` for every number in a config (lists as ``field[i]``, dicts as ``a.b``)."""
    if isinstance(value, dict):
        return [item for key, sub in value.items()
                for item in _config_numbers(sub, f"{field}.{key}" if field else str(key))]
    if isinstance(value, (list, tuple)):
        return [item for index, sub in enumerate(value) for item in _config_numbers(sub, f"{field}[{index}]")]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [(field, value)]
    return []


def _check_config_bounds(path: Path, config: Any, n_tensors: int) -> None:
    """Refuse config numbers that would ask for absurd models, before anything is built."""
    if not isinstance(config, dict):
        raise RawSynthError(f"{path}: invalid model config (expected a JSON object, got {type(config).__name__})")
    depth: dict[str, int] = {}
    for field, value in _config_numbers(config, ""):
        if isinstance(value, float) and not math.isfinite(value):
            raise RawSynthError(f"{path}: model config field {field!r} is not a finite number ({value})")
        if isinstance(value, int) and abs(value) > MAX_CONFIG_INT:
            raise RawSynthError(f"{path}: model config field {field!r} = {value} is beyond the limit {MAX_CONFIG_INT}")
        top = field.split("[", 1)[0].split(".", 1)[0]
        if isinstance(value, int) and value > 0 and _DEPTH_FIELD.search(top):
            depth[top] = depth.get(top, 0) + value
    total = sum(depth.values())
    if total > n_tensors:
        field = max(depth, key=depth.__getitem__)
        raise RawSynthError(f"{path}: model config field {field!r} asks for {depth[field]} blocks and the config for "
                            f"{total} in all, more than the {n_tensors} tensors in the file")


def load_model(
    path: str | Path, *, kind: str, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from a checkpoint, checking everything before allocating anything.

    The config is bounded (:data:`MAX_CONFIG_INT`; block counts by the file's tensor count),
    the model built on the ``meta`` device and bounded (:data:`MAX_PARAMETERS`), its tensor
    names and shapes compared with the file's header; only then are the weights read, checked
    for NaN/inf (:func:`check_finite_tensors`) and handed to the model.

    Args:
        path: ``.safetensors`` checkpoint written by :func:`save_model`.
        kind: The kind of model the caller needs (``"ssdnet-isp"`` or ``"denoiser"``).
        device: Where to put the model.

    Returns:
        ``(model in eval mode, metadata)`` as :func:`read_checkpoint_metadata` gives it.

    Raises:
        RawSynthError: If the checkpoint is of another kind or architecture, its config is
            invalid or absurd, its weights do not fit its config, or a weight is NaN or inf.
    """
    from safetensors import safe_open

    path = Path(path)
    metadata = read_checkpoint_metadata(path)
    if metadata["kind"] != kind:
        raise RawSynthError(f"{path}: checkpoint holds a {metadata['kind']!r} model, expected {kind!r}")
    architecture = metadata["architecture"]
    if architecture not in list_architectures():
        known = ", ".join(list_architectures())
        raise RawSynthError(f"{path}: unknown architecture {architecture!r} (known: {known})")
    try:
        handle_context = safe_open(str(path), framework="pt")
    except Exception:  # safetensors raises several exception types for damaged files
        raise RawSynthError(f"{path}: not a safetensors checkpoint") from None
    with handle_context as handle:
        shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
        _check_config_bounds(path, metadata["config"], len(shapes))
        try:
            with torch.device("meta"):
                model = build_model(architecture, metadata["config"])
        except RawSynthError as error:
            raise RawSynthError(f"{path}: invalid model config ({error})") from None
        except Exception as error:  # a builder's own failure on a config it does not accept
            raise RawSynthError(f"{path}: invalid model config ({type(error).__name__}: {one_line(error)})") from None
        n_parameters = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
        if n_parameters > MAX_PARAMETERS:
            raise RawSynthError(f"{path}: model config asks for {n_parameters:,} parameters, "
                                f"more than the limit {MAX_PARAMETERS:,}")
        _check_shapes(path, architecture, model, shapes)
        dtypes = {name: value.dtype for name, value in model.state_dict().items()}
        try:
            # The file's tensors become the model's own, in the dtypes the model was built with, copied
            # into fresh (aligned) memory: a tensor read in place can sit at any offset of the file,
            # and unaligned weights can take other SIMD kernels, with results that differ in the last bit.
            state = {name: handle.get_tensor(name).to(dtypes[name]).clone() for name in shapes}
        except Exception as error:  # e.g. a dtype this torch cannot hold
            raise RawSynthError(f"{path}: cannot read the weights ({' '.join(str(error).split())})") from None
    check_finite_tensors(path, state)
    # Sizes and shapes are checked, so nothing below allocates more than the file holds. The meta
    # model takes the loaded tensors as they are, unless it has tensors of its own that no
    # checkpoint fills (non-persistent buffers): those need a normal build.
    assign = not _meta_leftovers(model)
    if not assign:
        model = build_model(architecture, metadata["config"])
    try:
        model.load_state_dict(state, strict=True, assign=assign)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "mismatch"
        raise RawSynthError(f"{path}: weights do not match the {architecture} config ({first})") from None
    return model.to(device).eval(), metadata


def _meta_leftovers(model: nn.Module) -> bool:
    """Whether a meta-device model cannot simply take a checkpoint's tensors as its own.

    True when it holds tensors that its state dict does not fill (non-persistent buffers, plain
    tensor attributes) or shares one tensor under several names (tied weights).
    """
    named = [name for name, _ in model.named_parameters()] + [name for name, _ in model.named_buffers()]
    if sorted(named) != sorted(model.state_dict().keys()):
        return True
    for module in model.modules():
        own = set(module._parameters) | set(module._buffers)
        if any(key not in own and isinstance(value, torch.Tensor) for key, value in vars(module).items()):
            return True
    return False


def _check_shapes(path: Path, architecture: str, model: nn.Module, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Compare the (meta) model's state-dict names and shapes with the file's header."""
    expected = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    problem = ""
    if missing:
        problem = f"{len(missing)} tensor(s) missing, e.g. {missing[0]!r}"
    elif unexpected:
        problem = f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[0]!r}"
    else:
        wrong = [name for name in sorted(expected) if expected[name] != shapes[name]]
        if wrong:
            name = wrong[0]
            problem = (f"tensor {name!r} has shape {list(shapes[name])} in the file, the config gives "
                       f"{list(expected[name])}; {len(wrong)} tensor(s) differ")
    if problem:
        raise RawSynthError(f"{path}: weights do not match the {architecture} config ({problem})")
