"""labevents (vectorised with numpy) and microbiologyevents for one admission.

Lab values follow the admission's lab shifts (condition + comorbidities, see :mod:`.care_plan`): they start
abnormal in the condition's direction, recover towards normal for survivors and worsen for patients who die.
``flag`` is ``abnormal`` exactly when the printed value lies outside [ref_range_lower, ref_range_upper].
"""

from __future__ import annotations

import numpy as np

from data_pipeline.mimic.synthetic import clock
from data_pipeline.mimic.synthetic.care_plan import CarePlan, plan_rng
from data_pipeline.mimic.synthetic.clinical_course import Admission, EdVisit, Patient
from data_pipeline.mimic.synthetic.clock import HOUR
from data_pipeline.mimic.synthetic.context import Ctx
from data_pipeline.mimic.synthetic.measurements import (ANTIBIOTICS, LAB_CORE, LAB_EXTRA, LAB_FOLLOWUP, LABS,
                                                        ORGANISM_PANELS, ORGANISMS, SPECIMENS, value_model)
from data_pipeline.mimic.synthetic.vocabulary import CHRONIC

_CHRONIC_LABS = {c.key: c.labs for c in CHRONIC}
_KEYS = tuple(LABS)
_POS = {k: i for i, k in enumerate(_KEYS)}
_LO = np.array([LABS[k].lo for k in _KEYS])
_HI = np.array([LABS[k].hi for k in _KEYS])
_DEC = np.array([LABS[k].decimals for k in _KEYS])
_LOG = np.array([LABS[k].log for k in _KEYS])
_ITEMID = np.array([str(LABS[k].itemid) for k in _KEYS], dtype=object)
_UOM = np.array([LABS[k].unit for k in _KEYS], dtype=object)
_LO_S = np.array([repr(float(v)) for v in _LO], dtype=object)
_HI_S = np.array([repr(float(v)) for v in _HI], dtype=object)


def lab_values(idx: np.ndarray, shift: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Values of lab items ``idx`` (positions in LABS) given shifts and standard-normal noise; see
    :func:`.measurements.values_for` (this is its vectorised form over mixed items)."""
    return value_model(_LO[idx], _HI[idx], _DEC[idx], _LOG[idx], shift, z)


def _format(values: np.ndarray, dec: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for d in np.unique(dec):
        m = dec == d
        out[m] = clock.num_array(values[m], int(d))
    return out


def draw_times(adm: Admission, t0: int, interval_ward: float, interval_icu: float, max_draws: int,
               rng: np.random.Generator) -> list[int]:
    """Lab draw times from ``t0`` until an hour before discharge, denser while in an ICU segment."""
    times = [t0]
    t = t0
    end = adm.dischtime - HOUR
    while len(times) < max_draws:
        in_icu = any(s.icu and s.intime <= t < s.outtime for s in adm.segments)
        step = (interval_icu if in_icu else interval_ward) * HOUR
        t = t + int(step * rng.uniform(0.8, 1.2))
        if t >= end:
            break
        times.append(t)
    return times


def write_labs(ctx: Ctx, p: Patient, k: int, plan: CarePlan) -> None:
    """Lab draws of one admission; the first one is drawn in the ED when the patient came through it."""
    if not ctx.wants("hosp/labevents"):
        return
    adm = p.admissions[k]
    rng = plan_rng(ctx.seed, p, k, 4)
    pre = ctx.preset
    if adm.ed is not None:
        t0 = min(adm.ed.intime + int(rng.uniform(0.3, 1.2) * HOUR), adm.ed.outtime - 600)
    else:
        t0 = adm.admittime + int(rng.uniform(0.1, 0.8) * HOUR)
    times = draw_times(adm, t0, pre.ward_lab_interval_h, pre.icu_lab_interval_h, pre.max_lab_draws, rng)
    cond_keys = [key for key in plan.lab_shift if key not in LAB_CORE]
    first = list(dict.fromkeys(list(LAB_CORE) + cond_keys + list(LAB_EXTRA[:pre.extra_lab_items])))
    if pre.extra_lab_items:
        follow = first
    else:
        follow = list(dict.fromkeys(list(LAB_FOLLOWUP) + cond_keys[:2]))
    panels = [first] + [follow] * (len(times) - 1)
    start = min(times[0], adm.admittime)
    frac = (np.array(times) - start) / max(adm.dischtime - start, HOUR)
    trend = (1.0 + 0.6 * frac) if adm.died else (1.0 - 0.75 * frac)
    icu_draw = [any(s.icu and s.intime <= t < s.outtime for s in adm.segments) for t in times]
    stat = [i == 0 or icu for i, icu in enumerate(icu_draw)]
    _write_draws(ctx, rng, p.subject_id, str(adm.hadm_id), times, panels, plan.lab_shift, trend, stat)


def write_ed_labs(ctx: Ctx, p: Patient, visit: EdVisit) -> None:
    """One STAT panel for an ED visit that ends without admission (``hadm_id`` empty, as in MIMIC-IV)."""
    if not ctx.wants("hosp/labevents"):
        return
    rng = np.random.default_rng([ctx.seed, p.idx, 12, visit.stay_id])
    if rng.random() > 0.7:
        return
    cond = visit.condition
    shift = {key: s * (0.5 + visit.severity) for key, s in cond.labs}
    for ck in p.chronic:
        for key, s in _CHRONIC_LABS.get(ck, ()):
            shift[key] = shift.get(key, 0.0) + s
    panel = list(dict.fromkeys(list(LAB_CORE) + [key for key in shift if key not in LAB_CORE]))
    t = min(visit.intime + int(rng.uniform(0.3, 1.2) * HOUR), visit.outtime - 600)
    _write_draws(ctx, rng, p.subject_id, None, [t], [panel], shift, np.ones(1), [True])


def _write_draws(ctx: Ctx, rng: np.random.Generator, subject_id: int, hadm_id: str | None, times: list[int],
                 panels: list[list[str]], shift: dict[str, float], trend: np.ndarray, stat: list[bool]) -> None:
    items, draw = [], []
    for i, keys in enumerate(panels):
        items.extend(_POS[key] for key in keys)
        draw.extend([i] * len(keys))
    idx = np.array(items, dtype=np.int64)
    di = np.array(draw, dtype=np.int64)
    tarr = np.array(times, dtype=np.int64)
    n = len(idx)
    base = np.array([shift.get(key, 0.0) for key in _KEYS])[idx]
    values = lab_values(idx, base * np.asarray(trend)[di], rng.standard_normal(n))
    abnormal = (values < _LO[idx]) | (values > _HI[idx])
    text = _format(values, _DEC[idx])
    charttime = tarr[di]
    storetime = charttime + (rng.uniform(0.4, 2.5, len(times)) * HOUR).astype(np.int64)[di]
    specimen = ctx.id_block("specimen_id", len(times))[di]
    priority = np.array(["STAT" if s else "ROUTINE" for s in stat], dtype=object)[di]
    provider = np.array([ctx.provider(rng) for _ in times], dtype=object)[di]
    ctx.writer.add_columns("hosp/labevents", n, {
        "labevent_id": clock.int_array(ctx.id_block("labevent_id", n)),
        "subject_id": str(subject_id), "hadm_id": hadm_id,
        "specimen_id": clock.int_array(specimen), "itemid": _ITEMID[idx],
        "order_provider_id": provider, "charttime": clock.ts_array(charttime), "storetime": clock.ts_array(storetime),
        "value": text, "valuenum": text, "valueuom": _UOM[idx], "ref_range_lower": _LO_S[idx],
        "ref_range_upper": _HI_S[idx],
        "flag": np.where(abnormal, "abnormal", "").astype(object), "priority": priority,
    })


def write_micro(ctx: Ctx, p: Patient, k: int, plan: CarePlan) -> None:
    adm = p.admissions[k]
    rng = plan_rng(ctx.seed, p, k, 5)
    w = ctx.writer
    for culture in plan.cultures:
        spec_itemid, spec_desc, test_itemid, test_name, _ = SPECIMENS[culture.specimen]
        specimen_id = ctx.next_id("micro_specimen_id")
        result_t = culture.time + int(rng.uniform(30, 72) * HOUR)
        common = dict(subject_id=p.subject_id, hadm_id=adm.hadm_id, micro_specimen_id=specimen_id,
                      order_provider_id=ctx.provider(rng),
                      chartdate=clock.date(culture.time) + " 00:00:00", charttime=clock.ts(culture.time),
                      spec_itemid=spec_itemid, spec_type_desc=spec_desc, test_seq=1,
                      storedate=clock.date(result_t) + " 00:00:00", storetime=clock.ts(result_t),
                      test_itemid=test_itemid, test_name=test_name)
        if culture.organism is None:
            w.add("hosp/microbiologyevents", microevent_id=ctx.next_id("microevent_id"), **common,
                  comments="NO GROWTH." if culture.specimen != "mrsa" else "No MRSA isolated.")
            continue
        org_itemid, org_name = ORGANISMS[culture.organism]
        if culture.specimen == "mrsa":
            w.add("hosp/microbiologyevents", microevent_id=ctx.next_id("microevent_id"), **common,
                  org_itemid=org_itemid, org_name=org_name, isolate_num=1,
                  comments="POSITIVE FOR METHICILLIN RESISTANT STAPH AUREUS.")
            continue
        quantity = str(rng.choice(("MODERATE GROWTH", "SPARSE GROWTH", "")))
        for ab in ORGANISM_PANELS[culture.organism]:
            ab_itemid, ab_name = ANTIBIOTICS[ab]
            if ab in culture.resistant:
                interp, comp, dil = "R", "=>", 32.0
            elif rng.random() < 0.06:
                interp, comp, dil = "I", "=", 8.0
            elif rng.random() < 0.03:
                interp, comp, dil = "P", "", None
            else:
                interp, comp, dil = "S", "<=", 1.0
            dil_text = f"{comp}{dil:g}" if dil is not None else None
            w.add("hosp/microbiologyevents", microevent_id=ctx.next_id("microevent_id"), **common,
                  org_itemid=org_itemid, org_name=org_name, isolate_num=1, quantity=quantity or None,
                  ab_itemid=ab_itemid, ab_name=ab_name, dilution_text=dil_text, dilution_comparison=comp or None,
                  dilution_value=repr(dil) if dil is not None else None, interpretation=interp)
