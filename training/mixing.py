"""Order in which two datasets are mixed for stage 2: shuffled together, or a curriculum. Pure, seeded, vectorised.

Curriculum (the reference's ``--curriculum``): the share of the SECOND dataset ramps up linearly over the epoch.
Each dataset is shuffled internally; the i-th of ``n2`` second-set items is placed at time ``sqrt((i+.5)/n2)``
(density 2t) and the j-th of ``n1`` first-set items at ``1 - sqrt(1 - (j+.5)/n1)`` (density 2(1-t)); merging by
time gives a second-set share of ``n2 t / (n2 t + n1 (1-t))``, i.e. exactly ``t`` for equal sizes.

Positions are numpy arrays (8 bytes per record), so the SFT driver can order millions of records without holding
them (``training.prepare``).
"""

from __future__ import annotations

import numpy as np


def mix_positions(n_first: int, n_second: int, mode: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training positions ``0..n_first+n_second-1`` of every item of the first and of the second dataset."""
    if mode not in ("shuffle", "curriculum"):
        raise ValueError(f"mix mode {mode!r}: expected 'shuffle' or 'curriculum'")
    rng = np.random.default_rng(seed)
    total = n_first + n_second
    if mode == "shuffle":
        slots = rng.permutation(total)
        return slots[:n_first].astype(np.int64), slots[n_first:].astype(np.int64)
    first, second = rng.permutation(n_first), rng.permutation(n_second)
    # time of the k-th drawn item of each set; item first[k] gets the k-th time
    t_first = np.empty(n_first)
    t_first[first] = 1 - np.sqrt(1 - (np.arange(n_first) + 0.5) / max(n_first, 1))
    t_second = np.empty(n_second)
    t_second[second] = np.sqrt((np.arange(n_second) + 0.5) / max(n_second, 1))
    times = np.concatenate([t_first, t_second])
    rank = np.empty(total, dtype=np.int64)
    rank[np.argsort(times, kind="stable")] = np.arange(total)
    return rank[:n_first], rank[n_first:]


def mix_order(n_first: int, n_second: int, mode: str, seed: int) -> list[tuple[int, int]]:
    """``(source, index)`` pairs covering every item of both datasets once, in training order.

    >>> sorted(mix_order(2, 1, "shuffle", 0))
    [(0, 0), (0, 1), (1, 0)]
    """
    pos_first, pos_second = mix_positions(n_first, n_second, mode, seed)
    order: list[tuple[int, int]] = [(0, 0)] * (n_first + n_second)
    for src, positions in ((0, pos_first), (1, pos_second)):
        for i, p in enumerate(positions.tolist()):
            order[p] = (src, i)
    return order
