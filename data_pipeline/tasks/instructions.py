"""Instruction wording: the reference's exact strings (the default) and a cleaned wording (an option).

The released EHR-R1 weights were trained on the reference's instruction strings (``MIMICIV.task_info`` of
MAGIC-AI4Med/EHR-R1), typos and missing full stops included ("Labotary Test Events", "die within 2 day",
"... within 30 days" without a final "."). They are the default (``REFERENCE``), copied verbatim from the
published task table; a test compares every task with that table. ``CLEAN`` rephrases them in plain clinical
words for models trained from scratch (``instruction_style: clean`` in the dataset build).
"""

from __future__ import annotations

PREFIX = "Given the sequence of events that have occurred in a hospital,"
STYLES = ("reference", "clean")


def dm_instruction(what: str) -> str:
    return f"{PREFIX} please give the next {what} suggestion for the patients."


def rp_instruction(outcome: str) -> str:
    return f"{PREFIX} please predict whether {outcome}."


_DM_REFERENCE = {
    "admissions": "Admissions", "omr": "Online Medical Record",
    "procedures_icd": "Procedures International Classification of Diseases Item",
    "procedures_ccs": "Procedures Clinical Classifications Software Item",
    "diagnoses_icd": "Diagnoses International Classification of Diseases Item",
    "diagnoses_ccs": "Diagnoses Clinical Classifications Software Item",
    "labevents": "Labotary Test Events", "microbiologyevents": "Microbiology Test Events", "services": "Services",
    "transfers": "Transfers", "emar": "Electronic Medicine Administration Record", "poe": "Provider Order Entry",
    "prescriptions": "Prescriptions",
    "prescriptions_atc": "Anatomical Therapeutic Chemical Classification Prescriptions",
    "radiology": "Radiology Examinations", "discharge": "Discharge Report", "medrecon": "ED Medrecon",
    "medrecon_atc": "ED Medrecon on Anatomical Therapeutic Chemical (ATC) Classification", "pyxis": "ED Pyxis",
    "diagnosis": "ED Diagnoses on International Classification of Diseases",
    "diagnosis_ccs": "ED Diagnoses on Clinical Classifications Software Item", "chartevents": "Chart Events",
    "ingredientevents": "Ingredient Events", "datetimeevents": "Datetime Events",
    "procedureevents": "Procedure Events", "inputevents": "Input Events", "outputevents": "Output Events",
    "next_event": "event",
}

_P = f"{PREFIX} please predict whether"
_RP_REFERENCE = {
    "ED_Hospitalization": f"{_P} the patient will be hospitalized after the emergency room visit.",
    "ED_Inpatient_Mortality": f"{_P} the patient will die during hospitalization.",
    "ED_ICU_Transfer_12hour": f"{_P} the patient will be transferred to the ICU within 12 hours after the "
                              "emergency room.",
    "ED_Reattendance_3day": f"{_P} the patient will return to the emergency department within 72 hours after the "
                            "emergency visit.",
    "ED_Critical_Outcomes": f"{_P} the patient will die during hospitalization or will be transferred to the ICU "
                            "within 12 hours after the emergency room.",
    "Readmission_30day": f"{_P} the patient will be readmitted to the hospital within 30 days",
    "Readmission_60day": f"{_P} the patient will be readmitted to the hospital within 60 days",
    "Inpatient_Mortality": f"{_P} the patient will die during hospitalization.",
    "LengthOfStay_3day": f"{_P} the patient's hospital stay will exceed 3 days.",
    "LengthOfStay_7day": f"{_P} the patient's hospital stay will exceed 7 days",
    **{f"ICU_Mortality_{n}day": f"{_P} the patient will die within {n} day." for n in (1, 2, 3, 7, 14)},
    "ICU_Stay_7day": f"{_P} the patient will stay in the ICU for more than 7 days.",
    "ICU_Stay_14day": f"{_P} the patient will stay in the ICU for more than 14 days.",
    "ICU_Readmission": f"{_P} the patient will be admitted to the ICU again during this hospitalization",
}

#: task name -> the reference's exact instruction string.
REFERENCE: dict[str, str] = {**{t: dm_instruction(w) for t, w in _DM_REFERENCE.items()}, **_RP_REFERENCE}

_DM_CLEAN = {
    "admissions": "admission type", "omr": "online medical record measurement", "procedures_icd": "procedure",
    "procedures_ccs": "procedure CCS category", "diagnoses_icd": "diagnosis",
    "diagnoses_ccs": "diagnosis CCS category", "labevents": "laboratory test",
    "microbiologyevents": "microbiology test", "services": "service", "transfers": "care unit transfer",
    "emar": "medication administration", "poe": "provider order", "prescriptions": "prescription",
    "prescriptions_atc": "prescription ATC category", "radiology": "radiology examination",
    "medrecon": "medication reconciliation", "medrecon_atc": "medication reconciliation ATC category",
    "pyxis": "medication dispensing (Pyxis)", "diagnosis": "emergency department diagnosis",
    "diagnosis_ccs": "emergency department diagnosis CCS category", "chartevents": "chart event",
    "ingredientevents": "ingredient", "datetimeevents": "datetime event", "procedureevents": "ICU procedure",
    "inputevents": "ICU input", "outputevents": "ICU output", "next_event": "event type",
}
_RP_CLEAN = {
    "ED_Hospitalization": "the patient will be admitted to the hospital after this emergency department visit",
    "ED_Inpatient_Mortality": "the patient will die during the hospital stay that follows this emergency "
                              "department visit",
    "ED_ICU_Transfer_12hour": "the patient will be transferred to an intensive care unit within 12 hours after "
                              "leaving the emergency department",
    "ED_Reattendance_3day": "the patient will return to the emergency department within 3 days",
    "ED_Critical_Outcomes": "the patient will have a critical outcome (ICU transfer within 12 hours or inpatient "
                            "death)",
    "Readmission_30day": "the patient will be readmitted within 30 days after discharge",
    "Readmission_60day": "the patient will be readmitted within 60 days after discharge",
    "Inpatient_Mortality": "the patient will die during this hospital stay",
    "LengthOfStay_3day": "the patient's hospital stay will be longer than 3 days",
    "LengthOfStay_7day": "the patient's hospital stay will be longer than 7 days",
    **{f"ICU_Mortality_{n}day": f"the patient will die within {n} day{'s' if n > 1 else ''}"
       for n in (1, 2, 3, 7, 14)},
    "ICU_Stay_7day": "the patient's ICU stay will last at least 7 days",
    "ICU_Stay_14day": "the patient's ICU stay will last at least 14 days",
    "ICU_Readmission": "the patient will be readmitted to the ICU during this hospital stay",
}

#: task name -> cleaned wording.
CLEAN: dict[str, str] = {
    **{t: dm_instruction(w) for t, w in _DM_CLEAN.items()},
    "discharge": f"{PREFIX} please write the discharge summary (the discharge note text) for the patients.",
    **{t: rp_instruction(o) for t, o in _RP_CLEAN.items()},
}


def instruction_for(task: str, style: str = "reference") -> str:
    """The instruction of a task (canonical name) in ``style`` (``reference`` = the published string)."""
    if style not in STYLES:
        raise ValueError(f"unknown instruction style {style!r}; expected one of {STYLES}")
    return (REFERENCE if style == "reference" else CLEAN)[task]
