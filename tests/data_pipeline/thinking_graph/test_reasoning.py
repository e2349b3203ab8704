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
