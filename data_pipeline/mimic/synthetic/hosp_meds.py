"""Order and medication tables of one admission: poe (+poe_detail), pharmacy, prescriptions, emar (+emar_detail).

Every medication order becomes one poe row (order_type ``Medications``), one pharmacy row and one prescriptions
row sharing ``poe_id``/``pharmacy_id``, and eMAR administrations at the drug's frequency. Non-drug orders (ADT,
lab, radiology, consults, nutrition, blood bank, respiratory) fill the rest of poe.
"""

from __future__ import annotations

import numpy as np

from data_pipeline.mimic.synthetic import clock
from data_pipeline.mimic.synthetic.care_plan import CarePlan, plan_rng
from data_pipeline.mimic.synthetic.clinical_course import Patient
from data_pipeline.mimic.synthetic.clock import HOUR
from data_pipeline.mimic.synthetic.context import Ctx
from data_pipeline.mimic.synthetic.drugs import DRUGS
from data_pipeline.mimic.synthetic.measurements import EXAMS

_CONSULT = {"CMED": "Cardiology", "NMED": "Neurology", "ORTHO": "Physical Therapy", "MED": "Social Work"}


class OrderSeq:
    """Per-patient sequence numbers for ``poe_id`` and ``emar_id`` (``{subject_id}-{n}``)."""

    def __init__(self, subject_id: int):
        self.subject_id = subject_id
        self.poe = 0
        self.emar = 0

    def next_poe(self) -> tuple[str, int]:
        self.poe += 1
        return f"{self.subject_id}-{self.poe}", self.poe

    def next_emar(self) -> tuple[str, int]:
        self.emar += 1
        return f"{self.subject_id}-{self.emar}", self.emar


def write_orders(ctx: Ctx, p: Patient, k: int, plan: CarePlan, seq: OrderSeq) -> None:
    adm = p.admissions[k]
    rng = plan_rng(ctx.seed, p, k, 6)
    w = ctx.writer
    # (time, order_type, order_subtype, detail rows, medication order or None)
    entries: list[tuple[int, str, str | None, tuple[tuple[str, str], ...], object]] = []
    entries.append((adm.admittime, "ADT orders", "Admit", (("Admit to", adm.segments[0].careunit),), None))
    for seg in adm.segments[1:]:
        entries.append((seg.intime - int(0.5 * HOUR), "ADT orders", "Transfer", (("Transfer to", seg.careunit),),
                        None))
    if not adm.died:
        entries.append((adm.dischtime - int(rng.uniform(1, 4) * HOUR), "ADT orders", "Discharge",
                        (("Discharge Planning", "Finalized"),), None))
    entries.append((adm.admittime + int(0.2 * HOUR), "General Care", "Vitals/Monitoring", (), None))
    entries.append((adm.admittime + int(0.4 * HOUR), "Nutrition", "Diet", (), None))
    entries.append((adm.admittime + int(0.1 * HOUR), "Lab", None, (), None))
    for key, t in plan.exams:
        sub = "CT" if EXAMS[key][1].startswith("CT") else "General Xray"
        entries.append((t - int(0.3 * HOUR), "Radiology", sub, (), None))
    for key, t in plan.procedures:
        if key == "transfusion":
            entries.append((t - int(0.5 * HOUR), "Blood Bank", None, (), None))
        if key in ("intubation", "ventilation"):
            entries.append((t, "Respiratory", "Invasive ventilation", (), None))
    consult = _CONSULT.get(adm.condition.service)
    if consult and rng.random() < 0.6:
        entries.append((adm.admittime + int(rng.uniform(3, 30) * HOUR), "Consults", consult,
                        (("Consult Status", "Ordered"),), None))
    for order in plan.orders:
        entries.append((order.start - int(rng.uniform(0.1, 0.6) * HOUR), "Medications", None, (), order))
    entries.sort(key=lambda e: e[0])
    for t, order_type, subtype, details, order in entries:
        poe_id, poe_seq = seq.next_poe()
        provider = ctx.provider(rng)
        t = max(t, adm.admittime)
        w.add("hosp/poe", poe_id=poe_id, poe_seq=poe_seq, subject_id=p.subject_id, hadm_id=adm.hadm_id,
              ordertime=clock.ts(t), order_type=order_type, order_subtype=subtype, transaction_type="New",
              order_provider_id=provider, order_status="Inactive")
        for name, value in details:
            w.add("hosp/poe_detail", poe_id=poe_id, poe_seq=poe_seq, subject_id=p.subject_id, field_name=name,
                  field_value=value)
        if order is not None:
            _medication(ctx, p, adm.hadm_id, order, t, poe_id, poe_seq, provider, rng, seq)


def _medication(ctx: Ctx, p: Patient, hadm_id: int, order, ordertime: int, poe_id: str, poe_seq: int,
                provider: str, rng: np.random.Generator, seq: OrderSeq) -> None:
    d = DRUGS[order.drug]
    w = ctx.writer
    pharmacy_id = ctx.next_id("pharmacy_id")
    start, stop = order.start, order.stop
    iv = d.route.startswith("IV")
    proc_type = "IV Piggyback" if iv and d.form_rx in ("BAG", "VIAL") else ("IV Large Volume" if d.drug_type == "BASE"
                                                                             else "Unit Dose")
    status = "Discontinued" if rng.random() < 0.5 else "Expired"
    w.add("hosp/pharmacy", subject_id=p.subject_id, hadm_id=hadm_id, pharmacy_id=pharmacy_id, poe_id=poe_id,
          starttime=clock.ts(start), stoptime=clock.ts(stop), medication=d.name, proc_type=proc_type, status=status,
          entertime=clock.ts(ordertime), verifiedtime=clock.ts(ordertime + int(rng.uniform(0.1, 1) * HOUR)),
          route=d.route, frequency=d.frequency, disp_sched=None, infusion_type="C" if d.route == "IV DRIP" else None,
          sliding_scale="N", doses_per_24_hrs=repr(float(d.per_day)), duration=None, duration_interval="Ongoing",
          expiration_value=36, expiration_unit="Hours", dispensation="Omnicell", fill_quantity=None)
    w.add("hosp/prescriptions", subject_id=p.subject_id, hadm_id=hadm_id, pharmacy_id=pharmacy_id, poe_id=poe_id,
          poe_seq=poe_seq, order_provider_id=provider, starttime=clock.ts(start), stoptime=clock.ts(stop),
          drug_type=d.drug_type, drug=d.name, formulary_drug_cd=d.key.upper()[:10], gsn=d.gsn, ndc=d.ndc,
          prod_strength=d.strength, form_rx=d.form_rx, dose_val_rx=d.dose, dose_unit_rx=d.dose_unit,
          form_val_disp=d.form_val, form_unit_disp=d.form_unit, doses_per_24_hrs=repr(float(d.per_day)),
          route=d.route)
    if not (ctx.wants("hosp/emar") or ctx.wants("hosp/emar_detail")):
        return
    step = 24 * HOUR // max(d.per_day, 1)
    n = int(max(1, min((stop - start) // step, ctx.preset.max_emar_per_rx)))
    for i in range(n):
        sched = start + i * step
        chart = sched + int(rng.uniform(-0.3, 0.8) * HOUR)
        emar_id, emar_seq = seq.next_emar()
        r = rng.random()
        event = "Administered" if r < 0.92 else ("Not Given" if r < 0.96 else ("Held" if r < 0.98 else "Flushed"))
        w.add("hosp/emar", subject_id=p.subject_id, hadm_id=hadm_id, emar_id=emar_id, emar_seq=emar_seq,
              poe_id=poe_id, pharmacy_id=pharmacy_id, enter_provider_id=None, charttime=clock.ts(chart),
              medication=d.name, event_txt=event, scheduletime=clock.ts(sched),
              storetime=clock.ts(chart + int(rng.uniform(0, 0.5) * HOUR)))
        w.add("hosp/emar_detail", subject_id=p.subject_id, emar_id=emar_id, emar_seq=emar_seq,
              parent_field_ordinal=None, administration_type="IV Infusion" if d.route == "IV DRIP" else "Standard",
              pharmacy_id=pharmacy_id, barcode_type="if", complete_dose_not_given="" if event == "Administered"
              else "No", route=d.route)
        if event == "Administered":
            w.add("hosp/emar_detail", subject_id=p.subject_id, emar_id=emar_id, emar_seq=emar_seq,
                  parent_field_ordinal="1.1", dose_due=d.dose, dose_due_unit=d.dose_unit, dose_given=d.dose,
                  dose_given_unit=d.dose_unit, product_amount_given=d.form_val, product_unit=d.form_unit,
                  product_code=d.key.upper()[:10],
                  product_description=f"{d.name} {d.strength}")
