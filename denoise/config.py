"""Training recipes for the denoiser: YAML with ``datasets``, ``network``, ``train``, ``val`` and ``logger``.

A recipe is read with ``yaml.safe_load`` and checked field by field; every problem is one
:class:`~raw_synth.errors.RawSynthError` line naming the file, the ``section.field`` and the
problem. Missing sections and fields take the defaults below, so ``{}`` is a valid recipe.

.. code-block:: yaml

    datasets:
      path: null            # store folder (the --data option overrides it)
      val_fraction: 0.1     # whole shards held out for validation (the last ones)
      val_shards: null      # or explicit shard names / positions
      crop: 64              # random crop, packed pixels (128x128 mosaic)
      augment: true         # Bayer-safe flips and transposes
      num_workers: 0        # DataLoader worker processes
    network:
      name: denoiser-tiny   # preset; any DenoiserConfig field overrides it, e.g.
      conditioned: true     # take the noise variance map (default false: blind)
    train:
      max_steps: 2000
      batch_size: 8
      lr: 0.0005
      min_lr: 1.0e-06       # cosine floor
      warmup_steps: 100
      weight_decay: 0.0001
      betas: [0.9, 0.999]
      grad_clip: 0.0        # 0 disables
      srgb_loss_weight: 0.0 # + weight * L1 of both images rendered to sRGB (process_raw)
      amp: auto             # auto (bf16/fp16 on CUDA, off on CPU), bf16, fp16, off
      device: auto          # auto, cpu, cuda, cuda:1, ...
      seed: 0
      checkpoint_every: 500
    val:
      every: 500            # steps between validations (0: only at the end)
      max_samples: 64
      crop: 128             # centre crop for validation (null: whole samples)
      batch_size: 4
    logger:
      log_every: 20
      progress: true        # tqdm bar
      plot: true            # curves.png
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from raw_synth.config_fields import run_only
from raw_synth.errors import RawSynthError
from raw_synth.recipes import read_yaml, recipe_path

__all__ = [
    "AMP_MODES",
    "DatasetsSection",
    "NetworkSection",
    "TrainSection",
    "ValSection",
    "LoggerSection",
    "TrainConfig",
    "load_train_config",
]

AMP_MODES: tuple[str, ...] = ("auto", "bf16", "fp16", "off")


class _Checker:
    """Field checks that name ``origin: section.field`` in their messages."""

    def __init__(self, origin: str, section: str) -> None:
        self.origin = origin
        self.section = section

    def fail(self, name: str, problem: str) -> RawSynthError:
        return RawSynthError(f"{self.origin}: {self.section}.{name}: {problem}")

    def integer(self, name: str, value: Any, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(name, f"expected an integer >= {minimum}, got {value!r}")
        return value

    def number(self, name: str, value: Any, minimum: float = 0.0, positive: bool = False,
               below: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(name, f"expected a number, got {value!r}")
        if value < minimum or (positive and value <= 0) or (below is not None and value >= below):
            bound = f"> {minimum:g}" if positive else f">= {minimum:g}"
            if below is not None:
                bound += f" and < {below:g}"
            raise self.fail(name, f"expected a number {bound}, got {value!r}")
        return float(value)

    def boolean(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(name, f"expected true or false, got {value!r}")
        return value

    def crop(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 2:
            return value
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 2 for v in value
        ):
            return [int(v) for v in value]
        raise self.fail(name, f"expected null, an integer >= 2 or [h, w] (packed pixels), got {value!r}")


@dataclass
class DatasetsSection:
    """Where the training pairs come from (see :class:`denoise.dataset.ShardDataset`)."""

    path: str | None = run_only(None)
    val_fraction: float = 0.1
    val_shards: list[Any] | None = None
    crop: Any = 64
    augment: bool = True
    num_workers: int = run_only(0)

    def check(self, c: _Checker) -> None:
        if self.path is not None and not isinstance(self.path, str):
            raise c.fail("path", f"expected a folder path or null, got {self.path!r}")
        c.number("val_fraction", self.val_fraction, 0.0, below=1.0)
        if self.val_shards is not None and (
            not isinstance(self.val_shards, list)
            or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in self.val_shards)
        ):
            raise c.fail("val_shards", f"expected null or a list of shard names / positions, got {self.val_shards!r}")
        self.crop = c.crop("crop", self.crop)
        c.boolean("augment", self.augment)
        c.integer("num_workers", self.num_workers, 0)


@dataclass
class NetworkSection:
    """The model: a preset ``name`` and :class:`~denoise.models.DenoiserConfig` overrides."""

    name: str = "denoiser-tiny"
    overrides: dict[str, Any] = field(default_factory=dict)

    def check(self, c: _Checker) -> None:
        from denoise.models import get_denoiser_config

        try:
            get_denoiser_config(self.name, **self.overrides)
        except RawSynthError as error:
            raise RawSynthError(f"{c.origin}: network: {error}") from None
        except TypeError as error:
            raise RawSynthError(f"{c.origin}: network: {error}") from None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.overrides}


@dataclass
class TrainSection:
    """Optimiser, schedule and loop settings."""

    max_steps: int = run_only(2000)
    batch_size: int = 8
    lr: float = 5e-4
    min_lr: float = 1e-6
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    grad_clip: float = 0.0
    srgb_loss_weight: float = 0.0
    amp: str = "auto"
    device: str = run_only("auto")
    seed: int = 0
    checkpoint_every: int = run_only(500)

    def check(self, c: _Checker) -> None:
        c.integer("max_steps", self.max_steps, 1)
        c.integer("batch_size", self.batch_size, 1)
        c.number("lr", self.lr, positive=True)
        c.number("min_lr", self.min_lr, 0.0)
        if self.min_lr > self.lr:
            raise c.fail("min_lr", f"must not exceed lr ({self.lr:g}), got {self.min_lr:g}")
        c.integer("warmup_steps", self.warmup_steps, 0)
        c.number("weight_decay", self.weight_decay, 0.0)
        if not isinstance(self.betas, (list, tuple)) or len(self.betas) != 2:
            raise c.fail("betas", f"expected two numbers in [0, 1), got {self.betas!r}")
        self.betas = [c.number("betas", b, 0.0, below=1.0) for b in self.betas]
        c.number("grad_clip", self.grad_clip, 0.0)
        c.number("srgb_loss_weight", self.srgb_loss_weight, 0.0)
        if self.amp not in AMP_MODES:
            raise c.fail("amp", f"expected one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")
        ):
            raise c.fail("device", f"expected auto, cpu, cuda or cuda:N, got {self.device!r}")
        c.integer("seed", self.seed, 0)
        c.integer("checkpoint_every", self.checkpoint_every, 0)


@dataclass
class ValSection:
    """Validation on the held-out shards."""

    every: int = 500
    max_samples: int = 64
    crop: Any = 128
    batch_size: int = 4

    def check(self, c: _Checker) -> None:
        c.integer("every", self.every, 0)
        c.integer("max_samples", self.max_samples, 1)
        self.crop = c.crop("crop", self.crop)
        c.integer("batch_size", self.batch_size, 1)


@dataclass
class LoggerSection:
    """Console and file logging."""

    log_every: int = 20
    progress: bool = True
    plot: bool = True

    def check(self, c: _Checker) -> None:
        c.integer("log_every", self.log_every, 1)
        c.boolean("progress", self.progress)
        c.boolean("plot", self.plot)


_SECTIONS: dict[str, type] = {
    "datasets": DatasetsSection,
    "network": NetworkSection,
    "train": TrainSection,
    "val": ValSection,
    "logger": LoggerSection,
}


@dataclass
class TrainConfig:
    """A whole training recipe."""

    datasets: DatasetsSection = field(default_factory=DatasetsSection)
    network: NetworkSection = field(default_factory=NetworkSection)
    train: TrainSection = field(default_factory=TrainSection)
    val: ValSection = run_only(default_factory=ValSection)
    logger: LoggerSection = run_only(default_factory=LoggerSection)

    def check(self, origin: str = "config") -> "TrainConfig":
        """Validate every section (normalising crops to lists); returns ``self``."""
        for name in _SECTIONS:
            getattr(self, name).check(_Checker(origin, name))
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, origin: str = "config") -> "TrainConfig":
        """Build and check a recipe from plain data (as YAML gives it).

        Raises:
            RawSynthError: Unknown sections or fields, wrong types or values.
        """
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise RawSynthError(f"{origin}: a training recipe must be a mapping of sections, got {type(data).__name__}")
        unknown = sorted(set(map(str, data)) - set(_SECTIONS))
        if unknown:
            raise RawSynthError(f"{origin}: unknown section(s) {', '.join(unknown)}; known: {', '.join(_SECTIONS)}")
        sections: dict[str, Any] = {}
        for name, section_type in _SECTIONS.items():
            values = data.get(name) or {}
            if not isinstance(values, Mapping):
                raise RawSynthError(f"{origin}: {name}: expected a mapping of fields, got {values!r}")
            if section_type is NetworkSection:
                values = dict(values)
                preset = values.pop("name", NetworkSection.name)
                if not isinstance(preset, str):
                    raise RawSynthError(f"{origin}: network.name: expected a preset name, got {preset!r}")
                sections[name] = NetworkSection(name=preset, overrides=values)
                continue
            known = {f.name for f in dataclasses.fields(section_type)}
            extra = sorted(set(map(str, values)) - known)
            if extra:
                raise RawSynthError(f"{origin}: {name}: unknown field(s) {', '.join(extra)}; "
                                    f"known: {', '.join(sorted(known))}")
            sections[name] = section_type(**values)
        return cls(**sections).check(origin)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the inverse of :meth:`from_dict`)."""
        out: dict[str, Any] = {}
        for name in _SECTIONS:
            section = getattr(self, name)
            out[name] = section.to_dict() if isinstance(section, NetworkSection) else dataclasses.asdict(section)
        return out

    def to_yaml(self) -> str:
        """The recipe as YAML text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def load_train_config(source: "str | Path | Mapping[str, Any] | TrainConfig | None") -> TrainConfig:
    """Load a recipe from a YAML file, a bundled name (``"cpu"``, ``"paper"``; see
    :func:`raw_synth.recipes.recipe_path`), a mapping, a :class:`TrainConfig` (copied) or ``None`` (defaults).

    Raises:
        RawSynthError: Missing or malformed file, or any invalid field (see :meth:`TrainConfig.from_dict`).
    """
    if source is None:
        return TrainConfig().check()
    if isinstance(source, TrainConfig):
        return TrainConfig.from_dict(source.to_dict())
    if isinstance(source, Mapping):
        return TrainConfig.from_dict(source)
    path = recipe_path(source, "denoiser")
    return TrainConfig.from_dict(read_yaml(path), str(path))
