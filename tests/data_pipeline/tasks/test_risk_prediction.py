"""Label rules and windows of the 18 risk-prediction tasks, on variants of the hand-made example patient."""

from __future__ import annotations

import pytest

from data_pipeline.events import PatientTimeline
from data_pipeline.tasks import get_task, task_names
from data_pipeline.tasks.assembly import sample_context
from data_pipeline.tasks.examples import IDX, ev, example_timeline
from data_pipeline.tasks.history import TimelineIndex

I = IDX


def labels_of(task: str, anchor: int, **variant) -> str | None:
    ix = TimelineIndex(example_timeline(**variant))
    got = [inst for inst in get_task(task).generate(ix) if inst.anchor == anchor]
    assert len(got) <= 1
    return got[0].labels[0] if got else None


# task, anchor, timeline variant, expected label (None = no sample)
CASES = [
    # ED stay 2180-01-01 08:00-14:00, admitted (hadm 100)
    ("ED_Hospitalization", I["edstays"], {}, "yes"),
    ("ED_Inpatient_Mortality", I["edstays"], {}, "no"),
    ("ED_Inpatient_Mortality", I["edstays"], {"dod": "2180-01-06"}, "yes"),     # died on the last day of the stay
    ("ED_Inpatient_Mortality", I["edstays"], {"dod": "2180-03-01"}, "no"),      # died long after discharge
    ("ED_ICU_Transfer_12hour", I["edstays"], {}, "no"),                         # ICU 20 h after ED out
    ("ED_ICU_Transfer_12hour", I["edstays"], {"icu_intime": "2180-01-02 01:00:00"}, "yes"),   # 11 h after
    ("ED_ICU_Transfer_12hour", I["edstays"], {"icu_intime": "2180-01-02 02:00:00"}, "no"),    # exactly 12 h
    ("ED_Reattendance_3day", I["edstays"], {}, "no"),
    ("ED_Critical_Outcomes", I["edstays"], {}, "no"),
    ("ED_Critical_Outcomes", I["edstays"], {"icu_intime": "2180-01-02 01:00:00"}, "yes"),
    ("ED_Critical_Outcomes", I["edstays"], {"dod": "2180-01-06"}, "yes"),
    # discharge note 2180-01-06 10:00; next admission 2180-01-20 (14 d later)
    ("Readmission_30day", I["note"], {}, "yes"),
    ("Readmission_60day", I["note"], {}, "yes"),
    ("Readmission_30day", I["note"], {"second_admit": "2180-02-20 09:00:00"}, "no"),   # 45 d
    ("Readmission_60day", I["note"], {"second_admit": "2180-02-20 09:00:00"}, "yes"),
    ("Readmission_60day", I["note"], {"second_admit": "2180-03-20 09:00:00"}, "no"),   # 73 d
    ("Readmission_30day", I["note"], {"expire_flag": "1"}, None),              # died in hospital: undefined
    ("Readmission_30day", I["old_note"], {}, "no"),                            # 31 d before admission 100
    ("Readmission_60day", I["old_note"], {}, "yes"),
    # admission 100: 2180-01-01 12:00 -> 01-06 12:00 (5 days)
    ("Inpatient_Mortality", I["admission"], {}, "no"),
    ("Inpatient_Mortality", I["admission"], {"dod": "2180-01-06"}, "yes"),      # dod (00:00) <= dischtime
    ("Inpatient_Mortality", I["admission"], {"dod": "2180-01-07"}, "no"),
    ("LengthOfStay_3day", I["admission"], {}, "yes"),
    ("LengthOfStay_7day", I["admission"], {}, "no"),
    ("LengthOfStay_3day", I["admission"], {"dischtime": "2180-01-03 12:00:00"}, "no"),
    ("LengthOfStay_7day", I["admission"], {"dischtime": "2180-01-08 12:00:01"}, "yes"),
    ("LengthOfStay_7day", I["admission"], {"dischtime": "2180-01-08 12:00:00"}, "no"),     # exactly 7 d: not >
    ("LengthOfStay_3day", I["admission"], {"dischtime": "2180-01-02 11:00:00"}, None),     # left within 24 h
    # ICU stay 2180-01-02 10:00 -> 01-05 10:00; prediction time 01-03 10:00
    ("ICU_Mortality_1day", I["icustays"], {}, "no"),
    ("ICU_Mortality_1day", I["icustays"], {"dod": "2180-01-04"}, "yes"),      # 14 h after t
    ("ICU_Mortality_1day", I["icustays"], {"dod": "2180-01-05"}, "no"),       # 38 h after t
    ("ICU_Mortality_2day", I["icustays"], {"dod": "2180-01-05"}, "yes"),
    ("ICU_Mortality_2day", I["icustays"], {"dod": "2180-01-06"}, "no"),
    ("ICU_Mortality_3day", I["icustays"], {"dod": "2180-01-06"}, "yes"),
    ("ICU_Mortality_3day", I["icustays"], {"dod": "2180-01-07"}, "no"),
    ("ICU_Mortality_7day", I["icustays"], {"dod": "2180-01-10"}, "yes"),
    ("ICU_Mortality_7day", I["icustays"], {"dod": "2180-01-12"}, "no"),
    ("ICU_Mortality_14day", I["icustays"], {"dod": "2180-01-16"}, "yes"),
    ("ICU_Mortality_14day", I["icustays"], {"dod": "2180-01-18"}, "no"),
    ("ICU_Mortality_1day", I["icustays"], {"dod": "2180-01-01"}, None),        # dead before the window ends
    ("ICU_Stay_7day", I["icustays"], {}, "no"),
    ("ICU_Stay_7day", I["icustays"], {"icu_outtime": "2180-01-09 10:00:00"}, "yes"),   # exactly 7 d: >=
    ("ICU_Stay_14day", I["icustays"], {"icu_outtime": "2180-01-09 10:00:00"}, "no"),
    ("ICU_Stay_14day", I["icustays"], {"icu_outtime": "2180-01-17 10:00:00"}, "yes"),
    ("ICU_Stay_7day", I["icustays"], {"icu_outtime": "2180-01-03 09:00:00"}, None),    # left within 24 h
    ("ICU_Readmission", I["icustays"], {}, "no"),
]


def test_every_risk_task_has_cases_with_both_labels():
    names = task_names("risk_prediction")
    assert len(names) == 18
    assert sorted({c[0] for c in CASES}) == sorted(names)
    # cases whose other class needs another stay are covered by the dedicated tests below
    assert {c[0] for c in CASES if c[3] == "no"} >= set(names) - {"ED_Hospitalization"}
    assert {c[0] for c in CASES if c[3] == "yes"} >= set(names) - {"ED_Reattendance_3day", "ICU_Readmission"}


@pytest.mark.parametrize("task,anchor,variant,expected", CASES,
                         ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(CASES)])
def test_label_rule(task, anchor, variant, expected):
    assert labels_of(task, anchor, **variant) == expected


def test_published_misspelling_is_an_alias():
    assert get_task("ED_ICU_Tranfer_12hour") is get_task("ED_ICU_Transfer_12hour")


def _with(extra: list, base: PatientTimeline | None = None) -> TimelineIndex:
    tl = base or example_timeline()
    events = sorted(tl.events[1:] + extra, key=lambda e: e.starttime or "9999")
    # keep untimed diagnoses after their admission's last event, as the timeline builder does
    return TimelineIndex(PatientTimeline(tl.subject_id, [tl.events[0], *events]))


@pytest.mark.parametrize("hours_after,expected", [(48, "yes"), (71, "yes"), (73, "no")])
def test_ed_reattendance(hours_after, expected):
    from datetime import datetime, timedelta
    start = (datetime(2180, 1, 1, 14) + timedelta(hours=hours_after)).strftime("%Y-%m-%d %H:%M:%S")
    stop = (datetime(2180, 1, 1, 14) + timedelta(hours=hours_after + 3)).strftime("%Y-%m-%d %H:%M:%S")
    tl = PatientTimeline(1, [ev("patients", None, None, {"dod": "nan"}),
                             ev("edstays", "2180-01-01 08:00:00", None, {"intime": "2180-01-01 08:00:00",
                                                                         "outtime": "2180-01-01 14:00:00"}),
                             ev("edstays", start, None, {"intime": start, "outtime": stop})])
    insts = list(get_task("ED_Reattendance_3day").generate(TimelineIndex(tl)))
    assert insts[0].labels == (expected,)
    assert next(iter(get_task("ED_Hospitalization").generate(TimelineIndex(tl)))).labels == ("no",)


@pytest.mark.parametrize("second_stay_hadm,expected", [("100", "yes"), ("101", "no")])
def test_icu_readmission_same_admission_only(second_stay_hadm, expected):
    extra = ev("icustays", "2180-01-05 20:00:00", second_stay_hadm,
               {"intime": "2180-01-05 20:00:00", "outtime": "2180-01-06 09:00:00", "stay_id": 401})
    ix = _with([extra])
    first = next(i for i in get_task("ICU_Readmission").generate(ix)
                 if ix.events[i.anchor].items[0]["stay_id"] == "400")
    assert first.labels == (expected,)


# task, anchor, expected shown context
WINDOWS = [
    # ED: the stay's ED-module events up to ED outtime; nothing of admission 100 that the stay led to (its lab
    # and radiology while boarding, admission, transfers), no header
    ("ED_Hospitalization", I["edstays"], [I["edstays"], I["triage"], I["vitalsign"], I["pyxis"], I["medrecon"]]),
    # first 24 h after admittime (12:00 -> next day 12:00)
    ("LengthOfStay_3day", I["admission"], list(range(I["transfers"], I["chartevents"] + 1))),
    # first 24 h after ICU intime; the date-only procedures_icd of 01-03 is available only at the end of that day
    ("ICU_Stay_7day", I["icustays"], [k for k in range(I["icustays"], I["lab_day3"] + 1) if k != I["procedures_icd"]]),
    # 24 h before the discharge note is available (dischtime 12:00 > note charttime 10:00) plus the note
    ("Readmission_30day", I["note"], [I["lab_day6"], I["note"]]),
]


@pytest.mark.parametrize("task,anchor,context", WINDOWS, ids=[w[0] for w in WINDOWS])
def test_history_cut(task, anchor, context):
    ix = TimelineIndex(example_timeline())
    spec = get_task(task)
    inst = next(i for i in spec.generate(ix) if i.anchor == anchor)
    assert sample_context(ix, inst, spec) == context
    if task.startswith("ED_"):
        assert inst.admissions_id == -1
