"""Which reasoning records ``max_samples`` keeps: a seeded draw stratified by task, not the first N ids.

EHR-Ins ids run task by task, so the first N ids cover a handful of tasks. The draw gives every task an equal
quota (a task with fewer samples gives all it has and the rest is shared among the others, "water-filling"), and
takes a seeded random subset within each task. The result depends only on the candidates, the cap and the seed.
"""

from __future__ import annotations

import numpy as np


def task_quotas(sizes: dict[str, int], cap: int) -> dict[str, int]:
    """Equal shares of ``cap`` over the tasks, each at most its size; leftovers go to the largest tasks first."""
    quotas = {t: 0 for t in sizes}
    left = min(cap, sum(sizes.values()))
    open_tasks = sorted(sizes, key=lambda t: (sizes[t], t))
    while left > 0 and open_tasks:
        share = left // len(open_tasks)
        if share == 0:  # fewer left than open tasks: one more each to the largest tasks (name order breaks ties)
            for t in sorted(open_tasks, key=lambda t: (-(sizes[t] - quotas[t]), t))[:left]:
                quotas[t] += 1
            break
        for t in list(open_tasks):
            take = min(share, sizes[t] - quotas[t])
            quotas[t] += take
            left -= take
            if quotas[t] == sizes[t]:
                open_tasks.remove(t)
    return quotas


def stratified_sample(idx: np.ndarray, tasks: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """The ids kept (sorted): all when ``cap`` is None or not smaller than the candidates."""
    idx, tasks = np.asarray(idx), np.asarray(tasks).astype(str)
    if cap is None or cap >= len(idx):
        return np.sort(idx)
    names, inverse = np.unique(tasks, return_inverse=True)
    sizes = {str(n): int(c) for n, c in zip(names, np.bincount(inverse, minlength=len(names)))}
    quotas = task_quotas(sizes, cap)
    rng = np.random.default_rng(seed)
    kept = []
    for k, name in enumerate(names):
        members = np.sort(idx[inverse == k])
        kept.append(rng.permutation(members)[: quotas[str(name)]])
    return np.sort(np.concatenate(kept)) if kept else idx[:0]
