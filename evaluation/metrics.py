"""Scoring for EHR-R1 tasks: set F1 for decision making, AUROC / AUPRC of p(yes) for risk prediction.

The same per-sample scorer (`score_prediction`) is the evaluation metric and the RL reward, so a policy is
optimised for exactly what it is judged on. Answers are parsed by `evaluation.answers` (shared with serving);
AUROC / AUPRC come from scikit-learn and ROUGE from Google's `rouge-score` package (imported lazily, so the
reward path stays light).

Differences from the reference's `get_score` / `mimiciv_verify_reward`, on purpose:
- prefix accuracy strips the prediction first (the reference compared ``"\\n\\nyes"`` against ``"yes"`` and
  scored every risk sample 0) and compares case-insensitively;
- the answer is the text after the *last* ``</think>``; a completion with an opening ``<think>`` but no closing
  tag has no answer (the model never finished thinking).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

from evaluation.answers import answer_text, parse_yes_no, split_items

__all__ = ["SET_METRICS", "PREFIX_METRICS", "PROBABILITY_METRICS", "TEXT_METRICS", "ALL_METRICS", "answer_text",
           "split_items", "parse_yes_no", "set_precision_recall_f1", "prefix_accuracy", "rouge1_f",
           "score_prediction", "auroc", "auprc"]

#: Metric names used in task specs. `em` and `recall` both mean set F1 in the reference (`calculate_em`).
SET_METRICS = frozenset({"em", "recall", "f1"})
PREFIX_METRICS = frozenset({"acc"})
PROBABILITY_METRICS = frozenset({"aucroc"})
TEXT_METRICS = frozenset({"rouge", "rouge1"})
ALL_METRICS = SET_METRICS | PREFIX_METRICS | PROBABILITY_METRICS | TEXT_METRICS


def set_precision_recall_f1(predicted: Iterable[str], gold: Iterable[str]) -> tuple[float, float, float]:
    """Exact-match set precision, recall and F1 over normalised items. Two empty sets score 1.0."""
    pred, ref = set(split_items(list(predicted))), set(split_items(list(gold)))
    if not pred and not ref:
        return 1.0, 1.0, 1.0
    hits = len(pred & ref)
    precision = hits / len(pred) if pred else 0.0
    recall = hits / len(ref) if ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return precision, recall, f1


def prefix_accuracy(prediction: str, label: str) -> float:
    """1.0 if the stripped prediction starts with the label (case-insensitive), else 0.0."""
    return float(bool(label.strip()) and prediction.strip().lower().startswith(label.strip().lower()))


@lru_cache(maxsize=1)
def _rouge1_scorer():
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(["rouge1"], use_stemmer=True)  # the reference: rouge1 with the Porter stemmer


def rouge1_f(prediction: str, reference: str) -> float:
    """ROUGE-1 F1 (rouge-score, Porter stemmer; used for discharge-summary generation)."""
    return float(_rouge1_scorer().score(reference, prediction)["rouge1"].fmeasure)


def score_prediction(metric: str, completion: str, target: str | Sequence[str]) -> float:
    """Per-sample score in [0, 1] of a model completion against the task target.

    For `aucroc` tasks a single sample has no AUROC; it is scored by whether the parsed yes/no answer equals
    the label (`evaluation.answers.parse_yes_no`), which is what the RL reward uses. Corpus-level AUROC comes
    from `auroc` over p(yes).
    """
    if metric not in ALL_METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(ALL_METRICS)}")
    answer = answer_text(completion)
    if answer is None:
        return 0.0
    gold = target if isinstance(target, str) else "\n".join(target)
    if metric in SET_METRICS:
        return set_precision_recall_f1(split_items(answer), split_items(gold))[2]
    if metric in PROBABILITY_METRICS:
        parsed = parse_yes_no(answer)
        return float(parsed is not None and parsed == gold.strip().lower())
    if metric in PREFIX_METRICS:
        return prefix_accuracy(answer, gold)
    return rouge1_f(answer, gold)


def _check_binary(scores: Sequence[float], labels: Sequence[int | bool], name: str) -> list[int]:
    if len(scores) != len(labels):
        raise ValueError(f"{name}: {len(scores)} scores but {len(labels)} labels")
    y = [int(bool(v)) for v in labels]
    if not 0 < sum(y) < len(y):
        raise ValueError(f"{name} needs at least one positive and one negative label")
    return y


def auroc(scores: Sequence[float], labels: Sequence[int | bool]) -> float:
    """Area under the ROC curve (scikit-learn). Needs both classes.

    >>> auroc([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    1.0
    """
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(_check_binary(scores, labels, "auroc"), list(scores)))


def auprc(scores: Sequence[float], labels: Sequence[int | bool]) -> float:
    """Area under the precision-recall curve as average precision (scikit-learn). Needs both classes.

    >>> auprc([0.9, 0.8, 0.2, 0.1], [1, 0, 1, 0])
    0.8333333333333333
    """
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(_check_binary(scores, labels, "auprc"), list(scores)))
