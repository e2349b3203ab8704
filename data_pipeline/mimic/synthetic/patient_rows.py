"""All rows of one patient, in every table of the modules being written."""

from __future__ import annotations

import numpy as np

from data_pipeline.mimic.synthetic.care_plan import make_plan
from data_pipeline.mimic.synthetic.clinical_course import build_patient
from data_pipeline.mimic.synthetic.context import Ctx
from data_pipeline.mimic.synthetic.ed_rows import write_ed_visit
from data_pipeline.mimic.synthetic.hosp_core import write_admission, write_patient
from data_pipeline.mimic.synthetic.hosp_labs import write_ed_labs, write_labs, write_micro
from data_pipeline.mimic.synthetic.hosp_meds import OrderSeq, write_orders
from data_pipeline.mimic.synthetic.icu_chart import write_chartevents, write_icustays
from data_pipeline.mimic.synthetic.icu_events import write_inputs, write_outputs, write_procedures
from data_pipeline.mimic.synthetic.notes import NoteSeq, write_discharge, write_radiology


def write_patient_rows(ctx: Ctx, idx: int) -> None:
    p = build_patient(ctx.seed, idx)
    write_patient(ctx, p)
    orders = OrderSeq(p.subject_id)
    notes = NoteSeq(p.subject_id)
    icu_on, ed_on, note_on = (ctx.wants("icu/icustays"), ctx.wants("ed/edstays"), ctx.wants("note/discharge"))
    # encounters in time order: ED-only visits and admissions (with their own ED visit)
    encounters = [(ed.intime, "ed", ed) for ed in p.ed_visits if ed.hadm_id is None]
    encounters += [(a.ed.intime if a.ed else a.admittime, "adm", k) for k, a in enumerate(p.admissions)]
    encounters.sort(key=lambda e: (e[0], e[1]))
    stay_no = 0
    for _, kind, item in encounters:
        if kind == "ed":
            rng = np.random.default_rng([ctx.seed, p.idx, 10, item.stay_id])
            version = 10 if rng.random() < 0.65 else 9
            complaint = str(rng.choice(item.condition.complaints))
            write_ed_labs(ctx, p, item)
            if ed_on:
                write_ed_visit(ctx, p, item, version)
            if note_on and item.condition.exams and rng.random() < 0.5:
                t = item.intime + int(rng.uniform(0.5, 0.9) * (item.outtime - item.intime))
                write_radiology(ctx, p, None, [(item.condition.exams[0], t)], item.condition.key, complaint, notes,
                                rng, 0.3)
            continue
        k = item
        adm = p.admissions[k]
        plan = make_plan(ctx.seed, p, k)
        rng = np.random.default_rng([ctx.seed, p.idx, 11, k])
        complaint = str(rng.choice(adm.condition.complaints))
        write_admission(ctx, p, k, plan)
        write_labs(ctx, p, k, plan)
        write_micro(ctx, p, k, plan)
        write_orders(ctx, p, k, plan, orders)
        if ed_on and adm.ed is not None:
            write_ed_visit(ctx, p, adm.ed, adm.icd_version)
        if icu_on:
            write_icustays(ctx, p, adm)
            for stay in adm.icu_stays:
                stay_no += 1
                write_chartevents(ctx, p, adm, plan, stay_no, stay)
                write_inputs(ctx, p, adm, stay_no, stay)
                write_outputs(ctx, p, adm, stay_no, stay)
                write_procedures(ctx, p, adm, plan, stay_no, stay)
        if note_on:
            write_radiology(ctx, p, adm.hadm_id, list(plan.exams), adm.condition.key, complaint, notes, rng,
                            0.5 + 0.4 * adm.severity)
            write_discharge(ctx, p, k, plan, complaint, notes)
