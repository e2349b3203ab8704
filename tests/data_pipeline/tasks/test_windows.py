"""Window rules per task family on hand-made timelines with ED boarding and date-only discharge notes."""

from __future__ import annotations

import pytest

from data_pipeline.events import PatientTimeline
from data_pipeline.tasks import get_task
from data_pipeline.tasks.assembly import sample_context
from data_pipeline.tasks.availability import LeakageRules
from data_pipeline.tasks.examples import ev
from data_pipeline.tasks.history import TimelineIndex

OFF = LeakageRules(availability=False, window_rules=False)


def boarding_timeline() -> PatientTimeline:
    """ED 06:00-12:00 leading to admission 7 at 09:00 (the patient boards: orders, eMAR, a lab and an ICU stay
    start before ED outtime); discharged (dead) the next day 15:00 with the note charted at 00:00 that day."""
    return PatientTimeline(5, [
        ev("patients", None, None, {"gender": "M", "anchor_age": 80, "dod": "2180-05-02"}),                  # 0
        ev("edstays", "2180-05-01 06:00:00", "7", {"intime": "2180-05-01 06:00:00",                         # 1
                                                   "outtime": "2180-05-01 12:00:00", "stay_id": "30"}),
        ev("triage", "2180-05-01 06:00:01", None, {"chiefcomplaint": "Dyspnea"}),                            # 2
        ev("labevents", "2180-05-01 07:00:00", None, {"item_name": "Troponin",                               # 3
                                                      "storetime": "2180-05-01 07:40:00"}),
        ev("vitalsign", "2180-05-01 08:00:00", None, {"heartrate": "120"}),                                  # 4
        ev("admissions", "2180-05-01 09:00:00", "7", {"admittime": "2180-05-01 09:00:00",                    # 5
                                                      "dischtime": "2180-05-02 15:00:00",
                                                      "hospital_expire_flag": "1", "admission_type": "EW"}),
        ev("poe", "2180-05-01 09:10:00", "7", {"order_type": "ADT orders"}),                                 # 6
        ev("emar", "2180-05-01 09:30:00", "7", {"medication": "Heparin"}),                                   # 7
        ev("labevents", "2180-05-01 09:40:00", "7", {"item_name": "Lactate",                                 # 8
                                                     "storetime": "2180-05-01 10:20:00"}),
        ev("icustays", "2180-05-01 10:00:00", "7", {"intime": "2180-05-01 10:00:00",                         # 9
                                                    "outtime": "2180-05-02 14:00:00", "stay_id": "40"}),
        ev("chartevents", "2180-05-01 10:30:00", "7", {"item_name": "Heart Rate"}),                          # 10
        ev("pyxis", "2180-05-01 11:00:00", None, {"name": "Furosemide"}),                                    # 11
        ev("discharge", "2180-05-02 00:00:00", "7", {"text": "The patient expired.",                         # 12
                                                     "storetime": "2180-05-02 18:00:00"}),
        ev("procedures_icd", "2180-05-02 00:00:00", "7", {"procedures": "Intubation"}),                      # 13
        ev("chartevents", "2180-05-02 08:00:00", "7", {"item_name": "Heart Rate"}),                          # 14
        ev("diagnoses_icd", None, "7", {"diagnoses": "Cardiogenic shock"}),                                  # 15
    ])


def shown(task: str, rules: LeakageRules | None = None) -> list[int]:
    ix = TimelineIndex(boarding_timeline(), rules)
    spec = get_task(task)
    inst = next(iter(spec.generate(ix)))
    return sample_context(ix, inst, spec)


@pytest.mark.parametrize("task", ["ED_Hospitalization", "ED_ICU_Transfer_12hour", "ED_Critical_Outcomes",
                                  "ED_Inpatient_Mortality", "ED_Reattendance_3day"])
def test_ed_window_holds_the_ed_module_and_nothing_of_the_admission_it_led_to(task):
    assert shown(task) == [1, 2, 3, 4, 11]
    # the reference's window showed the boarding patient's admit order, eMAR, lab and ICU stay
    assert {6, 7, 8, 9, 10} <= set(shown(task, OFF))


@pytest.mark.parametrize("task", ["Inpatient_Mortality", "LengthOfStay_3day", "LengthOfStay_7day"])
def test_admission_window_never_shows_the_date_only_discharge_note(task):
    got = shown(task)
    assert 12 not in got and 15 not in got
    assert 13 not in got  # the procedure dated 05-02 is known only at the end of that day
    assert 12 in shown(task, OFF)  # charted at 00:00 of the discharge day: inside the reference's window


@pytest.mark.parametrize("task", ["ICU_Mortality_1day", "ICU_Stay_7day", "ICU_Readmission"])
def test_icu_window_never_shows_the_outcome_documents(task):
    got = shown(task)
    assert 12 not in got and 15 not in got and 14 in got
    assert 12 in shown(task, OFF)


def test_window_rules_alone_keep_the_note_out_of_admission_windows():
    assert 12 not in shown("Inpatient_Mortality", LeakageRules(availability=False, window_rules=True))


def test_diagnosis_tasks_are_cut_at_discharge_without_the_note():
    ix = TimelineIndex(boarding_timeline())
    spec = get_task("diagnoses_icd")
    inst = next(iter(spec.generate(ix)))
    assert inst.prediction_time == "2180-05-02 15:00:00"
    got = sample_context(ix, inst, spec)
    # the note is banned (and not yet available); the procedure dated 05-02 is known only at that day's end
    assert got == [14]


def test_lab_results_are_shown_only_once_stored():
    tl = boarding_timeline()
    ix = TimelineIndex(tl)
    spec = get_task("labevents")
    inst = next(i for i in spec.generate(ix) if i.anchor == 8)  # predicted at 09:40: troponin stored 07:40
    assert 3 in sample_context(ix, inst, spec)
    tl.events[3].items[0]["storetime"] = "2180-05-01 09:50:00"  # not resulted yet at 09:40
    ix = TimelineIndex(tl)
    assert 3 not in sample_context(ix, inst, spec)
