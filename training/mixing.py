"""Order in which two datasets are mixed for stage 2: shuffled together, or a curriculum. Pure and seeded.

Curriculum (the reference's ``--curriculum``): the share of the SECOND dataset ramps up linearly over the epoch.
Each dataset is shuffled internally; the i-th of ``n2`` second-set items is placed at time ``sqrt((i+.5)/n2)``
(density 2t) and the j-th of ``n1`` first-set items at ``1 - sqrt(1 - (j+.5)/n1)`` (density 2(1-t)); merging by
time gives a second-set share of ``n2 t / (n2 t + n1 (1-t))``, i.e. exactly ``t`` for equal sizes.
"""

from __future__ import annotations

import math
import random


def mix_order(n_first: int, n_second: int, mode: str, seed: int) -> list[tuple[int, int]]:
    """``(source, index)`` pairs covering every item of both datasets once.

    >>> sorted(mix_order(2, 1, "shuffle", 0))
    [(0, 0), (0, 1), (1, 0)]
    """
    rng = random.Random(seed)
    first = list(range(n_first))
    second = list(range(n_second))
    rng.shuffle(first)
    rng.shuffle(second)
    if mode == "shuffle":
        pairs = [(0, i) for i in first] + [(1, i) for i in second]
        rng.shuffle(pairs)
        return pairs
    if mode == "curriculum":
        timed = [(1 - math.sqrt(1 - (j + 0.5) / n_first), 0, i) for j, i in enumerate(first)]
        timed += [(math.sqrt((j + 0.5) / n_second), 1, i) for j, i in enumerate(second)]
        timed.sort()
        return [(src, i) for _, src, i in timed]
    raise ValueError(f"mix mode {mode!r}: expected 'shuffle' or 'curriculum'")
