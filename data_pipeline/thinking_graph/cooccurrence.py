"""Co-occurrence evidence per task (the reference's ``coexist_metric_gen.py`` + the lift filter), pure functions.

Per decision-making task, over the training split's samples only (EHR-Ins is drawn from it):

* ``task_num`` = #samples of the task;
* ``concept_num[c]`` = #samples whose target ∪ history holds ``c``;
* ``coexist[t][h]`` = #samples with ``t`` among the targets and ``h`` in the history (``h != t``: a label that
  already appears in the context is not evidence for itself);
* ``lift(t, h) = coexist[t][h] * task_num / (concept_num[h] * concept_num[t])``, kept when
  ``concept_num[h] >= min_support`` and ``lift > threshold``, at most ``top_k`` per target by lift
  (reference: 5, 5, 20).

The history of a sample is what its prompt shows: the context events kept after truncation, the previous
discharge note unless truncation dropped it, and the admission header only for tasks that render it (the
reference also added the admission for the ``admissions`` task, whose label it is). :func:`partial_counts` runs on
each block of samples and :func:`lift_pairs` on the merged counts, so the aggregation is distributed.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pyarrow as pa

from data_pipeline.thinking_graph.umls import normalise

TASK, CONCEPT, PAIR = "task", "concept", "pair"
COUNT_SCHEMA = pa.schema([("task", pa.string()), ("kind", pa.string()), ("a", pa.string()), ("b", pa.string()),
                          ("n", pa.int64())])
HISTORY_SCHEMA = pa.schema([("idx", pa.int64()), ("task", pa.string()), ("targets", pa.list_(pa.string())),
                            ("target_labels", pa.list_(pa.string())), ("history", pa.list_(pa.string()))])


def history_event_ids(context_ids, admissions_id: int, last_discharge_id: int, dropped_previous_discharge: bool,
                      show_admission: bool) -> list[int]:
    """Timeline indices of the events a sample's prompt shows.

    >>> history_event_ids([5, 6], 2, 1, False, True), history_event_ids([5], 2, 1, True, False)
    ([1, 2, 5, 6], [5])
    """
    ids = []
    if last_discharge_id >= 0 and not dropped_previous_discharge:
        ids.append(int(last_discharge_id))
    if admissions_id >= 0 and show_admission:
        ids.append(int(admissions_id))
    return ids + [int(i) for i in context_ids]


def sample_concepts(row: dict, show_admission: bool) -> dict:
    """One joined (sample, patient concepts) row -> ``HISTORY_SCHEMA`` row."""
    concepts = row["concepts"]
    names = {n["name"]: n["key"] for n in row["names"] or ()}
    history: dict[str, None] = {}
    for i in history_event_ids(row["context_ids"] or (), row["admissions_id"], row["last_discharge_id"],
                               bool(row.get("dropped_previous_discharge")), show_admission):
        if 0 <= i < len(concepts):
            history.update(dict.fromkeys(concepts[i]))
    labels = list(row["target"])
    targets = [names.get(label) or "~" + normalise(label) for label in labels]
    return {"idx": int(row["idx"]), "task": row["task"], "targets": targets, "target_labels": labels,
            "history": list(history)}


def partial_counts(batch: pd.DataFrame) -> pd.DataFrame:
    """Counts of one block of ``HISTORY_SCHEMA`` rows as ``COUNT_SCHEMA`` rows (merged later by summing ``n``)."""
    tasks: Counter = Counter()
    concepts: Counter = Counter()
    pairs: Counter = Counter()
    for task, targets, history in zip(batch["task"], batch["targets"], batch["history"]):
        t_set, h_set = set(targets), set(history)
        tasks[task] += 1
        for c in t_set | h_set:
            concepts[(task, c)] += 1
        for t in t_set:
            for h in h_set:
                if h != t:
                    pairs[(task, t, h)] += 1
    rows = [(task, TASK, "", "", n) for task, n in tasks.items()]
    rows += [(task, CONCEPT, c, "", n) for (task, c), n in concepts.items()]
    rows += [(task, PAIR, t, h, n) for (task, t, h), n in pairs.items()]
    return pd.DataFrame(rows, columns=COUNT_SCHEMA.names).astype({"n": "int64"})


def lift_pairs(pairs: pd.DataFrame, concept_num: dict[tuple[str, str], int], task_num: dict[str, int],
               min_support: int, threshold: float) -> pd.DataFrame:
    """Pair rows (task, a=target, b=history, n) -> with ``lift``, filtered by support and threshold."""
    if pairs.empty or not concept_num:
        return pairs.iloc[0:0].assign(lift=pd.Series(dtype=float))
    counts = pd.Series(concept_num, dtype=float)
    n_t = counts.reindex(pd.MultiIndex.from_arrays([pairs["task"], pairs["a"]])).fillna(0).to_numpy()
    n_h = counts.reindex(pd.MultiIndex.from_arrays([pairs["task"], pairs["b"]])).fillna(0).to_numpy()
    total = pairs["task"].map(task_num).astype(float).to_numpy()
    out = pairs.assign(lift=pairs["n"] * total / (n_h * n_t))
    keep = (n_h >= min_support) & (out["lift"] > threshold)
    return out[keep.to_numpy()]


def top_k(kept: pd.DataFrame, k: int) -> pd.DataFrame:
    """At most ``k`` history concepts per (task, target), by lift (then count, then key: deterministic)."""
    if kept.empty:
        return kept
    ordered = kept.sort_values(["task", "a", "lift", "n", "b"], ascending=[True, True, False, False, True])
    return ordered.groupby(["task", "a"], sort=False).head(k).reset_index(drop=True)


def counts_to_tables(counts: pd.DataFrame) -> tuple[dict[str, int], dict[tuple[str, str], int], pd.DataFrame]:
    """Merged count rows -> (task_num, concept_num, pair rows)."""
    t = counts[counts["kind"] == TASK]
    c = counts[counts["kind"] == CONCEPT]
    task_num = dict(zip(t["task"], t["n"].astype(int)))
    concept_num = {(task, a): int(n) for task, a, n in zip(c["task"], c["a"], c["n"])}
    return task_num, concept_num, counts[counts["kind"] == PAIR].reset_index(drop=True)


def sample_evidence(task: str, targets: list[str], target_labels: list[str], history: list[str],
                    kept: dict[tuple[str, str], list[tuple[str, float, int]]]) -> list[dict]:
    """The kept pairs of one sample: for each target, its top-k history concepts present in the history."""
    present = set(history)
    out = []
    for key, label in zip(targets, target_labels):
        for h, lift, n in kept.get((task, key), ()):
            if h in present:
                out.append({"target": label, "target_key": key, "history_key": h, "lift": float(lift),
                            "count": int(n)})
    return out
