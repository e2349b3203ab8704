"""hosp tables about the stay itself: patients, admissions, transfers, services, diagnoses_icd, procedures_icd,
drgcodes, hcpcsevents, omr."""

from __future__ import annotations

import numpy as np

from data_pipeline.mimic.synthetic import clock
from data_pipeline.mimic.synthetic.care_plan import CarePlan, plan_rng
from data_pipeline.mimic.synthetic.clinical_course import Admission, Patient
from data_pipeline.mimic.synthetic.clock import DAY
from data_pipeline.mimic.synthetic.context import Ctx
from data_pipeline.mimic.synthetic.vocabulary import DIAGNOSES, PROCEDURES

# code, category, long_description, short_description
HCPCS = (
    ("99223", "1", "Initial hospital care, per day, for the evaluation and management of a patient",
     "Hospital inpatient services"),
    ("99291", "1", "Critical care, evaluation and management of the critically ill or critically injured patient; "
     "first 30-74 minutes", "Critical care first hour"),
    ("99285", "1", "Emergency department visit for the evaluation and management of a patient",
     "Emergency dept visit"),
    ("G0378", "2", "Hospital observation service, per hour", "Hospital observation per hr"),
    ("93458", "1", "Catheter placement in coronary artery(s) for coronary angiography", "Coronary artery angio s&i"),
    ("36556", "1", "Insertion of non-tunneled centrally inserted central venous catheter; age 5 years or older",
     "Insert non-tunnel cv cath"),
    ("43239", "1", "Esophagogastroduodenoscopy, flexible, transoral; with biopsy, single or multiple",
     "Egd biopsy single/multiple"),
    ("27130", "1", "Arthroplasty, acetabular and proximal femoral prosthetic replacement (total hip arthroplasty)",
     "Total hip arthroplasty"),
)
_HCPCS_SHORT = {c: s for c, _, _, s in HCPCS}
_PROC_HCPCS = {"cardiac_cath": "93458", "central_line": "36556", "egd": "43239", "hip_replacement": "27130"}


def write_patient(ctx: Ctx, p: Patient) -> None:
    ctx.writer.add("hosp/patients", subject_id=p.subject_id, gender=p.gender, anchor_age=p.anchor_age,
                   anchor_year=p.anchor_year, anchor_year_group=p.anchor_year_group,
                   dod=clock.date(p.dod) if p.dod is not None else None)
    rows = []
    for ed in p.ed_visits:
        if ed.hadm_id is None:
            rows.append((ed.intime, 0, None, "ED", "Emergency Department", ed.intime, ed.outtime))
            rows.append((ed.outtime, 1, None, "discharge", None, ed.outtime, None))
    for adm in p.admissions:
        if adm.ed is not None:
            # the ED row ends when the first unit takes the patient (before ED outtime when an ICU bed is ready)
            rows.append((adm.ed.intime, 0, adm.hadm_id, "ED", "Emergency Department", adm.ed.intime,
                         min(adm.ed.outtime, adm.segments[0].intime)))
        for i, seg in enumerate(adm.segments):
            rows.append((seg.intime, 1, adm.hadm_id, "admit" if i == 0 else "transfer", seg.careunit, seg.intime,
                         seg.outtime))
        rows.append((adm.dischtime, 2, adm.hadm_id, "discharge", None, adm.dischtime, None))
    rows.sort(key=lambda r: (r[0], r[1]))
    for _, _, hadm, event, unit, tin, tout in rows:
        ctx.writer.add("hosp/transfers", subject_id=p.subject_id, hadm_id=hadm, transfer_id=ctx.next_id("transfer_id"),
                       eventtype=event, careunit=unit, intime=clock.ts(tin),
                       outtime=clock.ts(tout) if tout is not None else None)
    _omr(ctx, p)


def write_admission(ctx: Ctx, p: Patient, k: int, plan: CarePlan) -> None:
    adm = p.admissions[k]
    rng = plan_rng(ctx.seed, p, k, 2)
    w = ctx.writer
    w.add("hosp/admissions", subject_id=p.subject_id, hadm_id=adm.hadm_id, admittime=clock.ts(adm.admittime),
          dischtime=clock.ts(adm.dischtime), deathtime=clock.ts(adm.dischtime) if adm.died else None,
          admission_type=adm.admission_type, admit_provider_id=ctx.provider(rng),
          admission_location=adm.admission_location,
          discharge_location=adm.discharge_location if not adm.died else "DIED",
          insurance=p.insurance, language=p.language, marital_status=p.marital_status or None, race=p.race,
          edregtime=clock.ts(adm.ed.intime) if adm.ed else None,
          edouttime=clock.ts(adm.ed.outtime) if adm.ed else None,
          hospital_expire_flag=int(adm.died))
    _services(ctx, p, adm, rng)
    seen: set[str] = set()
    seq = 0
    for key in plan.diagnoses:
        code, _ = DIAGNOSES[key].pick(adm.icd_version)
        if code in seen:
            continue
        seen.add(code)
        seq += 1
        w.add("hosp/diagnoses_icd", subject_id=p.subject_id, hadm_id=adm.hadm_id, seq_num=seq, icd_code=code,
              icd_version=adm.icd_version)
    for seq, (key, t) in enumerate(plan.procedures, start=1):
        code, _ = PROCEDURES[key].pick(adm.icd_version)
        w.add("hosp/procedures_icd", subject_id=p.subject_id, hadm_id=adm.hadm_id, seq_num=seq,
              chartdate=clock.date(t), icd_code=code, icd_version=adm.icd_version)
    drg_code, desc = adm.condition.drg
    sev_level = int(np.clip(1 + round(adm.severity * 3 + rng.normal(0, 0.4)), 1, 4))
    mort_level = int(np.clip(sev_level + (1 if adm.died else 0) - int(rng.integers(0, 2)), 1, 4))
    w.add("hosp/drgcodes", subject_id=p.subject_id, hadm_id=adm.hadm_id, drg_type="HCFA", drg_code=drg_code,
          description=desc)
    w.add("hosp/drgcodes", subject_id=p.subject_id, hadm_id=adm.hadm_id, drg_type="APR",
          drg_code=f"{(int(drg_code) * 7) % 900 + 1:03d}", description=desc.title(), drg_severity=sev_level,
          drg_mortality=mort_level)
    codes = [("99223", adm.admittime)]
    if adm.icu_stays:
        codes.append(("99291", adm.icu_stays[0].intime))
    if "OBSERVATION" in adm.admission_type:
        codes.append(("G0378", adm.admittime))
    codes += [(_PROC_HCPCS[key], t) for key, t in plan.procedures if key in _PROC_HCPCS]
    for seq, (code, t) in enumerate(codes, start=1):
        w.add("hosp/hcpcsevents", subject_id=p.subject_id, hadm_id=adm.hadm_id, chartdate=clock.date(t),
              hcpcs_cd=code, seq_num=seq, short_description=_HCPCS_SHORT[code])


def _services(ctx: Ctx, p: Patient, adm: Admission, rng: np.random.Generator) -> None:
    service = adm.condition.service
    ctx.writer.add("hosp/services", subject_id=p.subject_id, hadm_id=adm.hadm_id,
                   transfertime=clock.ts(adm.admittime), prev_service=None, curr_service=service)
    if len(adm.segments) > 1 and service in ("MED", "CMED", "NMED") and rng.random() < 0.3:
        t = adm.segments[1].intime
        new = "SURG" if adm.condition.key == "gi_bleed" else ("CSURG" if service == "CMED" else "MED")
        if new != service:
            ctx.writer.add("hosp/services", subject_id=p.subject_id, hadm_id=adm.hadm_id,
                           transfertime=clock.ts(t), prev_service=service, curr_service=new)


def _omr(ctx: Ctx, p: Patient) -> None:
    """Outpatient vitals (omr): a clinic visit before each admission and a follow-up after survivors leave."""
    rng = plan_rng(ctx.seed, p, 0, 3)
    visits = []
    for adm in p.admissions:
        visits.append(adm.admittime - int(rng.uniform(20, 150) * DAY))
        if not adm.died:
            after = adm.dischtime + int(rng.uniform(7, 30) * DAY)
            if p.dod is None or after < p.dod:
                visits.append(after)
    if not p.admissions and p.ed_visits:
        visits.append(p.ed_visits[0].intime - int(rng.uniform(20, 150) * DAY))
    weight_lbs = p.weight_kg * 2.20462
    seq: dict[tuple[str, str], int] = {}
    for t in sorted(clock.midnight(v) for v in visits):
        day = clock.date(t)
        sbp = int(np.clip(rng.normal(132 if "hypertension" in p.chronic else 122, 12), 90, 190))
        dbp = int(np.clip(rng.normal(78, 8), 50, 110))
        wt = weight_lbs + rng.normal(0, 3)
        bmi = (wt * 0.453592) / ((p.height_in * 0.0254) ** 2)
        rows = [("Blood Pressure", f"{sbp}/{dbp}"), ("Weight (Lbs)", f"{wt:.1f}"), ("BMI (kg/m2)", f"{bmi:.1f}")]
        if rng.random() < 0.4:
            rows.append(("Height (Inches)", f"{p.height_in:.0f}"))
        for name, value in rows:
            seq[(day, name)] = seq.get((day, name), 0) + 1
            ctx.writer.add("hosp/omr", subject_id=p.subject_id, chartdate=day, seq_num=seq[(day, name)],
                           result_name=name, result_value=value)
