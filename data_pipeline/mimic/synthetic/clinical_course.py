"""Per-patient clinical story as plain records: demographics, ED visits, admissions, ICU stays, outcomes.

Everything downstream (tables) is derived from these records, so the links the EHR-R1 risk labels rely on
(ED -> admission -> ICU -> death / readmission / ED return) are consistent by construction. One patient draws
only from its own random stream ``(seed, patient index)``, so the cohort does not depend on chunking.

Outcome model (per encounter, ``sev`` in 0..1 from condition, age and comorbidity): ED admission, ICU use,
ICU length, ICU readmission, in-hospital death, post-discharge death, 30/60-day readmission and 72-hour ED
return all rise with ``sev``; probabilities keep every risk label's positive class common enough (5-40%).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from data_pipeline.mimic.synthetic.clock import DAY, HOUR, year_start
from data_pipeline.mimic.synthetic.vocabulary import CHRONIC, CONDITIONS, Condition

ANCHOR_GROUPS = ("2008 - 2010", "2011 - 2013", "2014 - 2016", "2017 - 2019", "2020 - 2022")
RACES = ("WHITE", "WHITE", "WHITE", "BLACK/AFRICAN AMERICAN", "HISPANIC/LATINO - PUERTO RICAN", "ASIAN",
         "OTHER", "UNKNOWN")
MAX_ENCOUNTERS = 15  # per kind and patient: keeps the 8-digit id blocks disjoint

_EMERGENT = tuple(c for c in CONDITIONS.values() if not c.elective)
_EMERGENT_P = np.array([c.weight for c in _EMERGENT]) / sum(c.weight for c in _EMERGENT)
_PLANNED = tuple(CONDITIONS[k] for k in ("hip_oa", "nstemi", "chf", "afib_rvr", "gi_bleed"))


@dataclass
class Segment:
    """A stay in one care unit (transfers row); ``icu`` segments also become icustays rows."""

    careunit: str
    intime: int
    outtime: int
    icu: bool = False
    stay_id: int | None = None


@dataclass
class EdVisit:
    stay_id: int
    intime: int
    outtime: int
    condition: Condition
    severity: float
    acuity: int
    arrival: str
    disposition: str
    hadm_id: int | None = None


@dataclass
class Admission:
    hadm_id: int
    condition: Condition
    severity: float
    icd_version: int
    admittime: int
    dischtime: int
    admission_type: str
    admission_location: str
    discharge_location: str
    segments: list[Segment]
    ed: EdVisit | None = None
    died: bool = False
    ventilated: bool = False
    age: int = 0

    @property
    def deathtime(self) -> int | None:
        return self.dischtime if self.died else None

    @property
    def icu_stays(self) -> list[Segment]:
        return [s for s in self.segments if s.icu]


@dataclass
class Patient:
    idx: int
    subject_id: int
    gender: str
    anchor_age: int
    anchor_year: int
    anchor_year_group: str
    race: str
    insurance: str
    language: str
    marital_status: str
    chronic: tuple[str, ...]
    weight_kg: float
    height_in: float
    dod: int | None = None  # seconds; the file stores its date
    ed_visits: list[EdVisit] = field(default_factory=list)
    admissions: list[Admission] = field(default_factory=list)


def subject_id_for(idx: int, rng: np.random.Generator) -> int:
    return 10_000_000 + idx * 19 + int(rng.integers(19))


def hadm_id_for(idx: int, k: int) -> int:
    """8-digit 2xxxxxxx, unique per (patient, k < 16), scattered by a bijection modulo 10^7."""
    return 20_000_000 + ((idx * 16 + k) * 7_654_321) % 10_000_000


def stay_id_for(idx: int, k: int) -> int:
    """8-digit 3xxxxxxx; ICU stays use k in 0..15, ED stays 16..31."""
    return 30_000_000 + ((idx * 32 + k) * 3_141_593) % 10_000_000


def severity(rng: np.random.Generator, cond: Condition, age: int, n_chronic: int) -> float:
    s = cond.severity + 0.006 * (age - 60) + 0.04 * n_chronic + rng.normal(0.0, 0.15)
    return float(np.clip(s, 0.0, 1.0))


def build_patient(seed: int, idx: int) -> Patient:
    rng = np.random.default_rng([seed, idx, 0])
    age = int(np.clip(rng.normal(63, 17), 18, 91))
    anchor_year = int(rng.integers(2111, 2195))
    chronic = tuple(c.key for c in CHRONIC
                    if rng.random() < np.clip(c.prevalence + c.age_slope * (age - 60), 0.01, 0.9))
    gender = "F" if rng.random() < 0.52 else "M"
    insurance = "Medicare" if age >= 65 else ("Medicaid" if rng.random() < 0.25 else "Other")
    marital = str(rng.choice(("MARRIED", "SINGLE", "WIDOWED", "DIVORCED", "")))
    weight = float(np.clip(rng.normal(82 if gender == "M" else 70, 16), 40, 180))
    height = float(np.clip(rng.normal(69.5 if gender == "M" else 64, 3), 55, 80))
    p = Patient(idx, subject_id_for(idx, rng), gender, age, anchor_year, str(rng.choice(ANCHOR_GROUPS)),
                str(rng.choice(RACES)), insurance, "ENGLISH" if rng.random() < 0.9 else "?", marital, chronic,
                round(weight, 1), round(height, 1))
    _build_encounters(rng, p)
    return p


def _age_at(p: Patient, t: int) -> int:
    return p.anchor_age + max(0, (t - year_start(p.anchor_year)) // (365 * DAY))


def _build_encounters(rng: np.random.Generator, p: Patient) -> None:
    t = year_start(p.anchor_year) + int(rng.integers(0, 300 * DAY))
    episodes = 1 + min(int(rng.poisson(0.9)), 4)
    death_after: int | None = None  # scheduled out-of-hospital death
    carry: tuple[Condition, float] | None = None  # an ED return with the same problem
    while len(p.admissions) < MAX_ENCOUNTERS and len(p.ed_visits) < MAX_ENCOUNTERS:
        if death_after is not None and t >= death_after:
            break
        age = _age_at(p, t)
        if carry is not None:
            cond, sev = carry[0], min(1.0, carry[1] + 0.1)
        else:
            planned = rng.random() < 0.15
            cond = (_PLANNED[int(rng.integers(len(_PLANNED)))] if planned
                    else _EMERGENT[int(rng.choice(len(_EMERGENT), p=_EMERGENT_P))])
            sev = severity(rng, cond, age, len(p.chronic))
        ed = None
        if not cond.elective and (carry is not None or rng.random() < 0.85):
            ed = _ed_visit(rng, p, cond, sev, t)
            p.ed_visits.append(ed)
            if death_after is not None and death_after <= ed.outtime + DAY:
                death_after = ed.outtime + int(rng.uniform(1.5, 60) * DAY)  # the visit happened, so they were alive
            if ed.hadm_id is None:
                # sicker patients sent home, and those who left unseen, come back within 72 h more often
                p_return = 0.08 + 0.45 * sev + (0.25 if ed.disposition == "LEFT WITHOUT BEING SEEN" else 0.0)
                if rng.random() < p_return and len(p.ed_visits) < MAX_ENCOUNTERS:
                    carry = (cond, sev)
                    t = ed.outtime + int(rng.uniform(4, 66) * HOUR)
                    continue
                carry = None
                episodes -= 1
                if episodes <= 0:
                    break
                t = ed.outtime + int(rng.uniform(60, 500) * DAY)
                continue
        carry = None
        adm = _admission(rng, p, cond, sev, t, ed, age)
        p.admissions.append(adm)
        if adm.died:
            p.dod = adm.dischtime
            return
        if death_after is not None and death_after <= adm.dischtime + DAY:
            death_after = adm.dischtime + int(rng.uniform(1.5, 60) * DAY)
        if death_after is None and rng.random() < 0.03 + 0.15 * sev:
            death_after = adm.dischtime + int(rng.uniform(2, 240) * DAY)
        r = rng.random()
        if r < 0.12 + 0.2 * sev:
            t = adm.dischtime + int(rng.uniform(1.5, 28) * DAY)  # 30-day readmission
        elif r < 0.2 + 0.25 * sev:
            t = adm.dischtime + int(rng.uniform(31, 58) * DAY)  # 60-day readmission
        else:
            episodes -= 1
            if episodes <= 0:
                break
            t = adm.dischtime + int(rng.uniform(70, 500) * DAY)
    if death_after is not None:
        p.dod = death_after


def _ed_visit(rng, p: Patient, cond: Condition, sev: float, t: int) -> EdVisit:
    k = 16 + len(p.ed_visits)
    acuity = int(np.clip(round(4.3 - 3.2 * sev + rng.normal(0, 0.45)), 1, 5))
    admit = rng.random() < np.clip(0.1 + 1.25 * sev, 0.05, 0.97)
    los_h = rng.uniform(3, 12) if admit else rng.uniform(1.5, 8)
    arrival = "AMBULANCE" if rng.random() < 0.2 + 0.6 * sev else str(rng.choice(("WALK IN", "WALK IN", "UNKNOWN")))
    if admit:
        disposition = "ADMITTED"
    else:
        disposition = str(rng.choice(("HOME", "HOME", "HOME", "HOME", "LEFT WITHOUT BEING SEEN", "TRANSFER")))
    hadm = hadm_id_for(p.idx, len(p.admissions)) if admit else None
    return EdVisit(stay_id_for(p.idx, k), t, t + int(los_h * HOUR), cond, sev, acuity, arrival, disposition, hadm)


def _lognormal_days(rng, median: float, sigma: float) -> float:
    return float(median * np.exp(rng.normal(0.0, sigma)))


def _admission(rng, p: Patient, cond: Condition, sev: float, t: int, ed: EdVisit | None, age: int) -> Admission:
    hadm_id = ed.hadm_id if ed is not None else hadm_id_for(p.idx, len(p.admissions))
    version = 9 if rng.random() < 0.35 else 10
    if ed is not None:
        admittime = max(ed.intime + 1800, ed.outtime - int(rng.uniform(0.3, 2.5) * HOUR))
        start = ed.outtime
        adm_type = str(rng.choice(("EW EMER.", "EW EMER.", "URGENT", "OBSERVATION ADMIT", "EU OBSERVATION")))
        location = "EMERGENCY ROOM"
    else:
        admittime = t - t % DAY + int(rng.uniform(6, 11) * HOUR)
        start = admittime
        elective = cond.elective or rng.random() < 0.4
        adm_type = ("SURGICAL SAME DAY ADMISSION" if cond.elective else
                    "ELECTIVE" if elective else str(rng.choice(("DIRECT EMER.", "URGENT", "DIRECT OBSERVATION"))))
        location = str(rng.choice(("PHYSICIAN REFERRAL", "TRANSFER FROM HOSPITAL", "CLINIC REFERRAL")))
    icu = rng.random() < np.clip(0.95 * sev - 0.12, 0.02, 0.85) * (0.3 if cond.elective else 1.0)
    p_die = np.clip(0.005 + 0.28 * sev ** 2 + (0.1 if icu else 0.0) + 0.002 * max(age - 65, 0), 0.0, 0.6)
    dies = bool(rng.random() < p_die)
    segs: list[Segment] = []
    now = start
    n_icu = 0

    def ward(days: float) -> None:
        nonlocal now
        end = now + max(int(days * DAY), 2 * HOUR)
        segs.append(Segment(cond.ward, now, end))
        now = end

    def icu_stay(days: float) -> None:
        nonlocal now, n_icu
        end = now + max(int(days * DAY), 3 * HOUR)
        segs.append(Segment(cond.icu_unit, now, end, icu=True, stay_id=stay_id_for(p.idx, len(
            [s for a in p.admissions for s in a.icu_stays]) + n_icu)))
        n_icu += 1
        now = end

    ventilated = False
    if icu:
        direct = ed is not None and rng.random() < 0.65
        if direct and rng.random() < 0.5:
            # ED boarding: the ICU stay starts before the ED stay is closed (ED outtime), as in MIMIC-IV-ED
            now = max(admittime + int(0.2 * HOUR), ed.outtime - int(rng.uniform(0.2, 1.5) * HOUR))
        elif direct:
            now += int(rng.uniform(0.1, 2.5) * HOUR)  # boarding, then ICU within hours of ED out
        else:
            ward(rng.uniform(0.4, 3.0))
        die_in_icu = dies and rng.random() < 0.8
        ventilated = rng.random() < 0.2 + 0.5 * sev
        readmit_icu = not die_in_icu and rng.random() < 0.06 + 0.22 * sev
        if die_in_icu:  # dies during the first (only) ICU stay: often within days
            icu_stay(rng.exponential(3.0) + 0.2)
        else:
            icu_stay(_lognormal_days(rng, 1.5 + 4.5 * sev, 0.85))
            if readmit_icu:  # back to the ward, then a second ICU stay in the same admission
                ward(rng.uniform(0.5, 3.0))
                if dies:  # ... which ends in death
                    icu_stay(rng.exponential(3.0) + 0.2)
                else:
                    icu_stay(_lognormal_days(rng, 1.2 + 2.5 * sev, 0.7))
                    ward(_lognormal_days(rng, 1.2 + 3.0 * sev, 0.5))
            else:  # step-down to the ward (where the patients who die without ICU death die)
                ward(_lognormal_days(rng, 1.2 + 3.0 * sev, 0.5) if not dies else rng.uniform(0.5, 6))
    else:
        median = 2.5 if cond.elective else 0.8 + 4.0 * sev
        ward(_lognormal_days(rng, median, 0.6))
    dischtime = now
    if dies:
        dloc = "DIED"
    elif sev > 0.5 or age > 80:
        dloc = str(rng.choice(("SKILLED NURSING FACILITY", "HOME HEALTH CARE", "REHAB", "HOSPICE")))
    else:
        dloc = str(rng.choice(("HOME", "HOME", "HOME HEALTH CARE", "AGAINST ADVICE")))
    return Admission(hadm_id, cond, sev, version, admittime, dischtime, adm_type, location, dloc, segs, ed,
                     died=dies, ventilated=ventilated, age=age)
