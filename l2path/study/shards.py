"""Shards of the lambda study: groups of whole chains that can be trained apart.

A chain's points must be trained in order (each starts from its parent's weights), but
chains are independent, so the study splits them into ``n`` shards and trains each shard
on its own (a thread, or a Dask worker). Inside a shard, points are still stacked round
by round (``run.run_study``). The split depends only on the plan and ``n``, so
a shard holds the same chains wherever it runs, and its numbers are the same too.
"""

from __future__ import annotations

from .schedules import Point


def shard_chains(chains: list[list[Point]], n_shards: int) -> list[list[int]]:
    """Chain indices grouped into at most ``n_shards`` shards of near-equal point counts.

    Longest chains first, each to the shard with the fewest points so far (ties: the
    lower shard); each shard lists its chains in plan order, and empty shards are dropped.
    """
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    shards: list[list[int]] = [[] for _ in range(n_shards)]
    loads = [0] * n_shards
    for index in sorted(
        range(len(chains)), key=lambda i: -len(chains[i])
    ):  # stable: plan order among equals
        lightest = loads.index(min(loads))
        shards[lightest].append(index)
        loads[lightest] += len(chains[index])
    return [sorted(shard) for shard in shards if shard]
