"""``max_samples`` draws a seeded sample stratified by task: every task appears, equal shares water-filled."""

from __future__ import annotations

import numpy as np
import pytest

from data_pipeline.thinking_graph.selection import stratified_sample, task_quotas


@pytest.mark.parametrize("sizes, cap, quotas", [
    ({"a": 10, "b": 10, "c": 10}, 9, {"a": 3, "b": 3, "c": 3}),
    ({"a": 1, "b": 10, "c": 10}, 9, {"a": 1, "b": 4, "c": 4}),       # a small task gives all it has
    ({"a": 1, "b": 2, "c": 100}, 50, {"a": 1, "b": 2, "c": 47}),
    ({"a": 5, "b": 5}, 3, {"a": 2, "b": 1}),                          # remainder: name order breaks the tie
    ({"a": 5, "b": 9}, 3, {"a": 1, "b": 2}),                          # remainder to the larger task
    ({"a": 2, "b": 2}, 100, {"a": 2, "b": 2}),                        # cap above the total
    ({"a": 3, "b": 3, "c": 3, "d": 3}, 2, {"a": 1, "b": 1, "c": 0, "d": 0}),  # fewer than tasks
    ({}, 5, {}),
])
def test_task_quotas(sizes, cap, quotas):
    assert task_quotas(sizes, cap) == quotas
    assert sum(quotas.values()) == min(cap, sum(sizes.values()))


def test_first_ids_run_task_by_task_but_the_draw_covers_every_task():
    tasks = np.repeat([f"t{k:02d}" for k in range(25)], 40)  # EHR-Ins ids run task by task
    idx = np.arange(len(tasks)) * 3
    kept = stratified_sample(idx, tasks, 256, seed=0)
    assert len(kept) == 256 and len(set(kept)) == 256 and set(kept) <= set(idx)
    per_task = {t: int(np.isin(idx[tasks == t], kept).sum()) for t in np.unique(tasks)}
    assert set(per_task.values()) == {10, 11}  # 256 = 25 * 10 + 6
    assert list(kept) == sorted(kept)
    assert list(stratified_sample(idx, tasks, 256, seed=0)) == list(kept)  # seeded
    assert list(stratified_sample(idx, tasks, 256, seed=1)) != list(kept)
    assert list(stratified_sample(idx[::-1], tasks[::-1], 256, seed=0)) == list(kept)  # not the input order


@pytest.mark.parametrize("cap", [None, 1000, 5000])
def test_no_cap_or_a_large_one_keeps_everything(cap):
    tasks = np.array(["a", "b"] * 500)
    assert list(stratified_sample(np.arange(1000)[::-1], tasks[::-1], cap, seed=0)) == list(range(1000))


@pytest.mark.parametrize("summary, error", [
    ({"dataset": "ehr_ins", "split": "train"}, None),
    ({"dataset": "ehr_bench", "split": "test"}, "split is 'test', not 'train'"),
    ({"dataset": "ehr_ins"}, "split is None"),
    ("not json", "cannot read the dataset's split"),
])
def test_stage_two_records_come_from_the_training_split(tmp_path, summary, error):
    import json

    from data_pipeline.thinking_graph.pipeline import check_training_split

    path = tmp_path / "summary.json"
    path.write_text(summary if isinstance(summary, str) else json.dumps(summary))
    if error is None:
        check_training_split(path)
    else:
        with pytest.raises(ValueError, match=error) as info:
            check_training_split(path)
        assert str(path) in str(info.value)
