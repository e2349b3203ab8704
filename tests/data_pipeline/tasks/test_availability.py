"""Availability time per table (one case table per rule of data_pipeline.tasks.availability)."""

from __future__ import annotations

from datetime import datetime

import pytest

from data_pipeline.events import PatientTimeline
from data_pipeline.tasks.availability import RULE_TABLES, LeakageRules, event_availability
from data_pipeline.tasks.examples import ev
from data_pipeline.tasks.history import TimelineIndex


def d(text: str) -> datetime:
    return datetime.fromisoformat(text)


DISCH = d("2180-05-03 18:00:00")

# table, rows, event end (placement), admission dischtime, expected availability
CASES = [
    # discharge note: charttime = discharge date 00:00; never before dischtime; later storetime wins
    ("discharge", [{"storetime": "2180-05-03 11:00:00"}], "2180-05-03 00:00:00", DISCH, "2180-05-03 18:00:00"),
    ("discharge", [{"storetime": "2180-05-04 09:30:00"}], "2180-05-03 00:00:00", DISCH, "2180-05-04 09:30:00"),
    ("discharge", [{"storetime": "nan"}], "2180-05-03 00:00:00", DISCH, "2180-05-03 18:00:00"),
    ("discharge", [{"storetime": "nan"}], "2180-05-03 00:00:00", None, "2180-05-03 00:00:00"),
    # radiology: the report from its storetime; milliseconds in storetime are tolerated
    ("radiology", [{"storetime": "2180-05-01 14:10:00.090"}], "2180-05-01 10:00:00", DISCH, "2180-05-01 14:10:00"),
    ("radiology", [{"storetime": "nan"}], "2180-05-01 10:00:00", DISCH, "2180-05-01 10:00:00"),
    # labs: the latest storetime of the event's rows; a row without one (not resulted) at its charttime
    ("labevents", [{"storetime": "2180-05-01 08:40:00"}, {"storetime": "2180-05-01 09:15:00"}],
     "2180-05-01 08:00:00", DISCH, "2180-05-01 09:15:00"),
    ("labevents", [{"storetime": "nan"}], "2180-05-01 08:00:00", DISCH, "2180-05-01 08:00:00"),
    # microbiology: storetime, else storedate at the end of its day
    ("microbiologyevents", [{"storetime": "2180-05-02 16:00:00", "storedate": "2180-05-02 00:00:00"}],
     "2180-05-01 08:00:00", DISCH, "2180-05-02 16:00:00"),
    ("microbiologyevents", [{"storetime": "nan", "storedate": "2180-05-02 00:00:00"}],
     "2180-05-01 08:00:00", DISCH, "2180-05-02 23:59:59"),
    ("microbiologyevents", [{"storetime": "nan", "storedate": "nan"}], "2180-05-01 08:00:00", DISCH,
     "2180-05-01 08:00:00"),
    # date-only tables: the end of their day
    ("procedures_icd", [{}], "2180-05-02 00:00:00", DISCH, "2180-05-02 23:59:59"),
    ("omr", [{}], "2180-05-02 00:00:00", None, "2180-05-02 23:59:59"),
    ("hcpcsevents", [{}], "2180-05-02 00:00:00", DISCH, "2180-05-02 23:59:59"),
    # billed after discharge
    ("diagnoses_icd", [{}], "2180-05-03 18:00:00", DISCH, "2180-05-03 18:00:00"),
    ("drgcodes", [{}], "2180-05-02 00:00:00", DISCH, "2180-05-03 18:00:00"),
    # everything else: its placement end time (chartevents from charttime, not storetime)
    ("chartevents", [{"storetime": "2180-05-01 12:00:00"}], "2180-05-01 11:00:00", DISCH, "2180-05-01 11:00:00"),
    ("emar", [{}], "2180-05-01 11:00:00", DISCH, "2180-05-01 11:00:00"),
    ("edstays", [{}], "2180-05-01 06:00:00", DISCH, "2180-05-01 06:00:00"),
]


@pytest.mark.parametrize("table,rows,end,disch,expected", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_event_availability(table, rows, end, disch, expected):
    assert event_availability(table, rows, d(end), disch) == d(expected)


def test_every_rule_table_has_a_case():
    assert RULE_TABLES <= {c[0] for c in CASES}


def _note_timeline() -> PatientTimeline:
    return PatientTimeline(1, [
        ev("patients", None, None, {"gender": "F", "anchor_age": 50, "dod": "nan"}),
        ev("admissions", "2180-05-01 10:00:00", "7", {"admittime": "2180-05-01 10:00:00",
                                                      "dischtime": "2180-05-03 18:00:00"}),
        ev("discharge", "2180-05-03 00:00:00", "7", {"text": "x", "storetime": "2180-05-03 20:00:00"}),
        ev("labevents", "2180-05-03 06:00:00", "7", {"item_name": "Na", "storetime": "2180-05-03 07:00:00"}),
        ev("diagnoses_icd", None, "7", {"diagnoses": "Sepsis"}),
    ])


def test_timeline_index_uses_availability_and_the_switch_restores_placement_times():
    on, off = TimelineIndex(_note_timeline()), TimelineIndex(_note_timeline(), LeakageRules(availability=False))
    assert on.avail[2] == d("2180-05-03 20:00:00") and off.avail[2] == d("2180-05-03 00:00:00")
    assert on.avail[3] == d("2180-05-03 07:00:00") and off.avail[3] == d("2180-05-03 06:00:00")
    assert on.avail[4] == off.avail[4] == d("2180-05-03 18:00:00")
    assert on.avail[0] is None
    # rendered order is untouched: placement times are the same
    assert on.times == off.times
