"""Seeded patient-spread sampling, the patient-level bootstrap, one-class tasks and honest headline counts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evaluation.samples import select_samples
from evaluation.scores import aggregate, cluster_replicates, resample, sample_outcome, score_frame


def _frame(n_patients: int, per_patient: int, task: str = "t", kind: str = "risk", pos_every: int = 4):
    rows = []
    for p in range(n_patients):
        for j in range(per_patient):
            i = p * per_patient + j
            rows.append({"sample_id": f"{task}-{i}", "task": task, "kind": kind, "patient": f"p{p}",
                         "label": int(i % pos_every == 0) if kind == "risk" else -1})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n_patients, per_patient, cap, expected_patients", [
    (10, 5, 8, 8), (10, 5, 10, 10), (3, 10, 9, 3), (20, 1, 5, 5)])
def test_selection_spreads_over_patients(n_patients, per_patient, cap, expected_patients):
    picked = select_samples(_frame(n_patients, per_patient, kind="decision"), cap, seed=1)
    assert len(picked) == min(cap, n_patients * per_patient)
    assert picked["patient"].nunique() == expected_patients


@pytest.mark.parametrize("cap, pos, neg", [(8, 4, 4), (2, 1, 1), (40, 10, 30), (13, 6, 7)])
def test_risk_selection_is_balanced_up_to_the_cap(cap, pos, neg):
    frame = _frame(20, 2, pos_every=4)  # 10 positives, 30 negatives
    picked = select_samples(frame, cap, seed=0)
    assert (picked["label"] == 1).sum() == pos and (picked["label"] == 0).sum() == neg


def test_selection_is_seeded_and_independent_of_file_order():
    frame = pd.concat([_frame(10, 3, "a", "decision"), _frame(10, 3, "b")], ignore_index=True)
    one = select_samples(frame, 5, seed=3)
    assert one["sample_id"].tolist() == select_samples(frame, 5, seed=3)["sample_id"].tolist()
    shuffled = frame.sample(frac=1.0, random_state=0)
    assert set(select_samples(shuffled, 5, seed=3)["sample_id"]) == set(one["sample_id"])
    assert set(select_samples(frame, 5, seed=4)["sample_id"]) != set(one["sample_id"])


def test_resample_takes_every_sample_of_a_drawn_patient_once_per_draw():
    codes = np.array([0, 0, 1, 2, 2, 2])
    counts = np.array([2, 0, 1])  # patient 0 twice, patient 1 never, patient 2 once
    assert resample(np.arange(6), codes, counts).tolist() == [0, 0, 1, 1, 3, 4, 5]
    reps = cluster_replicates(codes, 50, np.random.default_rng(0))
    assert reps.shape == (50, 3) and (reps.sum(axis=1) == 3).all()


def _scored(clustered: bool, n_patients: int = 30, per_patient: int = 6, seed: int = 0) -> pd.DataFrame:
    """A decision task whose F1 is a patient trait (0 or 1 for all of a patient's samples)."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        good = rng.random() < 0.5
        for j in range(per_patient):
            f1 = float(good) if clustered else float(rng.random() < 0.5)
            rows.append({"sample_id": f"s{p}-{j}", "task": "dm", "family": "decision: hosp", "kind": "decision",
                         "benchmark": "ehr_bench", "patient": f"p{p}", "outcome": "answered",
                         "precision": f1, "recall": f1, "f1": f1, "task_metric": f1, "accuracy": f1,
                         "p_yes": math.nan, "label": -1.0})
    return pd.DataFrame(rows)


def test_patient_bootstrap_widens_intervals_on_clustered_data():
    clustered = aggregate(_scored(True), n_bootstrap=400, seed=0)["tasks"]["dm"]
    per_sample = aggregate(_scored(True).assign(patient=lambda f: f["sample_id"]), n_bootstrap=400,
                           seed=0)["tasks"]["dm"]
    width = clustered["f1_hi"] - clustered["f1_lo"]
    assert width > 1.8 * (per_sample["f1_hi"] - per_sample["f1_lo"])  # ~sqrt(6) wider with 6 samples a patient
    # hand-worked: with F1 a patient trait the bootstrap is a binomial over 30 patients, sd sqrt(p(1-p)/30)
    p = clustered["f1"]
    assert width == pytest.approx(2 * 1.96 * math.sqrt(p * (1 - p) / 30), rel=0.25)
    assert clustered["patients"] == 30 and clustered["n"] == 180


def _risk(task: str, labels: list[int], scores: list[float], patient_of=lambda i: f"p{i}") -> list[dict]:
    return [{"sample_id": f"{task}-{i}", "task": task, "family": "risk: hosp", "kind": "risk",
             "benchmark": "ehr_bench", "patient": patient_of(i), "outcome": "answered", "precision": math.nan,
             "recall": math.nan, "f1": math.nan, "task_metric": 1.0, "accuracy": 1.0, "p_yes": s,
             "label": float(y)} for i, (y, s) in enumerate(zip(labels, scores))]


def test_one_class_task_is_not_scoreable_and_leaves_the_headline_with_honest_counts():
    rows = _risk("good", [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]) + _risk("one_class", [0, 0, 0], [0.3, 0.4, 0.5])
    metrics = aggregate(pd.DataFrame(rows), n_bootstrap=50, seed=0)
    assert metrics["tasks"]["one_class"]["scoreable"] is False and math.isnan(
        metrics["tasks"]["one_class"].get("auroc", math.nan))
    overall = metrics["overall"]["risk"]
    assert overall["auroc"] == 1.0 and overall["tasks"] == 1 and overall["n"] == 4
    assert overall["tasks_total"] == 2 and overall["n_total"] == 7

    from evaluation.run import headline

    assert "1 tasks, 4 samples; 1 not scoreable" in headline(metrics)


@pytest.mark.parametrize("row, outcome", [
    ({"kind": "decision", "completion": "<think>\n\n</think>\n\nSepsis", "finish_reason": "stop"}, "answered"),
    ({"kind": "decision", "completion": "Sepsis\nAKI", "finish_reason": "length"}, "truncated"),
    ({"kind": "decision", "completion": "<think>\nstill thinking", "finish_reason": "stop"}, "no_answer"),
    ({"kind": "decision", "completion": "", "status": "skipped"}, "refused"),
    ({"kind": "risk", "completion": "yes", "p_yes": 0.7}, "answered"),
    ({"kind": "risk", "completion": "", "p_yes": math.nan}, "refused"),
])
def test_every_sample_has_an_outcome(row, outcome):
    assert sample_outcome({"status": "ok", **row}) == outcome


def test_score_frame_counts_outcomes_per_task():
    samples = pd.DataFrame([{"sample_id": f"d{i}", "benchmark": "ehr_bench", "task": "dm", "family": "decision: hosp",
                             "kind": "decision", "metric": "recall", "target": ["Sepsis"], "label": -1, "grading": "",
                             "patient": f"p{i % 2}"} for i in range(3)])
    preds = pd.DataFrame([{"sample_id": "d0", "completion": "Sepsis", "p_yes": math.nan, "status": "ok",
                           "finish_reason": "stop"},
                          {"sample_id": "d1", "completion": "Sep", "p_yes": math.nan, "status": "ok",
                           "finish_reason": "length"},
                          {"sample_id": "d2", "completion": "", "p_yes": math.nan, "status": "skipped",
                           "finish_reason": ""}])
    task = aggregate(score_frame(samples, preds), n_bootstrap=10)["tasks"]["dm"]
    assert (task["answered"], task["truncated"], task["refused"], task["patients"]) == (1, 1, 1, 2)
    assert task["f1"] == pytest.approx(1 / 3)  # the truncated and refused samples are misses, counted apart
