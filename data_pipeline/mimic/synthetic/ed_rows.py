"""ed module rows of one ED visit: edstays, triage, vitalsign, pyxis, medrecon, diagnosis."""

from __future__ import annotations

import numpy as np

from data_pipeline.mimic.synthetic import clock
from data_pipeline.mimic.synthetic.clinical_course import EdVisit, Patient
from data_pipeline.mimic.synthetic.clock import HOUR
from data_pipeline.mimic.synthetic.context import Ctx
from data_pipeline.mimic.synthetic.drugs import DRUGS
from data_pipeline.mimic.synthetic.icu_chart import VITAL_SCALE_BASE, VITAL_SCALE_SEV
from data_pipeline.mimic.synthetic.measurements import VITALS
from data_pipeline.mimic.synthetic.vocabulary import CHRONIC, DIAGNOSES

_HOME = {c.key: c.home_drugs for c in CHRONIC}


def ed_vitals(visit: EdVisit, frac: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """ED vitals (temperature, heartrate, resprate, o2sat, sbp, dbp) at fractions of the visit (0 = triage)."""
    shifts = dict(visit.condition.vitals)
    scale = (VITAL_SCALE_BASE + VITAL_SCALE_SEV * visit.severity) * (1.0 - 0.4 * frac)
    out = {}
    for col, key in (("temperature", "temp"), ("heartrate", "hr"), ("resprate", "rr"), ("o2sat", "spo2"),
                     ("sbp", "sbp"), ("dbp", "dbp")):
        m = VITALS[key]
        s = shifts.get(key, 0.0) + (0.7 * shifts.get("map", 0.0) if key in ("sbp", "dbp") else 0.0)
        center, half = (m.lo + m.hi) / 2.0, (m.hi - m.lo) / 2.0
        v = center + half * (s * scale + 0.4 * rng.standard_normal(len(frac)))
        if key == "spo2":
            v = np.minimum(v, 100.0)
        out[col] = np.round(np.maximum(v, 1.0), m.decimals)
    out["dbp"] = np.minimum(out["dbp"], out["sbp"] - 15)
    return out


def _fmt(v: float, col: str) -> str:
    return clock.num(v, 1 if col == "temperature" else 0)


def write_ed_visit(ctx: Ctx, p: Patient, visit: EdVisit, version: int) -> None:
    rng = np.random.default_rng([ctx.seed, p.idx, 8, visit.stay_id])
    w = ctx.writer
    cond = visit.condition
    sid = p.subject_id
    w.add("ed/edstays", subject_id=sid, hadm_id=visit.hadm_id, stay_id=visit.stay_id, intime=clock.ts(visit.intime),
          outtime=clock.ts(visit.outtime), gender=p.gender, race=p.race, arrival_transport=visit.arrival,
          disposition=visit.disposition)
    n_complaints = 1 + int(rng.random() < 0.35)
    complaints = ", ".join(list(dict.fromkeys(rng.choice(cond.complaints, n_complaints).tolist())))
    pain = str(int(np.clip(rng.normal(5 if "pain" in complaints.lower() else 2, 2.5), 0, 10)))
    if rng.random() < 0.05:
        pain = "UTA"
    step = ctx.preset.ed_vitals_interval_h * HOUR
    times = np.arange(visit.intime + 300, visit.outtime, step, dtype=np.int64)
    frac = np.concatenate([[0.0], (times - visit.intime) / max(visit.outtime - visit.intime, 1)])
    vit = ed_vitals(visit, frac, rng)
    w.add("ed/triage", subject_id=sid, stay_id=visit.stay_id,
          **{col: _fmt(vit[col][0], col) for col in ("temperature", "heartrate", "resprate", "o2sat", "sbp", "dbp")},
          pain=pain, acuity=repr(float(visit.acuity)), chiefcomplaint=complaints)
    afib = cond.key == "afib_rvr" or "chronic_afib" in p.chronic
    for i, t in enumerate(times, start=1):
        rhythm = ("Atrial Fibrillation" if afib else "Sinus Rhythm") if rng.random() < 0.3 else None
        w.add("ed/vitalsign", subject_id=sid, stay_id=visit.stay_id, charttime=clock.ts(t),
              **{col: _fmt(vit[col][i], col) for col in ("temperature", "heartrate", "resprate", "o2sat", "sbp",
                                                         "dbp")},
              rhythm=rhythm, pain=str(max(0, int(pain) - i)) if pain != "UTA" else pain)
    home = [d for ck in p.chronic for d in _HOME[ck]]
    if home:
        t = visit.intime + int(rng.uniform(0.2, 1.0) * HOUR)
        for key in dict.fromkeys(home):
            d = DRUGS[key]
            w.add("ed/medrecon", subject_id=sid, stay_id=visit.stay_id, charttime=clock.ts(t), name=d.pyxis,
                  gsn=d.gsn, ndc=d.ndc, etc_rn=1, etccode=d.etc[0], etcdescription=d.etc[1])
    med_rn = 0
    for key in cond.ed_meds:
        if rng.random() < 0.8:
            med_rn += 1
            d = DRUGS[key]
            t = min(visit.intime + int(rng.uniform(0.3, 3.0) * HOUR), visit.outtime - 60)
            w.add("ed/pyxis", subject_id=sid, stay_id=visit.stay_id, charttime=clock.ts(t), med_rn=med_rn,
                  name=d.pyxis, gsn_rn=1, gsn=d.gsn)
    codes = [cond.key] + [c for c in p.chronic if rng.random() < 0.3][:2]
    seen: set[str] = set()
    seq = 0
    for key in codes:
        code, title = DIAGNOSES[key].pick(version)
        if code in seen:
            continue
        seen.add(code)
        seq += 1
        w.add("ed/diagnosis", subject_id=sid, stay_id=visit.stay_id, seq_num=seq, icd_code=code, icd_version=version,
              icd_title=title)
