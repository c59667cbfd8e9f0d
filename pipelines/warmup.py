"""What a fresh local worker loads before its first shard, while the client is still preparing.

:func:`warm_up` runs once in every worker of a :class:`pipelines.cluster.BackgroundCluster`. It
imports what a shard task uses (torch with one thread, the engines, the noise models, the shard
writer, the image decoder) and, for a procedural ``--src``, renders one tiny image so that the
compiled kernels are loaded from numba's disk cache. All of that would otherwise happen in the
first shard task, after the client's own start-up work rather than during it.

This module imports nothing heavy itself: the client pickles :func:`warm_up` by reference before
it has imported torch.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["warm_up"]


def warm_up(src: str) -> None:
    """Load a shard task's modules and compiled code in this process.

    Args:
        src: The run's ``--src``; a procedural corpus name also loads its compiled renderer.
    """
    import torch

    torch.set_num_threads(1)
    import pipelines.worker  # noqa: F401  (engines, noise, seeding)
    import raw_synth.io.images  # noqa: F401
    import raw_synth.store.writer  # noqa: F401
    from raw_synth.sources import procedural_corpora

    if not Path(src).exists() and src in procedural_corpora():
        from raw_synth import corpora

        corpora.load_corpus_image(src, 0, size=(16, 16), seed=0)
