"""Display-field joins, the chief-complaint rule and the vectorised JSON encoding of timelines."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from data_pipeline.events import PatientTimeline
from data_pipeline.timeline.build import build_bucket
from data_pipeline.timeline.assemble import TextBuilder
from data_pipeline.timeline.encode import item_templates, json_escape
from tests.data_pipeline.tiny_mimic import P1, P2, build_local, staged, write_tiny_root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("tiny")
    return {sid: json.loads(ev) for sid, ev in build_local(write_tiny_root(base / "src"), base / "work").items()}


def items(events, file_name):
    return [it for e in events if e["file_name"] == file_name for it in e["items"]]


@pytest.mark.parametrize("sid,file_name,field,expected", [
    (P1, "labevents", "item_name", ["INR(PT)", "Creatinine", "None"]),
    (P2, "labevents", "item_name", ["Creatinine"]),
    (P1, "chartevents", "item_name", ["Heart Rate", "Heart Rate"]),
    (P1, "procedures_icd", "procedures", ["Reposition left femur"]),
    (P1, "procedures_icd", "CCS Type", ["Treatment of fracture"]),
    (P1, "diagnoses_icd", "diagnoses", ["Essential (primary) hypertension"]),
    (P1, "diagnoses_icd", "CCS Type", ["Essential hypertension"]),
    (P2, "diagnoses_icd", "diagnoses", ["Unspecified essential hypertension", "None"]),
    (P2, "diagnoses_icd", "CCS Type", ["None", "None"]),
    (P1, "diagnosis", "CCS Type", ["Essential hypertension"]),
    (P1, "prescriptions", "ATC Type", ["None", "heparin"]),  # NDC 409672704 is zero-padded to 00409672704
    (P1, "radiology", "exam_name", ["['CHEST (PA & LAT)']"]),
    # never from the admission's own discharge note (it states the outcome): "None" as in the published prompts
    (P1, "admissions", "admission_info", ["None"]),
    (P2, "admissions", "admission_info", ["None"]),
])
def test_display_fields(tiny, sid, file_name, field, expected):
    assert [it[field] for it in items(tiny[sid], file_name)] == expected


@pytest.mark.parametrize("sid,file_name,field,expected", [
    (P1, "labevents", "valuenum", ["1.5", "143.0", "nan"]),
    (P1, "labevents", "storetime", ["2180-06-27 06:00:00", "nan", "nan"]),
    (P1, "labevents", "hadm_id", ["20000001"] * 3),
    (P1, "patients", "anchor_age", ["52"]),
    (P1, "patients", "dod", ["nan"]),
    (P2, "patients", "dod", ["2151-03-04"]),
    (P1, "triage", "heartrate", ["92.0"]),
    (P1, "triage", "pain", ["5"]),
    (P1, "icustays", "los", ["1.0"]),
])
def test_source_values_follow_the_string_conventions(tiny, sid, file_name, field, expected):
    assert [it[field] for it in items(tiny[sid], file_name)] == expected


def test_event_json_is_byte_identical_to_patient_timeline_to_row(tmp_path):
    raw = build_local(write_tiny_root(tmp_path / "src"), tmp_path / "work")
    for sid, events in raw.items():
        assert PatientTimeline.from_row({"subject_id": sid, "events": events}).to_row()["events"] == events


@pytest.mark.parametrize("text", ['say "hi"', "back\\slash", "two\nlines\r\n", "tab\there", "bell\x07 and \x1f",
                                  "unicode é ✓ \u2028", "\x08\x0c", "plain"])
def test_json_escape_matches_json_dumps(text):
    assert json_escape(pa.array([text, "ok"])).to_pylist()[0] == json.dumps(text, ensure_ascii=False)[1:-1]


def test_item_templates_match_json_dumps_with_nan_for_missing():
    cols = {"a": pa.array(["1", None]), "CCS Type": pa.array(['x"y', "z"])}
    tb = TextBuilder()
    alone, followed = item_templates(tb, cols)
    text = tb.build(np.array([alone, followed, alone]), np.array([0, 1, 0]), np.array([0, 1, 3])).to_pylist()
    assert text == [json.dumps({"a": "1", "CCS Type": 'x"y'}),
                    json.dumps({"a": "nan", "CCS Type": "z"}) + ", " + json.dumps({"a": "1", "CCS Type": 'x"y'})]


def test_json_escape_keeps_nulls_and_ignores_bytes_under_them():
    arr = pa.array(['a"b', None, "c"])
    assert json_escape(arr).to_pylist() == ['a\\"b', None, "c"]


def test_admission_info_is_none_even_with_a_discharge_note_of_the_same_admission():
    adm = staged("admissions", [{"subject_id": 1, "hadm_id": 5, "admittime": "2180-01-01 00:00:00"},
                                {"subject_id": 1, "hadm_id": 6, "admittime": "2180-02-01 00:00:00"}])
    notes = staged("discharge", [
        {"note_id": "a", "subject_id": 1, "hadm_id": 5, "charttime": "2180-01-08 00:00:00",
         "text": "Chief Complaint:\nchest pain\nBrief Hospital Course: expired"}])
    out = build_bucket({"admissions": adm, "discharge": notes}).timelines
    events = json.loads(out.column("events")[0].as_py())
    assert [it["admission_info"] for it in items(events, "admissions")] == ["None", "None"]


def test_patients_are_sorted_and_each_appears_once():
    rows = {"patients": staged("patients", [{"subject_id": s} for s in (30, 10, 20)]),
            "omr": staged("omr", [{"subject_id": s, "chartdate": "2180-01-01"} for s in (20, 40)])}
    built = build_bucket(rows, with_markdown=True)
    out, stats = built.timelines, built.stats
    assert built.markdown.column("subject_id").to_pylist() == [10, 20, 30, 40]
    assert out.column("subject_id").to_pylist() == [10, 20, 30, 40]
    assert (stats.patients, stats.events, stats.rows) == (4, 5, 5)
