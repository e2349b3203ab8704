from __future__ import annotations

import doctest

import pytest

from evaluation import metrics
from evaluation.metrics import auroc, prefix_accuracy, rouge1_f, score_prediction, set_precision_recall_f1


def test_doctests():
    result = doctest.testmod(metrics)
    assert result.attempted > 0, "no docstring example of evaluation.metrics was found: nothing was tested"
    assert result.failed == 0


# answer_text / split_items are the shared parser's (evaluation.answers): tested in test_answers.py


@pytest.mark.parametrize("pred, gold, prf", [
    (["a", "b"], ["a", "b"], (1.0, 1.0, 1.0)),
    (["a"], ["a", "b"], (1.0, 0.5, 2 / 3)),
    (["a", "c"], ["a", "b"], (0.5, 0.5, 0.5)),
    (["c"], ["a"], (0.0, 0.0, 0.0)),
    ([], ["a"], (0.0, 0.0, 0.0)),
    ([], [], (1.0, 1.0, 1.0)),
    (["A ", "a"], ["a"], (1.0, 1.0, 1.0)),
])
def test_set_prf(pred, gold, prf):
    assert set_precision_recall_f1(pred, gold) == pytest.approx(prf)


@pytest.mark.parametrize("pred, label, expected", [
    ("\n\nyes", "yes", 1.0), ("Yes, likely", "yes", 1.0), ("no", "yes", 0.0), ("labevents", "labevents", 1.0),
    ("", "yes", 0.0), ("yes", "", 0.0),
])
def test_prefix_accuracy(pred, label, expected):
    assert prefix_accuracy(pred, label) == expected


@pytest.mark.parametrize("metric, completion, target, expected", [
    ("recall", "<think>\nx\n</think>\n\nSepsis\nPneumonia", "sepsis\npneumonia", 1.0),
    ("em", "Sepsis", ["Sepsis", "AKI"], 2 / 3),
    ("aucroc", "<think>\n\n</think>\n\nyes", "yes", 1.0),
    ("aucroc", "<think>\n\n</think>\n\nno", "yes", 0.0),
    ("acc", "<think>unclosed labevents", "labevents", 0.0),
    ("rouge1", "the patient is stable", "patient is stable", pytest.approx(2 * 0.75 / 1.75)),
])
def test_score_prediction(metric, completion, target, expected):
    assert score_prediction(metric, completion, target) == expected


def test_score_prediction_unknown_metric():
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        score_prediction("bleu", "x", "y")


@pytest.mark.parametrize("scores, labels, expected", [
    ([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0], 1.0),
    ([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0], 0.0),
    ([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0], 0.5),
    ([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0], 0.75),
])
def test_auroc(scores, labels, expected):
    assert auroc(scores, labels) == pytest.approx(expected)


def test_rouge_empty():
    assert rouge1_f("", "abc") == 0.0


@pytest.mark.parametrize("scores, labels", [([0.1, 0.2], [1, 1]), ([0.1], [1, 0])])
def test_auroc_rejects(scores, labels):
    with pytest.raises(ValueError):
        auroc(scores, labels)
