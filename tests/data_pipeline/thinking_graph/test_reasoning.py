"""The reference's filter rules, the prompt sections and the LLM-free (template) chain."""

from __future__ import annotations

import pytest

from data_pipeline.thinking_graph.reasoning import (build_prompt, path_text, rejection_reason, split_events,
                                                    template_reasoning)

LABELS = ["Glucose", "Potassium", "Sodium"]
GOOD = "## Extraction\n**Labs [2150-01-01 08:00:00]**: high glucose\n## Reasoning\nDKA.\n## Final Results\n" \
       "Glucose\nPotassium\nSodium"


@pytest.mark.parametrize("text, reason", [
    (GOOD, None),
    (GOOD.replace("\nSodium", ""), "final results name 2/3 labels"),       # 66.7% < 70%: rejected
    (GOOD.replace("\nPotassium\nSodium", ""), "final results name 1/3 labels"),
    (GOOD.replace("## Reasoning", "Reasoning"), "missing section '## Reasoning'"),
    (GOOD.replace("## Extraction", "## Extraction and Analysis"), "heading 'Extraction and Analysis'"),
    (GOOD.replace("DKA.", "Per the Ground Truth, DKA."), "mentions the ground truth"),
    # labels named before "Final Results" do not count
    ("## Extraction\nGlucose Potassium Sodium\n## Reasoning\nx\n## Final Results\nnone",
     "final results name 0/3 labels"),
    ("", "empty"),
])
def test_filter_rules(text, reason):
    assert rejection_reason(text, LABELS) == reason


def test_filter_threshold_is_configurable():
    assert rejection_reason(GOOD.replace("\nSodium", ""), LABELS, min_recall=0.6) is None


def test_prompt_has_the_reference_sections():
    ev = [{"path": ["Insulin", "may treat", "DKA"]}, {"path": None}]
    prompt = build_prompt("## Labs [t]\n- x", "Give the next lab.", ["Glucose"], ev)
    for section in ("# Patient EHR Context #", "# Retrieved Medical Knowledge #", "# Ground Truth #", "# Task #"):
        assert section in prompt
    assert "Insulin --may treat--> DKA" in prompt
    assert "# Retrieved Medical Knowledge #" not in build_prompt("e", "i", ["g"], ev, with_knowledge=False)


def test_template_chain_passes_the_filter_and_cites_events():
    ehr = ("## Patient Demographics [None]\n- Gender: F\n\n## Prescriptions [2150-01-01 08:00:00]\n- Drug: Insulin\n\n"
           "## Labevents [2150-01-01 09:00:00]\n| Item | Value |\n| Anion Gap | 25 |")
    ev = [{"target": "Glucose", "history_name": "Insulin", "lift": 7.5, "count": 12,
           "path": ["Insulin", "may treat", "DKA", "has associated finding", "Glucose"]},
          {"target": "Potassium", "history_name": "Anion Gap", "lift": 6.0, "count": 9, "path": None}]
    text = template_reasoning(ehr, "Given ..., please give the next lab suggestion.", LABELS, ev)
    assert rejection_reason(text, LABELS) is None
    assert "**Prescriptions [2150-01-01 08:00:00]**" in text and "Insulin --may treat--> DKA" in text
    assert "lift 6.0 over 9 similar cases" in text and text.endswith("Glucose\nPotassium\nSodium")
    assert [e[0] for e in split_events(ehr)] == ["Patient Demographics", "Prescriptions", "Labevents"]
    assert path_text(["A"]) == "A"


@pytest.mark.parametrize("body, needle, expected", [
    ("Metformin 500 mg daily", None, "Metformin 500 mg daily"),
    ("word " * 40, None, ("word " * 24).strip() + "..."),                  # cut at a space, never mid-word
    ("a " * 60 + "Metformin 500 mg", "metformin", None),                   # starts at a word, not "...tformin"
])
def test_snippets_cut_at_word_boundaries(body, needle, expected):
    from data_pipeline.thinking_graph.reasoning import SNIPPET, _snippet

    got = _snippet(body, needle)
    if expected is not None:
        assert got == expected
    words = set(body.split())
    assert all(w.strip(".") in words for w in got.replace("...", " ").split()), got
    assert len(got) <= SNIPPET + 6
    if needle:
        assert got.startswith("...") and "Metformin" in got


def test_the_finding_that_explains_a_label_beats_a_higher_lift_home_drug():
    ehr = ("## Medications [2150-01-01 00:00:00]\n- Drug: Lisinopril\n\n"
           "## Labevents [2150-01-02 09:00:00]\n| Item | Value |\n| Creatinine | 3.1 |")
    ev = [{"target": "Dialysis", "history_name": "ACE inhibitors", "lift": 40.0, "count": 5,    # not in the record
           "path": ["ACE inhibitors", "isa", "X", "isa", "Y", "isa", "Z", "isa", "Dialysis"]},  # 4 hops
          {"target": "Dialysis", "history_name": "Creatinine", "lift": 3.0, "count": 30,
           "path": ["Creatinine", "measures", "Acute kidney injury", "may be treated by", "Dialysis"]},
          {"target": "Ultrasound", "history_name": "Lisinopril", "lift": 9.0, "count": 7,
           "path": ["Lisinopril", "has relationship", "Ultrasound"]}]                              # vague relation
    text = template_reasoning(ehr, "please give the next procedures.", ["Dialysis", "Ultrasound", "Biopsy"], ev)
    assert "Creatinine (Labevents, 2150-01-02 09:00:00) connects to Dialysis: Creatinine --measures--> " \
           "Acute kidney injury --may be treated by--> Dialysis." in text
    assert "ACE inhibitors" not in text and "has relationship" not in text
    assert "Lisinopril (Medications, 2150-01-01 00:00:00) is strongly associated with Ultrasound (lift 9.0" in text
    assert "No finding in this record links to Biopsy; it follows from the usual course" in text
    assert "**Labevents [2150-01-02 09:00:00]**" in text and rejection_reason(text, ["Dialysis", "Ultrasound",
                                                                                    "Biopsy"]) is None


def test_label_coverage_counts_evidence_paths_and_readable_paths():
    from data_pipeline.thinking_graph.records import _count_coverage

    coverage = {"labels": 0, "with_evidence": 0, "with_path": 0, "with_readable_path": 0}
    evidence = [{"target": "A", "path": ["x", "may treat", "A"]},
                {"target": "B", "path": ["x", "has relationship", "B"]},   # a path, but a vague one
                {"target": "C", "path": None}]
    _count_coverage(coverage, ["A", "B", "C", "D"], evidence)
    assert coverage == {"labels": 4, "with_evidence": 3, "with_path": 2, "with_readable_path": 1}
