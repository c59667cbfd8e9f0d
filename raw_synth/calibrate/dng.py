"""Noise level stored in a DNG file: the NoiseProfile tag (51041).

DNG NoiseProfile holds ``(S, O)`` pairs, one for all planes or one per CFA colour, with
``variance(x) = S * x + O`` for ``x`` the signal normalised to ``[0, 1]`` after black-level
subtraction - the same convention as raw-synth's ``(shot, read)``. The tag is read by
:func:`raw_synth.io.read_raw`, which maps the colours to the R, Gr, Gb, B planes (the two greens
share the G pair).
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

from raw_synth.calibrate.nlf import NoiseFit
from raw_synth.errors import RawSynthError
from raw_synth.io import RawImage, read_raw

__all__ = ["noise_from_dng", "noise_fit_from_raw"]


def noise_fit_from_raw(raw: RawImage) -> NoiseFit:
    """The NoiseProfile of a read RAW image as a :class:`NoiseFit` (values copied exactly).

    Args:
        raw: an image from :func:`raw_synth.io.read_raw`.

    Returns:
        :class:`NoiseFit` with ``method="dng-noise-profile"`` and ``source`` the file.

    Raises:
        RawSynthError: if the image has no NoiseProfile or it holds negative values.
    """
    name = raw.source or "image"
    if raw.noise_profile is None:
        raise RawSynthError(f"{name}: no NoiseProfile tag (51041) in the file")
    shot = [float(pair[0]) for pair in raw.noise_profile]
    read = [float(pair[1]) for pair in raw.noise_profile]
    if min(shot) < 0.0 or min(read) < 0.0:
        raise RawSynthError(f"{name}: NoiseProfile has negative values (shot {shot}, read {read})")
    return NoiseFit(shot=shot, read=read, method="dng-noise-profile", source=(name,) if raw.source else ())


def noise_from_dng(path: Union[str, Path]) -> NoiseFit:
    """Read the noise level of a DNG file from its NoiseProfile tag.

    Args:
        path: a DNG file (anything :func:`raw_synth.io.read_raw` opens).

    Returns:
        :class:`NoiseFit`: ``shot`` and ``read`` per plane (R, Gr, Gb, B), exactly the tag's
        values; ``r2`` is ``nan`` and ``n_pixels`` 0 (nothing was fitted).

    Raises:
        RawSynthError: unreadable file or no NoiseProfile tag, naming the file.
    """
    return noise_fit_from_raw(read_raw(path))
