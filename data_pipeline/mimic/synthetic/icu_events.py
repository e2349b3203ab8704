"""icu input/ingredient/output/procedure/datetime events of one ICU stay.

Infusions are chosen from the condition and the stay (pressors for septic shock, sedation when ventilated,
insulin for DKA, heparin for ACS/AF, blood for GI bleeding, ...). A continuous infusion is split into segments
of ``VolumePreset.infusion_segment_h`` hours with a drifting rate, the way MIMIC records rate changes
(new ``orderid`` per segment, shared ``linkorderid``); the rows are emitted column-wise.
"""

from __future__ import annotations

import numpy as np

from data_pipeline.mimic.synthetic import clock
from data_pipeline.mimic.synthetic.care_plan import CarePlan, plan_rng
from data_pipeline.mimic.synthetic.clinical_course import Admission, Patient, Segment
from data_pipeline.mimic.synthetic.clock import DAY, HOUR
from data_pipeline.mimic.synthetic.context import Ctx
from data_pipeline.mimic.synthetic.measurements import (ART_LINE_SEVERITY, DATETIME_ITEMS, INGREDIENT_ITEMS,
                                                        INPUT_ITEMS, OUTPUT_ITEMS,
                                                        PROCEDURE_ITEMS)

_S = np.dtypes.StringDType()
#: continuous drips: key -> (typical rate, rate sd) in the item's rate unit
_DRIPS = {"ns": (100.0, 25.0), "d5w": (50.0, 10.0), "norepinephrine": (0.12, 0.05), "vasopressin": (2.4, 0.0),
          "propofol": (30.0, 10.0), "fentanyl": (75.0, 25.0), "heparin": (1000.0, 200.0), "insulin": (5.0, 2.0)}
#: boluses: key -> (amount, every hours)
_BOLUS = {"vancomycin": (1.0, 12.0), "piptazo": (1.0, 8.0), "furosemide": (40.0, 12.0), "prbc": (350.0, 6.0)}


def infusion_plan(adm: Admission, stay: Segment, rng: np.random.Generator) -> list[tuple[str, int, int]]:
    """(input key, start, end) for one ICU stay."""
    key = adm.condition.key
    dur = stay.outtime - stay.intime
    dying = adm.died and stay.outtime == adm.dischtime
    out: list[tuple[str, int, int]] = []

    def add(item: str, start_h: float, days: float) -> None:
        s = stay.intime + int(start_h * HOUR)
        e = min(stay.outtime, s + int(days * DAY))
        if e - s >= HOUR:
            out.append((item, s, e))

    if key in ("sepsis", "aki", "dka", "gi_bleed", "pneumonia") or rng.random() < 0.3:
        add("ns", 0.2, rng.uniform(0.5, 2.0))
    if (key in ("sepsis", "pneumonia") and adm.severity > 0.55) or dying:
        add("norepinephrine", rng.uniform(0.5, 3), rng.uniform(0.5, 3.0) if not dying else 30)
        if dying and rng.random() < 0.6:
            add("vasopressin", rng.uniform(4, 12), 30)
    if adm.ventilated:
        add("propofol", rng.uniform(0.5, 4), rng.uniform(1, 4))
        add("fentanyl", rng.uniform(0.5, 4), rng.uniform(1, 4))
    if key in ("nstemi", "afib_rvr"):
        add("heparin", rng.uniform(0.5, 3), rng.uniform(1, 2.5))
    if key == "dka":
        add("insulin", 0.5, rng.uniform(0.5, 1.5))
    if key in ("sepsis", "pneumonia"):
        add("vancomycin", rng.uniform(0.5, 2), 7)
        add("piptazo", rng.uniform(0.5, 2), 7)
    if key == "chf":
        add("furosemide", rng.uniform(0.5, 3), 7)
    if key == "gi_bleed":
        add("prbc", rng.uniform(0.5, 2), rng.uniform(0.3, 1.0))
    if dur > 2 * DAY and rng.random() < 0.5:
        add("d5w", 24, 3)
    return out


def _amount(item: str, rate: np.ndarray, hours: np.ndarray, weight: float) -> np.ndarray:
    rateuom = INPUT_ITEMS[item][6]
    if rateuom == "mcg/kg/min":
        return rate * weight * 60 * hours / 1000.0  # mg
    if rateuom == "mcg/hour":
        return rate * hours / 1000.0  # mg
    return rate * hours  # mL or units


def write_inputs(ctx: Ctx, p: Patient, adm: Admission, stay_no: int, stay: Segment) -> None:
    rng = plan_rng(ctx.seed, p, 1000 * stay_no + 2, 7)
    seg_s = ctx.preset.infusion_segment_h * HOUR
    cols: dict[str, list] = {c: [] for c in ("start", "end", "item", "amount", "rate", "orderid", "link", "status",
                                             "total")}
    for item, s, e in infusion_plan(adm, stay, rng):
        if item in _BOLUS:
            amount, every = _BOLUS[item]
            starts = np.arange(s, e, every * HOUR, dtype=np.int64)
            ends = starts + int(0.5 * HOUR) if item != "prbc" else starts + 2 * HOUR
            amounts = np.full(len(starts), amount)
            rates = np.full(len(starts), np.nan)
        else:
            starts = np.arange(s, e, seg_s, dtype=np.int64)
            ends = np.minimum(starts + int(seg_s), e)
            mu, sd = _DRIPS[item]
            rates = np.maximum(mu + sd * np.cumsum(rng.standard_normal(len(starts))) / 2.0, mu * 0.2)
            rates = np.round(rates, 3)
            amounts = _amount(item, rates, (ends - starts) / HOUR, p.weight_kg)
        n = len(starts)
        oid = ctx.id_block("orderid", n)
        status = np.full(n, "ChangeDose/Rate", dtype=object)
        status[-1] = "FinishedRunning" if rng.random() < 0.7 else "Stopped"
        if item in _BOLUS:
            status[:] = "FinishedRunning"
        cols["start"].append(starts)
        cols["end"].append(ends)
        cols["item"].append(np.full(n, item, dtype=object))
        cols["amount"].append(np.round(amounts, 3))
        cols["rate"].append(rates)
        cols["orderid"].append(oid)
        cols["link"].append(np.full(n, oid[0]) if item not in _BOLUS else oid)
        cols["status"].append(status)
        cols["total"].append(np.full(n, 1000.0 if item in ("ns", "d5w") else (350.0 if item == "prbc" else 100.0)))
    if not cols["start"]:
        return
    c = {k: np.concatenate(v) for k, v in cols.items()}
    n = len(c["start"])
    meta = [INPUT_ITEMS[i] for i in c["item"]]
    has_rate = ~np.isnan(c["rate"])
    rate_s = np.where(has_rate, clock.num_array(np.nan_to_num(c["rate"]), 3), "").astype(_S)
    amount_s = clock.num_array(c["amount"], 3)
    nurse = clock.int_array(rng.choice(np.array(ctx.caregivers), n))
    store = c["start"] + rng.integers(60, 3600, n)
    common = {"subject_id": str(p.subject_id), "hadm_id": str(adm.hadm_id), "stay_id": str(stay.stay_id),
              "caregiver_id": nurse, "starttime": clock.ts_array(c["start"]), "endtime": clock.ts_array(c["end"]),
              "storetime": clock.ts_array(store), "orderid": c["orderid"].astype(_S),
              "linkorderid": c["link"].astype(np.int64).astype(_S), "statusdescription": c["status"].astype(_S)}
    ctx.writer.add_columns("icu/inputevents", n, {
        **common, "itemid": np.array([str(m[0]) for m in meta], dtype=_S), "amount": amount_s,
        "amountuom": np.array([m[2] for m in meta], dtype=_S), "rate": rate_s,
        "rateuom": np.where(has_rate, np.array([m[6] for m in meta], dtype=_S), "").astype(_S),
        "ordercategoryname": np.array([m[4] for m in meta], dtype=_S),
        "secondaryordercategoryname": np.where(has_rate & ~np.isin(c["item"], ("ns", "d5w")),
                                               "02-Fluids (Crystalloids)", "").astype(_S),
        "ordercomponenttypedescription": "Main order parameter",
        "ordercategorydescription": np.array([m[5] for m in meta], dtype=_S),
        "patientweight": repr(p.weight_kg), "totalamount": clock.num_array(c["total"], 0), "totalamountuom": "mL",
        "isopenbag": np.where(has_rate, "1", "0").astype(_S), "continueinnextdept": "0",
        "originalamount": amount_s, "originalrate": rate_s,
    })
    fluid = np.isin(c["item"], ("ns", "d5w", "prbc"))
    if fluid.any() and ctx.wants("icu/ingredientevents"):
        itemid, _, uom, _ = INGREDIENT_ITEMS["water"]
        volume = np.where(c["item"] == "prbc", c["amount"] * 0.6, c["amount"])[fluid]
        water_s = clock.num_array(volume, 3)
        k = int(fluid.sum())
        ctx.writer.add_columns("icu/ingredientevents", k, {
            **{key: (val[fluid] if isinstance(val, np.ndarray) else val) for key, val in common.items()},
            "itemid": str(itemid), "amount": water_s, "amountuom": uom, "rate": rate_s[fluid],
            "rateuom": np.where(has_rate[fluid], "mL/hour", "").astype(_S), "originalamount": water_s,
            "originalrate": rate_s[fluid],
        })


def write_outputs(ctx: Ctx, p: Patient, adm: Admission, stay_no: int, stay: Segment) -> None:
    rng = plan_rng(ctx.seed, p, 1000 * stay_no + 3, 7)
    step = ctx.preset.output_interval_h * HOUR
    t = np.arange(stay.intime + step, stay.outtime, step, dtype=np.int64)
    if len(t) == 0:
        return
    foley = adm.severity > 0.3 or rng.random() < 0.5
    itemid = OUTPUT_ITEMS["foley" if foley else "void"][0]
    per_h = 20.0 if adm.condition.key == "aki" else 60.0
    if adm.died and stay.outtime == adm.dischtime:
        per_h = per_h * np.maximum(1.0 - (t - stay.intime) / max(stay.outtime - stay.intime, 1), 0.1)
    vol = np.maximum(per_h * ctx.preset.output_interval_h * np.exp(0.3 * rng.standard_normal(len(t))), 5.0)
    n = len(t)
    ctx.writer.add_columns("icu/outputevents", n, {
        "subject_id": str(p.subject_id), "hadm_id": str(adm.hadm_id), "stay_id": str(stay.stay_id),
        "caregiver_id": clock.int_array(rng.choice(np.array(ctx.caregivers), n)),
        "charttime": clock.ts_array(t), "storetime": clock.ts_array(t + rng.integers(60, 3600, n)),
        "itemid": str(itemid), "value": clock.num_array(vol, 0), "valueuom": "mL",
    })


def write_procedures(ctx: Ctx, p: Patient, adm: Admission, plan: CarePlan, stay_no: int, stay: Segment) -> None:
    rng = plan_rng(ctx.seed, p, 1000 * stay_no + 4, 7)
    rows: list[tuple[str, int, int]] = []
    inside = [(k, t) for k, t in plan.procedures if stay.intime <= t < stay.outtime]
    for key, t in inside:
        if key == "intubation":
            rows.append(("ventilation", t, min(stay.outtime, t + int(rng.uniform(1, 5) * DAY))))
        elif key == "central_line":
            rows.append(("central_line", t, stay.outtime))
        elif key == "hemodialysis":
            rows.append(("crrt", t, min(stay.outtime, t + int(rng.uniform(0.5, 3) * DAY))))
    if adm.severity > ART_LINE_SEVERITY:
        rows.append(("art_line", stay.intime + int(rng.uniform(0.5, 3) * HOUR), stay.outtime))
    if adm.condition.key == "copd_exac" and not adm.ventilated:
        rows.append(("niv", stay.intime + int(0.5 * HOUR), stay.intime + int(rng.uniform(4, 30) * HOUR)))
    rows += [("cxr", t, t + 60) for k, t in plan.exams if k == "cxr_portable" and stay.intime <= t < stay.outtime]
    rows += [("culture", c.time, c.time + 60) for c in plan.cultures if stay.intime <= c.time < stay.outtime]
    rows = [(k, s, min(e, stay.outtime)) for k, s, e in rows if s < stay.outtime]
    rows.sort(key=lambda r: r[1])
    for key, s, e in rows:
        itemid, _, uom, _, loc, loccat, ordercat = PROCEDURE_ITEMS[key]
        value = repr(float(round((e - s) / 60))) if uom == "min" else "1.0"
        oid = ctx.next_id("orderid")
        ctx.writer.add("icu/procedureevents", subject_id=p.subject_id, hadm_id=adm.hadm_id, stay_id=stay.stay_id,
                       caregiver_id=ctx.caregiver(rng), starttime=clock.ts(s), endtime=clock.ts(e),
                       storetime=clock.ts(e + int(rng.uniform(1, 60) * 60)), itemid=itemid, value=value,
                       valueuom=uom, location=loc or None, locationcategory=loccat or None, orderid=oid,
                       linkorderid=oid, ordercategoryname=ordercat,
                       ordercategorydescription="Task" if key in ("cxr", "culture") else "Process",
                       patientweight=repr(p.weight_kg), isopenbag=0, continueinnextdept=0,
                       statusdescription="FinishedRunning", ORIGINALAMOUNT=value, ORIGINALRATE="0")
        if key in DATETIME_ITEMS:
            d_item, _, _ = DATETIME_ITEMS[key]
            ctx.writer.add("icu/datetimeevents", subject_id=p.subject_id, hadm_id=adm.hadm_id,
                           stay_id=stay.stay_id, caregiver_id=ctx.caregiver(rng), charttime=clock.ts(s + 600),
                           storetime=clock.ts(s + 900), itemid=d_item, value=clock.ts(s),
                           valueuom="Date and Time", warning=0)
    t = stay.intime + int(rng.uniform(2, 10) * HOUR)
    while t < stay.outtime:
        ctx.writer.add("icu/datetimeevents", subject_id=p.subject_id, hadm_id=adm.hadm_id, stay_id=stay.stay_id,
                       caregiver_id=ctx.caregiver(rng), charttime=clock.ts(t), storetime=clock.ts(t + 300),
                       itemid=DATETIME_ITEMS["last_bm"][0], value=clock.date(t - int(rng.uniform(0, 2) * DAY))
                       + " 00:00:00", valueuom="Date", warning=0)
        t += DAY
