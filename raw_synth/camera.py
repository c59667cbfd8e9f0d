"""Camera profiles: the sensor facts that turn a clean RAW image into a camera's RAW file.

A :class:`CameraProfile` is loaded from YAML (``configs/cameras/*.yaml`` for the bundled ones,
or any path a user gives). It holds what a camera's RAW files say about themselves - Bayer
pattern, bit depth, black and white level per plane, the XYZ-to-camera colour matrix - plus the
range of white-balance gains the camera produces and a ``noise`` section describing how its
noise level is drawn (filled by :mod:`raw_synth.noise`).

A profile file looks like this::

    name: canon-eos-550d
    description: Canon EOS 550D (Kiss X4), ColorMatrix1 from a real DNG
    cfa: RGGB
    bit_depth: 14
    black_level: 2056            # one value, or four in R, Gr, Gb, B order
    white_level: 15000           # one value, or four
    xyz_to_cam:                  # DNG ColorMatrix1, row-major 3x3
      - [0.6461, -0.1164, -0.0857]
      - [-0.3825, 1.1597, 0.2534]
      - [-0.0416, 0.1540, 0.6039]
    white_balance:               # gains relative to green, drawn uniformly
      red_gain: [1.9, 2.4]
      blue_gain: [1.5, 1.9]
    noise:                       # optional; see raw_synth.noise
      model: heteroscedastic-gaussian
      sampler: unprocessing
      params: {}

Every malformed file raises :class:`~raw_synth.errors.RawSynthError` naming the file and the
field, e.g. ``canon.yaml: field 'black_level': expected 1 or 4 numbers, got 3``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from raw_synth.cfa import check_cfa
from raw_synth.config_checks import fail, integer, number, plane_values, sequence, text, unknown_names
from raw_synth.errors import RawSynthError
from raw_synth.recipes import read_yaml

__all__ = [
    "CameraProfile",
    "NoiseSection",
    "WhiteBalanceRange",
    "load_profile",
    "parse_profile",
    "list_profiles",
    "get_profile",
    "bundled_profile_dir",
]


@dataclass(frozen=True)
class WhiteBalanceRange:
    """Uniform ranges of the red and blue white-balance gains (relative to green = 1)."""

    red_gain: tuple[float, float] = (1.9, 2.4)
    blue_gain: tuple[float, float] = (1.5, 1.9)


@dataclass(frozen=True)
class NoiseSection:
    """How a camera's noise level is drawn.

    Attributes:
        model: Noise model name (see :mod:`raw_synth.noise`), e.g. ``"heteroscedastic-gaussian"``.
        sampler: Parameter sampler name, e.g. ``"unprocessing"`` or ``"iso-table"``.
        params: Sampler parameters, as the sampler documents them (plain YAML data).
    """

    model: str
    sampler: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CameraProfile:
    """A camera's RAW format facts and noise description.

    Attributes:
        name: Short unique name, used on the command line (``--cameras``).
        cfa: Native Bayer pattern (``RGGB``, ``GRBG``, ``GBRG`` or ``BGGR``).
        bit_depth: Bits per RAW sample (the container's range is ``0 .. 2**bit_depth - 1``).
        black_level: Black level in DN per plane, R, Gr, Gb, B order.
        white_level: Saturation level in DN per plane, R, Gr, Gb, B order.
        xyz_to_cam: XYZ(D65)-to-camera matrix (DNG ColorMatrix1 convention), shape ``(3, 3)``.
        white_balance: Ranges the red and blue gains are drawn from.
        noise: How the noise level is drawn, or ``None`` when the profile has no noise section.
        description: Free text shown by ``raw-synth cameras show``.
        source: The file the profile came from (empty for profiles built in code).
    """

    name: str
    cfa: str
    bit_depth: int
    black_level: tuple[float, float, float, float]
    white_level: tuple[float, float, float, float]
    xyz_to_cam: tuple[tuple[float, float, float], ...]
    white_balance: WhiteBalanceRange = WhiteBalanceRange()
    noise: NoiseSection | None = None
    description: str = ""
    source: str = ""

    @property
    def xyz_to_cam_matrix(self) -> np.ndarray:
        """The colour matrix as a float64 ``(3, 3)`` array (a fresh copy)."""
        return np.array(self.xyz_to_cam, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, the inverse of :func:`parse_profile` (writable as YAML)."""
        data: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "cfa": self.cfa,
            "bit_depth": self.bit_depth,
            "black_level": list(self.black_level),
            "white_level": list(self.white_level),
            "xyz_to_cam": [list(row) for row in self.xyz_to_cam],
            "white_balance": {
                "red_gain": list(self.white_balance.red_gain),
                "blue_gain": list(self.white_balance.blue_gain),
            },
        }
        if self.noise is not None:
            data["noise"] = {
                "model": self.noise.model,
                "sampler": self.noise.sampler,
                "params": _plain(self.noise.params),
            }
        return data

    def to_yaml(self) -> str:
        """YAML text of :meth:`to_dict`."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=100)

    def replace(self, **changes: Any) -> "CameraProfile":
        """A copy with some fields changed (profiles are immutable)."""
        return dataclasses.replace(self, **changes)


def _plain(value: Any) -> Any:
    """Convert mappings/tuples/numpy scalars to plain YAML-safe Python data."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def _required(data: Mapping[str, Any], name: str, origin: str) -> Any:
    """``data[name]``, refusing a missing or null field."""
    if data.get(name) is None:
        raise RawSynthError(f"{origin}: missing required field {name!r}")
    return data[name]


def _gains(value: Any, label: str) -> tuple[float, float]:
    pair = sequence(value, label, "[low, high]", length=2)
    low, high = (number(v, label, non_finite="a finite number") for v in pair)
    if not 0 < low <= high:
        raise fail(label, f"expected 0 < low <= high, got [{low}, {high}]")
    return (low, high)


def parse_profile(data: Any, origin: str = "<profile>") -> CameraProfile:
    """Build a :class:`CameraProfile` from already-parsed YAML data.

    Args:
        data: The mapping read from a profile file.
        origin: Name used in error messages (usually the file path).

    Returns:
        The validated profile.

    Raises:
        RawSynthError: Naming ``origin`` and the offending field.
    """
    if not isinstance(data, Mapping):
        raise RawSynthError(f"{origin}: a camera profile must be a YAML mapping, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(CameraProfile)} - {"source"}
    unknown = unknown_names(data, known)
    if unknown:
        raise RawSynthError(f"{origin}: unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")

    def label(name: str) -> str:  # how messages name a field: "canon.yaml: field 'black_level'"
        return f"{origin}: field {name!r}"

    name = text(_required(data, "name", origin), label("name"))
    try:
        cfa = check_cfa(_required(data, "cfa", origin))
    except RawSynthError as error:
        raise fail(label("cfa"), str(error)) from None

    bit_depth = integer(_required(data, "bit_depth", origin), label("bit_depth"), 1, maximum=16)

    black = plane_values(_required(data, "black_level", origin), label("black_level"))
    white = plane_values(_required(data, "white_level", origin), label("white_level"))
    container_max = 2**bit_depth - 1
    for plane, (b, w) in enumerate(zip(black, white)):
        if not 0 <= b < w:
            raise fail(label("white_level"), f"plane {plane}: expected 0 <= black < white, got black {b}, white {w}")
        if w > container_max:
            raise fail(label("white_level"), f"{w} exceeds the {bit_depth}-bit maximum {container_max}")

    matrix = _required(data, "xyz_to_cam", origin)
    try:
        array = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(label("xyz_to_cam"), "expected a 3x3 matrix of numbers") from None
    if array.size == 9:
        array = array.reshape(3, 3)
    if array.shape != (3, 3) or not np.isfinite(array).all():
        raise fail(label("xyz_to_cam"), f"expected a finite 3x3 matrix, got shape {array.shape}")
    if abs(np.linalg.det(array)) < 1e-9:
        raise fail(label("xyz_to_cam"), "matrix is singular")

    wb_data = data.get("white_balance") or {}
    if not isinstance(wb_data, Mapping):
        raise fail(label("white_balance"), "expected a mapping with red_gain and blue_gain")
    defaults = WhiteBalanceRange()
    white_balance = WhiteBalanceRange(
        red_gain=_gains(wb_data.get("red_gain", list(defaults.red_gain)), label("white_balance.red_gain")),
        blue_gain=_gains(wb_data.get("blue_gain", list(defaults.blue_gain)), label("white_balance.blue_gain")),
    )

    noise = None
    noise_data = data.get("noise")
    if noise_data is not None:
        if not isinstance(noise_data, Mapping):
            raise fail(label("noise"), "expected a mapping with model, sampler and params")
        params = noise_data.get("params") or {}
        if not isinstance(params, Mapping):
            raise fail(label("noise.params"), f"expected a mapping, got {params!r}")
        noise = NoiseSection(
            model=text(noise_data.get("model"), label("noise.model")),
            sampler=text(noise_data.get("sampler"), label("noise.sampler")),
            params=dict(params),
        )

    description = text(data.get("description") or "", label("description"), "a string", empty=True)

    return CameraProfile(
        name=name,
        cfa=cfa,
        bit_depth=bit_depth,
        black_level=black,
        white_level=white,
        xyz_to_cam=tuple((float(row[0]), float(row[1]), float(row[2])) for row in array),
        white_balance=white_balance,
        noise=noise,
        description=description,
        source=origin,
    )


def load_profile(path: str | Path) -> CameraProfile:
    """Load and validate a camera profile YAML file.

    Args:
        path: Path to a ``.yaml`` / ``.yml`` file.

    Returns:
        The profile, with ``source`` set to the path.

    Raises:
        RawSynthError: If the file is missing, is not valid YAML, or a field is malformed.
    """
    path = Path(path)
    data = read_yaml(path, "camera profile")
    return parse_profile(data, origin=str(path))


def bundled_profile_dir() -> Path:
    """The folder of bundled profiles (``configs/cameras`` of the package)."""
    return Path(str(resources.files("raw_synth") / "configs" / "cameras"))


def list_profiles() -> list[CameraProfile]:
    """All bundled camera profiles, sorted by name."""
    folder = bundled_profile_dir()
    profiles = [load_profile(p) for p in sorted(folder.glob("*.yaml"))]
    return sorted(profiles, key=lambda p: p.name)


def get_profile(name_or_path: str | Path) -> CameraProfile:
    """Return a bundled profile by name, or load one from a YAML path.

    Args:
        name_or_path: A bundled profile name (see ``raw-synth cameras list``) or a path to a
            ``.yaml`` file.

    Raises:
        RawSynthError: If no bundled profile has that name and it is not an existing file.
    """
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or Path(text).is_file():
        return load_profile(text)
    for profile in list_profiles():
        if profile.name == text:
            return profile
    names = ", ".join(p.name for p in list_profiles())
    raise RawSynthError(f"unknown camera profile {text!r}: expected a YAML path or one of {names}")
