"""Streaming selection: sampling keys, quotas, exact top-k merges, and the same rows as the in-memory draw
whatever the partition of the index into parts and batches."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_pipeline.datasets.config import load_preset
from data_pipeline.datasets.sampling import ALL, draw_keys, group_quotas, label_weights, row_uniforms, top_k_indices
from data_pipeline.datasets.selection import (SURVIVOR_SCHEMA, TopK, empty_stats, merge_stats, number_selection,
                                              part_stats, preset_spec, select, select_table, selection_plan,
                                              vocab_tasks, vocabularies, vocabulary_from_counts)
from data_pipeline.datasets.stages import INDEX_SCHEMA, TABLES_ROW, index_batch, index_shards_to_parts
from data_pipeline.tasks import task_names
from data_pipeline.tasks.examples import example_timeline

TASKS = task_names()
SMALL_CAPS = {"min_context_events": -1, "max_context_events": None,
              "decision_making": {"cap": 3}, "risk_prediction": {"cap": 4, "mode": "balanced"},
              "tasks": {"next_event": {"cap": 5, "mode": "weighted"}, "chartevents": {"cap": 2, "mode": "weighted"},
                        "ICU_Stay_7day": {"mode": "weighted"}, "omr": {"cap": -1}}}


def _timelines() -> pa.Table:
    rows = [example_timeline(subject_id=s, dod="2180-01-06" if s % 3 == 0 else "nan",
                             icu_outtime="2180-01-12 10:00:00" if s % 2 else "2180-01-05 10:00:00").to_row()
            for s in range(10000030, 10000070)]
    return pa.Table.from_pylist(rows)


@pytest.fixture(scope="module")
def index() -> pa.Table:
    table = index_batch(_timelines(), TASKS, test_ratio=0.4, salt="ehr-r1")
    return table.filter(pa.compute.not_equal(table["task"], TABLES_ROW))


def _parts(table: pa.Table, n: int, seed: int) -> list[pa.Table]:
    """``table``'s rows shuffled and cut into ``n`` parts, each cut again into uneven batches."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(table.num_rows)
    cuts = np.sort(rng.choice(np.arange(1, table.num_rows), size=n - 1, replace=False)) if n > 1 else []
    return [table.take(pa.array(ix)) for ix in np.split(perm, cuts)]


def stream_select(table: pa.Table, presets, seed: int, n_parts: int, part_seed: int = 0):
    """What the build does over Ray, without Ray: stats per part -> plan -> top-k per part -> top-k merge."""
    parts = _parts(table, n_parts, part_seed)
    specs = [preset_spec(p, TASKS) for p in presets]
    stats = empty_stats()
    for part in parts:
        merge_stats(stats, part_stats(part, specs, vocab_tasks(TASKS)))
    caps = {p.name: {t: p.sampling_for(t)[0] for t in TASKS if stats["datasets"][p.name]["pools"][t]}
            for p in presets}
    plans, k_of_group = selection_plan(specs, stats, caps)
    driver = TopK(k_of_group, min_prune=1)
    for part in parts:
        worker = TopK(k_of_group, min_prune=7)
        for batch in part.to_batches(max_chunksize=50):
            worker.add(select_table(pa.Table.from_batches([batch], schema=INDEX_SCHEMA), plans, seed))
        driver.add(worker.result())
    return number_selection(driver.result(), plans), stats


@pytest.mark.parametrize("n_parts,part_seed", [(1, 0), (3, 1), (7, 2), (16, 3)])
@pytest.mark.parametrize("name", ["ehr_ins", "ehr_bench"])
def test_streaming_selection_equals_the_in_memory_draw(index, name, n_parts, part_seed):
    preset = load_preset(name, SMALL_CAPS)
    chosen, stats = stream_select(index, [preset], seed=5, n_parts=n_parts, part_seed=part_seed)
    expected, pools = select(index.to_pandas(), preset, TASKS, seed=5)
    cols = ["idx", "task", "subject_id", "anchor", "context_begin", "context_end"]
    got = chosen[name]
    assert len(expected) > 0 and got[cols].values.tolist() == expected[cols].values.tolist()
    assert {t: n for t, n in stats["datasets"][name]["pools"].items() if n} == pools
    # the caps bite somewhere, and no task exceeds its cap
    assert len(got) < sum(pools.values())
    for task, n in Counter(got["task"]).items():
        cap = preset.sampling_for(task)[0]
        assert n == pools[task] if cap == -1 else n <= cap


def test_selection_changes_with_the_seed_only(index):
    preset = load_preset("ehr_ins", SMALL_CAPS)
    a = stream_select(index, [preset], seed=1, n_parts=2)[0]["ehr_ins"]
    b = stream_select(index, [preset], seed=1, n_parts=9, part_seed=4)[0]["ehr_ins"]
    c = stream_select(index, [preset], seed=2, n_parts=2)[0]["ehr_ins"]
    key = ["task", "subject_id", "anchor", "context_end"]
    assert a[key].values.tolist() == b[key].values.tolist() != c[key].values.tolist()


@pytest.mark.parametrize("n,n_groups,batches,seed", [(1, 1, 1, 0), (200, 3, 5, 1), (1000, 7, 13, 2),
                                                       (500, 2, 500, 3)])
def test_merged_top_k_equals_global_top_k(n, n_groups, batches, seed):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n_groups, n)
    keys = np.round(rng.normal(size=n), 1)  # many equal keys: ties must be broken by the row ids
    ids = [rng.integers(0, 50, n), np.arange(n)]
    k_of_group = {g: int(rng.integers(0, 40)) for g in range(n_groups)}
    k_of_group[0] = ALL
    expected = top_k_indices(groups, keys, ids, k_of_group)
    survivors = []
    for chunk in np.array_split(rng.permutation(n), batches):
        local = top_k_indices(groups[chunk], keys[chunk], [i[chunk] for i in ids], k_of_group)
        survivors.append(chunk[local])
    merged = np.concatenate(survivors)
    final = merged[top_k_indices(groups[merged], keys[merged], [i[merged] for i in ids], k_of_group)]
    assert np.sort(final).tolist() == expected.tolist()
    sizes = Counter(groups[expected].tolist())
    for g, k in k_of_group.items():
        total = int((groups == g).sum())
        assert sizes.get(g, 0) == (total if k == ALL else min(k, total))


@pytest.mark.parametrize("cap,mode,pool,sizes,classes,expected", [
    (500, "balanced", 1000, {"yes": 300, "no": 700}, ("yes", "no"), {"no": 250, "yes": 250}),
    (500, "balanced", 1000, {"no": 1000}, ("yes", "no"), {"no": 250}),       # absent class keeps its share
    (-1, "balanced", 100, {"yes": 30, "no": 70}, ("yes", "no"), {"no": 30, "yes": 30}),
    (-1, "balanced", 70, {"no": 70}, ("yes", "no"), {"no": 0}),               # nothing to balance against
    (9, "balanced", 90, {"a": 30, "b": 30, "c": 30}, None, {"a": 3, "b": 3, "c": 3}),
    (10, "uniform", 50, None, None, {None: 10}),
    (100, "weighted", 50, None, None, {None: ALL}),
    (-1, "uniform", 50, None, None, {None: ALL}),
    (0, "weighted", 50, None, None, {None: 0}),
])
def test_group_quotas(cap, mode, pool, sizes, classes, expected):
    assert group_quotas(cap, mode, pool, sizes, classes) == expected


def test_weighted_keys_prefer_heavy_rows_in_proportion():
    n = 20000
    ids = [np.arange(n), np.zeros(n, dtype=np.int64)]
    weights = np.where(np.arange(n) % 10 == 0, 9.0, 1.0)  # 10 % of rows, 9x heavier: half the total weight
    keys = draw_keys(3, "chartevents", "weighted", ids, weights)
    top = np.argsort(-keys)[:200]  # a small sample: close to draws with probability proportional to weight
    heavy = (weights[top] == 9.0).mean()
    assert 0.40 < heavy < 0.60
    uniform = np.argsort(-draw_keys(3, "chartevents", "uniform", ids))[:200]
    assert 0.03 < (weights[uniform] == 9.0).mean() < 0.18


def test_keys_are_a_function_of_seed_task_and_row():
    ids = [np.array([5, 6, 7]), np.array([1, 1, 2])]
    u = row_uniforms(0, "labevents", "uniform", ids)
    assert ((u > 0) & (u < 1)).all()
    assert row_uniforms(0, "labevents", "uniform", [c[::-1] for c in ids]).tolist() == u[::-1].tolist()
    assert row_uniforms(1, "labevents", "uniform", ids).tolist() != u.tolist()
    assert row_uniforms(0, "omr", "uniform", ids).tolist() != u.tolist()


def test_label_weights_are_inverse_mean_frequency():
    counts = {"a": 3, "b": 1, "c": 1}
    assert label_weights([["a"], ["a", "b"], ["c"], []], counts, 4).tolist() == pytest.approx(
        [4 / 3, 1 / ((3 / 4 + 1 / 4) / 2), 4.0, 1.0])


def _survivors(subject_ids: np.ndarray, groups: np.ndarray, keys: np.ndarray) -> pa.Table:
    n = len(subject_ids)
    cols = [pa.array(subject_ids, pa.int64()) if f.name == "subject_id" else
            pa.array(np.zeros(n, np.int64)) if f.type == pa.int64() else pa.nulls(n, f.type) for f in INDEX_SCHEMA]
    return pa.Table.from_arrays(cols + [pa.array(["d"] * n), pa.array(groups, pa.int64()), pa.array(keys)],
                                schema=SURVIVOR_SCHEMA)


def test_topk_memory_is_bounded_by_the_quotas():
    k_of_group = {0: 10, 1: 5}
    top = TopK(k_of_group, min_prune=100)
    rng = np.random.default_rng(0)
    all_keys = []
    for b in range(200):
        keys = rng.random(50)
        all_keys.append(keys)
        top.add(_survivors(np.arange(50) + 50 * b, np.arange(50) % 2, keys))
    result = top.result()
    assert result.num_rows == 15 and top.peak_rows <= 2 * 100 + 50  # never the 10 000 rows added
    keys = np.concatenate(all_keys)
    best = sorted(keys[0::2], reverse=True)[:10] + sorted(keys[1::2], reverse=True)[:5]
    assert sorted(result["_key"].to_pylist()) == sorted(best)


def test_vocabularies_from_merged_counts_equal_the_in_memory_ones(index):
    stats = empty_stats()
    for part in _parts(index, 5, 0):
        merge_stats(stats, part_stats(part, [], vocab_tasks(TASKS)))
    expected = vocabularies(index.to_pandas(), TASKS)
    got = {t: vocabulary_from_counts(*stats["vocab"][t]) for t in stats["vocab"]}
    assert set(got) == set(expected) and "labevents" in got
    for task, vocab in expected.items():
        assert got[task].items == vocab.items and got[task].neighbours == vocab.neighbours


def test_index_parts_are_written_by_the_worker(tmp_path):
    shard = tmp_path / "part-00003.parquet"
    pq.write_table(_timelines(), shard)
    out = tmp_path / "index"
    out.mkdir()
    rows = list(index_shards_to_parts(pa.table({"path": [str(shard)]}), TASKS, 0.4, "ehr-r1", str(out)))
    assert len(rows) == 1
    meta = rows[0].to_pylist()[0]
    part = pq.read_table(meta["path"])
    assert meta["path"] == str(out / "part-00003.parquet") and [p.name for p in out.iterdir()] == [shard.name]
    assert part.num_rows == meta["rows"] > 0 and TABLES_ROW not in set(part["task"].to_pylist())
    assert part.schema.equals(INDEX_SCHEMA) and {"labevents", "edstays"} <= set(meta["tables"])


@pytest.mark.parametrize("filter_on", [True, False])
def test_admission_window_filter_and_excluded_tasks(index, filter_on):
    """The reference's 24 h-covers-the-admission filter drops the example's procedure (day 3) and diagnoses
    (discharge, day 6) samples unless turned off; EHR-Bench leaves the discharge task out."""
    import pyarrow.compute as pc

    diag = index.filter(pc.is_in(index["task"], pa.array(["procedures_icd", "diagnoses_icd", "diagnoses_ccs"])))
    assert diag.num_rows and not any(diag["covers_admission"].to_pylist())
    others = index.filter(pc.invert(pc.is_in(index["task"], pa.array(["procedures_icd", "procedures_ccs",
                                                                       "diagnoses_icd", "diagnoses_ccs"]))))
    assert all(others["covers_admission"].to_pylist())
    presets = [load_preset(n, {**SMALL_CAPS, "admission_window_filter": filter_on}) for n in ("ehr_ins", "ehr_bench")]
    chosen, stats = stream_select(index, presets, seed=0, n_parts=3)
    for name in ("ehr_ins", "ehr_bench"):
        pools = stats["datasets"][name]["pools"]
        assert (pools["diagnoses_icd"] > 0) == (not filter_on)
    assert stats["datasets"]["ehr_bench"]["pools"]["discharge"] == 0
    assert "discharge" not in set(chosen["ehr_bench"]["task"])
