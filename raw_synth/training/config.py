"""Training recipes for the SSDNet inverse ISP: a typed, YAML-backed :class:`TrainConfig`.

The shape follows BasicSR option files (``data`` / ``network`` / ``train`` / ``val`` /
``logger`` sections), but every field is typed and checked, unknown keys are refused, and the
whole config round-trips through :meth:`TrainConfig.to_dict` / :meth:`TrainConfig.from_dict`.

A recipe file looks like this (every key optional; missing keys take the defaults below)::

    name: ssdnet-tiny-cpu
    seed: 100
    data:
      layout: auto              # auto | camera-raw | aim22 | paired
      raw_max: 1024             # divisor of integer .npy RAW (AIM 2022: 1024)
      clip_raw: true            # clip targets to [0, 1] (the network's output range)
      augment: true             # phase-safe flips / rotations
      cache: true               # cache rendered camera-RAW pairs as .npz in RUN/cache
      sampling: image           # image (uniform over images) | area (proportional to training area)
      render:                   # rawpy postprocess of camera-RAW files
        output_bps: 16
        use_camera_wb: true
        adjust_maximum_thr: 0.0
        demosaic: AHD
    network:
      preset: tiny              # raw_synth.models preset
      overrides: {}             # SSDNetConfig fields to change
    train:
      total_steps: 2000
      lr: 1.0e-3
      weight_decay: 1.0e-4
      betas: [0.9, 0.999]
      flat_steps: 600           # constant lr until here, then cosine to eta_min
      cosine_steps: null        # length of the cosine; null = total_steps - flat_steps
      eta_min: 1.0e-6
      grad_clip: 0.01           # clip_grad_norm; null disables
      loss: resampling          # resampling (paper Eq. 4) | l1
      alpha: 1.0e-3
      progressive:              # [until_step, rgb_patch, batch]
        - [800, 64, 8]
        - [2000, 96, 6]
      checkpoint_every: 200
    val:
      every: 200
      holdout: auto             # auto | split-file | right-columns | images | none
      fraction: 0.25
      crops_per_image: 1
      patch: null               # RGB crop side; null = the whole held-out region
    logger:
      log_every: 10
      progress: true
      plot: true
    export:
      camera: null              # {name, wb_gains [4], xyz_to_cam [3x3]}; null = from the data

:func:`load_config` accepts a path, a mapping, a :class:`TrainConfig` or a built-in recipe name
(``"paper"`` or ``"cpu"``, the same values as ``configs/train-isp-*.yaml``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Mapping

import yaml

from raw_synth.config_checks import boolean, check_known, choice, fail, integer, number, optional, sequence, text
from raw_synth.config_fields import run_only
from raw_synth.errors import RawSynthError
from raw_synth.recipes import RECIPE_NAMES, read_yaml, recipe_path

__all__ = [
    "RenderConfig",
    "DataConfig",
    "NetworkConfig",
    "TrainSection",
    "ValConfig",
    "LoggerConfig",
    "ExportConfig",
    "TrainConfig",
    "load_config",
    "builtin_config",
    "LAYOUTS",
    "SAMPLINGS",
    "HOLDOUTS",
    "LOSSES",
]

#: Data layouts the dataset code understands (``auto`` detects one from the folder).
LAYOUTS: tuple[str, ...] = ("auto", "camera-raw", "aim22", "paired")
#: How a training crop picks its image.
SAMPLINGS: tuple[str, ...] = ("image", "area")
#: How held-out validation data is chosen.
HOLDOUTS: tuple[str, ...] = ("auto", "split-file", "right-columns", "images", "none")
#: Training losses.
LOSSES: tuple[str, ...] = ("resampling", "l1")
_DEMOSAIC = ("AHD", "AAHD", "DCB", "DHT", "LINEAR", "PPG", "VNG")


# This module's wording: "expected an integer" / "expected a finite number", then "must be >= N".
_integer = partial(integer, wording="must")
_number = partial(number, wording="must", kind="a finite number")


def _from_mapping(cls: type, data: Any, section: str) -> Any:
    """Build dataclass ``cls`` from a mapping, refusing unknown keys (nested sections recurse)."""
    if data is None:
        return cls()
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise RawSynthError(f"{section or 'config'}: expected a mapping, got {type(data).__name__}")
    check_known(data, sorted(f.name for f in dataclasses.fields(cls)), f"{section or 'config'}: unknown key(s)")
    kwargs = {}
    for key, value in data.items():
        nested = _NESTED.get((cls.__name__, key))
        kwargs[key] = _from_mapping(nested, value, f"{section}.{key}" if section else key) if nested else value
    return cls(**kwargs)


@dataclass(frozen=True)
class RenderConfig:
    """How camera-RAW files are rendered to sRGB with ``rawpy.postprocess``.

    The FiveK protocol of CycleISP (facts 3) is ``postprocess(use_camera_wb=True,
    no_auto_bright=True, output_bps=8, user_flip=0)``. raw-synth keeps everything but two
    choices: ``output_bps=16`` (8-bit output quantises the dark tones that the RAW resolves,
    so the inverse mapping loses information for no gain) and ``adjust_maximum_thr=0``
    (LibRaw's default 0.75 rescales each image by its own brightest pixel when that is above
    75% of the white level, so the sRGB would not be a fixed function of the RAW). Set
    ``output_bps: 8`` and ``adjust_maximum_thr: 0.75`` to reproduce the protocol exactly.
    ``half_size`` is always off and ``user_flip`` always 0, so RGB pixel ``(y, x)`` is mosaic
    pixel ``(y, x)``.

    Attributes:
        output_bps: 8 or 16 bits per sample.
        use_camera_wb: Use the as-shot white balance (else LibRaw's daylight default).
        adjust_maximum_thr: LibRaw ``adjust_maximum_thr`` (0 disables).
        demosaic: LibRaw demosaic algorithm name (AHD is LibRaw's default).
    """

    output_bps: int = 16
    use_camera_wb: bool = True
    adjust_maximum_thr: float = 0.0
    demosaic: str = "AHD"

    def __post_init__(self) -> None:
        choice(self.output_bps, (8, 16), "data.render.output_bps", listing="or")
        boolean(self.use_camera_wb, "data.render.use_camera_wb")
        _number(self.adjust_maximum_thr, "data.render.adjust_maximum_thr", minimum=0.0)
        choice(self.demosaic, _DEMOSAIC, "data.render.demosaic")


@dataclass(frozen=True)
class DataConfig:
    """Where pairs come from and how crops are made.

    Attributes:
        layout: ``auto``, ``camera-raw``, ``aim22`` or ``paired`` (see
            :mod:`raw_synth.training.datasets`).
        raw_max: Divisor of integer ``.npy`` RAW files (AIM 2022: 1024). Float files are taken
            as already normalised.
        clip_raw: Clip RAW targets to [0, 1], the range of SSDNet's output.
        augment: Random phase-safe flips and rotations of training crops.
        cache: Cache rendered camera-RAW pairs as ``.npz`` in ``RUN/cache``.
        in_memory: Keep all pairs in memory (else reload per crop, for large datasets).
        num_workers: DataLoader worker processes (0 = load in the training process).
        sampling: How a training crop picks its image: ``image`` (uniform over images whose
            training area fits the crop, as BasicSR's paired dataset) or ``area`` (in
            proportion to the training area, so every pixel is equally likely).
        render: :class:`RenderConfig` for camera-RAW files.
        colour_shift: Range, in stops, of the random per-colour RAW gains of the colour-shift
            augmentation (:func:`raw_synth.training.augment.colour_shift_pair`): each of R, G, B
            gets ``2 ** U(-colour_shift, colour_shift)``, then all are divided by the largest.
            0 turns it off. Needs the camera facts of camera-RAW data; other pairs are not shifted.
        colour_shift_p: Share of training crops that are colour-shifted.
        exposure_shift: Also darken colour-shifted crops by ``2 ** -U(0, exposure_shift)`` (the
            same relation with equal gains: a dimmer scene); 0 turns it off.
    """

    layout: str = "auto"
    raw_max: float = 1024.0
    clip_raw: bool = True
    augment: bool = True
    cache: bool = run_only(True)
    in_memory: bool = run_only(True)
    num_workers: int = run_only(0)
    sampling: str = "image"
    render: RenderConfig = field(default_factory=RenderConfig)
    colour_shift: float = 0.0
    colour_shift_p: float = 0.5
    exposure_shift: float = 0.0

    def __post_init__(self) -> None:
        choice(self.layout, LAYOUTS, "data.layout")
        for key in ("colour_shift", "colour_shift_p", "exposure_shift"):
            object.__setattr__(self, key, _number(getattr(self, key), f"data.{key}", minimum=0))
        if self.colour_shift_p > 1:
            raise fail("data.colour_shift_p", f"must be <= 1, got {self.colour_shift_p!r}")
        choice(self.sampling, SAMPLINGS, "data.sampling")
        object.__setattr__(self, "raw_max", _number(self.raw_max, "data.raw_max", positive=True))
        for key in ("clip_raw", "augment", "cache", "in_memory"):
            boolean(getattr(self, key), f"data.{key}")
        _integer(self.num_workers, "data.num_workers")


@dataclass(frozen=True)
class NetworkConfig:
    """The model: a :mod:`raw_synth.models` preset plus field overrides.

    Attributes:
        preset: ``tiny``, ``small`` or ``ssdnet-paper``.
        overrides: :class:`~raw_synth.models.SSDNetConfig` fields to change.
    """

    preset: str = "tiny"
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from raw_synth.models import get_config

        text(self.preset, "network.preset", "a preset name", empty=True)
        if not isinstance(self.overrides, Mapping):
            raise RawSynthError(f"network.overrides: expected a mapping, got {type(self.overrides).__name__}")
        object.__setattr__(self, "overrides", dict(self.overrides))
        try:
            get_config(self.preset, kind="ssdnet-isp", **self.overrides)
        except RawSynthError as error:
            raise RawSynthError(f"network: {error}") from None


@dataclass(frozen=True)
class TrainSection:
    """Optimisation: AdamW, flat-then-cosine learning rate, clipping, loss, progressive patches.

    Attributes:
        total_steps: Optimiser steps of the whole run (the schedule's length).
        lr: Base learning rate.
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        flat_steps: Steps at ``lr`` before the cosine starts.
        cosine_steps: Length of the cosine from ``lr`` to ``eta_min`` (None: to the end).
        eta_min: Final learning rate of the cosine.
        grad_clip: Max gradient norm (``clip_grad_norm_``), None disables (paper: 0.01).
        loss: ``resampling`` (paper Eq. 4, needs the variance head) or ``l1``.
        alpha: Weight of the variance term of the resampling loss (paper 1e-3).
        progressive: ``(until_step, rgb_patch, batch)`` stages; ``until_step`` increasing, the
            last one >= ``total_steps``; patches multiples of 16.
        checkpoint_every: Save the training state every this many steps (and at the end).
        device: ``auto`` (cuda if available), ``cpu``, ``cuda``, ``cuda:1``, ...
        threads: ``torch.set_num_threads`` for the run (None: leave torch's default).
    """

    total_steps: int = 276000
    lr: float = 3e-4
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    flat_steps: int = 92000
    cosine_steps: int | None = None
    eta_min: float = 1e-6
    grad_clip: float | None = 0.01
    loss: str = "resampling"
    alpha: float = 1e-3
    progressive: tuple[tuple[int, int, int], ...] = (
        (92000, 128, 64), (156000, 192, 32), (204000, 256, 16), (240000, 320, 8), (276000, 384, 8))
    checkpoint_every: int = run_only(5000)
    device: str = "auto"
    threads: int | None = run_only(None)

    def __post_init__(self) -> None:
        _integer(self.total_steps, "train.total_steps", 1)
        for key in ("lr", "eta_min"):
            object.__setattr__(self, key, _number(getattr(self, key), f"train.{key}", positive=True))
        object.__setattr__(self, "weight_decay", _number(self.weight_decay, "train.weight_decay", minimum=0.0))
        betas = sequence(self.betas, "train.betas", "two numbers", length=2)
        betas = tuple(_number(b, "train.betas", minimum=0.0) for b in betas)
        if not all(b < 1 for b in betas):
            raise fail("train.betas", f"each must be in [0, 1), got {list(betas)}")
        object.__setattr__(self, "betas", betas)
        _integer(self.flat_steps, "train.flat_steps")
        optional(_integer, self.cosine_steps, "train.cosine_steps", 1)
        object.__setattr__(self, "grad_clip", optional(_number, self.grad_clip, "train.grad_clip", positive=True))
        choice(self.loss, LOSSES, "train.loss")
        object.__setattr__(self, "alpha", _number(self.alpha, "train.alpha", minimum=0.0))
        object.__setattr__(self, "progressive", _stages(self.progressive, self.total_steps))
        _integer(self.checkpoint_every, "train.checkpoint_every", 1)
        text(self.device, "train.device", "auto, cpu or cuda[:N]", blank=True)
        optional(_integer, self.threads, "train.threads", 1)


def _stages(value: Any, total_steps: int) -> tuple[tuple[int, int, int], ...]:
    stages = []
    previous = 0
    for entry in sequence(value, "train.progressive", "a list of [until_step, patch, batch]"):
        if not isinstance(entry, (list, tuple)) or len(entry) != 3:
            raise fail("train.progressive", f"each stage must be [until_step, patch, batch], got {entry!r}")
        until, patch, batch = (_integer(v, "train.progressive", 1) for v in entry)
        if until <= previous:
            raise fail("train.progressive", f"until_step must increase, got {until} after {previous}")
        if patch % 16:
            raise fail("train.progressive", f"patch must be a multiple of 16, got {patch}")
        stages.append((until, patch, batch))
        previous = until
    if stages[-1][0] < total_steps:
        raise fail("train.progressive",
                   f"the last stage ends at step {stages[-1][0]}, before total_steps {total_steps}")
    return tuple(stages)


@dataclass(frozen=True)
class ValConfig:
    """Validation on held-out data (RAW-domain PSNR / SSIM).

    Attributes:
        every: Validate every this many steps (and at the end); 0 disables periodic validation.
        holdout: ``auto`` (``DATA/split.json`` if present, else whole images when there are at
            least 8, else the right-most columns), ``split-file``, ``right-columns``, ``images``
            or ``none``.
        fraction: Held-out share: of the columns (``right-columns``) or of the images.
        crops_per_image: Validation crops per held-out region.
        patch: RGB side of a validation crop (multiple of 2); None = the whole region.
    """

    every: int = 5000
    holdout: str = "auto"
    fraction: float = 0.25
    crops_per_image: int = 1
    patch: int | None = None

    def __post_init__(self) -> None:
        _integer(self.every, "val.every")
        choice(self.holdout, HOLDOUTS, "val.holdout")
        fraction = _number(self.fraction, "val.fraction", positive=True)
        if fraction >= 1:  # not number(below=1): the message shows the value as a float
            raise fail("val.fraction", f"must be below 1, got {fraction!r}")
        object.__setattr__(self, "fraction", fraction)
        _integer(self.crops_per_image, "val.crops_per_image", 1)
        patch = optional(_integer, self.patch, "val.patch", 22)
        if patch is not None and patch % 2:
            raise fail("val.patch", f"must be even, got {patch}")


@dataclass(frozen=True)
class LoggerConfig:
    """Logging: metrics every ``log_every`` steps to ``RUN/metrics.jsonl``, tqdm bar, curve plot."""

    log_every: int = 100
    progress: bool = True
    plot: bool = True

    def __post_init__(self) -> None:
        _integer(self.log_every, "logger.log_every", 1)
        boolean(self.progress, "logger.progress")
        boolean(self.plot, "logger.plot")


@dataclass(frozen=True)
class ExportConfig:
    """What the exported checkpoint says about the camera whose RAW it predicts.

    Attributes:
        camera: ``{"name": str, "wb_gains": [4 floats], "xyz_to_cam": [[3x3]]}`` or None to take
            it from the training data's metadata.
        colour: Where the white balance and colour matrix of ``camera = None`` come from:
            ``training`` (the training camera's facts; averaged over cameras if several),
            ``measured`` (photograph a virtual chart with the trained model,
            :func:`raw_synth.training.colour.measure_colour`), or ``auto``: ``measured`` when the
            data holds several cameras (whose averaged facts do not describe the blend the model
            learns), else ``training``.
    """

    camera: dict[str, Any] | None = None
    colour: str = "auto"

    def __post_init__(self) -> None:
        choice(self.colour, ("auto", "training", "measured"), "export.colour")
        if self.camera is None:
            return
        from raw_synth.training.export import check_camera  # local: avoids an import cycle

        object.__setattr__(self, "camera", check_camera(self.camera, "export.camera"))


@dataclass(frozen=True)
class TrainConfig:
    """A complete training recipe (see the module docstring for the YAML form)."""

    name: str = "ssdnet-isp"
    seed: int = 100
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    train: TrainSection = field(default_factory=TrainSection)
    val: ValConfig = run_only(default_factory=ValConfig)
    logger: LoggerConfig = run_only(default_factory=LoggerConfig)
    export: ExportConfig = run_only(default_factory=ExportConfig)

    def __post_init__(self) -> None:
        text(self.name, "name", blank=True)
        _integer(self.seed, "seed")

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-able dict (tuples become lists); :meth:`from_dict` inverts it."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """Build and check a config from a mapping (unknown keys are refused).

        Raises:
            RawSynthError: Naming the first bad field.
        """
        return _from_mapping(cls, data, "")

    def to_yaml(self) -> str:
        """The config as YAML text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=100)

    def replace(self, **sections: Any) -> "TrainConfig":
        """Copy with whole sections or top-level fields replaced (``dataclasses.replace``)."""
        return dataclasses.replace(self, **sections)


_NESTED: dict[tuple[str, str], type] = {
    ("TrainConfig", "data"): DataConfig,
    ("TrainConfig", "network"): NetworkConfig,
    ("TrainConfig", "train"): TrainSection,
    ("TrainConfig", "val"): ValConfig,
    ("TrainConfig", "logger"): LoggerConfig,
    ("TrainConfig", "export"): ExportConfig,
    ("DataConfig", "render"): RenderConfig,
}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def builtin_config(name: str) -> TrainConfig:
    """Return a bundled recipe: ``"paper"`` (released SSDNet schedule) or ``"cpu"`` (tiny preset).

    They are the YAML files ``raw_synth/configs/train-isp-{name}.yaml``.

    Raises:
        RawSynthError: For an unknown name.
    """
    if name not in RECIPE_NAMES:
        raise RawSynthError(f"unknown training recipe {name!r}: expected one of {', '.join(RECIPE_NAMES)} "
                            "or a YAML file")
    return load_config(recipe_path(name, "isp"))


def load_config(source: "TrainConfig | Mapping[str, Any] | str | Path | None" = None) -> TrainConfig:
    """Load a training recipe.

    Args:
        source: A :class:`TrainConfig` (returned as is), a mapping, a YAML path, a bundled
            recipe name (``"paper"``, ``"cpu"``; :func:`raw_synth.recipes.recipe_path`), or None
            for the ``cpu`` recipe.

    Returns:
        The checked config.

    Raises:
        RawSynthError: For a missing or malformed file, naming the file and the field.
    """
    if source is None:
        return builtin_config("cpu")
    if isinstance(source, TrainConfig):
        return source
    if isinstance(source, Mapping):
        return TrainConfig.from_dict(source)
    path = recipe_path(source, "isp")
    data = read_yaml(path)
    try:
        return TrainConfig.from_dict(data)
    except RawSynthError as error:
        raise RawSynthError(f"{path}: {error}") from None
