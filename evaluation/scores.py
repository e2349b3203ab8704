"""Per-sample scores and per-task / per-family / overall metrics with bootstrap confidence intervals.

Per sample (pure functions of the completion, the same ones the RL rewards call):
- decision: set precision / recall / F1 of the items after ``</think>`` (``evaluation.metrics``) and the task's own
  metric (``score_prediction``: set F1 for em/recall, prefix accuracy for ``acc``, ROUGE-1 for ``rouge1``);
- risk: p(yes) (from the backend) and the label; accuracy of the forced answer;
- calc: MedCalc-Bench correctness (``evaluation.medcalc.grade_medcalc``).

Every sample also gets an ``outcome``: ``answered``, ``truncated`` (the decoding budget ran out before the model
finished; whatever items parse are still scored),
``no_answer`` (stopped without one) or ``refused`` (the backend could not run it: the row's ``error`` says why).
Truncated and unanswered decision samples score 0 (they are misses, and the report counts them apart); a refused
risk sample has no p(yes) and so no place in the AUROC, which the report says.

Aggregates: per task, the mean of the per-sample metrics, and for risk tasks AUROC / AUPRC (scikit-learn). A risk
task whose scored samples hold one class only has no AUROC: it is *not scoreable* and stays out of the headline.
A family and the whole run report the macro mean over the tasks that have the metric, and say how many tasks and
samples that is. Every figure carries a percentile **patient-level (cluster) bootstrap** interval: a replicate
draws patients with replacement and takes all their samples, in every task at once, because samples of one
patient are not independent (resampling samples would make the intervals too narrow on clustered data).
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
OUTCOMES = ("answered", "truncated", "no_answer", "refused")


def sample_outcome(row: dict) -> str:
    """What happened to one sample (see the module docstring)."""
    if row.get("status") == "skipped":
        return "refused"
    if row["kind"] == "risk":
        p_yes = row.get("p_yes")
        return "refused" if p_yes is None or p_yes != p_yes else "answered"
    if row.get("finish_reason") == "length":
        return "truncated"  # the budget ran out: whatever parses is an unfinished answer
    return "answered" if answer_text(row.get("completion") or "") is not None else "no_answer"


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
    if "patient" not in joined:
        joined["patient"] = joined["sample_id"]
    records = joined.to_dict("records")
    scores = pd.DataFrame([score_sample(r) for r in records], columns=SCORE_COLUMNS, index=joined.index)
    scores["outcome"] = [sample_outcome(r) for r in records]
    return pd.concat([joined.drop(columns=[c for c in [*SCORE_COLUMNS, "outcome"] if c in joined]), scores], axis=1)


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
    if not len(a["accuracy"]):
        return {"n": 0.0}
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
#: An interval wider than this cannot rank two models whose scores differ by a usual margin.
WIDE_INTERVAL = 0.2


def patient_codes(scored: pd.DataFrame) -> np.ndarray:
    """Integer cluster ids (0..P-1) of the samples' patients (each sample its own cluster without a patient)."""
    patients = scored["patient"] if "patient" in scored else scored["sample_id"]
    return pd.factorize(patients.astype(str))[0]


def cluster_replicates(codes: np.ndarray, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_bootstrap, P)`` draw counts: how often each patient is drawn in each replicate."""
    n_patients = int(codes.max()) + 1 if len(codes) else 0
    if not n_patients:
        return np.zeros((n_bootstrap, 0), dtype=int)
    draws = rng.integers(0, n_patients, (n_bootstrap, n_patients))
    return np.stack([np.bincount(d, minlength=n_patients) for d in draws]) if n_bootstrap else \
        np.zeros((0, n_patients), dtype=int)


def resample(index: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The rows of one replicate: every row of a drawn patient, once per draw."""
    return np.repeat(index, counts[codes[index]])


def interval(values, confidence: float) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    if not len(arr):
        return math.nan, math.nan
    alpha = (1 - confidence) / 2
    return float(np.quantile(arr, alpha)), float(np.quantile(arr, 1 - alpha))


def _outcomes(group: pd.DataFrame) -> dict[str, float]:
    counts = group["outcome"].value_counts() if "outcome" in group else pd.Series(dtype=int)
    out = {o: float(counts.get(o, 0)) for o in OUTCOMES}
    out["patients"] = float(group["patient"].nunique() if "patient" in group else len(group))
    return out


def aggregate(scored: pd.DataFrame, *, n_bootstrap: int = 1000, confidence: float = 0.95,
              seed: int = 0) -> dict:
    """``{"tasks": {task: {...}}, "families": {family: {...}}, "overall": {kind: {...}}}``; each metric ``m`` has
    ``m`` (point estimate), ``m_lo`` and ``m_hi`` (patient-level bootstrap interval). ``tasks`` / ``n`` of a
    family or kind count the tasks (and their samples) that its headline metric really averages; ``tasks_total``
    / ``n_total`` all of them; a task's ``scoreable`` says whether it has its headline metric."""
    rng = np.random.default_rng(seed)
    scored = scored.reset_index(drop=True)
    codes = patient_codes(scored)
    counts = cluster_replicates(codes, n_bootstrap, rng)
    groups = {t: g for t, g in scored.groupby("task", sort=True)}
    kinds = {t: g["kind"].iloc[0] for t, g in groups.items()}
    full = _arrays(scored)
    index = {t: g.index.to_numpy() for t, g in groups.items()}
    point = {t: task_metrics(kinds[t], {c: v[index[t]] for c, v in full.items()}) for t in groups}
    replicates: dict[str, list[dict[str, float]]] = {t: [] for t in groups}
    for b in range(n_bootstrap):
        for t, idx in index.items():
            rows = resample(idx, codes, counts[b])
            replicates[t].append(task_metrics(kinds[t], {c: v[rows] for c, v in full.items()}))

    def summarise(members: list[str]) -> dict[str, float]:
        kind = kinds[members[0]]
        headline = HEADLINE[kind]
        scoreable = [t for t in members if not math.isnan(point[t].get(headline, math.nan))]
        out: dict[str, float] = {"n": float(sum(point[t]["n"] for t in scoreable)), "tasks": float(len(scoreable)),
                                 "n_total": float(sum(point[t]["n"] for t in members)),
                                 "tasks_total": float(len(members))}
        if kind == "risk":
            out["positives"] = float(sum(point[t].get("positives", 0.0) for t in members))
        for m in METRICS:
            vals = [point[t][m] for t in members if m in point[t] and not math.isnan(point[t][m])]
            if not vals:
                continue
            out[m] = float(np.mean(vals))
            reps = [np.nanmean(row) if not np.all(np.isnan(row)) else math.nan
                    for row in ([replicates[t][b].get(m, math.nan) for t in members] for b in range(n_bootstrap))]
            out[f"{m}_lo"], out[f"{m}_hi"] = interval(reps, confidence)
        return out

    families = {t: g["family"].iloc[0] for t, g in groups.items()}
    benchmark = {t: g["benchmark"].iloc[0] for t, g in groups.items()}
    task_out = {}
    for t, g in groups.items():
        stats = {**summarise([t]), **_outcomes(g), "kind": kinds[t], "family": families[t],
                 "benchmark": benchmark[t]}
        stats["scoreable"] = bool(stats["tasks"])
        task_out[t] = stats
    family_out = {f: {**summarise([t for t in groups if families[t] == f]),
                      "kind": next(kinds[t] for t in groups if families[t] == f)}
                  for f in sorted(set(families.values()))}
    overall = {k: {**summarise([t for t in groups if kinds[t] == k]),
                   **_outcomes(scored[scored["kind"] == k])} for k in sorted(set(kinds.values()))}
    return {"tasks": task_out, "families": family_out, "overall": overall,
            "bootstrap": {"replicates": n_bootstrap, "confidence": confidence, "seed": seed, "unit": "patient",
                          "patients": int(codes.max()) + 1 if len(codes) else 0}}
