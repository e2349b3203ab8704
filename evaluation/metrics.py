"""Scoring for EHR-R1 tasks: set F1 for decision making, AUROC of p(yes) for risk prediction.

Pure functions, no heavy imports. The same per-sample scorer (`score_prediction`) is the evaluation metric and
the RL reward, so a policy is optimised for exactly what it is judged on.

Differences from the reference's `get_score` / `mimiciv_verify_reward`, on purpose:
- prefix accuracy strips the prediction first (the reference compared ``"\\n\\nyes"`` against ``"yes"`` and
  scored every risk sample 0) and compares case-insensitively;
- the answer is the text after the *last* ``</think>``; a completion with an opening ``<think>`` but no closing
  tag has no answer (the model never finished thinking).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

#: Metric names used in task specs. `em` and `recall` both mean set F1 in the reference (`calculate_em`).
SET_METRICS = frozenset({"em", "recall", "f1"})
PREFIX_METRICS = frozenset({"acc"})
PROBABILITY_METRICS = frozenset({"aucroc"})
TEXT_METRICS = frozenset({"rouge", "rouge1"})
ALL_METRICS = SET_METRICS | PREFIX_METRICS | PROBABILITY_METRICS | TEXT_METRICS


def answer_text(completion: str) -> str | None:
    """The answer part of a completion: text after the last ``</think>``; the whole text if no think block.

    >>> answer_text("<think>\\nlabs\\n</think>\\n\\nSepsis")
    '\\n\\nSepsis'
    >>> answer_text("<think>unfinished") is None
    True
    """
    if "</think>" in completion:
        return completion.rsplit("</think>", 1)[1]
    if "<think>" in completion:
        return None
    return completion


def split_items(text: str | Sequence[str]) -> list[str]:
    """Items of an answer: one per line (a literal ``\\n`` also separates), stripped, lower-cased, de-duplicated.

    >>> split_items("Sepsis\\n  pneumonia \\nSEPSIS\\n")
    ['sepsis', 'pneumonia']
    """
    if isinstance(text, str):
        parts = text.split("\\n") if "\\n" in text else text.splitlines()
    else:
        parts = list(text)
    seen: dict[str, None] = {}
    for part in parts:
        item = part.strip().lower()
        if item:
            seen.setdefault(item, None)
    return list(seen)


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


def rouge1_f(prediction: str, reference: str) -> float:
    """ROUGE-1 F1 over lower-cased whitespace tokens (no stemming; used for discharge-summary generation)."""
    from collections import Counter

    pred, ref = Counter(prediction.lower().split()), Counter(reference.lower().split())
    overlap = sum((pred & ref).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(pred.values()), overlap / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def score_prediction(metric: str, completion: str, target: str | Sequence[str]) -> float:
    """Per-sample score in [0, 1] of a model completion against the task target.

    For `aucroc` tasks a single sample has no AUROC; it is scored by accuracy of the yes/no answer, which is what
    the RL reward uses. Corpus-level AUROC comes from `auroc` over p(yes).
    """
    if metric not in ALL_METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(ALL_METRICS)}")
    answer = answer_text(completion)
    if answer is None:
        return 0.0
    gold = target if isinstance(target, str) else "\n".join(target)
    if metric in SET_METRICS:
        return set_precision_recall_f1(split_items(answer), split_items(gold))[2]
    if metric in PREFIX_METRICS | PROBABILITY_METRICS:
        return prefix_accuracy(answer, gold)
    return rouge1_f(answer, gold)


def auroc(scores: Sequence[float], labels: Sequence[int | bool]) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied scores counted half). Needs both classes.

    >>> auroc([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    1.0
    """
    if len(scores) != len(labels):
        raise ValueError(f"auroc: {len(scores)} scores but {len(labels)} labels")
    pairs = sorted(zip(scores, (bool(y) for y in labels)), key=lambda p: p[0])
    n_pos = sum(1 for _, y in pairs if y)
    n_neg = len(pairs) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("auroc needs at least one positive and one negative label")
    rank_sum, i = 0.0, 0
    while i < len(pairs):  # average ranks over runs of tied scores
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        avg_rank = (i + 1 + j) / 2
        rank_sum += avg_rank * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
