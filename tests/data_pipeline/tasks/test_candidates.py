"""Candidate lists for baseline prompting."""

from __future__ import annotations

import pytest

from data_pipeline.tasks import get_task
from data_pipeline.tasks.candidates import build_vocabulary, event_types, make_candidates


def test_vocabulary_frequency_order_and_cooccurrence_neighbours():
    vocab = build_vocabulary([["Na", "K", "Cl"], ["Na", "K"], ["Glucose"], ["Na", "Glucose"]])
    assert vocab.items == ["Na", "Glucose", "K", "Cl"]
    assert vocab.neighbours["K"] == ["Na", "Cl"]
    assert vocab.neighbours["Na"][0] == "K"


@pytest.mark.parametrize("task,expected", [("ED_Hospitalization", ["yes", "no"]), ("ICU_Stay_7day", ["yes", "no"]),
                                           ("discharge", [])])
def test_fixed_candidate_lists(task, expected):
    assert make_candidates(get_task(task), ["yes"], None, seed=1) == expected


def test_next_event_gets_event_types():
    cands = make_candidates(get_task("next_event"), ["labevents"], None, seed=3)
    assert sorted(cands) == event_types() and "patients" not in cands


def test_small_vocabulary_is_given_whole_plus_unseen_labels():
    vocab = build_vocabulary([["A", "B"], ["C"]])
    cands = make_candidates(get_task("labevents"), ["Z"], vocab, seed=0)
    assert sorted(cands) == ["A", "B", "C", "Z"]


def test_large_vocabulary_capped_with_labels_and_neighbours_first():
    lists = [[f"x{i}", f"x{i + 1}"] for i in range(0, 400, 2)] + [["L", "N1"], ["L", "N2"], ["L", "N1"]]
    vocab = build_vocabulary(lists)
    cands = make_candidates(get_task("labevents"), ["L"], vocab, seed=0, cap=100)
    assert len(cands) == 100 == len(set(cands))
    assert {"L", "N1", "N2"} <= set(cands)
    assert cands == make_candidates(get_task("labevents"), ["L"], vocab, seed=0, cap=100)  # deterministic
    assert cands != make_candidates(get_task("labevents"), ["L"], vocab, seed=1, cap=100)  # shuffled per sample
