"""Streaming selection over the candidate index, in memory bounded by the caps (Ray-free, pure over pyarrow).

The candidate index (one row per task per anchor: ~10^8 rows at MIMIC-IV scale) lives in parquet parts on disk
and is never collected. Two passes over the parts, each a Ray Data map in :mod:`build`:

1. **Statistics** (:func:`part_stats`, merged by :func:`merge_stats`): per dataset and task the pool size after
   the dataset's split and filters, label counts (weighted tasks: ``target_weight``), class counts (balanced
   tasks: quotas); the unfiltered per-task totals (skip notes); the train split's label and co-occurrence
   counts (candidate vocabularies). Size: O(tasks x labels), independent of the number of candidates.
2. **Selection** (:func:`select_table` + :class:`TopK`): every row of a part gets its sampling key
   (:func:`sampling.draw_keys`) and group (dataset, task[, class]); each part keeps its top-k per group and the
   driver merges the parts' survivors with the same :class:`TopK`. Top-k of top-k's is the global top-k and keys
   depend only on the row, so the selection is the same whatever the sharding; memory is O(sum of the quotas).
"""

from __future__ import annotations

import pickle
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_pipeline.datasets.sampling import (ROW_ID, apply_filters, draw_keys, group_quotas, label_counts,
                                             label_weights, sample_dataset, top_k_indices)
from data_pipeline.datasets.stages import INDEX_SCHEMA

SURVIVOR_SCHEMA = pa.schema([*INDEX_SCHEMA, pa.field("dataset", pa.string()), pa.field("_group", pa.int64()),
                             pa.field("_key", pa.float64())])
NO_VOCABULARY = ("discharge", "next_event")
#: Part rows read at a time by the passes (bounded worker memory whatever the part size).
READ_ROWS = 65_536


def preset_spec(preset, tasks: list[str]) -> dict:
    """The picklable part of a :class:`config.DatasetPreset` the passes need: split, filters, mode per task."""
    return {"name": preset.name, "split": preset.split, "min": preset.min_context_events,
            "max": preset.max_context_events, "max_patient": preset.max_patient_events,
            "admission_filter": preset.admission_window_filter,
            "modes": {t: preset.sampling_for(t)[1] for t in tasks if preset.includes(t)}}


def filter_mask(table: pa.Table, spec: dict) -> pa.ChunkedArray:
    """Rows of ``spec``'s split that pass its context-size and patient-size filters (:func:`apply_filters`)."""
    mask = pc.and_(pc.equal(table["split"], spec["split"]), pc.greater(table["n_context"], spec["min"]))
    if spec["max"] is not None:
        mask = pc.and_(mask, pc.less(table["n_context"], spec["max"]))
    if spec["max_patient"] is not None:
        mask = pc.and_(mask, pc.less_equal(table["n_patient_events"], spec["max_patient"]))
    if spec.get("admission_filter") and "covers_admission" in table.column_names:
        mask = pc.and_(mask, table["covers_admission"])
    return mask


def _by_task(table: pa.Table, tasks: Iterable[str]) -> Iterator[tuple[str, pa.Table]]:
    present = set(pc.unique(table["task"]).to_pylist())
    for task in tasks:
        if task in present:
            yield task, table.filter(pc.equal(table["task"], task))


def empty_stats() -> dict:
    return {"all": Counter(), "vocab": {}, "datasets": defaultdict(lambda: {"pools": Counter(), "labels": {},
                                                                            "classes": {}})}


def part_stats(table: pa.Table, specs: list[dict], vocab_tasks: list[str]) -> dict:
    """The pass-1 statistics of one slice of the index (see the module doc); merge with :func:`merge_stats`."""
    out = empty_stats()
    out["all"].update(Counter(table["task"].to_pylist()))
    for spec in specs:
        st = out["datasets"][spec["name"]]
        for task, rows in _by_task(table.filter(filter_mask(table, spec)), spec["modes"]):
            st["pools"][task] += rows.num_rows
            mode = spec["modes"][task]
            if mode == "weighted":
                st["labels"][task] = label_counts(rows["labels"].to_pylist())
            elif mode == "balanced":
                st["classes"][task] = Counter(pc.binary_join(rows["labels"], "\n").to_pylist())
    train = table.filter(pc.equal(table["split"], "train"))
    for task, rows in _by_task(train, vocab_tasks):
        freq, co = Counter(), defaultdict(Counter)
        for labels in rows["labels"].to_pylist():
            uniq = list(dict.fromkeys(labels))
            freq.update(uniq)
            for a in uniq:
                co[a].update(b for b in uniq if b != a)
        out["vocab"][task] = (freq, dict(co))
    return out


def merge_stats(total: dict, part: dict) -> dict:
    """Add ``part`` into ``total`` (in place; counts are sums, so the merge order does not matter)."""
    total["all"].update(part["all"])
    for name, st in part["datasets"].items():
        tot = total["datasets"][name]
        tot["pools"].update(st["pools"])
        for kind in ("labels", "classes"):
            for task, counts in st[kind].items():
                tot[kind].setdefault(task, Counter()).update(counts)
    for task, (freq, co) in part["vocab"].items():
        tfreq, tco = total["vocab"].setdefault(task, (Counter(), {}))
        tfreq.update(freq)
        for a, c in co.items():
            tco.setdefault(a, Counter()).update(c)
    return total


def vocabulary_from_counts(freq: Counter, co: dict[str, Counter], max_neighbours: int | None = None):
    """:func:`data_pipeline.tasks.candidates.build_vocabulary` from merged counts (same order and ties)."""
    from data_pipeline.tasks.candidates import MAX_NEIGHBOURS, Vocabulary

    limit = MAX_NEIGHBOURS if max_neighbours is None else max_neighbours
    items = sorted(freq, key=lambda x: (-freq[x], x))
    neighbours = {a: [b for b, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]
                  for a, c in co.items() if c}
    return Vocabulary(items, neighbours)


def selection_plan(specs: list[dict], stats: dict, caps: dict[str, dict[str, int]]) -> tuple[list[dict], dict]:
    """Per dataset, the groups (dataset, task[, class]) with their id and quota, and the weights' statistics.

    ``caps`` maps dataset -> task -> cap for the tasks to draw (in output order). Returns ``(plans, k_of_group)``.
    """
    from data_pipeline.tasks import get_task

    plans, k_of_group = [], {}
    for spec in specs:
        st = stats["datasets"][spec["name"]]
        tasks = {}
        for task, cap in caps[spec["name"]].items():
            mode = spec["modes"][task]
            classes = get_task(task).answer_space if mode == "balanced" else None
            quotas = group_quotas(cap, mode, st["pools"][task], st["classes"].get(task), classes)
            groups = {}
            for cls, k in quotas.items():
                groups["" if cls is None else cls] = len(k_of_group)
                k_of_group[len(k_of_group)] = k
            weights = (dict(st["labels"].get(task, {})), st["pools"][task]) if mode == "weighted" else None
            tasks[task] = {"mode": mode, "groups": groups, "weights": weights}
        plans.append({**spec, "tasks": tasks})
    return plans, k_of_group


def select_table(table: pa.Table, plans: list[dict], seed: int) -> pa.Table:
    """Every row of ``table`` that some dataset may draw, with its dataset, group and key (SURVIVOR_SCHEMA)."""
    out = []
    for plan in plans:
        for task, tp in _by_task(table.filter(filter_mask(table, plan)), plan["tasks"]):
            ids = [tp[c].to_numpy() for c in ROW_ID]
            mode, groups = plan["tasks"][task]["mode"], plan["tasks"][task]["groups"]
            weights = None
            if mode == "weighted":
                counts, n = plan["tasks"][task]["weights"]
                weights = label_weights(tp["labels"].to_pylist(), defaultdict(int, counts), n)
            keys = draw_keys(seed, task, mode, ids, weights)
            if mode == "balanced":
                gids = np.array([groups[o] for o in pc.binary_join(tp["labels"], "\n").to_pylist()], dtype=np.int64)
            else:
                gids = np.full(tp.num_rows, groups[""], dtype=np.int64)
            extra = [pa.array([plan["name"]] * tp.num_rows, pa.string()), pa.array(gids), pa.array(keys)]
            cols = [tp[f.name] for f in INDEX_SCHEMA] + extra
            out.append(pa.Table.from_arrays(cols, schema=SURVIVOR_SCHEMA))
    return pa.concat_tables(out) if out else SURVIVOR_SCHEMA.empty_table()


class TopK:
    """A running top-k per group over added survivor tables; holds at most ~2x the quotas plus one batch.

    Pending rows are pruned once they outnumber the kept ones (and ``min_prune``), so the work is amortised
    O(n log n) and the memory O(sum of the quotas) (O(rows) for groups with quota ``sampling.ALL``).
    """

    def __init__(self, k_of_group: dict[int, int], min_prune: int = 20_000):
        self.k_of_group = k_of_group
        self.min_prune = min_prune
        self.parts: list[pa.Table] = []
        self.kept = self.pending = 0
        self.peak_rows = 0

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.parts.append(table)
        self.pending += table.num_rows
        self.peak_rows = max(self.peak_rows, self.kept + self.pending)
        if self.pending > max(self.kept, self.min_prune):
            self._prune()

    def _prune(self) -> None:
        table = pa.concat_tables(self.parts) if self.parts else SURVIVOR_SCHEMA.empty_table()
        ids = [table[c].to_numpy() for c in ROW_ID]
        keep = top_k_indices(table["_group"].to_numpy(), table["_key"].to_numpy(), ids, self.k_of_group)
        table = table.take(pa.array(keep, pa.int64())) if len(keep) < table.num_rows else table
        self.parts, self.kept, self.pending = [table.combine_chunks()], table.num_rows, 0

    def result(self) -> pa.Table:
        self._prune()
        return self.parts[0]


def read_parts(paths: Iterable[str], columns: list[str] | None = None) -> Iterator[pa.Table]:
    import pyarrow.parquet as pq

    for path in paths:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=READ_ROWS, columns=columns):
            yield pa.Table.from_batches([batch])


def stats_udf(paths: pa.Table, specs: list[dict], vocab_tasks: list[str]) -> Iterator[pa.Table]:
    """Ray Data UDF over index part paths: one row holding the pickled, merged statistics of the parts."""
    total = empty_stats()
    cols = ["task", "split", "labels", "n_context", "n_patient_events", "covers_admission"]
    for table in read_parts(paths.column("path").to_pylist(), cols):
        merge_stats(total, part_stats(table, specs, vocab_tasks))
    total["datasets"] = dict(total["datasets"])
    yield pa.table({"stats": pa.array([pickle.dumps(total)], pa.binary())})


def select_udf(paths: pa.Table, plans: list[dict], k_of_group: dict[int, int], seed: int) -> Iterator[pa.Table]:
    """Ray Data UDF over index part paths: the parts' top-k survivors per group."""
    top = TopK(k_of_group)
    for table in read_parts(paths.column("path").to_pylist()):
        top.add(select_table(table, plans, seed))
    yield top.result()


def number_selection(survivors: pa.Table, plans: list[dict]) -> dict[str, pd.DataFrame]:
    """The selected rows of each dataset in (task order, subject, anchor) order, numbered ``idx`` 0..n-1."""
    out = {}
    for plan in plans:
        df = survivors.filter(pc.equal(survivors["dataset"], plan["name"])).to_pandas()
        order = {t: i for i, t in enumerate(plan["tasks"])}
        df = (df.assign(_order=df["task"].map(order)).sort_values(["_order", *ROW_ID], kind="stable")
              .drop(columns=["_order", "_group", "_key"]).reset_index(drop=True))
        out[plan["name"]] = df.assign(idx=np.arange(len(df), dtype="int64"))
    return out


def select(index: pd.DataFrame, preset, tasks: list[str], seed: int) -> tuple[pd.DataFrame, dict]:
    """In-memory reference of one dataset's selection (small indexes, tests): the sampled rows with ``idx`` and
    the per-task pool sizes after the filters. The streaming build selects the same rows."""
    rows = index[(index["split"] == preset.split) & index["task"].isin([t for t in tasks if preset.includes(t)])]
    rows = apply_filters(rows, preset.min_context_events, preset.max_context_events, preset.max_patient_events)
    if preset.admission_window_filter and "covers_admission" in rows.columns:
        rows = rows[rows["covers_admission"].astype(bool)]
    pools = rows["task"].value_counts().to_dict()
    chosen = sample_dataset(rows, preset.plan([t for t in tasks if pools.get(t)]), seed)
    return chosen.assign(dataset=preset.name), pools


def vocabularies(index: pd.DataFrame, tasks: list[str]) -> dict:
    """In-memory reference of the candidate vocabularies: every label of the train split, per task."""
    from data_pipeline.tasks.candidates import build_vocabulary

    train = index[index["split"] == "train"]
    return {task: build_vocabulary(list(labels) for labels in group["labels"])
            for task, group in train.groupby("task") if task in vocab_tasks(tasks)}


def vocab_tasks(tasks: list[str]) -> list[str]:
    from data_pipeline.tasks import get_task

    return [t for t in tasks if get_task(t).answer_space is None and t not in NO_VOCABULARY]

