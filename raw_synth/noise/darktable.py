"""Import darktable's community noise profiles as raw-synth camera profiles.

darktable ships ``noiseprofiles.json`` (GPL-3.0): for hundreds of cameras and each ISO, a
Poisson-Gaussian fit ``variance(x) = a * x + b`` per colour R, G, B, with ``x`` the normalised
linear RAW value - the same units as raw-synth's ``shot``/``read``. raw-synth never vendors the
file; :func:`read_darktable_profiles` reads the user's copy and turns each camera into an
``iso-table`` profile (``a`` -> shot, ``b`` -> read; G serves both green planes).

darktable's file carries no Bayer pattern, levels or colour matrix, so those come from the
caller (defaults: RGGB, 14-bit, black 0, white 16383, the generic Unprocessing colour matrix).
A few fits have ``b <= 0`` (the line crosses zero); those read values are floored at
:data:`READ_FLOOR` and counted in the log.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from raw_synth.camera import CameraProfile, NoiseSection, get_profile
from raw_synth.cfa import check_cfa
from raw_synth.errors import RawSynthError

__all__ = ["read_darktable_profiles", "READ_FLOOR", "profile_slug"]

logger = logging.getLogger(__name__)

#: Smallest read-noise variance kept from a darktable fit (normalised units).
READ_FLOOR = 1e-9


def profile_slug(maker: str, model: str) -> str:
    """File-system and CLI friendly profile name, e.g. ``dt-canon-eos-550d``."""
    text = f"{maker} {model}".lower()
    if model.lower().startswith(maker.lower()):
        text = model.lower()
    return "dt-" + re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RawSynthError(f"{path}: darktable noise-profile file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RawSynthError(f"{path}: not a darktable noiseprofiles.json ({error.__class__.__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("noiseprofiles"), list):
        raise RawSynthError(f"{path}: not a darktable noiseprofiles.json (no 'noiseprofiles' list)")
    return data["noiseprofiles"]


def read_darktable_profiles(
    path: str | Path,
    maker: str | None = None,
    model: str | None = None,
    cfa: str = "RGGB",
    bit_depth: int = 14,
    black_level: float = 0.0,
    white_level: float | None = None,
) -> list[CameraProfile]:
    """Convert darktable noise profiles to camera profiles.

    Args:
        path: darktable's ``noiseprofiles.json``.
        maker: Keep only this maker (case-insensitive substring, e.g. ``"canon"``).
        model: Keep only models containing this text (case-insensitive, e.g. ``"550d"``).
        cfa: Bayer pattern to give the profiles.
        bit_depth: Bit depth to give the profiles.
        black_level: Black level in DN.
        white_level: White level in DN (default: ``2**bit_depth - 1``).

    Returns:
        One profile per camera model, each with an ``iso-table`` noise section, sorted by name.

    Raises:
        RawSynthError: If the file is missing or malformed, or the filters match no camera.
    """
    path = Path(path)
    cfa = check_cfa(cfa)
    white = float(2**bit_depth - 1 if white_level is None else white_level)
    generic = get_profile("unprocessing")
    profiles: dict[str, CameraProfile] = {}
    floored = 0
    for entry in _load(path):
        maker_name = str(entry.get("maker", ""))
        if maker and maker.lower() not in maker_name.lower():
            continue
        for camera in entry.get("models", []):
            model_name = str(camera.get("model", ""))
            if model and model.lower() not in model_name.lower():
                continue
            rows = []
            for fit in camera.get("profiles", []):
                try:
                    iso = float(fit["iso"])
                    a = [float(v) for v in fit["a"]]
                    b = [float(v) for v in fit["b"]]
                except (KeyError, TypeError, ValueError):
                    raise RawSynthError(f"{path}: malformed profile {fit.get('name', '?')!r} "
                                        f"of {maker_name} {model_name}") from None
                if len(a) != 3 or len(b) != 3 or iso <= 0 or min(a) <= 0:
                    continue
                floored += sum(v <= READ_FLOOR for v in b)
                rows.append((iso, a, [max(v, READ_FLOOR) for v in b]))
            if not rows:
                continue
            rows.sort(key=lambda row: row[0])
            unique = {row[0]: row for row in rows}  # darktable repeats a few ISOs; keep the last fit
            rows = [unique[iso] for iso in sorted(unique)]
            name = profile_slug(maker_name, model_name)
            profiles[name] = CameraProfile(
                name=name,
                cfa=cfa,
                bit_depth=bit_depth,
                black_level=(black_level,) * 4,
                white_level=(white,) * 4,
                xyz_to_cam=generic.xyz_to_cam,
                white_balance=generic.white_balance,
                noise=NoiseSection(
                    model="heteroscedastic-gaussian",
                    sampler="iso-table",
                    params={
                        "iso": [row[0] for row in rows],
                        "shot": [[a[0], a[1], a[1], a[2]] for _, a, _ in rows],
                        "read": [[b[0], b[1], b[1], b[2]] for _, _, b in rows],
                        "shot_scatter": 0.05,
                        "read_scatter": 0.1,
                    },
                ),
                description=f"{maker_name} {model_name}: darktable noise profile, ISO {rows[0][0]:g}-{rows[-1][0]:g}",
            )
    if not profiles:
        filters = ", ".join(f"{k} {v!r}" for k, v in (("maker", maker), ("model", model)) if v)
        raise RawSynthError(f"{path}: no camera matches {filters or 'any filter'}")
    if floored:
        logger.info("%s: %d read-noise values <= 0 floored at %g", path, floored, READ_FLOOR)
    return [profiles[name] for name in sorted(profiles)]
