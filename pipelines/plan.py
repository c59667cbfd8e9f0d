"""Planning: split N samples into shards of consecutive global indices.

Shard ``i`` covers the samples ``[i * shard_size, min((i + 1) * shard_size, N))``; every shard
but the last is full. A shard is the unit of work (one Dask task) and of resume.

Example:
    >>> [(s.index, s.start, s.stop) for s in plan_shards(10, 4)]
    [(0, 0, 4), (1, 4, 8), (2, 8, 10)]
"""

from __future__ import annotations

from dataclasses import dataclass

from raw_synth.errors import RawSynthError

__all__ = ["ShardPlan", "plan_shards", "n_shards"]


@dataclass(frozen=True)
class ShardPlan:
    """One shard of the plan: samples ``[start, stop)``.

    Attributes:
        index: Shard number, from 0.
        start: First global sample index.
        stop: One past the last global sample index.
    """

    index: int
    start: int
    stop: int

    @property
    def count(self) -> int:
        """Number of samples in the shard."""
        return self.stop - self.start


def _positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RawSynthError(f"{name}: expected a positive integer, got {value!r}")
    return value


def n_shards(n: int, shard_size: int) -> int:
    """Number of shards that ``n`` samples fill: ``ceil(n / shard_size)``."""
    return -(-_positive(n, "--n") // _positive(shard_size, "--shard-size"))


def plan_shards(n: int, shard_size: int) -> list[ShardPlan]:
    """Split ``n`` samples into shards of ``shard_size``.

    Args:
        n: Number of samples, ``>= 1``.
        shard_size: Samples per shard, ``>= 1``.

    Returns:
        The shards in order; they cover ``0 .. n-1`` exactly once.

    Raises:
        RawSynthError: If ``n`` or ``shard_size`` is not a positive integer.
    """
    count = n_shards(n, shard_size)
    return [ShardPlan(i, i * shard_size, min((i + 1) * shard_size, n)) for i in range(count)]
