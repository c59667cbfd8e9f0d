"""Calibrate a camera from files: the library side of ``raw-synth calibrate``.

:func:`calibrate_files` reads the files (camera RAW/DNG through :func:`raw_synth.io.read_raw`;
bare mosaics - ``.npy``, ``.png``, ``.tif``/``.tiff``, ``.raw``/``.bin`` or any file with
``shape`` - through :func:`raw_synth.io.read_mosaic`, which needs ``cfa``, ``black_level`` and
``white_level``), groups them by ISO (the ``iso`` argument - one ISO for every input or one per
file - else the file's metadata), runs one calibration method per ISO and builds the profile
``noise`` section with :func:`raw_synth.calibrate.fit_iso_relation`.

ISO: a single capture level needs none. When no input has an ISO (bare mosaics, DNGs without
EXIF ISO) the inputs are taken as one level of unknown ISO: the fit's ISO is ``None`` (JSON
``null``). A physics (flat-dark) profile needs no ISO at all; an ``iso-table`` profile needs an
ISO per row, so its one row is labelled :data:`ASSUMED_ISO` (with a warning when the profile is
built). When some inputs have an ISO and others not, the unknown ones could be at any level, so
that is an error naming the file (several ISOs make a multi-ISO profile, which needs every ISO).

Methods:

* ``"pairs"``: ``paths`` are noisy images, ``clean`` the matching clean ones (same order);
  :func:`raw_synth.calibrate.fit_pairs`, all pairs of one ISO pooled.
* ``"flat-dark"``: ``paths`` are flat-field frames (two or more per light level), ``darks``
  the dark frames; :func:`raw_synth.calibrate.fit_flat_dark` per ISO. The profile section is
  the ELD physics model.
* ``"blind"``: ``paths`` are noisy images; :func:`raw_synth.calibrate.estimate_blind`, the
  images of one ISO pooled.
* ``"dng"``: ``paths`` are DNG files with a NoiseProfile tag; files of one ISO are averaged
  (geometric mean).

For pairs and blind estimation the data are taken as clipped at 0 DN (normalised
``-black / (white - black)``) and at the white level (1.0).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Sequence, Union

import numpy as np

from raw_synth.calibrate.blind import estimate_blind
from raw_synth.calibrate.dng import noise_fit_from_raw
from raw_synth.calibrate.nlf import NoiseFit
from raw_synth.calibrate.pairs import fit_pairs
from raw_synth.calibrate.photon_transfer import PhysicsFit, fit_flat_dark
from raw_synth.calibrate.profile_fit import fit_iso_relation
from raw_synth.errors import RawSynthError
from raw_synth.io import RawImage, read_mosaic, read_raw

__all__ = ["calibrate_files", "Calibration", "METHODS", "MOSAIC_SUFFIXES", "ASSUMED_ISO", "load_raw_file",
           "parse_iso_option"]

logger = logging.getLogger(__name__)

Method = Literal["pairs", "flat-dark", "blind", "dng"]
METHODS: tuple[str, ...] = ("pairs", "flat-dark", "blind", "dng")
"""The calibration methods of :func:`calibrate_files`."""

MOSAIC_SUFFIXES = (".npy", ".png", ".tif", ".tiff", ".raw", ".bin")
"""File types read as bare mosaics (with explicit cfa/black/white) rather than camera RAW."""

ASSUMED_ISO = 100.0
"""ISO that labels the ``iso-table`` row of a calibration whose ISO is unknown."""

PathLike = Union[str, Path]
IsoArg = Union[float, Mapping[PathLike, float], None]


@dataclass(frozen=True, eq=False)
class Calibration:
    """Result of :func:`calibrate_files`.

    Attributes:
        method: the method used.
        fits: ``{iso: NoiseFit or PhysicsFit}``, ISOs ascending; the one key is ``None`` when
            the inputs' ISO is unknown (one capture level).
        noise: the camera-profile ``noise`` section (see :func:`fit_iso_relation`); for an
            unknown ISO its ``relation.isos`` is ``[None]`` and an ``iso-table`` row is labelled
            ``relation.assumed_iso`` (:data:`ASSUMED_ISO`).
        files: ``{iso: [file, ...]}``, the inputs of each ISO.
        cfa: native CFA of the inputs.
        black_level: black level per plane (DN) of the inputs.
        white_level: white level (DN) of the inputs.
        xyz_to_cam: the inputs' colour matrix, or ``None``.
        camera: camera name from the metadata, or ``None``.
    """

    method: str
    fits: dict[Optional[float], Union[NoiseFit, PhysicsFit]]
    noise: dict[str, Any]
    files: dict[Optional[float], list[str]]
    cfa: str
    black_level: tuple[float, float, float, float]
    white_level: float
    xyz_to_cam: Optional[np.ndarray] = None
    camera: Optional[str] = None

    def summary(self) -> dict[str, Any]:
        """JSON-able summary.

        Returns:
            ``{"method", "iso", "shot": [4], "read": [4], "isos": [...], "per_iso": [...],
            "noise": {...}, "cfa", "black_level", "white_level", "camera"}``. ``shot``/``read``
            (normalised, R, Gr, Gb, B) and ``iso`` are those of the lowest ISO (``iso`` is
            ``None`` when unknown); ``per_iso`` lists every ISO with its fit's details
            (``to_dict()``) and files.
        """
        per_iso = []
        for iso, fit in self.fits.items():
            entry = {"iso": iso, **fit.to_dict(), "files": list(self.files.get(iso, []))}
            per_iso.append(entry)
        first = next(iter(self.fits.values()))
        return {
            "method": self.method,
            "iso": next(iter(self.fits)),
            "shot": [float(v) for v in first.shot],
            "read": [float(v) for v in first.read],
            "isos": list(self.fits),
            "per_iso": per_iso,
            "noise": self.noise,
            "cfa": self.cfa,
            "black_level": list(self.black_level),
            "white_level": self.white_level,
            "camera": self.camera,
        }

    def to_profile(self, name: str, base: Any = None, description: str = "") -> Any:
        """A camera profile carrying this noise section.

        Args:
            name: profile name.
            base: a :class:`raw_synth.camera.CameraProfile` to copy everything else from; when
                ``None`` the profile is built from the inputs' metadata (CFA, levels, colour
                matrix - the sRGB one when the files had none, with a warning; bit depth from
                the white level).
            description: text for a new profile.

        Returns:
            :class:`raw_synth.camera.CameraProfile`.
        """
        from raw_synth.camera import CameraProfile, NoiseSection

        if None in self.fits and self.noise["sampler"] == "iso-table":
            logger.warning("%s: ISO unknown; the profile's iso-table labels this noise level ISO %g (generated "
                           "samples record that ISO); give the real one with --iso ISO", name,
                           self.noise["relation"]["assumed_iso"])
        section = NoiseSection(model=self.noise["model"], sampler=self.noise["sampler"], params=self.noise["params"])
        if base is not None:
            return base.replace(name=name, noise=section)
        matrix = self.xyz_to_cam
        if matrix is None:
            from raw_synth.io.dng import SRGB_XYZ_TO_CAM

            logger.warning("calibration inputs carry no colour matrix; the profile uses the sRGB one")
            matrix = SRGB_XYZ_TO_CAM
        bit_depth = max(1, int(math.ceil(math.log2(self.white_level + 1.0))))
        return CameraProfile(
            name=name,
            cfa=self.cfa,
            bit_depth=bit_depth,
            black_level=tuple(float(v) for v in self.black_level),  # type: ignore[arg-type]
            white_level=(float(self.white_level),) * 4,
            xyz_to_cam=tuple(tuple(float(v) for v in row) for row in np.asarray(matrix)),  # type: ignore[misc]
            noise=section,
            description=description or f"noise calibrated from {self.method}{self._unknown_iso_note()}",
        )

    def _unknown_iso_note(self) -> str:
        if None not in self.fits:
            return ""
        assumed = self.noise["relation"].get("assumed_iso")
        return " at an unknown ISO" + (f" (iso-table row labelled ISO {assumed:g})" if assumed is not None else "")


def load_raw_file(
    path: PathLike,
    *,
    cfa: Optional[str] = None,
    black_level: Union[float, Sequence[float], None] = None,
    white_level: Optional[float] = None,
    shape: Optional[tuple[int, int]] = None,
    dtype: str = "<u2",
) -> RawImage:
    """Read one calibration input: a bare mosaic (by suffix or ``shape``) or a camera RAW file.

    Args:
        path: the file.
        cfa: Bayer pattern of a bare mosaic.
        black_level: black level (DN) of a bare mosaic, one value or 4.
        white_level: white level (DN) of a bare mosaic.
        shape: ``(H, W)`` of a headerless mosaic.
        dtype: sample type of a headerless mosaic.

    Returns:
        The :class:`RawImage`.

    Raises:
        RawSynthError: unreadable file, or a bare mosaic without cfa/black/white.
    """
    file = Path(path)
    if shape is not None or file.suffix.lower() in MOSAIC_SUFFIXES:
        given = (("cfa", cfa), ("black_level", black_level), ("white_level", white_level))
        missing = [n for n, v in given if v is None]
        if missing:
            raise RawSynthError(f"{path}: a bare mosaic needs {', '.join(missing)} (it has no metadata)")
        return read_mosaic(path, cfa, black_level, white_level, shape=shape, dtype=dtype)  # type: ignore[arg-type]
    return read_raw(path)


def _path_key(path: PathLike) -> str:
    return os.path.normcase(os.path.abspath(os.fspath(path)))


def _iso_lookup(iso: IsoArg, inputs: Sequence[PathLike]) -> dict[str, float]:
    """``{normalised path: ISO}`` from ``iso`` (one value for all inputs, or per file)."""
    keys = [_path_key(p) for p in inputs]
    if iso is None:
        return {}
    if not isinstance(iso, Mapping):
        return dict.fromkeys(keys, _positive_iso(iso, "iso"))
    lookup = {}
    for path, value in iso.items():
        key = _path_key(path)
        if key not in keys:
            raise RawSynthError(f"iso: {path} is not one of the input files")
        if key in lookup:
            raise RawSynthError(f"iso: {path} given twice")
        lookup[key] = _positive_iso(value, f"iso of {path}")
    return lookup


def _positive_iso(value: Any, what: str) -> float:
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise RawSynthError(f"{what}: expected a positive number, got {value!r}")
    return float(value)


def _image_isos(
    images: list[RawImage], paths: Sequence[PathLike], lookup: dict[str, float]
) -> list[Optional[float]]:
    """Each image's ISO: given (``lookup``), else from its metadata, else ``None``."""
    return [lookup.get(_path_key(path), image.iso) for image, path in zip(images, paths)]


def _check_iso_known(images: list[RawImage], isos: list[Optional[float]]) -> None:
    """All ISOs known, or none (one capture level of unknown ISO); a mix is an error."""
    known = [(image, value) for image, value in zip(images, isos) if value is not None]
    unknown = [image for image, value in zip(images, isos) if value is None]
    if known and unknown:
        other, value = known[0]
        raise RawSynthError(
            f"{unknown[0].source}: ISO unknown (not in the file's metadata) while {other.source} is at ISO "
            f"{value:g}; calibrating several files needs every ISO: give it with --iso {unknown[0].source}=ISO "
            f"(or --iso ISO for every input)"
        )


def _group(isos: list[Optional[float]]) -> dict[Optional[float], list[int]]:
    groups: dict[Optional[float], list[int]] = {}
    for i, value in enumerate(isos):
        groups.setdefault(value, []).append(i)
    if None in groups:
        return groups
    return dict(sorted(groups.items(), key=lambda item: item[0] or 0.0))


def _noise_section(fits: dict[Optional[float], Union[NoiseFit, PhysicsFit]]) -> dict[str, Any]:
    """:func:`fit_iso_relation`, with the one fit of an unknown ISO labelled :data:`ASSUMED_ISO`."""
    if None not in fits:
        return fit_iso_relation(fits)  # type: ignore[arg-type]
    section = fit_iso_relation({ASSUMED_ISO: fits[None]})
    section["relation"]["isos"] = [None]
    if section["sampler"] == "iso-table":
        section["relation"]["assumed_iso"] = section["params"]["iso"][0]
    return section


def _iso_prefix(key: Optional[float]) -> str:
    return "" if key is None else f"ISO {key:g}: "


def parse_iso_option(values: Sequence[str]) -> IsoArg:
    """Parse ``raw-synth calibrate --iso`` values for :func:`calibrate_files`.

    Args:
        values: the option's values: one ``ISO`` for every input, or any number of
            ``FILE=ISO`` (the ISO of one input file).

    Returns:
        ``None`` (no value), a float, or ``{file: ISO}``.

    Raises:
        RawSynthError: on a value that is not a positive number, a file given twice, or a
            plain ISO mixed with others.
    """
    if not values:
        return None
    per_file: dict[PathLike, float] = {}
    plain: list[float] = []
    for text in values:
        path, sep, number = text.rpartition("=")
        try:
            value = float(number)
        except ValueError:
            value = float("nan")
        if not (math.isfinite(value) and value > 0) or (sep and not path):
            raise RawSynthError(f"--iso: expected ISO or FILE=ISO with a positive ISO, got {text!r}")
        if not sep:
            plain.append(value)
        elif path in per_file:
            raise RawSynthError(f"--iso: {path} given twice")
        else:
            per_file[path] = value
    if plain and (len(plain) > 1 or per_file):
        raise RawSynthError("--iso: give one ISO for every input, or FILE=ISO for each file, not both")
    return plain[0] if plain else per_file


def _check_same_format(images: list[RawImage], reference: RawImage) -> None:
    for image in images:
        if image.black_level != reference.black_level or image.white_level != reference.white_level:
            raise RawSynthError(
                f"{image.source}: black/white level {image.black_level}/{image.white_level:g} differ from "
                f"{reference.source} ({reference.black_level}/{reference.white_level:g})"
            )
        if image.packed.shape[0] != 4:
            raise RawSynthError(f"{image.source}: not a packed Bayer image")


def _clip_levels(image: RawImage) -> tuple[np.ndarray, float]:
    black = np.array(image.black_level, dtype=np.float64)
    return -black / (image.white_level - black), 1.0


def calibrate_files(
    method: Method,
    paths: Sequence[PathLike],
    *,
    clean: Optional[Sequence[PathLike]] = None,
    darks: Optional[Sequence[PathLike]] = None,
    iso: IsoArg = None,
    cfa: Optional[str] = None,
    black_level: Union[float, Sequence[float], None] = None,
    white_level: Optional[float] = None,
    shape: Optional[tuple[int, int]] = None,
    dtype: str = "<u2",
) -> Calibration:
    """Calibrate a camera's noise from files (what ``raw-synth calibrate`` calls).

    Args:
        method: ``"pairs"``, ``"flat-dark"``, ``"blind"`` or ``"dng"`` (see the module docstring).
        paths: the main inputs: noisy images (pairs, blind), flat frames (flat-dark) or DNG files.
        clean: clean images matching ``paths`` one to one (pairs only).
        darks: dark frames (flat-dark only).
        iso: ISO of every input, or ``{file: ISO}`` for some inputs (``paths`` and ``darks``;
            ``clean`` files may be named, their ISO is not used); by default each file's
            metadata. A single capture level needs none (its fit's ISO is then ``None``);
            inputs with an ISO mixed with inputs without one are an error.
        cfa: Bayer pattern of bare mosaics (``RGGB``, ``GRBG``, ``GBRG``, ``BGGR``).
        black_level: black level of bare mosaics, DN (one value or 4, R, Gr, Gb, B order).
        white_level: white level of bare mosaics, DN.
        shape: ``(H, W)`` of headerless mosaics.
        dtype: sample type of headerless mosaics.

    Returns:
        :class:`Calibration`; ``.summary()`` is the JSON-able report and ``.noise`` the profile
        section (``.to_profile(name)`` builds a whole :class:`~raw_synth.camera.CameraProfile`).

    Raises:
        RawSynthError: on an unknown method, missing or mismatched inputs, unreadable files,
            an unknown ISO among known ones (naming the file), or a failed fit (naming the ISO).
    """
    if method not in METHODS:
        raise RawSynthError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    if not paths:
        raise RawSynthError(f"{method}: no input files given")
    if clean is not None and method != "pairs":
        raise RawSynthError(f"clean: only used by the 'pairs' method, not {method!r}")
    if darks is not None and method != "flat-dark":
        raise RawSynthError(f"darks: only used by the 'flat-dark' method, not {method!r}")
    lookup = _iso_lookup(iso, [*paths, *(clean or []), *(darks or [])])
    read = dict(cfa=cfa, black_level=black_level, white_level=white_level, shape=shape, dtype=dtype)
    images = [load_raw_file(p, **read) for p in paths]  # type: ignore[arg-type]
    reference = images[0]
    isos = _image_isos(images, paths, lookup)
    dark_images: list[RawImage] = []
    dark_isos: list[Optional[float]] = []
    if method == "flat-dark" and darks:
        dark_images = [load_raw_file(p, **read) for p in darks]  # type: ignore[arg-type]
        dark_isos = _image_isos(dark_images, darks, lookup)
    _check_iso_known(images + dark_images, isos + dark_isos)
    groups = _group(isos)
    if None in groups:
        logger.info("ISO unknown for all %d inputs: calibrated as one capture level", len(images) + len(dark_images))
    fits: dict[Optional[float], Union[NoiseFit, PhysicsFit]] = {}
    files = {key: [str(images[i].source) for i in idx] for key, idx in groups.items()}

    if method == "dng":
        for key, idx in groups.items():
            group_fits = [noise_fit_from_raw(images[i]) for i in idx]
            if len(group_fits) == 1:
                shot, rd = group_fits[0].shot, group_fits[0].read
            else:  # geometric mean over the files of one ISO (a zero stays zero)
                shot = np.exp(np.mean([np.log(np.maximum(f.shot, 1e-300)) for f in group_fits], axis=0))
                rd = np.exp(np.mean([np.log(np.maximum(f.read, 1e-300)) for f in group_fits], axis=0))
            fits[key] = NoiseFit(shot=shot, read=rd, method="dng-noise-profile", source=tuple(files[key]))
    elif method == "pairs":
        if clean is None or len(clean) != len(paths):
            raise RawSynthError(f"clean: the pairs method needs one clean file per noisy file ({len(paths)}), got "
                                f"{0 if clean is None else len(clean)}")
        clean_images = [load_raw_file(p, **read) for p in clean]  # type: ignore[arg-type]
        _check_same_format(images + clean_images, reference)
        low, high = _clip_levels(reference)
        for key, idx in groups.items():
            for i in idx:
                if images[i].packed.shape != clean_images[i].packed.shape:
                    raise RawSynthError(f"{images[i].source}: size {images[i].packed.shape} differs from its clean "
                                        f"{clean_images[i].source} {clean_images[i].packed.shape}")
            try:
                fit = fit_pairs([images[i].packed for i in idx], [clean_images[i].packed for i in idx],
                                clip_low=low, clip_high=high)
            except RawSynthError as exc:
                raise RawSynthError(f"{_iso_prefix(key)}{exc}") from None
            fits[key] = _with_source(fit, files[key])
    elif method == "blind":
        _check_same_format(images, reference)
        low, high = _clip_levels(reference)
        for key, idx in groups.items():
            try:
                fit = estimate_blind([images[i].packed for i in idx], clip_low=low, clip_high=high)
            except RawSynthError as exc:
                raise RawSynthError(f"{_iso_prefix(key)}{exc}") from None
            fits[key] = _with_source(fit, files[key])
    else:  # flat-dark
        if not darks:
            raise RawSynthError("darks: the flat-dark method needs dark frames")
        _check_same_format(images + dark_images, reference)
        dark_groups = _group(dark_isos)
        for key, idx in groups.items():
            if key not in dark_groups:
                have = ", ".join(f"{k:g}" for k in dark_groups if k is not None) or "none"
                raise RawSynthError(f"darks: no dark frames at {_iso_prefix(key)[:-2] or 'this ISO'} (have {have})")
            try:
                physics = fit_flat_dark([images[i].packed for i in idx],
                                        [dark_images[i].packed for i in dark_groups[key]],
                                        reference.white_level, reference.black_level)
            except RawSynthError as exc:
                raise RawSynthError(f"{_iso_prefix(key)}{exc}") from None
            fits[key] = physics
            files[key] = files[key] + [str(dark_images[i].source) for i in dark_groups[key]]

    return Calibration(
        method=method,
        fits=fits,
        noise=_noise_section(fits),
        files=files,
        cfa=reference.cfa,
        black_level=reference.black_level,
        white_level=reference.white_level,
        xyz_to_cam=reference.xyz_to_cam,
        camera=reference.camera,
    )


def _with_source(fit: NoiseFit, files: list[str]) -> NoiseFit:
    return NoiseFit(shot=fit.shot, read=fit.read, method=fit.method, r2=fit.r2, n_pixels=fit.n_pixels,
                    bins=fit.bins, source=tuple(files))
