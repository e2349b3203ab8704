"""Scores and aggregates agree with scikit-learn on random cases; bootstrap intervals are well formed."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer

from evaluation.metrics import auprc, auroc, set_precision_recall_f1
from evaluation.scores import aggregate, score_frame, score_sample

VOCAB = [f"item{i}" for i in range(12)]


@pytest.mark.parametrize("seed", range(20))
def test_auroc_auprc_match_sklearn_on_random_cases(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    labels = rng.integers(0, 2, n)
    labels[0], labels[1] = 0, 1
    scores = np.round(rng.random(n), int(rng.integers(1, 4)))  # coarse rounding makes ties
    assert auroc(scores.tolist(), labels.tolist()) == pytest.approx(roc_auc_score(labels, scores))
    assert auprc(scores.tolist(), labels.tolist()) == pytest.approx(average_precision_score(labels, scores))


@pytest.mark.parametrize("seed", range(20))
def test_set_prf_matches_sklearn_samples_average(seed):
    rng = np.random.default_rng(seed)
    gold = [list(rng.choice(VOCAB, int(rng.integers(1, 5)), replace=False)) for _ in range(30)]
    pred = [list(rng.choice(VOCAB, int(rng.integers(0, 5)), replace=False)) for _ in range(30)]
    ours = np.array([set_precision_recall_f1(p, g) for p, g in zip(pred, gold)])
    mlb = MultiLabelBinarizer(classes=[v.lower() for v in VOCAB]).fit([VOCAB])
    y_true, y_pred = mlb.transform([[x.lower() for x in g] for g in gold]), mlb.transform([[x.lower() for x in p]
                                                                                         for p in pred])
    kw = dict(average="samples", zero_division=0)
    assert ours[:, 0].mean() == pytest.approx(precision_score(y_true, y_pred, **kw))
    assert ours[:, 1].mean() == pytest.approx(recall_score(y_true, y_pred, **kw))
    assert ours[:, 2].mean() == pytest.approx(f1_score(y_true, y_pred, **kw))


def test_metric_errors_name_the_problem():
    with pytest.raises(ValueError, match="positive and one negative"):
        auroc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="2 scores but 3 labels"):
        auprc([0.1, 0.2], [1, 0, 1])


def _random_run(seed: int, n_per_task: int = 40):
    rng = np.random.default_rng(seed)
    samples, preds = [], []
    for t in range(3):
        for i in range(n_per_task):
            sid = f"r{t}-{i}"
            label = int(i % 3 == 0)
            samples.append({"sample_id": sid, "benchmark": "ehr_bench", "task": f"risk{t}", "family": "risk: icu"
                            if t else "risk: hosp", "kind": "risk", "metric": "aucroc", "target": ["yes" if label
                                                                                                   else "no"],
                            "label": label, "grading": ""})
            p = float(np.clip(rng.normal(0.35 + 0.3 * label, 0.2), 0, 1))
            preds.append({"sample_id": sid, "completion": "yes" if p >= 0.5 else "no", "p_yes": p, "status": "ok"})
    for t in range(2):
        for i in range(n_per_task):
            sid = f"d{t}-{i}"
            gold = list(rng.choice(VOCAB, 3, replace=False))
            pred = list(rng.choice(VOCAB, int(rng.integers(0, 4)), replace=False))
            samples.append({"sample_id": sid, "benchmark": "ehr_bench", "task": f"dm{t}", "family": "decision: hosp",
                            "kind": "decision", "metric": "recall", "target": gold, "label": -1, "grading": ""})
            preds.append({"sample_id": sid, "completion": "<think>\nx\n</think>\n\n" + "\n".join(pred),
                          "p_yes": math.nan, "status": "ok"})
    return pd.DataFrame(samples), pd.DataFrame(preds)


def test_aggregate_agrees_with_sklearn_per_task_and_macro_over_tasks():
    samples, preds = _random_run(1)
    scored = score_frame(samples, preds)
    metrics = aggregate(scored, n_bootstrap=50, seed=0)
    aurocs = []
    for t in ("risk0", "risk1", "risk2"):
        g = scored[scored["task"] == t]
        expected = roc_auc_score(g["label"].astype(int), g["p_yes"])
        assert metrics["tasks"][t]["auroc"] == pytest.approx(expected)
        assert metrics["tasks"][t]["auprc"] == pytest.approx(average_precision_score(g["label"].astype(int),
                                                                                     g["p_yes"]))
        lo, hi = metrics["tasks"][t]["auroc_lo"], metrics["tasks"][t]["auroc_hi"]
        assert 0.0 <= lo <= hi <= 1.0
        aurocs.append(expected)
    assert metrics["overall"]["risk"]["auroc"] == pytest.approx(np.mean(aurocs))
    assert metrics["families"]["risk: icu"]["auroc"] == pytest.approx(np.mean(aurocs[1:]))
    for t in ("dm0", "dm1"):
        g = samples[samples["task"] == t].merge(preds, on="sample_id")
        f1s = [set_precision_recall_f1(c.split("</think>")[1].split(), gold)[2]
               for c, gold in zip(g["completion"], g["target"])]
        assert metrics["tasks"][t]["f1"] == pytest.approx(np.mean(f1s))
    assert metrics["overall"]["decision"]["n"] == 80
    json.dumps(metrics)  # serialisable


def test_bootstrap_is_reproducible_and_errors_are_not_scored():
    samples, preds = _random_run(2, n_per_task=10)
    preds.loc[0, "status"] = "error"
    scored = score_frame(samples, preds)
    assert len(scored) == len(samples) - 1
    assert aggregate(scored, n_bootstrap=20, seed=3) == aggregate(scored, n_bootstrap=20, seed=3)


@pytest.mark.parametrize("row, key, expected", [
    ({"kind": "decision", "metric": "recall", "target": ["Sepsis", "AKI"], "completion": "<think>\nr\n</think>\n\nsepsis"},
     "f1", 2 / 3),
    ({"kind": "decision", "metric": "recall", "target": ["Sepsis"], "completion": "<think>\nunfinished"}, "f1", 0.0),
    ({"kind": "decision", "metric": "acc", "target": ["labevents"], "completion": "labevents"}, "task_metric", 1.0),
    ({"kind": "risk", "metric": "aucroc", "target": ["yes"], "label": 1, "completion": "yes", "p_yes": 0.7},
     "accuracy", 1.0),
    ({"kind": "calc", "metric": "medcalc", "target": ["5"], "completion": '{"answer": "5"}',
      "grading": json.dumps({"ground_truth": "5", "output_type": "integer", "calculator_id": 4})}, "accuracy", 1.0),
])
def test_score_sample(row, key, expected):
    assert score_sample({"label": -1, **row})[key] == pytest.approx(expected)
