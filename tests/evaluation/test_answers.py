from __future__ import annotations

import doctest

import pytest

from evaluation import answers, metrics
from evaluation.answers import answer_text, parse_yes_no, split_items


def test_doctests():
    assert doctest.testmod(answers).failed == 0


def test_metrics_reexports_the_shared_parser():
    assert metrics.answer_text is answer_text and metrics.split_items is split_items


@pytest.mark.parametrize("completion, expected", [
    ("plain answer", "plain answer"),
    ("<think>\nr\n</think>\n\nyes", "\n\nyes"),
    ("<think>a</think>b</think>c", "c"),
    ("<think>never closed", None),
    ("", ""),
])
def test_answer_text(completion, expected):
    assert answer_text(completion) == expected


@pytest.mark.parametrize("text, lowercase, expected", [
    ("A\nB\n", True, ["a", "b"]),
    ("A\\nB", True, ["a", "b"]),
    ("A\nx\\ny", True, ["a", "x", "y"]),
    (["X ", " x", "y"], True, ["x", "y"]),
    ("\n\n", True, []),
    ("Sepsis\nSEPSIS\nAKI", False, ["Sepsis", "AKI"]),
    ("  a \r\n b", False, ["a", "b"]),
])
def test_split_items(text, lowercase, expected):
    assert split_items(text, lowercase=lowercase) == expected


@pytest.mark.parametrize("text, expected", [
    ("yes", "yes"), ("no", "no"), ("Yes", "yes"), ("NO", "no"), (" yes\n", "yes"), ("yes.", "yes"),
    ("No!", "no"), ("**yes**", "yes"), ("'no'", "no"), ("<think>\n\n</think>\n\nyes", "yes"),
    ("<think>\nyes", None), ("yes, likely", None), ("maybe", None), ("", None), ("yesno", None), ("nope", None),
    ("yes\nno", None),
])
def test_parse_yes_no(text, expected):
    assert parse_yes_no(text) == expected
