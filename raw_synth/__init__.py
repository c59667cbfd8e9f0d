"""raw-synth: realistic camera-RAW denoising training data from sRGB photographs.

The public surface is small: the CFA helpers in :mod:`raw_synth.cfa`, camera profiles in
:mod:`raw_synth.camera`, the forward and inverse ISP in :mod:`raw_synth.isp`, readers and
writers in :mod:`raw_synth.io`, metrics in :mod:`raw_synth.metrics`, and the inverse-ISP
engines in :mod:`raw_synth.engine`.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

from raw_synth.errors import RawSynthError  # noqa: E402

__all__ = ["__version__", "RawSynthError"]
