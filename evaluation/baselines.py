"""Non-LLM baselines on the same samples and scorers as every model: a reader sees what the data alone gives.

Fitted on EHR-Ins (the training split), applied to the evaluation samples; they emit the same prediction rows
as the LLM backends (a completion with the items after an empty think block, p(yes) for risk tasks), so
``evaluation.scores`` scores them unchanged.

- ``prior``: risk tasks get the task's training prevalence as p(yes) (a constant: AUROC 0.5 by construction,
  the floor a model must clear); decision tasks get the items found in at least half of the task's training
  targets, or the single most frequent item (the frequency prior).
- ``count_lr`` / ``count_gbm``: counts of the codes and item names in the same history cut (a bag of the
  markdown's words, as EHRSHOT's count-based models and MEDS-Tab count codes) -> scikit-learn logistic
  regression / histogram gradient boosting, one classifier per risk task and one per frequent target item of a
  decision task (the predicted set: items with p >= 0.5, else the most likely one).

A baseline that reaches AUROC 0.95 on a task is a leakage suspect: the report flags it for review.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: A risk-task AUROC at or above this from a count baseline is flagged for a leakage review.
LEAKAGE_AUROC = 0.95
TOKEN_PATTERN = r"(?u)[A-Za-z][A-Za-z0-9_./%-]+"


@dataclass
class TaskModel:
    kind: str
    prior_items: list[str] = field(default_factory=list)
    prevalence: float = 0.5
    classifiers: dict[str, object] = field(default_factory=dict)  # item (or "yes") -> fitted classifier


def frequency_prior(targets: list[list[str]]) -> list[str]:
    """Items in at least half of the training targets, or the single most frequent item."""
    counts = Counter(item for t in targets for item in dict.fromkeys(t))
    if not counts:
        return []
    common = [item for item, n in counts.most_common() if n >= len(targets) / 2]
    return common or [counts.most_common(1)[0][0]]


def _classifier(method: str, seed: int):
    if method == "count_gbm":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=seed)
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000, C=1.0, class_weight="balanced")


class CountBaseline:
    def __init__(self, method: str, max_items_per_task: int = 30, seed: int = 0):
        self.method, self.max_items, self.seed = method, max_items_per_task, seed
        self.vectorizer = None
        self.tasks: dict[str, TaskModel] = {}

    def _features(self, texts):
        x = self.vectorizer.transform(texts)
        x.data = np.log1p(x.data)  # counts -> log counts: a long stay does not swamp the rest
        return x.toarray() if self.method == "count_gbm" else x

    def fit(self, train: pd.DataFrame) -> "CountBaseline":
        """``train``: sample rows (``evaluation.samples`` columns) of the training split."""
        if self.method != "prior":
            from sklearn.feature_extraction.text import CountVectorizer

            self.vectorizer = CountVectorizer(token_pattern=TOKEN_PATTERN, lowercase=True, min_df=2,
                                              max_features=4000 if self.method == "count_gbm" else 20000)
            self.vectorizer.fit(train["input"])
        for task, group in train.groupby("task", sort=True):
            kind = group["kind"].iloc[0]
            model = TaskModel(kind)
            if kind == "risk":
                model.prevalence = float(group["label"].mean())
            else:
                model.prior_items = frequency_prior([list(t) for t in group["target"]])
            if self.vectorizer is not None:
                x = self._features(group["input"])
                if kind == "risk":
                    y = group["label"].to_numpy()
                    if len(set(y)) == 2:
                        model.classifiers["yes"] = _classifier(self.method, self.seed).fit(x, y)
                else:
                    targets = [set(t) for t in group["target"]]
                    counts = Counter(item for t in targets for item in t)
                    for item, _ in counts.most_common(self.max_items):
                        y = np.array([int(item in t) for t in targets])
                        if 0 < y.sum() < len(y):
                            model.classifiers[item] = _classifier(self.method, self.seed).fit(x, y)
            self.tasks[task] = model
        return self

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Prediction rows (``evaluation.backends.PREDICTION_COLUMNS``) for sample rows."""
        from evaluation.backends import _frame, _result
        from serving.scoring import binary_answer
        from training.chat_format import format_assistant

        results: dict[str, dict] = {}
        for task, group in frame.groupby("task", sort=False):
            model = self.tasks.get(task)
            if model is None:
                for sid in group["sample_id"]:
                    results[sid] = _result(sid, status="skipped", error=f"no training samples of task {task}")
                continue
            x = self._features(group["input"]) if model.classifiers else None
            probs = {item: clf.predict_proba(x)[:, 1] for item, clf in model.classifiers.items()}
            for i, sid in enumerate(group["sample_id"]):
                if model.kind == "risk":
                    p = float(probs["yes"][i]) if "yes" in probs else model.prevalence
                    results[sid] = _result(sid, format_assistant(binary_answer(p)), p, finish_reason="stop")
                    continue
                items = model.prior_items
                if probs:
                    scored = {item: float(p[i]) for item, p in probs.items()}
                    items = [item for item, p in scored.items() if p >= 0.5] or [max(scored, key=scored.get)]
                results[sid] = _result(sid, format_assistant("\n".join(items)), finish_reason="stop")
        return _frame([results[s] for s in frame["sample_id"]])


def load_training_samples(paths: list[str], max_per_task: int, seed: int) -> pd.DataFrame:
    """EHR-Ins records as sample rows, a seeded sample of at most ``max_per_task`` per task."""
    from evaluation.samples import load_ehr_bench, select_samples

    frame = load_ehr_bench(paths)
    return select_samples(frame, max_per_task, seed=seed, balance_risk=False)


class BaselineBackend:
    """The ``backend.kind: baseline`` runner: fit on the driver, predict in a Ray Data map."""

    def __init__(self, method: str, training_data: list[str], max_train_per_task: int, max_items_per_task: int,
                 seed: int, batch_size: int):
        self.method, self.training_data = method, list(training_data)
        self.max_train, self.max_items, self.seed, self.batch_size = (max_train_per_task, max_items_per_task,
                                                                      seed, batch_size)

    def fit(self) -> CountBaseline:
        train = load_training_samples(self.training_data, self.max_train, self.seed)
        log.info("fitting the %s baseline on %d EHR-Ins samples (%d tasks)", self.method, len(train),
                 train["task"].nunique())
        return CountBaseline(self.method, self.max_items, self.seed).fit(train)

    def apply(self, ds):
        import ray

        model_ref = ray.put(self.fit())

        def predict(batch: pd.DataFrame) -> pd.DataFrame:
            return ray.get(model_ref).predict(batch)

        return ds.map_batches(predict, batch_format="pandas", batch_size=self.batch_size, num_cpus=0.5)


def leakage_suspects(metrics: dict) -> list[str]:
    """Tasks where a baseline's AUROC reaches :data:`LEAKAGE_AUROC` (review them for label leakage)."""
    return sorted(t for t, s in metrics["tasks"].items()
                  if s.get("kind") == "risk" and s.get("auroc", 0.0) == s.get("auroc") and
                  s.get("auroc", 0.0) >= LEAKAGE_AUROC)
