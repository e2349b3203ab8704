"""Co-occurrence counts, lift, support, threshold and top-k on hand-made samples (numbers worked out by hand)."""

from __future__ import annotations

import pandas as pd
import pytest

from data_pipeline.thinking_graph.cooccurrence import (counts_to_tables, history_event_ids, lift_pairs,
                                                       partial_counts, sample_concepts, sample_evidence, top_k)

# task "lab": 4 samples. target T1 in samples 0,1,2; history H1 in 0,1 ; H2 in 0..3 ; T1 itself in 3's history
SAMPLES = pd.DataFrame({
    "task": ["lab"] * 4 + ["rx"],
    "targets": [["T1"], ["T1"], ["T1", "T2"], ["T2"], ["T1"]],
    "history": [["H1", "H2"], ["H1", "H2"], ["H2"], ["H2", "T1"], ["H1"]],
})


def merged(blocks):
    counts = pd.concat([partial_counts(b) for b in blocks]).groupby(["task", "kind", "a", "b"], as_index=False)["n"].sum()
    return counts_to_tables(counts)


def test_counts_are_the_same_whatever_the_blocks():
    whole = merged([SAMPLES])
    split = merged([SAMPLES.iloc[:2], SAMPLES.iloc[2:3], SAMPLES.iloc[3:]])
    assert whole[0] == split[0] == {"lab": 4, "rx": 1}
    assert whole[1] == split[1]
    assert whole[1][("lab", "T1")] == 4 and whole[1][("lab", "H1")] == 2 and whole[1][("lab", "H2")] == 4
    pairs = whole[2].set_index(["task", "a", "b"])["n"].to_dict()
    assert pairs == {("lab", "T1", "H1"): 2, ("lab", "T1", "H2"): 3, ("lab", "T2", "H2"): 2,
                     ("lab", "T2", "T1"): 1, ("rx", "T1", "H1"): 1}
    assert pairs.keys() == split[2].set_index(["task", "a", "b"])["n"].to_dict().keys()


def test_lift_support_threshold_topk():
    task_num, concept_num, pairs = merged([SAMPLES])
    all_pairs = lift_pairs(pairs, concept_num, task_num, min_support=1, threshold=0.0)
    lift = {(r.task, r.a, r.b): r.lift for r in all_pairs.itertuples()}
    # lift = coexist * task_num / (n_h * n_t)
    assert lift[("lab", "T1", "H1")] == pytest.approx(2 * 4 / (2 * 4))
    assert lift[("lab", "T2", "H2")] == pytest.approx(2 * 4 / (4 * 2))
    assert lift[("lab", "T2", "T1")] == pytest.approx(1 * 4 / (4 * 2))
    assert lift[("rx", "T1", "H1")] == pytest.approx(1.0)
    # support is on the history concept: H1 appears in 2 "lab" samples
    assert set(lift_pairs(pairs, concept_num, task_num, 3, 0.0)["b"]) == {"H2", "T1"}
    # threshold is strict (reference: lift > threshold)
    assert lift_pairs(pairs, concept_num, task_num, 1, 1.0).empty
    ranked = top_k(all_pairs, 1)
    assert len(ranked[(ranked.task == "lab") & (ranked.a == "T2")]) == 1


def test_top_k_orders_by_lift_then_count_then_key():
    kept = pd.DataFrame({"task": ["t"] * 4, "a": ["x"] * 4, "b": ["h3", "h1", "h2", "h0"], "n": [5, 5, 9, 5],
                         "lift": [2.0, 2.0, 2.0, 7.0]})
    assert top_k(kept, 3)["b"].tolist() == ["h0", "h2", "h1"]


@pytest.mark.parametrize("args, expected", [
    (([5, 6], 2, 1, False, True), [1, 2, 5, 6]),
    (([5, 6], 2, 1, True, True), [2, 5, 6]),     # previous discharge cut by truncation: not shown, not history
    (([5], 2, -1, False, False), [5]),           # admissions task: the header is the label, never history
    (([], -1, -1, False, True), []),
])
def test_history_is_what_the_prompt_shows(args, expected):
    assert history_event_ids(*args) == expected


def test_sample_concepts_and_evidence():
    row = {"idx": 7, "task": "lab", "subject_id": 1, "context_ids": [2, 3], "admissions_id": 0,
           "last_discharge_id": -1, "dropped_previous_discharge": False, "target": ["Glucose", "Unknown Item"],
           "concepts": [["ADM"], ["NOTSHOWN"], ["H1", "C1"], ["H2", "H1"]],
           "names": [{"name": "Glucose", "key": "C1"}]}
    out = sample_concepts(row, show_admission=True)
    assert out["targets"] == ["C1", "~unknown item"] and out["history"] == ["ADM", "H1", "C1", "H2"]
    kept = {("lab", "C1"): [("H2", 9.0, 4), ("ZZ", 8.0, 3), ("H1", 6.0, 5)]}
    ev = sample_evidence("lab", out["targets"], out["target_labels"], out["history"], kept)
    assert [(e["target"], e["history_key"], e["lift"]) for e in ev] == [("Glucose", "H2", 9.0), ("Glucose", "H1", 6.0)]
