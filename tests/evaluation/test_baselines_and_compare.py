"""Baselines on a synthetic task with known signal, paired differences by patient, config differences."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pandas as pd
import pytest

from evaluation.baselines import CountBaseline, frequency_prior, leakage_suspects
from evaluation.compare import compare_runs, config_differences, paired_difference
from evaluation.scores import aggregate, score_frame


@pytest.mark.parametrize("targets, expected", [
    ([["a", "b"], ["a"], ["a", "c"], ["b"]], ["a", "b"]),  # a in 3/4, b in 2/4
    ([["a"], ["b"], ["c"]], ["a"]),                         # none in half: the most frequent (first seen)
    ([["x", "x"], ["x"]], ["x"]),                           # duplicates inside a target count once
    ([], []),
])
def test_frequency_prior(targets, expected):
    assert frequency_prior(targets) == expected


def _samples(n: int, seed: int, split: str) -> pd.DataFrame:
    """A risk task whose label is 'Vancomycin in the history', and a decision task whose target follows a lab."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        positive = rng.random() < 0.4
        noise = " ".join(rng.choice(["Sodium", "Glucose", "Heparin", "Insulin"]) for _ in range(6))
        drug = "Vancomycin" if positive else "Acetaminophen"
        rows.append({"sample_id": f"{split}-r{i}", "benchmark": "ehr_bench", "task": "Inpatient_Mortality",
                     "family": "risk: hosp", "kind": "risk", "metric": "aucroc",
                     "input": f"## Prescriptions [2150-01-01 08:00:00]\n- Drug: {drug}\n- Notes: {noise}",
                     "instruction": "?", "candidates": ["yes", "no"], "target": ["yes" if positive else "no"],
                     "label": int(positive), "grading": "", "patient": f"{split}-p{i // 2}"})
        lab = rng.choice(["Potassium", "Creatinine"])
        target = ["Furosemide"] if lab == "Potassium" else ["Sodium Bicarbonate"]
        rows.append({"sample_id": f"{split}-d{i}", "benchmark": "ehr_bench", "task": "prescriptions",
                     "family": "decision: hosp", "kind": "decision", "metric": "recall",
                     "input": f"## Labotary Test Events [2150-01-01 08:00:00]\n- Item: {lab}\n- Notes: {noise}",
                     "instruction": "?", "candidates": [], "target": target, "label": -1, "grading": "",
                     "patient": f"{split}-p{i // 2}"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("method", ["count_lr", "count_gbm"])
def test_count_baselines_find_a_known_signal_the_prior_cannot(method):
    train, test = _samples(300, 0, "train"), _samples(80, 1, "test")
    results = {}
    for m in ("prior", method):
        preds = CountBaseline(m).fit(train).predict(test)
        assert set(preds["status"]) == {"ok"}
        results[m] = aggregate(score_frame(test, preds), n_bootstrap=50)
    prior, counts = results["prior"]["tasks"], results[method]["tasks"]
    assert prior["Inpatient_Mortality"]["auroc"] == 0.5  # a constant score
    assert counts["Inpatient_Mortality"]["auroc"] > 0.95
    assert counts["prescriptions"]["f1"] > 0.95 > prior["prescriptions"]["f1"] > 0.3
    assert leakage_suspects(results[method]) == ["Inpatient_Mortality"]  # flagged for a leakage review
    assert leakage_suspects(results["prior"]) == []


def test_a_task_without_training_samples_is_refused_with_the_reason():
    train, test = _samples(50, 0, "train"), _samples(5, 1, "test")
    test.loc[test["kind"] == "risk", "task"] = "ICU_Mortality_1day"
    preds = CountBaseline("prior").fit(train).predict(test)
    refused = preds[preds["sample_id"].str.contains("-r")]
    assert set(refused["status"]) == {"skipped"} and refused["error"].str.contains("ICU_Mortality_1day").all()


def _scored_run(p_good: float, seed: int, n_patients: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        for j in range(3):
            f1 = float(rng.random() < p_good)
            rows.append({"sample_id": f"s{p}-{j}", "task": "dm", "kind": "decision", "patient": f"p{p}",
                         "family": "decision: hosp", "benchmark": "ehr_bench", "precision": f1, "recall": f1,
                         "f1": f1, "task_metric": f1, "accuracy": f1, "p_yes": math.nan, "label": -1.0})
    return pd.DataFrame(rows)


def test_paired_difference_of_a_run_with_itself_is_exactly_zero():
    run = _scored_run(0.5, 0)
    d = paired_difference(run, run, n_bootstrap=100)
    o = d["overall"]["decision"]
    assert (o["diff"], o["diff_lo"], o["diff_hi"], o["excludes_zero"]) == (0.0, 0.0, 0.0, False)
    assert d["shared_samples"] == 120 and d["patients"] == 40


def test_paired_difference_detects_a_better_run_and_uses_only_shared_samples():
    worse, better = _scored_run(0.2, 0), _scored_run(0.9, 1)
    d = paired_difference(worse, better.iloc[:-3], n_bootstrap=200)
    o = d["overall"]["decision"]
    assert o["excludes_zero"] and 0 < o["diff_lo"] < o["diff"] < o["diff_hi"]
    assert d["shared_samples"] == 117
    assert o["diff"] == pytest.approx(better.iloc[:-3]["f1"].mean() - worse.iloc[:-3]["f1"].mean())


def test_config_differences_list_only_keys_that_differ():
    a = {"model": {"path": "a", "name": "x"}, "backend": {"kind": "transformers"}, "output_dir": "o1"}
    b = {"model": {"path": "b", "name": "x"}, "backend": {"kind": "transformers"}, "output_dir": "o2"}
    assert config_differences([a, b]) == {"model.path": ["a", "b"]}


def _write_runs(tmp_path, runs):
    """(name, p) pairs -> evaluation run folders (scores.parquet + metrics.json), the first with seed 0."""
    for i, (name, p) in enumerate(runs):
        run_dir = tmp_path / name
        run_dir.mkdir()
        scored = _scored_run(p, 0 if i == 0 else 1)
        scored.to_parquet(run_dir / "scores.parquet")
        run = {"name": name, "model": name, "total": len(scored), "answered": len(scored), "truncated": 0,
               "config": {"model": {"path": name}}}
        (run_dir / "metrics.json").write_text(json.dumps({"run": run, "metrics": aggregate(scored, n_bootstrap=50)}))


def test_compare_runs_writes_tables_plots_and_json(tmp_path):
    _write_runs(tmp_path, (("weak", 0.2), ("strong", 0.9)))
    md, page = compare_runs([tmp_path / "weak", tmp_path / "strong"], tmp_path / "cmp", n_bootstrap=100)
    text = md.read_text()
    assert "strong − weak" in text and " * |" in text and "model.path" in text
    assert page.read_text().count("data:image/png;base64,") == 2
    data = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert data["differences"]["strong - weak"]["overall"]["decision"]["excludes_zero"] is True


def test_compare_runs_judges_targets_when_asked(tmp_path):
    _write_runs(tmp_path, (("untrained", 0.2), ("stage1", 0.9)))
    md, _ = compare_runs([tmp_path / "untrained", tmp_path / "stage1"], tmp_path / "cmp", n_bootstrap=100,
                         targets_for=["stage1"])
    text = md.read_text()
    assert "## Targets" in text and "decision F1 above the untrained model" in text
    data = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    gain = next(t for t in data["targets"] if t["target"].startswith("decision F1 above"))
    assert gain["met"] is True and data["verdicts"][-1].startswith(f"{sum(t['met'] is True for t in data['targets'])} of")
