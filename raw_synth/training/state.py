"""Training state in one safetensors file, for exact resume.

The file holds every tensor needed to continue a run bit for bit: the model weights, the
optimiser state (AdamW moments and step counts), and the states of every random generator
(torch's global CPU generator, CUDA generators when present, the run's own torch generators,
numpy's and Python's global generators). Non-tensor facts (step, optimiser hyper-parameters,
schedule, elapsed time, the config) are JSON in the file's string metadata. Nothing is
pickled. Writing is atomic (temporary file, then ``os.replace``).

Tensor names: ``model/<param>``, ``optim/<param index>/<key>``, ``rng/torch``,
``rng/cuda/<i>``, ``rng/gen/<name>``, ``rng/numpy``, ``rng/python``.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from raw_synth.errors import RawSynthError

__all__ = ["STATE_FORMAT", "capture_rng", "restore_rng", "save_training_state", "load_training_state",
           "read_state_metadata"]

STATE_FORMAT = "raw-synth-train-state/1"


def capture_rng(generators: Mapping[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Snapshot the global torch / CUDA / numpy / Python generators and the named torch generators.

    Returns:
        ``{"tensors": {name: tensor}, "meta": {...}}`` as :func:`restore_rng` takes it.
    """
    tensors: dict[str, torch.Tensor] = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{index}"] = state
    for name, generator in (generators or {}).items():
        tensors[f"rng/gen/{name}"] = generator.get_state()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng/numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, internal, gauss_next = random.getstate()
    tensors["rng/python"] = torch.tensor(internal, dtype=torch.int64)
    meta = {
        "numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "gauss_next": gauss_next},
        "generators": sorted((generators or {}).keys()),
    }
    return {"tensors": tensors, "meta": meta}


def restore_rng(snapshot: Mapping[str, Any], generators: Mapping[str, torch.Generator] | None = None) -> None:
    """Restore what :func:`capture_rng` saved (the named generators must be given again)."""
    tensors, meta = snapshot["tensors"], snapshot["meta"]
    torch.set_rng_state(tensors["rng/torch"].to(torch.uint8))
    cuda = sorted((k for k in tensors if k.startswith("rng/cuda/")), key=lambda k: int(k.rsplit("/", 1)[1]))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k].to(torch.uint8) for k in cuda])
    for name, generator in (generators or {}).items():
        key = f"rng/gen/{name}"
        if key not in tensors:
            raise RawSynthError(f"training state has no random generator {name!r}")
        generator.set_state(tensors[key].to(torch.uint8))
    numpy_meta = meta["numpy"]
    np.random.set_state((numpy_meta["kind"], tensors["rng/numpy"].numpy().astype(np.uint32), numpy_meta["pos"],
                         numpy_meta["has_gauss"], numpy_meta["cached_gaussian"]))
    python_meta = meta["python"]
    random.setstate((python_meta["version"], tuple(int(v) for v in tensors["rng/python"].tolist()),
                     python_meta["gauss_next"]))


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{index}/{key}"] = value.detach().to("cpu").clone().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save_training_state(
    path: str | Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    generators: Mapping[str, torch.Generator] | None = None,
    scheduler: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the full training state atomically.

    Args:
        path: Output ``.safetensors`` file (folders are created).
        model: The model being trained.
        optimizer: Its optimiser.
        step: Number of completed optimiser steps.
        generators: The run's own torch generators, by name.
        scheduler: JSON-able schedule state.
        extra: JSON-able facts (config, elapsed time, ...).

    Returns:
        The written path.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model/{k}": v.detach().to("cpu").clone().contiguous() for k, v in model.state_dict().items()}
    optim_tensors, optim_meta = _optimizer_tensors(optimizer)
    tensors.update(optim_tensors)
    rng = capture_rng(generators)
    tensors.update({k: v.clone().contiguous() for k, v in rng["tensors"].items()})
    metadata = {
        "format": STATE_FORMAT,
        "step": str(int(step)),
        "optimizer": json.dumps(optim_meta),
        "rng": json.dumps(rng["meta"]),
        "scheduler": json.dumps(dict(scheduler or {})),
        "extra": json.dumps(dict(extra or {})),
    }
    temporary = path.with_name(path.name + ".tmp")
    save_file(tensors, str(temporary), metadata=metadata)
    os.replace(temporary, path)
    return path


def read_state_metadata(path: str | Path) -> dict[str, Any]:
    """Decode a training state's metadata (``step``, ``scheduler``, ``extra``, ...) without tensors.

    Raises:
        RawSynthError: If the file is missing or not a raw-synth training state.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise RawSynthError(f"{path}: training state not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception:  # safetensors raises several types for foreign files
        raise RawSynthError(f"{path}: not a safetensors training state") from None
    if metadata.get("format") != STATE_FORMAT:
        raise RawSynthError(f"{path}: not a raw-synth training state (no {STATE_FORMAT!r} format tag)")
    try:
        return {
            "step": int(metadata["step"]),
            "optimizer": json.loads(metadata["optimizer"]),
            "rng": json.loads(metadata["rng"]),
            "scheduler": json.loads(metadata["scheduler"]),
            "extra": json.loads(metadata["extra"]),
        }
    except (KeyError, ValueError) as error:
        raise RawSynthError(f"{path}: training state metadata is damaged ({error})") from None


def load_training_state(
    path: str | Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generators: Mapping[str, torch.Generator] | None = None,
    restore_random: bool = True,
) -> dict[str, Any]:
    """Load a state written by :func:`save_training_state` into ``model`` and ``optimizer``.

    Args:
        path: The state file.
        model: A model of the same architecture (weights are overwritten).
        optimizer: An optimiser over ``model.parameters()`` (state is overwritten).
        generators: The run's own torch generators, restored by name.
        restore_random: Also restore the global torch / numpy / Python generators.

    Returns:
        The decoded metadata (``step``, ``scheduler``, ``extra``, ...).

    Raises:
        RawSynthError: If the file is not a training state, does not fit the model, or holds
            NaN/inf weights or optimiser moments.
    """
    from safetensors.torch import load_file

    from raw_synth.checkpoint import check_finite_tensors

    meta = read_state_metadata(path)
    tensors = load_file(str(path))
    check_finite_tensors(path, tensors, what="training state holds non-finite values")
    device = next(model.parameters()).device
    weights = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "mismatch"
        raise RawSynthError(f"{path}: saved weights do not fit the model ({first})") from None
    optim_meta = meta["optimizer"]
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value.to(device) if name != "step" else value
    for index, scalars in optim_meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(scalars)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": optim_meta["param_groups"]})
    except (ValueError, KeyError) as error:
        raise RawSynthError(f"{path}: saved optimiser state does not fit ({error})") from None
    if restore_random:
        rng_tensors = {k: v for k, v in tensors.items() if k.startswith("rng/")}
        restore_rng({"tensors": rng_tensors, "meta": meta["rng"]}, generators)
    return meta
