"""Sampling: filters, caps, label balance, weighted draws, determinism."""

from __future__ import annotations

import pandas as pd
import pytest

from data_pipeline.datasets.sampling import apply_filters, sample_dataset, sample_task, target_weights


def pool(task: str, labels: list[list[str]], n_context: int = 20, n_patient_events: int = 100) -> pd.DataFrame:
    return pd.DataFrame({"task": task, "subject_id": [1000 + i // 3 for i in range(len(labels))],
                         "anchor": [i % 3 for i in range(len(labels))], "labels": labels,
                         "n_context": n_context, "n_patient_events": n_patient_events})


@pytest.mark.parametrize("cap,mode,n,expected", [(10, "uniform", 50, 10), (-1, "uniform", 50, 50),
                                                 (100, "uniform", 50, 50), (10, "weighted", 50, 10),
                                                 (0, "uniform", 50, 0)])
def test_caps(cap, mode, n, expected):
    rows = pool("labevents", [[f"l{i % 7}"] for i in range(n)])
    assert len(sample_task(rows, cap, mode, seed=0, task="labevents")) == expected


@pytest.mark.parametrize("n_yes,n_no,cap,exp_yes,exp_no", [
    (300, 700, 500, 250, 250),     # reference: 500 per task, 250/250
    (100, 900, 500, 100, 250),     # a short class gives all it has; the other keeps its quota
    (30, 70, -1, 30, 30),          # no cap: every class cut to the smallest
    (0, 50, 10, 0, 5),
])
def test_balanced(n_yes, n_no, cap, exp_yes, exp_no):
    rows = pool("ICU_Stay_7day", [["yes"]] * n_yes + [["no"]] * n_no)
    got = sample_task(rows, cap, "balanced", seed=1, task="ICU_Stay_7day", classes=("yes", "no"))
    counts = got["labels"].map(lambda x: x[0]).value_counts().to_dict()
    assert counts.get("yes", 0) == exp_yes and counts.get("no", 0) == exp_no


def test_weighted_oversamples_rare_labels():
    rows = pool("ICU_Mortality_1day", [["yes"]] * 50 + [["no"]] * 950)
    uniform = sample_task(rows, 100, "uniform", seed=3, task="t")["labels"].map(lambda x: x[0] == "yes").sum()
    weighted = sample_task(rows, 100, "weighted", seed=3, task="t")["labels"].map(lambda x: x[0] == "yes").sum()
    assert weighted > 2 * uniform and weighted >= 30


def test_target_weight_is_inverse_mean_label_frequency():
    w = target_weights(pd.Series([["a"], ["a"], ["a", "b"], ["c"]]))
    # frequencies: a 3/4, b 1/4, c 1/4
    assert w.tolist() == pytest.approx([4 / 3, 4 / 3, 1 / ((3 / 4 + 1 / 4) / 2), 4.0])


@pytest.mark.parametrize("mode", ["uniform", "weighted", "balanced"])
def test_deterministic_for_a_seed_whatever_the_row_order(mode):
    rows = pool("LengthOfStay_3day", [["yes"] if i % 4 else ["no"] for i in range(400)])
    a = sample_task(rows, 50, mode, seed=7, task="x")
    b = sample_task(rows.sample(frac=1.0, random_state=11), 50, mode, seed=7, task="x")
    c = sample_task(rows, 50, mode, seed=8, task="x")
    key = ["subject_id", "anchor"]
    assert a[key].values.tolist() == b[key].values.tolist()
    assert a[key].values.tolist() != c[key].values.tolist()


@pytest.mark.parametrize("lo,hi,max_events,expected", [(10, 100, 1200, [20, 50]), (0, None, None, [5, 20, 50, 150]),
                                                       (10, 30, None, [20]), (0, None, 1200, [5, 20, 50])])
def test_filters(lo, hi, max_events, expected):
    rows = pd.DataFrame({"task": "t", "n_context": [5, 20, 50, 150], "n_patient_events": [10, 100, 1000, 1300]})
    assert apply_filters(rows, lo, hi, max_events)["n_context"].tolist() == expected


def test_sample_dataset_numbers_rows_in_task_order():
    rows = pd.concat([pool("labevents", [["a"]] * 5), pool("ICU_Stay_7day", [["yes"]] * 4 + [["no"]] * 4)])
    got = sample_dataset(rows, {"labevents": (3, "uniform"), "ICU_Stay_7day": (4, "balanced")}, seed=0)
    assert got["idx"].tolist() == list(range(7))
    assert got["task"].tolist() == ["labevents"] * 3 + ["ICU_Stay_7day"] * 4


def test_unknown_mode_is_named():
    with pytest.raises(ValueError, match="sampling mode 'random'"):
        sample_task(pool("t", [["a"]] * 5), 2, "random", seed=0, task="t")
