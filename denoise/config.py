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
      exposure: 0.0         # probability of a brighter exposure with its noise drawn again
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
      init: null            # start from this denoiser's weights (fine-tuning): a .safetensors
                            # file or a bundled model name (denoiser-tiny); its network must match
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from raw_synth.config_checks import (
    boolean,
    check_known,
    choice,
    fail,
    integer,
    is_integer,
    number,
    optional,
    sequence,
    text,
)
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


def _crop(value: Any, label: str) -> Any:
    """A crop: ``None``, an integer >= 2 or ``[h, w]`` (returned as a list)."""
    if value is None:
        return None
    if is_integer(value) and value >= 2:
        return value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(is_integer(v) and v >= 2 for v in value):
        return [int(v) for v in value]
    raise fail(label, f"expected null, an integer >= 2 or [h, w] (packed pixels), got {value!r}")


@dataclass
class DatasetsSection:
    """Where the training pairs come from (see :class:`denoise.dataset.ShardDataset`)."""

    path: str | None = run_only(None)
    val_fraction: float = 0.1
    val_shards: list[Any] | None = None
    crop: Any = 64
    augment: bool = True
    exposure: float = 0.0
    num_workers: int = run_only(0)

    def check(self, at: str) -> None:
        """Validate the fields, naming them ``AT.field`` (normalises ``crop``)."""
        optional(text, self.path, f"{at}.path", "a folder path or null", empty=True)
        number(self.val_fraction, f"{at}.val_fraction", minimum=0.0, below=1.0)
        shards = self.val_shards
        names_or_positions = isinstance(shards, list) and all(isinstance(v, str) or is_integer(v) for v in shards)
        if shards is not None and not names_or_positions:
            raise fail(f"{at}.val_shards", f"expected null or a list of shard names / positions, got {shards!r}")
        self.crop = _crop(self.crop, f"{at}.crop")
        boolean(self.augment, f"{at}.augment")
        if number(self.exposure, f"{at}.exposure", minimum=0.0, kind="a probability") > 1.0:
            raise fail(f"{at}.exposure", f"expected a probability in [0, 1], got {self.exposure!r}")
        integer(self.num_workers, f"{at}.num_workers", 0)


@dataclass
class NetworkSection:
    """The model: a preset ``name`` and :class:`~denoise.models.DenoiserConfig` overrides."""

    name: str = "denoiser-tiny"
    overrides: dict[str, Any] = field(default_factory=dict)

    def check(self, at: str) -> None:
        """Build the network's config once; its errors are prefixed with ``AT: ``."""
        from denoise.models import get_denoiser_config

        try:
            get_denoiser_config(self.name, **self.overrides)
        except (RawSynthError, TypeError) as error:
            raise fail(at, str(error)) from None

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
    init: str | None = None

    def check(self, at: str) -> None:
        """Validate the fields, naming them ``AT.field`` (normalises ``betas``)."""
        integer(self.max_steps, f"{at}.max_steps", 1)
        integer(self.batch_size, f"{at}.batch_size", 1)
        number(self.lr, f"{at}.lr", positive=True)
        number(self.min_lr, f"{at}.min_lr", minimum=0.0)
        if self.min_lr > self.lr:
            raise fail(f"{at}.min_lr", f"must not exceed lr ({self.lr:g}), got {self.min_lr:g}")
        integer(self.warmup_steps, f"{at}.warmup_steps", 0)
        number(self.weight_decay, f"{at}.weight_decay", minimum=0.0)
        betas = sequence(self.betas, f"{at}.betas", "two numbers in [0, 1)", length=2)
        self.betas = [number(b, f"{at}.betas", minimum=0.0, below=1.0) for b in betas]
        number(self.grad_clip, f"{at}.grad_clip", minimum=0.0)
        number(self.srgb_loss_weight, f"{at}.srgb_loss_weight", minimum=0.0)
        choice(self.amp, AMP_MODES, f"{at}.amp")
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")
        ):
            raise fail(f"{at}.device", f"expected auto, cpu, cuda or cuda:N, got {self.device!r}")
        integer(self.seed, f"{at}.seed", 0)
        integer(self.checkpoint_every, f"{at}.checkpoint_every", 0)
        optional(text, self.init, f"{at}.init", "a checkpoint file, a bundled model name or null")


@dataclass
class ValSection:
    """Validation on the held-out shards."""

    every: int = 500
    max_samples: int = 64
    crop: Any = 128
    batch_size: int = 4

    def check(self, at: str) -> None:
        """Validate the fields, naming them ``AT.field`` (normalises ``crop``)."""
        integer(self.every, f"{at}.every", 0)
        integer(self.max_samples, f"{at}.max_samples", 1)
        self.crop = _crop(self.crop, f"{at}.crop")
        integer(self.batch_size, f"{at}.batch_size", 1)


@dataclass
class LoggerSection:
    """Console and file logging."""

    log_every: int = 20
    progress: bool = True
    plot: bool = True

    def check(self, at: str) -> None:
        """Validate the fields, naming them ``AT.field``."""
        integer(self.log_every, f"{at}.log_every", 1)
        boolean(self.progress, f"{at}.progress")
        boolean(self.plot, f"{at}.plot")


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
            getattr(self, name).check(f"{origin}: {name}")
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
        check_known(set(map(str, data)), tuple(_SECTIONS), f"{origin}: unknown section(s)")
        sections: dict[str, Any] = {}
        for name, section_type in _SECTIONS.items():
            values = data.get(name) or {}
            if not isinstance(values, Mapping):
                raise RawSynthError(f"{origin}: {name}: expected a mapping of fields, got {values!r}")
            if section_type is NetworkSection:
                values = dict(values)
                preset = values.pop("name", NetworkSection.name)
                text(preset, f"{origin}: network.name", "a preset name", empty=True)
                sections[name] = NetworkSection(name=preset, overrides=values)
                continue
            known = sorted(f.name for f in dataclasses.fields(section_type))
            check_known(set(map(str, values)), known, f"{origin}: {name}: unknown field(s)")
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
