"""Ordering and merging rules of a timeline (reference rank.py / combination.py), as case tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_pipeline.mimic.schema import EVENT_TABLES
from data_pipeline.timeline.build import build_bucket
from data_pipeline.timeline.order import (END, KIND_DIAGNOSES, KIND_DRG, KIND_PATIENT, KIND_TIMED, START,
                                          TABLE_RANK, Rows, event_runs, order_rows, placement_time)
from tests.data_pipeline.tiny_mimic import staged

SID, HADM = 10000001, 20000001
PATIENT = {"subject_id": SID, "gender": "F", "anchor_age": 50}


def events_of(tables: dict[str, list[dict]]) -> list[dict]:
    """Build one patient's timeline from raw rows per table and return its events."""
    rows = {"patients": [PATIENT], **tables}
    out = build_bucket({name: staged(name, r) for name, r in rows.items()}).timelines
    assert out.num_rows == 1
    return json.loads(out.column("events")[0].as_py())


def shape(events: list[dict]) -> list[tuple]:
    return [(e["file_name"], e["starttime"], e["endtime"], e["hadm_id"], len(e["items"])) for e in events]


# ---- time field per table ------------------------------------------------------------------------------------
DECOY = "2100-01-01 00:00:00"
TIME_FIELD_CASES = [
    ("omr", "chartdate", "2180-01-02", "2180-01-02 00:00:00"),
    ("procedures_icd", "chartdate", "2180-01-02", "2180-01-02 00:00:00"),
    ("hcpcsevents", "chartdate", "2180-01-02", "2180-01-02 00:00:00"),
    ("pharmacy", "entertime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("poe", "ordertime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("prescriptions", "starttime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("services", "transfertime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("labevents", "charttime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("microbiologyevents", "charttime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("emar", "charttime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("admissions", "admittime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("transfers", "intime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("edstays", "intime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("icustays", "intime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("chartevents", "charttime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("datetimeevents", "charttime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("outputevents", "charttime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("ingredientevents", "starttime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("inputevents", "starttime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("procedureevents", "starttime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("vitalsign", "charttime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("pyxis", "charttime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("medrecon", "charttime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("discharge", "charttime", "2180-01-02 03:04:05", "2180-01-02 03:04:05"),
    ("radiology", "charttime", "2180-01-02 03:04:05.250", "2180-01-02 03:04:05"),
]


@pytest.mark.parametrize("table,field,value,expected", TIME_FIELD_CASES, ids=[c[0] for c in TIME_FIELD_CASES])
def test_rows_are_placed_by_their_tables_time_field(table, field, value, expected):
    assert EVENT_TABLES[table].time_field == field
    row = {"subject_id": SID, "hadm_id": HADM, "stay_id": 30000001, "note_id": "n1"}
    for col, typ in EVENT_TABLES[table].columns:  # every other time column gets a decoy that would sort first
        if typ in ("datetime", "date") and col != field:
            row[col] = DECOY[:10] if typ == "date" else DECOY
    row[field] = value
    later = {"subject_id": SID, "hadm_id": HADM, "labevent_id": 9, "itemid": 1, "charttime": "2180-01-02 03:04:06"}
    tables = {table: [row]} if table == "labevents" else {table: [row], "labevents": [later]}
    ev = events_of(tables)
    assert ev[0]["file_name"] == "patients" and ev[0]["starttime"] is None
    assert (ev[1]["file_name"], ev[1]["starttime"], ev[1]["endtime"]) == (table, expected, expected)


# ---- ED triage / diagnosis times ----------------------------------------------------------------------------
def test_triage_is_placed_one_second_after_ed_intime_and_ed_diagnosis_at_outtime():
    stay = {"subject_id": SID, "hadm_id": HADM, "stay_id": 30000001, "intime": "2180-01-01 10:00:00",
            "outtime": "2180-01-01 14:30:00"}
    ev = events_of({
        "edstays": [stay],
        "triage": [{"subject_id": SID, "stay_id": 30000001, "acuity": "2"}],
        "diagnosis": [{"subject_id": SID, "stay_id": 30000001, "seq_num": 1, "icd_code": "I10", "icd_version": 10}],
        "vitalsign": [{"subject_id": SID, "stay_id": 30000001, "charttime": "2180-01-01 12:00:00"}],
    })
    assert shape(ev)[1:] == [
        ("edstays", "2180-01-01 10:00:00", "2180-01-01 10:00:00", str(HADM), 1),
        ("triage", "2180-01-01 10:00:01", "2180-01-01 10:00:01", None, 1),
        ("vitalsign", "2180-01-01 12:00:00", "2180-01-01 12:00:00", None, 1),
        ("diagnosis", "2180-01-01 14:30:00", "2180-01-01 14:30:00", None, 1),
    ]


def test_triage_without_its_stay_goes_to_the_end():
    ev = events_of({"labevents": [{"subject_id": SID, "labevent_id": 1, "itemid": 1,
                                   "charttime": "2180-01-01 10:00:00"}],
                    "triage": [{"subject_id": SID, "stay_id": 39999999}]})
    assert [e["file_name"] for e in ev] == ["patients", "labevents", "triage"]
    assert ev[-1]["starttime"] is None


# ---- untimed diagnoses / drgcodes ---------------------------------------------------------------------------
def _lab(t, hadm=HADM, i=1):
    return {"subject_id": SID, "hadm_id": hadm, "labevent_id": i, "itemid": 1, "charttime": t}


def _dx(hadm, seq=1):
    return {"subject_id": SID, "hadm_id": hadm, "seq_num": seq, "icd_code": "I10", "icd_version": 10}


def _drg(hadm):
    return {"subject_id": SID, "hadm_id": hadm, "drg_type": "HCFA", "drg_code": "1"}


UNTIMED_CASES = [
    pytest.param(
        {"labevents": [_lab("2180-01-01 10:00:00", 1), _lab("2180-01-02 10:00:00", 1), _lab("2180-01-03 10:00:00", 2)],
         "diagnoses_icd": [_dx(1)]},
        [("labevents", 2), ("diagnoses_icd", 1), ("labevents", 1)],
        id="after-last-row-of-same-hadm"),
    pytest.param(
        {"labevents": [_lab("2180-01-01 10:00:00", 1), _lab("2180-01-03 10:00:00", 2)],
         "diagnoses_icd": [_dx(1)], "drgcodes": [_drg(1)]},
        [("labevents", 1), ("diagnoses_icd", 1), ("drgcodes", 1), ("labevents", 1)],
        id="drgcodes-after-diagnoses"),
    pytest.param(
        {"labevents": [_lab("2180-01-01 10:00:00", 1), _lab("2180-01-03 10:00:00", 2)],
         "drgcodes": [_drg(1)], "diagnoses_icd": [_dx(9), _dx(9, 2)]},
        [("labevents", 1), ("drgcodes", 1), ("labevents", 1), ("diagnoses_icd", 2)],
        id="no-timed-row-of-that-hadm-goes-to-end"),
    pytest.param(
        {"labevents": [_lab("2180-01-01 10:00:00", 1)], "diagnoses_icd": [{**_dx(1), "hadm_id": ""}]},
        [("labevents", 1), ("diagnoses_icd", 1)],
        id="missing-hadm-goes-to-end"),
    pytest.param(
        {"labevents": [_lab("2180-01-01 10:00:00", 1)],
         "chartevents": [{"subject_id": SID, "hadm_id": 2, "stay_id": 3, "itemid": 1,
                          "charttime": "2180-01-01 10:00:00"}],
         "diagnoses_icd": [_dx(1)]},
        [("labevents", 1), ("chartevents", 1), ("diagnoses_icd", 1)],
        id="timed-rows-at-the-same-time-come-first"),
]


@pytest.mark.parametrize("tables,expected", UNTIMED_CASES)
def test_untimed_rows_placement(tables, expected):
    ev = events_of(tables)
    assert [(e["file_name"], len(e["items"])) for e in ev[1:]] == expected
    for e in ev:
        if e["file_name"] in ("diagnoses_icd", "drgcodes"):
            assert e["starttime"] is None and e["endtime"] is None


# ---- tie-break and run merging --------------------------------------------------------------------------------
T0 = "2180-01-01 10:00:00"
TIE_CASES = [
    pytest.param({"transfers": [{"subject_id": SID, "hadm_id": HADM, "transfer_id": 1, "intime": T0}],
                  "admissions": [{"subject_id": SID, "hadm_id": HADM, "admittime": T0}]},
                 ["admissions", "transfers"], id="admissions-before-transfers"),
    pytest.param({"chartevents": [{"subject_id": SID, "hadm_id": HADM, "stay_id": 3, "itemid": 1, "charttime": T0}],
                  "labevents": [_lab(T0)]},
                 ["labevents", "chartevents"], id="then-schema-order"),
    pytest.param({"icustays": [{"subject_id": SID, "hadm_id": HADM, "stay_id": 3, "intime": T0}],
                  "edstays": [{"subject_id": SID, "hadm_id": HADM, "stay_id": 4, "intime": T0}]},
                 ["edstays", "icustays"], id="edstays-before-icustays"),
]


@pytest.mark.parametrize("tables,expected", TIE_CASES)
def test_tie_break_by_table_order(tables, expected):
    assert [e["file_name"] for e in events_of(tables)[1:]] == expected
    assert TABLE_RANK["patients"] == 0


def test_ties_within_a_table_keep_file_order():
    rows = [{**_lab(T0, i=i), "itemid": i} for i in (5, 3, 9)]
    (ev,) = events_of({"labevents": rows})[1:]
    assert [it["itemid"] for it in ev["items"]] == ["5", "3", "9"]


def test_runs_of_the_same_table_merge_into_one_event_with_max_endtime():
    labs = [_lab("2180-01-01 10:00:00", i=1), _lab("2180-01-01 12:00:00", i=2), _lab("2180-01-01 11:00:00", i=3),
            _lab("2180-01-02 09:00:00", i=4)]
    chart = [{"subject_id": SID, "hadm_id": "", "stay_id": 3, "itemid": 1, "charttime": "2180-01-01 13:00:00"}]
    ev = events_of({"labevents": labs, "chartevents": chart})
    assert shape(ev)[1:] == [
        ("labevents", "2180-01-01 10:00:00", "2180-01-01 12:00:00", str(HADM), 3),
        ("chartevents", "2180-01-01 13:00:00", "2180-01-01 13:00:00", None, 1),
        ("labevents", "2180-01-02 09:00:00", "2180-01-02 09:00:00", str(HADM), 1),
    ]
    assert [it["labevent_id"] for it in ev[1]["items"]] == ["1", "3", "2"]


def test_patients_row_comes_first_even_before_earlier_rows():
    ev = events_of({"omr": [{"subject_id": SID, "chartdate": "2000-01-01", "result_name": "BMI"}]})
    assert [e["file_name"] for e in ev] == ["patients", "omr"]


# ---- the pure functions on arrays ---------------------------------------------------------------------------
def _rows(spec):
    """spec: list of (sid, time or None, kind, rank, row, hadm)."""
    a = np.array([(s, t if t is not None else 0, t is not None, k, r, w, h) for s, t, k, r, w, h in spec],
                 dtype=[("sid", "i8"), ("time", "i8"), ("has", "?"), ("kind", "i1"), ("rank", "i2"), ("row", "i8"),
                        ("hadm", "i8")])
    return Rows(a["sid"], a["time"], a["has"], a["rank"], a["kind"], a["row"], a["hadm"])


@pytest.mark.parametrize("spec,expected", [
    pytest.param([(1, 5, KIND_TIMED, 3, 0, 7), (1, None, KIND_PATIENT, 0, 0, -1)], [5, START], id="patient-start"),
    pytest.param([(1, None, KIND_TIMED, 3, 0, 7)], [END], id="missing-time-end"),
    pytest.param([(1, 5, KIND_TIMED, 3, 0, 7), (1, 9, KIND_TIMED, 4, 0, 7), (1, None, KIND_DIAGNOSES, 5, 0, 7)],
                 [5, 9, 9], id="untimed-at-hadm-max"),
    pytest.param([(1, 5, KIND_TIMED, 3, 0, 7), (2, None, KIND_DRG, 5, 0, 7)], [5, END], id="other-patient-same-hadm"),
])
def test_placement_time(spec, expected):
    assert placement_time(_rows(spec)).tolist() == expected


def test_order_rows_sorts_patients_then_time_then_kind_rank_row():
    rows = _rows([(2, 5, KIND_TIMED, 3, 1, -1), (1, 5, KIND_TIMED, 3, 0, -1), (2, 5, KIND_TIMED, 3, 0, -1),
                  (2, 5, KIND_TIMED, 1, 7, -1), (2, None, KIND_PATIENT, 0, 0, -1)])
    assert order_rows(rows).tolist() == [1, 4, 3, 2, 0]


def test_event_runs_split_on_table_and_patient():
    sid = np.array([1, 1, 1, 2, 2])
    rank = np.array([0, 3, 3, 3, 3])
    time = np.array([0, 10, 20, 30, 40])
    has = np.array([False, True, True, True, True])
    hadm = np.array([-1, -1, 8, 9, -1])
    runs = event_runs(sid, rank, time, has, hadm, np.zeros(5, bool))
    assert runs.starts.tolist() == [0, 1, 3]
    assert runs.end_time[1:].tolist() == [20, 40]
    assert runs.has_start.tolist() == [False, True, True]
    assert runs.hadm.tolist() == [-1, 8, 9]
    assert runs.patient_starts.tolist() == [0, 2]
