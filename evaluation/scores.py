"""Per-sample scores and per-task / per-family / overall metrics with bootstrap confidence intervals.

Per sample (pure functions of the completion, the same ones the RL rewards call):
- decision: set precision / recall / F1 of the items after ``</think>`` (``evaluation.metrics``) and the task's own
  metric (``score_prediction``: set F1 for em/recall, prefix accuracy for ``acc``, ROUGE-1 for ``rouge1``);
- risk: p(yes) (from the backend) and the label; accuracy of the forced answer;
- calc: MedCalc-Bench correctness (``evaluation.medcalc.grade_medcalc``).

Aggregates: per task, the mean of the per-sample metrics, and for risk tasks AUROC / AUPRC (scikit-learn). A
family and the whole run report the macro mean over their tasks. Every figure carries a percentile bootstrap
interval: each replicate resamples the samples *within* each task, so the family / overall intervals account for
every task's sampling noise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from evaluation.answers import answer_text, split_items
from evaluation.metrics import auprc, auroc, score_prediction, set_precision_recall_f1

SCORE_COLUMNS = ["precision", "recall", "f1", "task_metric", "accuracy", "p_yes", "label"]


def score_sample(row: dict) -> dict[str, float]:
    """The per-sample metrics of one joined (sample, prediction) row."""
    completion = row.get("completion") or ""
    nan = math.nan
    out = dict.fromkeys(SCORE_COLUMNS, nan)
    kind = row["kind"]
    if kind == "decision":
        answer = answer_text(completion)
        p, r, f = set_precision_recall_f1(split_items(answer) if answer is not None else [], list(row["target"]))
        out.update(precision=p, recall=r, f1=f, task_metric=score_prediction(row["metric"], completion,
                                                                              list(row["target"])))
        out["accuracy"] = float(f == 1.0)
    elif kind == "risk":
        p_yes = row.get("p_yes")
        out.update(p_yes=p_yes if p_yes is not None else nan, label=float(row["label"]))
        out["accuracy"] = score_prediction("aucroc", completion, "yes" if row["label"] == 1 else "no")
        out["task_metric"] = out["accuracy"]
    elif kind == "calc":
        from evaluation.medcalc import grade_medcalc

        grading = json.loads(row["grading"])
        out["accuracy"] = out["task_metric"] = grade_medcalc(completion, **grading)
    else:
        raise ValueError(f"sample {row.get('sample_id')}: unknown kind {kind!r}")
    return out


def score_frame(samples: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """Samples joined with their kept predictions (status ok / skipped) plus the per-sample metric columns."""
    kept = predictions[predictions["status"].isin(["ok", "skipped"])]
    joined = samples.merge(kept, on="sample_id", how="inner", validate="one_to_one")
    scores = pd.DataFrame([score_sample(r) for r in joined.to_dict("records")], columns=SCORE_COLUMNS,
                          index=joined.index)
    return pd.concat([joined.drop(columns=[c for c in SCORE_COLUMNS if c in joined]), scores], axis=1)


# -- aggregation ----------------------------------------------------------------------------------------------
def _safe(fn: Callable, *args) -> float:
    try:
        return fn(*args)
    except ValueError:  # one class only: AUROC / AUPRC undefined
        return math.nan


def _arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: frame[c].to_numpy(dtype=float) for c in SCORE_COLUMNS}


def task_metrics(kind: str, a: dict[str, np.ndarray]) -> dict[str, float]:
    """Point estimates for one task's scored samples (``a``: per-sample metric arrays)."""
    out: dict[str, float] = {"n": float(len(a["accuracy"])), "task_metric": float(np.mean(a["task_metric"])),
                             "accuracy": float(np.mean(a["accuracy"]))}
    if kind == "decision":
        out.update(precision=float(np.mean(a["precision"])), recall=float(np.mean(a["recall"])),
                   f1=float(np.mean(a["f1"])))
    elif kind == "risk":
        ok = ~np.isnan(a["p_yes"])
        scores, labels = a["p_yes"][ok].tolist(), a["label"][ok].astype(int).tolist()
        out.update(auroc=_safe(auroc, scores, labels), auprc=_safe(auprc, scores, labels),
                   positives=float(sum(labels)))
    return out


HEADLINE = {"decision": "f1", "risk": "auroc", "calc": "accuracy"}
METRICS = ("f1", "precision", "recall", "task_metric", "accuracy", "auroc", "auprc")


def aggregate(scored: pd.DataFrame, *, n_bootstrap: int = 1000, confidence: float = 0.95,
              seed: int = 0) -> dict:
    """``{"tasks": {task: {...}}, "families": {family: {...}}, "overall": {kind: {...}}}``; each metric ``m`` has
    ``m`` (point estimate), ``m_lo`` and ``m_hi`` (bootstrap interval)."""
    rng = np.random.default_rng(seed)
    tasks = {t: g.reset_index(drop=True) for t, g in scored.groupby("task", sort=True)}
    kinds = {t: g["kind"].iloc[0] for t, g in tasks.items()}
    arrays = {t: _arrays(g) for t, g in tasks.items()}
    point = {t: task_metrics(kinds[t], arrays[t]) for t in tasks}
    replicates: dict[str, list[dict[str, float]]] = {t: [] for t in tasks}
    for _ in range(n_bootstrap):
        for t, a in arrays.items():
            idx = rng.integers(0, len(a["accuracy"]), len(a["accuracy"]))
            replicates[t].append(task_metrics(kinds[t], {c: v[idx] for c, v in a.items()}))
    alpha = (1 - confidence) / 2

    def interval(values: list[float]) -> tuple[float, float]:
        arr = np.asarray(values, dtype=float)
        arr = arr[~np.isnan(arr)]
        if not len(arr):
            return math.nan, math.nan
        return float(np.quantile(arr, alpha)), float(np.quantile(arr, 1 - alpha))

    def summarise(members: list[str]) -> dict[str, float]:
        out: dict[str, float] = {"n": float(sum(point[t]["n"] for t in members)), "tasks": float(len(members))}
        if any("positives" in point[t] for t in members):
            out["positives"] = float(sum(point[t].get("positives", 0.0) for t in members))
        for m in METRICS:
            vals = [point[t][m] for t in members if m in point[t] and not math.isnan(point[t][m])]
            if not vals:
                continue
            out[m] = float(np.mean(vals))
            reps = [np.nanmean([replicates[t][b].get(m, math.nan) for t in members]) if any(
                not math.isnan(replicates[t][b].get(m, math.nan)) for t in members) else math.nan
                for b in range(n_bootstrap)]
            out[f"{m}_lo"], out[f"{m}_hi"] = interval(reps)
        return out

    families = {t: g["family"].iloc[0] for t, g in tasks.items()}
    benchmark = {t: g["benchmark"].iloc[0] for t, g in tasks.items()}
    task_out = {t: {**summarise([t]), "kind": kinds[t], "family": families[t], "benchmark": benchmark[t]}
                for t in tasks}
    family_out = {f: {**summarise([t for t in tasks if families[t] == f]),
                      "kind": next(kinds[t] for t in tasks if families[t] == f)}
                  for f in sorted(set(families.values()))}
    overall = {k: summarise([t for t in tasks if kinds[t] == k]) for k in sorted(set(kinds.values()))}
    return {"tasks": task_out, "families": family_out, "overall": overall,
            "bootstrap": {"replicates": n_bootstrap, "confidence": confidence, "seed": seed}}
