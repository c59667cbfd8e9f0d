"""The configuration of one ``raw-synth generate`` run and its checks.

:class:`GenerateConfig` mirrors the command-line options. :func:`check_config` validates it
(one-line :class:`~raw_synth.errors.RawSynthError` per problem, naming the option) and
:func:`resolve_cameras` turns ``--cameras`` into camera profiles.

Only some fields decide *what* is generated (:data:`IDENTITY_FIELDS`); they are the ones a resumed
run must share with the store. The fields declared with :func:`raw_synth.config_fields.run_only`
(:data:`RUN_ONLY_FIELDS`: ``out``, ``workers``, ``scheduler``, ``device``, ``overwrite``,
``cache_mb``, ``resume_check``) only say where and how, so a run may resume with another worker
count, cache size or on another cluster. Identity fields added after stores were first written have a
:data:`LEGACY_DEFAULTS` value: a manifest without the field was made with that value.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from raw_synth.config_checks import choice, fail, integer, is_integer, optional, text
from raw_synth.config_fields import identity_fields, run_only, run_only_fields
from raw_synth.errors import RawSynthError
from raw_synth.image_header import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:  # raw_synth.camera imports torch; the client needs it only to resolve the cameras
    from raw_synth.camera import CameraProfile

__all__ = [
    "GenerateConfig",
    "IDENTITY_FIELDS",
    "RUN_ONLY_FIELDS",
    "LEGACY_DEFAULTS",
    "DOWNSCALES",
    "DEFAULT_CACHE_MB",
    "FORMATS",
    "CAMERA_GROUPS",
    "check_config",
    "check_options",
    "resolve_cameras",
    "profile_digest",
]

#: Shard formats.
FORMATS: tuple[str, ...] = ("zarr", "hdf5")
#: ``--cameras`` words that stand for a group of bundled profiles (name prefix).
CAMERA_GROUPS: dict[str, str] = {"sidd": "sidd-", "eld": "eld-"}
#: Identity fields that stores written before them lack, with the value those stores were made with.
LEGACY_DEFAULTS: dict[str, Any] = {"crops_per_image": 1, "downscale": 1, "max_pixels": DEFAULT_MAX_PIXELS}
#: ``--downscale`` factors (the same as :data:`raw_synth.io.images.DOWNSCALES`).
DOWNSCALES: tuple[int, ...] = (1, 2, 4)
#: Default ``--cache-mb``: each worker's decoded-image cache (:data:`raw_synth.sources.DEFAULT_CACHE_BYTES`).
DEFAULT_CACHE_MB = 1024


@dataclass(frozen=True)
class GenerateConfig:
    """Everything ``raw-synth generate`` takes.

    Attributes:
        n: Number of noisy/clean pairs to write (``--n``).
        out: Store folder (``--out``); created if missing.
        src: Input images: a folder, a glob, a list file, ``"samples"`` or an unbounded corpus of
            :mod:`raw_synth.corpora` (``"deadleaves"``, ...).
        engine: Inverse ISP, ``"upi"`` or ``"ssdnet"``.
        model: SSDNet checkpoint (``.safetensors``) of ``engine="ssdnet"``; ``None`` takes the
            bundled one (:func:`raw_synth.engine.bundled_checkpoint`).
        cameras: Comma list of ``sidd`` (the five SIDD phones), ``eld`` (the five ELD cameras),
            bundled profile names and profile YAML paths; each sample picks one uniformly.
        patch: Side of the square sRGB crop in pixels (even); the RAW is ``(4, patch/2, patch/2)``.
        format: ``"zarr"`` or ``"hdf5"``.
        shard_size: Samples per shard.
        workers: Local worker processes (ignored when ``scheduler`` is set).
        scheduler: Address of a running Dask scheduler (``tcp://host:8786``), or ``None``.
        seed: Run seed (``>= 0``).
        device: Torch device of the engine (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
        clean_dtype: Stored dtype of the clean image, ``"float16"`` or ``"float32"``.
        overwrite: Replace a store that holds a different configuration.
        uncertainty: Also store SSDNet's per-pixel uncertainty (``ssdnet`` only).
        crops_per_image: ``k``: consecutive samples that crop the same photo (photo sources), so a
            worker decodes each photo once for ``k`` samples.
        downscale: Decode photos shrunk by 1, 2 or 4 (box filter) before cropping (photo sources).
        max_pixels: Skip input images whose header claims more pixels (stored height x width),
            before decoding (``--max-pixels``; :data:`raw_synth.image_header.DEFAULT_MAX_PIXELS`).
        cache_mb: Budget of each worker's decoded-photo cache in MiB (speed and memory only).
        resume_check: How the shards of an earlier run are checked before they are kept:
            ``"checksum"`` (every value read and its checksum recomputed) or ``"structure"``
            (attributes and array headers only); a shard that fails is written again.
    """

    n: int
    out: str | Path = run_only()
    src: str = "deadleaves"
    engine: str = "upi"
    model: str | Path | None = None
    cameras: str = "sidd"
    patch: int = 256
    format: str = "zarr"
    shard_size: int = 256
    workers: int = run_only(2)
    scheduler: str | None = run_only(None)
    seed: int = 0
    device: str = run_only("cpu")
    clean_dtype: str = "float16"
    overwrite: bool = run_only(False)
    uncertainty: bool = False
    crops_per_image: int = 1
    downscale: int = 1
    max_pixels: int = DEFAULT_MAX_PIXELS
    cache_mb: int = run_only(DEFAULT_CACHE_MB)
    resume_check: str = run_only("checksum")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (paths as strings)."""
        data = asdict(self)
        data["out"] = str(self.out)
        data["model"] = None if self.model is None else str(self.model)
        return data

    def identity(self) -> dict[str, Any]:
        """The :data:`IDENTITY_FIELDS` as a JSON-able dict."""
        data = self.to_dict()
        return {name: data[name] for name in IDENTITY_FIELDS}


#: Fields that decide the content of the store (compared on resume): all but the :func:`run_only` ones.
IDENTITY_FIELDS: tuple[str, ...] = identity_fields(GenerateConfig)
#: Fields that only say where and how a run goes (not compared on resume).
RUN_ONLY_FIELDS: tuple[str, ...] = run_only_fields(GenerateConfig)


def check_options(config: GenerateConfig) -> None:
    """Validate every option that needs no import of the engines (fast; see :func:`check_config`).

    Raises:
        RawSynthError: Naming the option and the problem, e.g. ``"--patch: expected an even
            number of pixels >= 2, got 33"``.
    """
    if not isinstance(config, GenerateConfig):
        raise RawSynthError(f"config: expected a GenerateConfig, got {type(config).__name__}")
    integer(config.n, "--n", 1, numpy=True)
    integer(config.shard_size, "--shard-size", 1, numpy=True)
    integer(config.workers, "--workers", 1, numpy=True)
    integer(config.seed, "--seed", 0, numpy=True)
    integer(config.crops_per_image, "--crops-per-image", 1, numpy=True)
    integer(config.cache_mb, "--cache-mb", 0, numpy=True)
    integer(config.max_pixels, "--max-pixels", 1, numpy=True)
    choice(config.downscale, DOWNSCALES, "--downscale")
    if not is_integer(config.patch, numpy=True) or config.patch < 2 or config.patch % 2:
        raise fail("--patch", f"expected an even number of pixels >= 2, got {config.patch!r}")
    if not str(config.out).strip():
        raise fail("--out", "expected a folder path, got an empty string")
    if config.model is not None and config.engine != "ssdnet":
        raise fail("--model", f"only used with --engine ssdnet, not with {config.engine!r}")
    if config.uncertainty and config.engine != "ssdnet":
        raise fail("--uncertainty", f"needs --engine ssdnet (its variance head), not {config.engine!r}")
    choice(config.resume_check, ("checksum", "structure"), "--resume-check", listing="or")
    choice(config.format, FORMATS, "--format")
    choice(config.clean_dtype, ("float16", "float32"), "--clean-dtype", listing="or")
    optional(text, config.scheduler, "--scheduler", "an address such as tcp://host:8786")
    text(config.device, "--device", "a torch device such as cpu or cuda")
    text(config.cameras, "--cameras", "a comma list of profiles")
    text(config.src, "--src", "a folder, glob, list file, 'samples' or a procedural corpus such as 'deadleaves'")


def check_config(config: GenerateConfig) -> None:
    """Validate a configuration without touching the disk or the sources.

    :func:`check_options`, then the engine and its checkpoint (this imports the engines, torch).

    Raises:
        RawSynthError: Naming the option and the problem, e.g. ``"--patch: expected an even
            number of pixels >= 2, got 33"``.
    """
    from raw_synth.engine import list_engines

    check_options(config)
    if config.engine not in list_engines():
        raise RawSynthError(f"--engine: unknown engine {config.engine!r}: expected one of {', '.join(list_engines())}")
    if config.engine == "ssdnet":
        if config.model is None:
            from raw_synth.engine import bundled_checkpoint

            if bundled_checkpoint() is None:
                raise RawSynthError("--model: this install has no bundled SSDNet checkpoint; pass --model "
                                    "CKPT.safetensors or use --engine upi")
        elif not Path(config.model).is_file():
            raise RawSynthError(f"--model: {config.model}: checkpoint file not found")


def resolve_cameras(spec: str) -> list[CameraProfile]:
    """Camera profiles of a ``--cameras`` list, in the order given, without duplicates.

    Args:
        spec: Comma list of ``sidd``, ``eld``, bundled profile names and YAML paths.

    Returns:
        The profiles; every one has a usable noise section.

    Raises:
        RawSynthError: Unknown names, unreadable files, profiles without noise, an empty list.
    """
    from raw_synth.camera import get_profile, list_profiles
    from raw_synth.noise.profiles import sample_camera_noise

    words = [w.strip() for w in str(spec).split(",") if w.strip()]
    if not words:
        raise RawSynthError(f"--cameras: expected a comma list of profiles, got {spec!r}")
    profiles: list[CameraProfile] = []
    bundled = None
    for word in words:
        if word in CAMERA_GROUPS:
            bundled = bundled if bundled is not None else list_profiles()
            group = [p for p in bundled if p.name.startswith(CAMERA_GROUPS[word])]
            if not group:
                raise RawSynthError(f"--cameras: group {word!r} has no bundled profiles")
            profiles.extend(group)
        else:
            try:
                profiles.append(get_profile(word))
            except RawSynthError as error:
                raise RawSynthError(f"--cameras: {error}") from None
    unique: dict[str, CameraProfile] = {}
    for profile in profiles:
        other = unique.get(profile.name)
        if other is not None and other != profile:
            raise RawSynthError(f"--cameras: two different profiles are named {profile.name!r}")
        unique.setdefault(profile.name, profile)
    for profile in unique.values():
        if profile.noise is None:
            raise RawSynthError(f"--cameras: {profile.source or profile.name}: "
                                f"profile {profile.name!r} has no noise section")
        sample_camera_noise(profile, np.random.default_rng(0))  # raises on an unusable noise section
    return list(unique.values())


def profile_digest(profile: CameraProfile) -> str:
    """sha256 of a profile's content (its YAML form), to notice a changed profile file on resume."""
    return hashlib.sha256(profile.to_yaml().encode("utf-8")).hexdigest()
