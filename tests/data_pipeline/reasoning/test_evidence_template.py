from __future__ import annotations

import json

import pytest

from data_pipeline.reasoning.evidence_template import (reasoning_records, split_events, template_reasoning,
                                                       write_reasoning_dataset)

EHR = (
    "## Patient Demographics [None]\n- Anchor_Age: 71\n- Gender: F\n\n"
    "## Labotary Test Events [2150-01-01 08:00:00]\n| Item_Name | Valuenum |\n| ------ | ------ |\n"
    "| Lactate | 4.1 |\n| Creatinine | 2.3 |\n\n"
    "## Prescriptions [2150-01-01 09:00:00]\n- Drug: Vancomycin\n- Atc Type: None\n\n"
    "## Transfers [2150-01-01 10:00:00]\n- Eventtype: transfer\n- Careunit: Medicine"
)
INSTRUCTION = ("Given the sequence of events that have occurred in a hospital, please give the next "
               "prescriptions suggestion for the patients.")


def test_split_events():
    events = split_events(EHR)
    assert [(n, t) for n, t, _ in events] == [
        ("Patient Demographics", "None"), ("Labotary Test Events", "2150-01-01 08:00:00"),
        ("Prescriptions", "2150-01-01 09:00:00"), ("Transfers", "2150-01-01 10:00:00")]
    assert events[2][2] == "- Drug: Vancomycin\n- Atc Type: None"


@pytest.mark.parametrize("labels, cited_heading, absent", [
    (["Vancomycin"], "**Prescriptions [2150-01-01 09:00:00]**", "also include"),
    (["Lactate", "Piperacillin"], "**Labotary Test Events [2150-01-01 08:00:00]**", None),
    (["Cefepime"], "**Transfers [2150-01-01 10:00:00]**", "already points"),
])
def test_template_reasoning_cites_evidence_and_ends_with_labels(labels, cited_heading, absent):
    text = template_reasoning(EHR, INSTRUCTION, labels)
    assert text.startswith("## Extraction\n") and "\n## Reasoning\n" in text
    assert text.endswith("## Final Results\n" + "\n".join(labels))
    assert cited_heading in text
    assert "ground truth" not in text.lower()
    if absent:
        assert absent not in text


def test_reasoning_records_skip_risk_and_keep_fields():
    recs = [
        {"instruction": INSTRUCTION, "input": EHR, "output": "Vancomycin",
         "task_info": {"metric": "recall", "target": ["Vancomycin"]}},
        {"instruction": "predict", "input": EHR, "output": "yes", "task_info": {"metric": "aucroc", "target": ["yes"]}},
    ]
    out = list(reasoning_records(recs))
    assert len(out) == 1 and out[0]["output"] == "Vancomycin" and out[0]["reasoning"].endswith("Vancomycin")


def test_write_reasoning_dataset(tmp_path):
    src = tmp_path / "ehr_ins.jsonl"
    rec = {"instruction": INSTRUCTION, "input": EHR, "output": "Vancomycin",
           "task_info": {"metric": "recall", "target": ["Vancomycin"]}}
    src.write_text("\n".join(json.dumps(rec) for _ in range(5)) + "\n")
    out = write_reasoning_dataset(src, tmp_path / "r" / "reasoning.jsonl", max_samples=3)
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and "reasoning" in json.loads(lines[0])
    with pytest.raises(FileNotFoundError, match="build EHR-Ins first"):
        write_reasoning_dataset(tmp_path / "missing.jsonl", tmp_path / "x.jsonl")
