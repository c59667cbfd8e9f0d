"""``raw-synth denoise``: denoise a real RAW file and write it back as DNG with the same metadata.

Steps:

1. **Read.** Any Bayer RAW that LibRaw opens (DNG, CR2, NEF, ...) with
   :func:`raw_synth.io.read_raw`; a bare mosaic (``.npy``, 16-bit PNG/TIFF, headerless ``.raw`` /
   ``.bin``) with :func:`raw_synth.io.read_mosaic`, which needs ``cfa``, ``black`` and ``white``.
2. **Unify.** The mosaic is brought to RGGB phase by reflecting one row/column onto both ends
   (``raw_synth.cfa.unify(..., "pad")``), the phase the denoiser was trained on; the result is
   restored to the native phase afterwards, so every pixel keeps its place.
3. **Noise level** (conditioned models), first that applies: the file's DNG NoiseProfile; the
   ``camera`` profile's per-ISO table interpolated at the file's ISO; a blind estimate from the
   image itself (:func:`raw_synth.calibrate.estimate_blind`). Which one was used is logged and
   returned.
4. **Denoise** tile by tile (:func:`denoise.inference.denoise_packed`), output clamped to [0, 1].
5. **Write** a DNG (:func:`raw_synth.io.write_dng`) with the input's CFA, black and white levels,
   white balance, colour matrix, ISO and camera name. The NoiseProfile is *not* copied: it
   described the noisy input, not the output.
6. **Preview** (optional): a PNG with the noisy input (left) and the denoised output (right),
   rendered by :func:`raw_synth.isp.render` with the file's white balance and colour matrix and one
   shared exposure gain.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from raw_synth.bundled_checkpoints import DENOISER_CHECKPOINT, bundled_checkpoint_path
from raw_synth.errors import RawSynthError

__all__ = ["DenoiseResult", "denoise_file", "bundled_denoiser", "estimate_noise", "render_preview",
           "MOSAIC_SUFFIXES", "BUNDLED_NAME"]

logger = logging.getLogger(__name__)

#: Suffixes read as bare mosaics (with cfa, black and white given).
MOSAIC_SUFFIXES: tuple[str, ...] = (".npy", ".png", ".tif", ".tiff", ".raw", ".bin")
#: File name of the bundled checkpoint in ``raw_synth/data/checkpoints``.
BUNDLED_NAME = DENOISER_CHECKPOINT


@dataclass(frozen=True)
class DenoiseResult:
    """What :func:`denoise_file` did.

    Attributes:
        out: The DNG written.
        noise_source: ``"noise-profile"``, ``"camera:<name>@ISO<iso>"``, ``"blind-estimate"`` or
            ``"not needed (blind model)"``.
        shot: Per-plane shot coefficient used (R, Gr, Gb, B), or ``None`` for a blind model.
        read: Per-plane read variance used, or ``None``.
        cfa: Native CFA of the file.
        size: ``(H, W)`` of the mosaic written.
        preview: The preview PNG, or ``None``.
        seconds: Wall time.
    """

    out: Path
    noise_source: str
    shot: tuple[float, ...] | None
    read: tuple[float, ...] | None
    cfa: str
    size: tuple[int, int]
    preview: Path | None
    seconds: float


def bundled_denoiser() -> Path:
    """Path of the bundled ``denoiser-tiny`` checkpoint (``raw_synth/data/checkpoints``)."""
    return bundled_checkpoint_path(BUNDLED_NAME)


def _read_input(path: Path, cfa: str | None, black: Any, white: Any) -> Any:
    from raw_synth.io import read_mosaic, read_raw

    given = {"cfa": cfa, "black": black, "white": white}
    missing = [f"--{k}" for k, v in given.items() if v is None]
    if len(missing) < 3:  # some levels given: a bare mosaic
        if missing:
            raise RawSynthError(f"{path}: a bare mosaic needs --cfa, --black and --white "
                                f"(missing {', '.join(missing)})")
        return read_mosaic(path, cfa, black, white)  # type: ignore[arg-type]
    if path.suffix.lower() in MOSAIC_SUFFIXES:
        if not path.exists():
            raise RawSynthError(f"{path}: file not found")
        raise RawSynthError(f"{path}: a bare mosaic ({path.suffix}) needs --cfa, --black and --white")
    return read_raw(path)


def estimate_noise(raw: Any, packed_rggb: np.ndarray, camera: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Noise level of a RAW image: NoiseProfile, else camera profile at the ISO, else blind.

    Args:
        raw: The :class:`~raw_synth.io.RawImage` (for its NoiseProfile, ISO and name).
        packed_rggb: Its RGGB-phase packed planes (for the blind estimate).
        camera: Camera profile name or YAML path, or ``None``.

    Returns:
        ``(shot (4,), read (4,), source)``.

    Raises:
        RawSynthError: A camera profile without a per-ISO table, a file without ISO for it, or a
            blind estimate that finds too little flat area.
    """
    name = raw.source or "image"
    if raw.noise_profile is not None:
        if camera is not None:
            logger.warning("%s: the file's NoiseProfile is used; --camera %s is ignored", name, camera)
        shot = np.array([p[0] for p in raw.noise_profile], dtype=np.float64)
        read = np.array([p[1] for p in raw.noise_profile], dtype=np.float64)
        return shot, read, "noise-profile"
    if camera is not None:
        from raw_synth.camera import get_profile
        from raw_synth.noise.profiles import iso_table
        from raw_synth.noise.sampling import check_nlf_table, interpolate_nlf

        profile = get_profile(camera)
        if profile.noise is None or profile.noise.sampler != "iso-table":
            sampler = None if profile.noise is None else profile.noise.sampler
            raise RawSynthError(
                f"--camera {camera}: profile {profile.name!r} has no per-ISO noise table (sampler {sampler!r}); "
                "use an iso-table profile or omit --camera for a blind estimate"
            )
        if raw.iso is None:
            raise RawSynthError(f"{name}: the file records no ISO, "
                                f"needed to read the noise level from --camera {camera}")
        table = iso_table(profile.noise.params, f"{profile.name}: noise.params")
        isos = check_nlf_table(table)[0]
        iso = float(np.clip(raw.iso, isos[0], isos[-1]))
        if iso != raw.iso:
            logger.warning("%s: ISO %g is outside profile %s's table [%g, %g]; using ISO %g", name, raw.iso,
                           profile.name, isos[0], isos[-1], iso)
        shot, read = interpolate_nlf(table, iso)
        return np.asarray(shot, np.float64), np.asarray(read, np.float64), f"camera:{profile.name}@ISO{iso:g}"
    from raw_synth.calibrate import estimate_blind

    try:
        fit = estimate_blind(packed_rggb)
    except RawSynthError as error:
        raise RawSynthError(f"{name}: blind noise estimate failed ({error}); give --camera") from None
    return np.asarray(fit.shot, np.float64), np.asarray(fit.read, np.float64), "blind-estimate"


def render_preview(
    images: Sequence[np.ndarray],
    wb: Sequence[float] | None,
    xyz_to_cam: np.ndarray | None,
    path: str | Path,
    border: tuple[int, int] = (0, 0),
) -> Path:
    """Render RGGB-phase packed images side by side to an sRGB PNG with one exposure gain.

    Args:
        images: ``(4, h, w)`` normalised packed images of one size (e.g. noisy, denoised).
        wb: White-balance gains (R, Gr, Gb, B); ``None`` uses grey-world gains of the last image.
        xyz_to_cam: XYZ -> camera matrix, or ``None`` for the identity colour transform.
        path: Output ``.png``.
        border: ``(dy, dx)`` pixels cut from every side of each rendered panel (the rows and
            columns that phase unification added).

    Returns:
        The written path.
    """
    from raw_synth.io import write_image
    from raw_synth.isp import cam_to_rgb_from_xyz_to_cam, render

    ref = np.clip(np.asarray(images[-1], dtype=np.float64), 0.0, None)
    if wb is None:
        means = np.maximum(ref.reshape(4, -1).mean(axis=1), 1e-6)
        gains = np.array([means[1] / means[0], 1.0, 1.0, means[1] / means[3]])
    else:
        gains = np.asarray(wb, dtype=np.float64)
    try:
        ccm = np.eye(3) if xyz_to_cam is None else np.asarray(cam_to_rgb_from_xyz_to_cam(np.asarray(xyz_to_cam)))
    except RawSynthError:
        ccm = np.eye(3)
    level = float(np.percentile(ref * gains[:, None, None], 99.0))
    exposure = float(np.clip(0.9 / max(level, 1e-6), 1.0, 32.0))
    dy, dx = border
    panels = []
    for img in images:
        rgb = render(np.clip(np.asarray(img, dtype=np.float32) * exposure, 0.0, 1.0), gains.astype(np.float32),
                     ccm.astype(np.float32))
        panels.append(rgb[dy : rgb.shape[0] - dy, dx : rgb.shape[1] - dx])
    gap = np.ones((panels[0].shape[0], 8, 3), dtype=np.float32)
    row = [panels[0]]
    for panel in panels[1:]:
        row += [gap, panel]
    return write_image(path, np.concatenate(row, axis=1))


def denoise_file(
    in_path: str | Path,
    model_path: str | Path | None,
    out_path: str | Path,
    cfa: str | None = None,
    black: float | Sequence[float] | None = None,
    white: float | None = None,
    camera: str | None = None,
    preview: str | Path | None = None,
    tile: int = 256,
    device: str = "cpu",
    ensemble: int = 1,
) -> DenoiseResult:
    """Denoise a RAW file into a DNG.

    Args:
        in_path: RAW file (anything LibRaw reads) or a bare mosaic (``.npy``, PNG, TIFF, ``.raw``).
        model_path: Denoiser checkpoint; ``None`` uses the bundled ``denoiser-tiny``.
        out_path: Output DNG (its folder must exist; must differ from the input).
        cfa: Bayer pattern of a bare mosaic.
        black: Black level of a bare mosaic (one value or four, R, Gr, Gb, B).
        white: White level of a bare mosaic.
        camera: Camera profile (name or YAML) giving the noise level at the file's ISO when the
            file has no NoiseProfile.
        preview: Optional PNG: noisy input and denoised output side by side.
        tile: Tile side in packed pixels.
        device: Torch device.
        ensemble: Average over this many Bayer-preserving flips/turns (1, 2, 4 or 8): +0.2 to
            +0.4 dB at 8 with the bundled model (docs/model_card_denoiser.md), for 8x the time
            (:func:`denoise.ensemble.geometric_ensemble`).

    Returns:
        A :class:`DenoiseResult`.

    Raises:
        RawSynthError: One line naming the file or option: unreadable input, missing mosaic
            levels, a bad checkpoint, an unusable camera profile, an unwritable output.
    """
    from denoise.ensemble import check_ensemble
    from denoise.inference import denoise_packed, load_denoiser
    from raw_synth.cfa import pack, red_offset, restore, unify, unpack
    from raw_synth.io import write_dng

    started = time.time()
    source = Path(in_path)
    out = Path(out_path)
    if source.exists() and out.exists() and out.resolve() == source.resolve():
        raise RawSynthError(f"{out}: is the input file; choose another --out")
    if not out.parent.is_dir():
        raise RawSynthError(f"{out}: output folder {out.parent} does not exist")
    check_ensemble(ensemble, "--ensemble")
    checkpoint = Path(model_path) if model_path is not None else bundled_denoiser()
    model, meta = load_denoiser(checkpoint, device=device)
    raw = _read_input(source, cfa, black, white)

    native = raw.cfa
    mosaic = unpack(raw.packed, native)
    unified = pack(unify(mosaic, native, "pad"), "RGGB")
    conditioned = bool(model.config.conditioned)
    shot = read = None
    if conditioned:
        shot, read, noise_source = estimate_noise(raw, unified, camera)
        logger.info("%s: noise level from %s: shot %s, read %s", source, noise_source,
                    " ".join(f"{v:.3g}" for v in shot), " ".join(f"{v:.3g}" for v in read))
    else:
        noise_source = "not needed (blind model)"
        logger.info("%s: blind model, no noise level needed", source)

    with torch.inference_mode():
        denoised_rggb = denoise_packed(model, unified, shot, read, tile=tile, device=device, ensemble=ensemble)
    if not np.isfinite(denoised_rggb).all():  # the DNG writer would store NaN as 0: write nothing
        raise RawSynthError(f"{checkpoint}: the denoiser gave non-finite values for {source}; no DNG written")
    denoised = pack(restore(unpack(denoised_rggb, "RGGB"), native, "pad"), native)
    result = dataclasses.replace(raw, packed=denoised, noise_profile=None)
    write_dng(out, result)
    logger.info("%s: wrote %s (%dx%d %s) with %s", source, out, raw.width, raw.height, native, checkpoint.name)

    preview_path = None
    if preview is not None:
        preview_path = render_preview([unified, denoised_rggb], raw.wb, raw.xyz_to_cam, preview,
                                      border=red_offset(native))
    return DenoiseResult(
        out=out,
        noise_source=noise_source,
        shot=None if shot is None else tuple(float(v) for v in shot),
        read=None if read is None else tuple(float(v) for v in read),
        cfa=native,
        size=(raw.height, raw.width),
        preview=preview_path,
        seconds=time.time() - started,
    )
