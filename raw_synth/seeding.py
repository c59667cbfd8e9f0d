"""Per-sample random streams.

Every sample raw-synth makes draws its randomness from its own generator, derived from the run
seed and the sample's global index. The same (seed, index) always gives the same stream, so the
output does not depend on the number of workers, shards, or how many samples were done before a
crash and resume.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["sample_rng", "sample_torch_generator"]


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The numpy generator of sample ``index`` in a run seeded with ``seed``.

    Args:
        seed: The run seed (non-negative).
        index: Global sample index (non-negative).

    Returns:
        A fresh :class:`numpy.random.Generator` (PCG64) seeded from ``(seed, index)``.
    """
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(index)])))


def sample_torch_generator(seed: int, index: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator seeded from ``(seed, index)``, independent of :func:`sample_rng`'s stream."""
    import torch  # here, not at the top: numpy-only generation never loads torch

    state = np.random.SeedSequence([int(seed), int(index), 0x7F4A]).generate_state(1, dtype=np.uint64)[0]
    generator = torch.Generator(device=device)
    generator.manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)
    return generator
