"""raw-synth: realistic camera-RAW denoising training data from sRGB photographs.

The public surface is small: the CFA helpers in :mod:`raw_synth.cfa`, camera profiles in
:mod:`raw_synth.camera`, the forward and inverse ISP in :mod:`raw_synth.isp`, readers and
writers in :mod:`raw_synth.io`, noise in :mod:`raw_synth.noise`, metrics in
:mod:`raw_synth.metrics`, the inverse-ISP engines in :mod:`raw_synth.engine`, and the two
entry points most users need at top level: :func:`create_model` (any registered network: the
inverse-ISP and denoiser presets, see :func:`list_models`) and :func:`open_shards`.
Heavy dependencies (torch models, zarr, h5py) load only when those names are first used.
"""

from __future__ import annotations

import logging
from typing import Any

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

from raw_synth.errors import RawSynthError  # noqa: E402

__all__ = ["__version__", "RawSynthError", "create_model", "list_models", "open_shards"]

_LAZY = {
    "create_model": "raw_synth.models",
    "list_models": "raw_synth.models",
    "open_shards": "raw_synth.store",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'raw_synth' has no attribute {name!r}")
