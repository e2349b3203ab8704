"""Sampling math: filters, per-task caps, weighted and label-balanced draws as keyed top-k selections.

Every draw is "keep the ``k`` rows with the largest key" inside a group, where a row's key depends on nothing
but the row (a hash of the seed, task, mode and the row's identity) and on corpus-wide statistics (pool sizes,
label frequencies). The top-k of the union of top-k's is the global top-k, so the build can select per batch
and merge (:mod:`selection`) and get the same rows as one draw over everything, whatever the number of shards
or batches, in memory bounded by the caps instead of the number of candidates.

* Filters (reference ``data_index_gen.py``): ``min_context_events < n_context < max_context_events`` (counted
  on the events actually shown), patients with more than ``max_patient_events`` events dropped.
* ``uniform``: ``cap`` rows without replacement, key ``u``, uniform in (0, 1) (a hash of the row).
* ``weighted``: ``cap`` rows without replacement with probability proportional to ``target_weight`` = 1 / mean
  frequency of the row's labels within its task's pool, by Efraimidis-Spirakis keys ``log(u) / w`` (the top-k of
  ``u^(1/w)``), so rare labels are over-sampled (reference: RP tasks, chartevents, emar and next_event).
* ``balanced``: an equal quota ``cap // n_classes`` per output (``yes``/``no``), uniform within a class; a class
  with fewer rows gives all it has and the shortfall is *not* refilled from the other class, which would break
  the balance (reference ``--balance_force``). With ``cap = -1`` every class is cut to the size of the smallest.

:func:`sample_task` / :func:`sample_dataset` apply the same rules to an in-memory pandas frame (small inputs and
tests); they select exactly what the streaming build selects from the same rows.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

MODES = ("uniform", "weighted", "balanced")
#: The identity of a candidate row within a task: hashed into its key and used to break (impossible) key ties.
ROW_ID = ("subject_id", "anchor", "context_begin", "context_end")
SORT_KEY = ["task", *ROW_ID]
ALL = -1  # a group quota meaning "keep every row"

_G = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def apply_filters(rows: pd.DataFrame, min_context_events: int, max_context_events: int | None,
                  max_patient_events: int | None) -> pd.DataFrame:
    keep = rows["n_context"] > min_context_events
    if max_context_events is not None:
        keep &= rows["n_context"] < max_context_events
    if max_patient_events is not None:
        keep &= rows["n_patient_events"] <= max_patient_events
    return rows[keep]


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    x = x + _G
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def row_uniforms(seed: int, task: str, mode: str, ids: Sequence[np.ndarray]) -> np.ndarray:
    """A uniform number in (0, 1) per row, a pure function of (seed, task, mode, the row's ``ids`` columns)."""
    salt = int.from_bytes(hashlib.sha256(f"{int(seed)}\x1f{task}\x1f{mode}".encode()).digest()[:8], "big")
    n = len(ids[0]) if len(ids) else 0
    h = np.full(n, salt, dtype=np.uint64)
    for col in ids:
        h = _mix(h ^ np.asarray(col, dtype=np.int64).view(np.uint64))
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def draw_keys(seed: int, task: str, mode: str, ids: Sequence[np.ndarray],
              weights: np.ndarray | None = None) -> np.ndarray:
    """Sampling keys (larger = drawn first): ``u`` itself (the same order as ``log(u)``, exact), or
    ``log(u) / w`` for weighted draws (Efraimidis-Spirakis: the order of ``u^(1/w)``)."""
    if mode not in MODES:
        raise ValueError(f"unknown sampling mode {mode!r} for task {task}; use uniform, weighted or balanced")
    u = row_uniforms(seed, task, mode, ids)
    return np.log(u) / np.asarray(weights, dtype=np.float64) if weights is not None else u


def label_counts(label_lists: Iterable[Iterable[str]]) -> Counter:
    """In how many rows each label occurs (the numerator of the label frequency)."""
    return Counter(label for row in label_lists for label in set(row))


def label_weights(label_lists: Iterable[Sequence[str]], counts: Mapping[str, int], n: int) -> np.ndarray:
    """``target_weight`` = 1 / mean label frequency (``counts[label] / n``) for each row's label list."""
    n = max(int(n), 1)
    return np.array([1.0 / (np.mean([counts[lab] / n for lab in row]) if len(row) else 1.0) for row in label_lists],
                    dtype=np.float64)


def target_weights(labels: pd.Series) -> np.ndarray:
    """:func:`label_weights` with the frequencies taken from ``labels`` itself (one task's pool)."""
    rows = list(labels)
    return label_weights(rows, label_counts(rows), len(rows))


def output_key(labels: Iterable[str]) -> str:
    """The class of a row for balanced draws: its output text."""
    return "\n".join(labels)


def group_quotas(cap: int, mode: str, pool: int, class_sizes: Mapping[str, int] | None = None,
                 classes: Iterable[str] | None = None) -> dict[str | None, int]:
    """How many rows each group of one task keeps (:data:`ALL` = every row).

    Non-balanced modes have one group (``None``). Balanced mode has one group per class present in
    ``class_sizes``; ``classes`` (the task's answer space) counts towards the number of classes even when absent.
    """
    if mode not in MODES:
        raise ValueError(f"unknown sampling mode {mode!r}; use uniform, weighted or balanced")
    if mode != "balanced":
        return {None: cap if 0 <= cap < pool else ALL}
    sizes = dict(class_sizes or {})
    names = set(sizes) | set(classes or ())
    quota = (cap // len(names)) if cap >= 0 and names else min((sizes.get(k, 0) for k in names), default=0)
    return {k: quota for k in sorted(sizes)}


def top_k_indices(groups: np.ndarray, keys: np.ndarray, ties: Sequence[np.ndarray],
                  k_of_group: Mapping[int, int]) -> np.ndarray:
    """Sorted positions of the rows kept: per group the ``k_of_group[g]`` largest keys (:data:`ALL` = all),
    ties broken by ``ties`` (ascending), so the result is a function of the row values, not their order."""
    groups = np.asarray(groups, dtype=np.int64)
    if len(groups) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((*[np.asarray(t) for t in reversed(ties)], -np.asarray(keys, dtype=np.float64), groups))
    g = groups[order]
    rank = np.arange(len(g)) - np.searchsorted(g, g, side="left")
    uniq, inverse = np.unique(g, return_inverse=True)
    limit = np.array([k_of_group[int(u)] for u in uniq], dtype=np.int64)[inverse]
    return np.sort(order[(limit == ALL) | (rank < limit)])


def _ids(rows: pd.DataFrame) -> list[np.ndarray]:
    return [rows[c].to_numpy(dtype=np.int64) if c in rows else np.zeros(len(rows), dtype=np.int64) for c in ROW_ID]


def sample_task(rows: pd.DataFrame, cap: int, mode: str, seed: int, task: str,
                classes: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Draw the rows of one task (all of ``rows`` are its pool). ``cap = -1`` keeps all (``balanced`` then
    equalises classes). ``classes`` (balanced mode) is the task's answer space, e.g. ``("yes", "no")``: a class
    with no row still takes its share of the quota. Rows come back in (subject_id, anchor) order."""
    rows = rows.sort_values([c for c in SORT_KEY if c in rows], kind="stable").reset_index(drop=True)
    labels = [list(x) for x in rows["labels"]]
    weights = target_weights(pd.Series(labels, dtype=object)) if mode == "weighted" else None
    keys = draw_keys(seed, task, mode, _ids(rows), weights)
    if mode == "balanced":
        outs = [output_key(x) for x in labels]
        quotas = group_quotas(cap, mode, len(rows), Counter(outs), classes)
        gid = {k: i for i, k in enumerate(quotas)}
        groups = np.array([gid[o] for o in outs], dtype=np.int64)
        k_of_group = {gid[k]: q for k, q in quotas.items()}
    else:
        groups = np.zeros(len(rows), dtype=np.int64)
        k_of_group = {0: group_quotas(cap, mode, len(rows))[None]}
    return rows.iloc[top_k_indices(groups, keys, _ids(rows), k_of_group)]


def sample_dataset(rows: pd.DataFrame, plan: dict[str, tuple[int, str]], seed: int) -> pd.DataFrame:
    """Sample every task in ``plan`` (task -> (cap, mode)) and number the result: ``idx`` 0..n-1 in task order."""
    from data_pipeline.tasks import get_task

    parts = []
    for task, (cap, mode) in plan.items():
        classes = get_task(task).answer_space if mode == "balanced" else None
        parts.append(sample_task(rows[rows["task"] == task], cap, mode, seed, task, classes))
    parts = [p for p in parts if len(p)]
    if not parts:
        return rows.iloc[0:0].assign(idx=pd.Series(dtype="int64"))
    out = pd.concat(parts, ignore_index=True)
    return out.assign(idx=np.arange(len(out), dtype="int64"))
