"""The Dask generation pipeline behind ``raw-synth generate``: planning samples into shards,
worker setup, local and distributed clusters, and resume."""

from __future__ import annotations

from typing import Any

__all__ = ["GenerateConfig", "GenerateSummary", "generate"]


def __getattr__(name: str) -> Any:
    # lazy, so that ``import pipelines.worker`` in a Dask worker does not import the client side
    if name in __all__:
        from pipelines import run

        return getattr(run, name)
    raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
