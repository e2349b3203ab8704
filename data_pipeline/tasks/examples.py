"""A hand-made example patient covering every event table the tasks read, for tests, docs and demos.

The timeline (indices are stable; tests refer to them through :data:`IDX`):

* an earlier admission (hadm 90) known only from its discharge note and an outpatient ``omr`` record;
* an ED stay (hadm 100) from 2180-01-01 08:00 to 14:00 that leads to admission 100 at 12:00 (discharged
  2180-01-06 12:00), an ICU stay 2180-01-02 10:00 -> 2180-01-05 10:00, a discharge note and untimed diagnoses;
* a second admission (hadm 101) on 2180-01-20, i.e. 14 days after the discharge note.

``example_timeline(dod=..., icu_intime=..., ...)`` varies the facts that decide the risk labels.
"""

from __future__ import annotations

from data_pipeline.events import Event, PatientTimeline


def ev(file_name: str, start: str | None, hadm: str | None, *rows: dict, end: str | None = None) -> Event:
    """An event whose rows are given as dicts (values are stringified like the timeline builder does)."""
    items = [{k: str(v) for k, v in row.items()} for row in (rows or ({},))]
    return Event(file_name, start, end or start, hadm, items)


def example_timeline(subject_id: int = 10000032, dod: str = "nan", icu_intime: str = "2180-01-02 10:00:00",
                     icu_outtime: str = "2180-01-05 10:00:00", dischtime: str = "2180-01-06 12:00:00",
                     second_admit: str = "2180-01-20 09:00:00", expire_flag: str = "0") -> PatientTimeline:
    icu_day = icu_intime[:10]
    events = [
        ev("patients", None, None, {"gender": "F", "anchor_age": 60, "anchor_year": 2180, "dod": dod}),
        ev("discharge", "2179-12-01 10:00:00", "90", {"note_type": "DS", "text": "Old discharge summary."}),
        ev("omr", "2179-12-15 00:00:00", None, {"result_name": "Blood Pressure", "result_value": "120/80"}),
        ev("edstays", "2180-01-01 08:00:00", "100", {"intime": "2180-01-01 08:00:00",
           "outtime": "2180-01-01 14:00:00", "stay_id": 300, "gender": "F", "race": "WHITE"}),
        ev("triage", "2180-01-01 08:00:01", None, {"chiefcomplaint": "Chest pain", "acuity": "2.0"}),
        ev("vitalsign", "2180-01-01 09:00:00", None, {"heartrate": "88.0"}),
        ev("pyxis", "2180-01-01 10:00:00", None, {"name": "Acetaminophen"}, {"name": "Ondansetron"}),
        ev("medrecon", "2180-01-01 10:30:00", None, {"name": "Lisinopril", "ATC Type": "ACE INHIBITORS, PLAIN"}),
        ev("labevents", "2180-01-01 11:00:00", "100", {"item_name": "Glucose"}, {"item_name": "Sodium"},
           {"item_name": "Glucose"}),
        ev("admissions", "2180-01-01 12:00:00", "100", {
            "admittime": "2180-01-01 12:00:00", "dischtime": dischtime, "admission_type": "EW EMER.",
            "admission_location": "EMERGENCY ROOM", "hospital_expire_flag": expire_flag,
            "admission_info": "None"}),
        ev("transfers", "2180-01-01 12:00:00", "100", {"eventtype": "admit", "careunit": "Medicine"}),
        ev("radiology", "2180-01-01 13:00:00", "100", {"note_type": "RR", "exam_name": "['CHEST (PA & LAT)']",
                                                     "text": "No acute process."}),
        ev("diagnosis", "2180-01-01 14:00:00", "100", {"icd_title": "Chest pain, unspecified",
                                                     "CCS Type": "Nonspecific chest pain"}),
        ev("services", "2180-01-01 15:00:00", "100", {"curr_service": "MED"}),
        ev("poe", "2180-01-01 16:00:00", "100", {"order_type": "Medications"}, {"order_type": "Lab"}),
        ev("prescriptions", "2180-01-01 16:30:00", "100", {"drug": "Heparin", "ATC Type": "HEPARIN GROUP"},
           {"drug": "Aspirin", "ATC Type": "nan"}),
        ev("emar", "2180-01-01 18:00:00", "100", {"medication": "Heparin", "event_txt": "Administered"}),
        ev("microbiologyevents", "2180-01-01 20:00:00", "100", {"test_name": "Blood Culture, Routine"}),
        ev("icustays", icu_intime, "100", {"intime": icu_intime, "outtime": icu_outtime, "stay_id": 400}),
        ev("chartevents", f"{icu_day} 11:00:00", "100", {"item_name": "Heart Rate"},
           {"item_name": "O2 saturation pulseoxymetry"}),
        ev("inputevents", f"{icu_day} 12:00:00", "100", {"item_name": "NaCl 0.9%"}),
        ev("ingredientevents", f"{icu_day} 12:00:00", "100", {"item_name": "Free Water"}),
        ev("outputevents", f"{icu_day} 13:00:00", "100", {"item_name": "Foley"}),
        ev("datetimeevents", f"{icu_day} 14:00:00", "100", {"item_name": "Last dialysis"}),
        ev("procedureevents", f"{icu_day} 15:00:00", "100", {"item_name": "Arterial Line"}),
        ev("procedures_icd", "2180-01-03 00:00:00", "100", {"procedures": "Insertion of central venous line",
                                                          "CCS Type": "Other vascular catheterization"}),
        ev("labevents", "2180-01-03 06:00:00", "100", {"item_name": "Potassium"}),
        ev("labevents", "2180-01-06 08:00:00", "100", {"item_name": "Creatinine"}),
        ev("discharge", "2180-01-06 10:00:00", "100", {"note_type": "DS", "text": "Discharge summary text."}),
        ev("diagnoses_icd", None, "100", {"diagnoses": "Sepsis, unspecified organism", "CCS Type": "Septicemia"},
           {"diagnoses": "Pneumonia, unspecified organism", "CCS Type": "Pneumonia"}),
        ev("admissions", second_admit, "101", {
            "admittime": second_admit, "dischtime": "2180-01-22 09:00:00", "admission_type": "URGENT",
            "hospital_expire_flag": "0", "admission_info": "None"}),
        ev("labevents", "2180-01-20 10:00:00", "101", {"item_name": "Lactate"}),
    ]
    return PatientTimeline(subject_id, events)


#: Indices of the example's events, by a short name.
IDX = {
    "patients": 0, "old_note": 1, "omr": 2, "edstays": 3, "triage": 4, "vitalsign": 5, "pyxis": 6, "medrecon": 7,
    "lab_ed": 8, "admission": 9, "transfers": 10, "radiology": 11, "ed_diagnosis": 12, "services": 13, "poe": 14,
    "prescriptions": 15, "emar": 16, "micro": 17, "icustays": 18, "chartevents": 19, "inputevents": 20,
    "ingredientevents": 21, "outputevents": 22, "datetimeevents": 23, "procedureevents": 24, "procedures_icd": 25,
    "lab_day3": 26, "lab_day6": 27, "note": 28, "diagnoses_icd": 29, "admission2": 30, "lab_adm2": 31,
}
