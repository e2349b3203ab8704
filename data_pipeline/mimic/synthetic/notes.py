"""note module: discharge summaries (one per admission) and radiology reports, with their *_detail rows, timed
as MIMIC-IV-Note times them: a discharge note's ``charttime`` is the discharge *date* at 00:00:00 and its
``storetime`` when it was signed (around discharge, sometimes a little before the patient leaves, often hours to
a day later); a radiology report's ``storetime`` is hours after the exam. Text follows the MIMIC-IV-Note layout (section headers, ``___`` for de-identified spans)."""

from __future__ import annotations

import numpy as np

from data_pipeline.mimic.synthetic import clock
from data_pipeline.mimic.synthetic.care_plan import CarePlan, plan_rng
from data_pipeline.mimic.synthetic.clinical_course import Admission, Patient
from data_pipeline.mimic.synthetic.clock import HOUR
from data_pipeline.mimic.synthetic.context import Ctx
from data_pipeline.mimic.synthetic.drugs import DRUGS
from data_pipeline.mimic.synthetic.measurements import EXAMS, FINDINGS, LABS
from data_pipeline.mimic.synthetic.vocabulary import CHRONIC, DIAGNOSES, PROCEDURES

_SERVICE = {"MED": "MEDICINE", "CMED": "MEDICINE", "NMED": "NEUROLOGY", "ORTHO": "ORTHOPAEDICS",
            "SURG": "SURGERY"}
_HISTORY = {c.key: c.history for c in CHRONIC}
_DISPO = {"HOME": "Home", "HOME HEALTH CARE": "Home With Service", "SKILLED NURSING FACILITY": "Extended Care",
          "REHAB": "Extended Care", "HOSPICE": "Home With Service", "AGAINST ADVICE": "Home", "DIED": "Expired"}


class NoteSeq:
    """Per-patient note counters: ``{subject_id}-DS-{n}`` and ``{subject_id}-RR-{n}``."""

    def __init__(self, subject_id: int):
        self.subject_id = subject_id
        self.ds = 0
        self.rr = 0


def discharge_text(p: Patient, adm: Admission, plan: CarePlan, complaint: str) -> str:
    cond = adm.condition
    sex = "M" if p.gender == "M" else "F"
    title = "Mr." if sex == "M" else "Ms."
    pmh = [_HISTORY[c] for c in p.chronic] or ["None"]
    procs = sorted({PROCEDURES[k].title10 for k, _ in plan.procedures}) or ["None"]
    abnormal_high = [LABS[k].label for k, s in plan.lab_shift.items() if s >= 1.5]
    abnormal_low = [LABS[k].label for k, s in plan.lab_shift.items() if s <= -1.5]
    results = []
    if abnormal_high:
        results.append("Admission labs notable for elevated " + ", ".join(abnormal_high) + ".")
    if abnormal_low:
        results.append("Admission labs notable for low " + ", ".join(abnormal_low) + ".")
    for key, _ in plan.exams[:2]:
        results.append(f"{EXAMS[key][1]}: {FINDINGS.get(cond.key, EXAMS[key][3])}")
    if not results:
        results.append("Admission labs within normal limits.")
    meds = [DRUGS[o.drug].name for o in plan.orders if not DRUGS[o.drug].route.startswith("IV")]
    meds = list(dict.fromkeys(meds)) if not adm.died else []
    meds = meds or ["None"]
    home = [DRUGS[d].name for c in CHRONIC if c.key in p.chronic for d in c.home_drugs]
    home_lines = [f"{i}. {m}" for i, m in enumerate(dict.fromkeys(home), start=1)] or [
        "The Preadmission Medication list is accurate and complete."]
    dx = DIAGNOSES[cond.key].title10
    secondary = [DIAGNOSES[k].title10 for k in plan.diagnoses[1:4]]
    age = adm.age
    dispo = _DISPO.get(adm.discharge_location if not adm.died else "DIED", "Home")
    if adm.died:
        course = (f"{cond.course}. Despite maximal therapy the patient continued to decline; after discussion "
                  f"with the family the patient was made comfort measures only and expired on ___.")
        condition = "Expired."
    else:
        course = f"{cond.course}."
        condition = ("Mental Status: Clear and coherent.\nLevel of Consciousness: Alert and interactive.\n"
                     "Activity Status: " + ("Ambulatory - Independent." if adm.severity < 0.5
                                            else "Ambulatory - requires assistance or aid (walker or cane)."))
    lines = [
        " ", "Name:  ___                     Unit No:   ___", " ",
        "Admission Date:  ___              Discharge Date:   ___", " ",
        f"Date of Birth:  ___             Sex:   {sex}", " ",
        f"Service: {_SERVICE.get(cond.service, 'MEDICINE')}", " ",
        "Allergies: ", "No Known Allergies / Adverse Drug Reactions", " ",
        "Attending: ___.", " ",
        "Chief Complaint:", complaint, " ",
        "Major Surgical or Invasive Procedure:", *procs, " ",
        "History of Present Illness:",
        f"{title} ___ is a {age} year old {'man' if sex == 'M' else 'woman'} with a history of "
        f"{', '.join(h.lower() for h in pmh) if pmh != ['None'] else 'no significant medical problems'} who "
        f"{cond.hpi}.", " ",
        "Past Medical History:", *[f"- {h}" for h in pmh], " ",
        "Social History:", "___", "Family History:", "Noncontributory.", " ",
        "Pertinent Results:", *results, " ",
        "Brief Hospital Course:", course, " ",
        "Medications on Admission:", *home_lines, " ",
        "Discharge Medications:", *[f"{i}. {m}" for i, m in enumerate(meds, start=1)], " ",
        "Discharge Disposition:", dispo, " ",
        "Discharge Diagnosis:", f"Primary: {dx}", *([f"Secondary: {'; '.join(secondary)}"] if secondary else []),
        " ", "Discharge Condition:", condition, " ",
        "Followup Instructions:", "___", "",
    ]
    return "\n".join(lines)


def radiology_text(exam: str, cond_key: str, complaint: str, abnormal: bool) -> str:
    code, name, cpt, normal, _ = EXAMS[exam]
    finding = FINDINGS.get(cond_key, normal) if abnormal else normal
    return "\n".join([
        f"EXAMINATION:  {name}", "",
        f"INDICATION:  ___ year old with {complaint.lower()}.  // Evaluate for acute process.", "",
        "TECHNIQUE:  Standard departmental protocol.", "",
        "COMPARISON:  ___", "",
        f"FINDINGS: ", "", finding, "",
        f"IMPRESSION: ", "", finding if abnormal else "No acute findings.", "",
    ])


def write_discharge(ctx: Ctx, p: Patient, k: int, plan: CarePlan, complaint: str, seq: NoteSeq) -> None:
    adm = p.admissions[k]
    rng = plan_rng(ctx.seed, p, k, 9)
    seq.ds += 1
    note_id = f"{p.subject_id}-DS-{seq.ds}"
    chart = clock.date(adm.dischtime) + " 00:00:00"  # date precision, like the real notes
    store = max(clock.midnight(adm.dischtime) + HOUR, adm.dischtime + int(rng.uniform(-3, 30) * HOUR))
    ctx.writer.add("note/discharge", note_id=note_id, subject_id=p.subject_id, hadm_id=adm.hadm_id, note_type="DS",
                   note_seq=seq.ds, charttime=chart, storetime=clock.ts(store),
                   text=discharge_text(p, adm, plan, complaint))
    ctx.writer.add("note/discharge_detail", note_id=note_id, subject_id=p.subject_id, field_name="author",
                   field_value="___", field_ordinal=1)


def write_radiology(ctx: Ctx, p: Patient, hadm_id: int | None, exams: list[tuple[str, int]], cond_key: str,
                    complaint: str, seq: NoteSeq, rng: np.random.Generator, abnormal_p: float) -> None:
    for exam, t in exams:
        seq.rr += 1
        note_id = f"{p.subject_id}-RR-{seq.rr}"
        abnormal = exam != "cxr_portable" and rng.random() < abnormal_p
        ctx.writer.add("note/radiology", note_id=note_id, subject_id=p.subject_id, hadm_id=hadm_id, note_type="RR",
                       note_seq=seq.rr, charttime=clock.ts(t), storetime=clock.ts(t + int(rng.uniform(0.5, 8) * HOUR)),
                       text=radiology_text(exam, cond_key, complaint, abnormal))
        code, name, cpt, _, _ = EXAMS[exam]
        for field, value in (("exam_code", code), ("exam_name", name), ("cpt_code", cpt)):
            ctx.writer.add("note/radiology_detail", note_id=note_id, subject_id=p.subject_id, field_name=field,
                           field_value=value, field_ordinal=1)
