"""What was done during one admission: medications, ICD procedures, radiology exams, cultures, lab shifts.

Derived from the admission record with its own random stream ``(seed, patient, 1, admission)`` so that the hosp
tables, the ICU tables and the notes all describe the same care whatever modules are written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_pipeline.mimic.synthetic.clinical_course import Patient
from data_pipeline.mimic.synthetic.clock import DAY, HOUR
from data_pipeline.mimic.synthetic.measurements import EXAMS, ORGANISM_PANELS, SPECIMENS
from data_pipeline.mimic.synthetic.vocabulary import CHRONIC

_CHRONIC = {c.key: c for c in CHRONIC}
_ANTIBIOTIC_DRUGS = {"vancomycin", "piptazo", "ceftriaxone", "azithromycin", "cefazolin", "nitrofurantoin"}


@dataclass(frozen=True)
class Order:
    drug: str
    start: int
    stop: int


@dataclass(frozen=True)
class Culture:
    specimen: str
    time: int
    organism: str | None
    resistant: tuple[str, ...]  # antibiotics the organism resists


@dataclass(frozen=True)
class CarePlan:
    orders: tuple[Order, ...]
    procedures: tuple[tuple[str, int], ...]  # (PROCEDURES key, time)
    exams: tuple[tuple[str, int], ...]  # (EXAMS key, time)
    cultures: tuple[Culture, ...]
    lab_shift: dict[str, float]  # lab key -> shift at admission (half-range units)
    diagnoses: tuple[str, ...]  # DIAGNOSES keys in seq_num order


def plan_rng(seed: int, p: Patient, k: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, p.idx, stream, k])


def make_plan(seed: int, p: Patient, k: int) -> CarePlan:
    adm = p.admissions[k]
    rng = plan_rng(seed, p, k, 1)
    cond = adm.condition
    t0, t1 = adm.admittime, adm.dischtime
    los = t1 - t0
    icu = adm.icu_stays
    orders = []
    for key in cond.drugs:
        start = t0 + int(rng.uniform(0.2, 6) * HOUR)
        if key in _ANTIBIOTIC_DRUGS or key.endswith("_iv") or key in {"ns", "prbc", "potassium_chloride"}:
            stop = start + int(rng.uniform(1, 7) * DAY)
        else:
            stop = t1
        orders.append(Order(key, min(start, t1 - HOUR), max(min(stop, t1), min(start, t1 - HOUR) + HOUR)))
    for ck in p.chronic:
        for key in _CHRONIC[ck].home_drugs:
            if key not in cond.drugs:
                start = t0 + int(rng.uniform(4, 14) * HOUR)
                start = min(start, t1 - HOUR)
                orders.append(Order(key, start, t1))
    procedures = []
    for key in cond.procedures:
        if key in {"intubation", "central_line"} and not icu:
            continue
        if rng.random() < 0.6:
            procedures.append((key, t0 + int(rng.uniform(0.05, 0.6) * los)))
    if icu:
        if adm.ventilated:
            procedures.append(("intubation", icu[0].intime + int(rng.uniform(0.5, 4) * HOUR)))
            if icu[0].outtime - icu[0].intime > 4 * DAY:
                procedures.append(("ventilation", icu[0].intime + int(1 * HOUR)))
        if rng.random() < 0.6 and not any(k_ == "central_line" for k_, _ in procedures):
            procedures.append(("central_line", icu[0].intime + int(rng.uniform(0.5, 6) * HOUR)))
    procedures.sort(key=lambda x: x[1])
    exams = []
    first = adm.ed.intime + int(0.5 * HOUR) if adm.ed is not None else t0 + int(2 * HOUR)
    for i, key in enumerate(cond.exams):
        if i == 0 or rng.random() < 0.5:
            exams.append((key, first + int(rng.uniform(0, 1.0 if i == 0 else 0.5 * los / HOUR) * HOUR)))
    for stay in icu:
        exams.append(("cxr_portable", stay.intime + int(rng.uniform(0.5, 3) * HOUR)))
    exams.sort(key=lambda x: x[1])
    cultures = []
    specs = list(cond.micro) + (["mrsa"] if icu else [])
    for spec in specs:
        org = None
        resistant: tuple[str, ...] = ()
        if spec != "mrsa" and rng.random() < 0.5 or spec == "mrsa" and rng.random() < 0.1:
            orgs = SPECIMENS[spec][4]
            org = orgs[int(rng.integers(len(orgs)))]
            panel = ORGANISM_PANELS[org]
            resistant = tuple(a for a in panel if rng.random() < 0.2)
        cultures.append(Culture(spec, t0 + int(rng.uniform(0.1, 8) * HOUR), org, resistant))
    scale = 0.5 + adm.severity
    shift: dict[str, float] = {}
    for lab, s in cond.labs:
        shift[lab] = shift.get(lab, 0.0) + s * scale
    for ck in p.chronic:
        for lab, s in _CHRONIC[ck].labs:
            shift[lab] = shift.get(lab, 0.0) + s
    diagnoses = [cond.key, *cond.secondary]
    if adm.died and cond.key == "sepsis":
        diagnoses.append("septic_shock")
    if adm.ventilated:
        diagnoses.append("resp_failure")
    if shift.get("na", 0.0) < -1.5:
        diagnoses.append("hyponatremia")
    diagnoses += [c for c in p.chronic]
    seen: set[str] = set()
    ordered = []
    for d in diagnoses:
        if d not in seen:
            seen.add(d)
            ordered.append(d)
    assert all(e in EXAMS for e, _ in exams)
    return CarePlan(tuple(orders), tuple(procedures), tuple(exams), tuple(cultures), shift, tuple(ordered))
