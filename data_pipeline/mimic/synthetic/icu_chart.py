"""icu/icustays and icu/chartevents (vectorised): vitals on a regular grid plus slower assessments.

Vital signs follow the admission condition's vital shifts (``Condition.vitals``) scaled by severity; survivors
drift back to normal over the stay, patients who die deteriorate towards the end. Noise is smoothed so that
consecutive charted values look like a trajectory rather than white noise.
"""

from __future__ import annotations

import numpy as np

from data_pipeline.mimic.synthetic import clock
from data_pipeline.mimic.synthetic.care_plan import CarePlan, plan_rng
from data_pipeline.mimic.synthetic.clinical_course import Admission, Patient, Segment
from data_pipeline.mimic.synthetic.clock import DAY, HOUR
from data_pipeline.mimic.synthetic.context import Ctx
from data_pipeline.mimic.synthetic.measurements import (ART_LINE_SEVERITY, ARTERIAL, ASSESSMENTS, GCS, RHYTHM_ITEM,
                                                        RHYTHMS, VITALS)

_S = np.dtypes.StringDType()
_VKEYS = ("hr", "sbp", "dbp", "map", "rr", "spo2", "temp")
#: vital shifts are scaled by BASE + SEV * severity (a severe septic patient: HR ~110, SBP ~85)
VITAL_SCALE_BASE, VITAL_SCALE_SEV = 0.3, 0.6


def write_icustays(ctx: Ctx, p: Patient, adm: Admission) -> None:
    for stay in adm.icu_stays:
        ctx.writer.add("icu/icustays", subject_id=p.subject_id, hadm_id=adm.hadm_id, stay_id=stay.stay_id,
                       first_careunit=stay.careunit, last_careunit=stay.careunit, intime=clock.ts(stay.intime),
                       outtime=clock.ts(stay.outtime), los=repr(round((stay.outtime - stay.intime) / DAY, 4)))


def _smooth_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    z = rng.standard_normal(n + 4)
    return np.convolve(z, np.ones(5) / np.sqrt(5.0), mode="valid")[:n]


def vital_trajectories(adm: Admission, stay: Segment, times: np.ndarray, rng: np.random.Generator
                       ) -> dict[str, np.ndarray]:
    """Vital values (rounded) per key at ``times`` for one ICU stay."""
    shifts = dict(adm.condition.vitals)
    scale = VITAL_SCALE_BASE + VITAL_SCALE_SEV * adm.severity
    dur = max(stay.outtime - stay.intime, HOUR)
    frac = (times - stay.intime) / dur
    dying = adm.died and stay.outtime == adm.dischtime
    if dying:
        trend = 1.0 + 1.5 * frac ** 2
        extra = {"hr": 1.2, "dbp": -1.2, "sbp": -1.5, "spo2": -1.5, "rr": 1.2}
    else:
        trend = 1.0 - 0.7 * frac
        extra = {}
    out = {}
    for key in ("hr", "sbp", "rr", "spo2", "temp", "dbp"):
        m = VITALS[key]
        s = shifts.get(key, 0.0) + (0.7 * shifts.get("map", 0.0) if key in ("sbp", "dbp") else 0.0)
        shift = s * scale * trend + extra.get(key, 0.0) * frac ** 2 * (1 if dying else 0)
        center, half = (m.lo + m.hi) / 2.0, (m.hi - m.lo) / 2.0
        vals = center + half * (shift + 0.4 * _smooth_noise(rng, len(times)))
        out[key] = vals
    out["spo2"] = np.minimum(out["spo2"], 100.0)
    out["dbp"] = np.minimum(out["dbp"], out["sbp"] - 15)
    out["map"] = (out["sbp"] + 2 * out["dbp"]) / 3.0
    for key in _VKEYS:
        out[key] = np.round(np.maximum(out[key], 1.0), VITALS[key].decimals)
    return out


def write_chartevents(ctx: Ctx, p: Patient, adm: Admission, plan: CarePlan, stay_no: int, stay: Segment) -> None:
    if not ctx.wants("icu/chartevents"):
        return
    rng = plan_rng(ctx.seed, p, 1000 * stay_no + 1, 7)
    pre = ctx.preset
    dur = stay.outtime - stay.intime
    iv, ia = pre.icu_vitals_interval_h * HOUR, pre.icu_assess_interval_h * HOUR
    n_assess_items = 7 + (3 if adm.ventilated else 0)
    n_vital_items = len(_VKEYS) + (3 if adm.severity > ART_LINE_SEVERITY else 0)
    est = (dur / iv + 1) * n_vital_items + (dur / ia + 1) * n_assess_items
    if est > pre.max_chart_rows:
        factor = est / pre.max_chart_rows
        iv, ia = iv * factor, ia * factor
    vt = stay.intime + int(0.25 * HOUR) + np.arange(0, max(dur - int(0.25 * HOUR), 1), iv).astype(np.int64)
    at = stay.intime + int(0.5 * HOUR) + np.arange(0, max(dur - int(0.5 * HOUR), 1), ia).astype(np.int64)
    vt, at = vt[vt < stay.outtime], at[at < stay.outtime]
    vitals = vital_trajectories(adm, stay, vt, rng)
    times, itemids, values, nums, uoms, warns = [], [], [], [], [], []
    for key in _VKEYS:
        m = VITALS[key]
        v = vitals[key]
        text = clock.num_array(v, m.decimals)
        half = (m.hi - m.lo) / 2.0
        times.append(vt)
        itemids.append(np.full(len(vt), str(m.itemid), dtype=_S))
        values.append(text)
        nums.append(text)
        uoms.append(np.full(len(vt), m.unit, dtype=_S))
        warns.append(np.where((v < m.lo - half) | (v > m.hi + half), "1", "0").astype(_S))
    if adm.severity > ART_LINE_SEVERITY:
        derived = {"abp_sys": vitals["sbp"] + 4, "abp_dia": vitals["dbp"] - 2, "abp_mean": vitals["map"] + 1}
        for key, base in derived.items():
            m = ARTERIAL[key]
            v = np.round(np.maximum(base + 3 * rng.standard_normal(len(vt)), 10), 0)
            text = clock.num_array(v, 0)
            times.append(vt)
            itemids.append(np.full(len(vt), str(m.itemid), dtype=_S))
            values.append(text)
            nums.append(text)
            uoms.append(np.full(len(vt), m.unit, dtype=_S))
            warns.append(np.where((v < m.lo - 20) | (v > m.hi + 20), "1", "0").astype(_S))
    # GCS: stroke and dying patients score low; sedated (ventilated) patients a little lower.
    gcs_shift = dict(adm.condition.vitals).get("gcs", 0.0) * (0.5 + adm.severity) - (1.5 if adm.ventilated else 0)
    frac = (at - stay.intime) / max(dur, 1)
    for itemid, label, texts in GCS:
        top = len(texts) - 1
        score = np.clip(np.rint(top + gcs_shift * (1 - 0.6 * frac) + 0.6 * rng.standard_normal(len(at))), 1, top)
        score = score.astype(np.int64)
        times.append(at)
        itemids.append(np.full(len(at), str(itemid), dtype=_S))
        values.append(np.array(texts, dtype=_S)[score])
        nums.append(score.astype(_S))
        uoms.append(np.full(len(at), "", dtype=_S))
        warns.append(np.full(len(at), "0", dtype=_S))
    afib = adm.condition.key == "afib_rvr" or "chronic_afib" in p.chronic
    hr_at = np.interp(at, vt, vitals["hr"]) if len(vt) else np.full(len(at), 80.0)
    rhythm = np.where(afib, 2, np.where(hr_at > 100, 1, 0))
    times.append(at)
    itemids.append(np.full(len(at), str(RHYTHM_ITEM[0]), dtype=_S))
    values.append(np.array(RHYTHMS, dtype=_S)[rhythm])
    nums.append(np.full(len(at), "", dtype=_S))
    uoms.append(np.full(len(at), "", dtype=_S))
    warns.append(np.full(len(at), "0", dtype=_S))
    has_line = any(k == "central_line" for k, _ in plan.procedures)
    for key in ("fio2", "peep", "tidal", "fsglu", "cvp", "weight"):
        if key in ("fio2", "peep", "tidal") and not adm.ventilated or key == "cvp" and not has_line:
            continue
        m = ASSESSMENTS[key]
        tt = at if key != "weight" else at[:: max(1, int(round(DAY / max(ia, 1))))]
        if key == "weight":
            v = p.weight_kg + 0.8 * rng.standard_normal(len(tt))
        elif key == "fsglu":
            glu_shift = 4.0 if adm.condition.key == "dka" else (1.5 if "diabetes" in p.chronic else 0.0)
            recovery = 1 - 0.6 * (tt - stay.intime) / max(dur, 1)
            v = 85 + 15 * (glu_shift * recovery + 0.5 * rng.standard_normal(len(tt)))
        elif key == "fio2":
            v = 40 + 20 * adm.severity + 10 * rng.standard_normal(len(tt))
        elif key == "peep":
            v = 5 + 5 * adm.severity + 1.5 * rng.standard_normal(len(tt))
        elif key == "tidal":
            v = 6.5 * (50 + 2.3 * (p.height_in - 60)) + 40 * rng.standard_normal(len(tt))  # 6.5 mL/kg IBW
        else:
            v = 8 + 3 * rng.standard_normal(len(tt))
        v = np.round(np.clip(v, 1 if key != "fio2" else 21, 100 if key == "fio2" else 600), m.decimals)
        text = clock.num_array(v, m.decimals)
        times.append(tt)
        itemids.append(np.full(len(tt), str(m.itemid), dtype=_S))
        values.append(text)
        nums.append(text)
        uoms.append(np.full(len(tt), m.unit, dtype=_S))
        warns.append(np.full(len(tt), "0", dtype=_S))
    t = np.concatenate(times)
    order = np.argsort(t, kind="stable")
    t = t[order]
    n = len(t)
    nurses = np.array([str(ctx.caregiver(rng)) for _ in range(3)], dtype=_S)
    store = t + rng.integers(60, 40 * 60, n)
    ctx.writer.add_columns("icu/chartevents", n, {
        "subject_id": str(p.subject_id), "hadm_id": str(adm.hadm_id), "stay_id": str(stay.stay_id),
        "caregiver_id": nurses[((t - stay.intime) // (12 * HOUR)) % 3], "charttime": clock.ts_array(t),
        "storetime": clock.ts_array(store), "itemid": np.concatenate(itemids)[order],
        "value": np.concatenate(values)[order], "valuenum": np.concatenate(nums)[order],
        "valueuom": np.concatenate(uoms)[order], "warning": np.concatenate(warns)[order],
    })
