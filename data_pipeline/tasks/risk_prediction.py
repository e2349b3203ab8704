"""The 18 risk-prediction tasks: a yes/no outcome after a fixed window (ED stay, first 24 h, ICU, discharge note).

Windows and prediction times (the time after which nothing is shown; see :mod:`history` for the leakage rule):

===================  ============================================  ===========================================
anchor               context                                       prediction time ``t``
===================  ============================================  ===========================================
``edstays``          from the ED stay to ED ``outtime``             ED ``outtime``
``admissions``       the first 24 h after ``admittime``             ``admittime`` + 24 h
``icustays``         the first 24 h after ICU ``intime``            ``intime`` + 24 h
``discharge`` note   the 24 h before ``t``, plus the note           the note's availability: max(charttime,
                                                                   ``dischtime``, ``storetime``)
===================  ============================================  ===========================================

Every window shows only events available before ``t`` (:mod:`availability`) and obeys its family's rule
(:mod:`windows`). Instructions are the reference's exact strings (:mod:`instructions`).

Documented fixes of the reference (section 7 of the reference notes and the issue):

* The published name ``ED_ICU_Tranfer_12hour`` is a typo; the task is ``ED_ICU_Transfer_12hour`` with the
  published spelling kept as an alias.
* ED tasks never show the admission header nor ``transfers``/``services`` events: being admitted is the
  ``ED_Hospitalization`` outcome (the reference showed the same-admission admission event). **Leak fixed:** the
  ED window (up to ED ``outtime``) no longer shows anything produced by the admission the ED stay led to
  (admit orders, eMAR, prescriptions, labs of that admission, its ICU stay): patients board in the ED, so those
  start before ``outtime``, and the reference's window showed them (ED_Hospitalization, ED_ICU_Transfer_12hour
  and ED_Critical_Outcomes could be read off the input). The window holds the ED-module events of the stay
  and events of no / another admission available before ``outtime``.
* **Leak fixed:** admission and ICU windows (first 24 h) never show that admission's discharge note,
  diagnoses or DRG codes. MIMIC-IV-Note charts the note at the discharge date 00:00:00, so whenever discharge
  fell on the next calendar day the reference's Inpatient_Mortality / LengthOfStay / ICU windows contained
  the note, which states the outcome. The note is now available only from ``dischtime`` (and its storetime).
* Readmission windows end when the note is available (``t`` above) rather than at its date-only charttime,
  which would cut the discharge day; the horizon counts from ``dischtime``. An admission starting between
  ``dischtime`` and ``t`` (the note signed after the patient was back) gives no sample: the window would show it.
* Admission and ICU tasks require the patient to still be in hospital / in the ICU at ``t``; otherwise the
  discharge (and for mortality, the death) would be inside the input. The reference applied this only to
  length of stay.
* ICU mortality horizons count from ``t`` (the reference used the last context event, so the horizon depended on
  how busy the window was). ``dod`` is a date, read as 00:00:00 (reference convention).
* Readmission skips admissions that ended in death (``hospital_expire_flag`` = 1 or ``dod`` <= ``dischtime``):
  readmission is undefined for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from data_pipeline.events import format_time
from data_pipeline.tasks.history import (WINDOW, TimelineIndex, admission_header, forward_end, norm_id,
                                         parse_any, previous_discharge, window_begin_before)
from data_pipeline.tasks.instructions import REFERENCE
from data_pipeline.tasks.spec import RISK_PREDICTION, Instance, TaskSpec, register

YES_NO = ("yes", "no")
ED_BANS = ("transfers", "services")
DAY = timedelta(days=1)


def yes_no(flag: bool) -> tuple[str]:
    return ("yes",) if flag else ("no",)


def _dead_by(ix: TimelineIndex, when: datetime | None) -> bool:
    """``dod`` (a date, read as 00:00:00) is present and not after ``when``."""
    return ix.dod is not None and when is not None and datetime.combine(ix.dod, datetime.min.time()) <= when


def _rp(ix: TimelineIndex, task: str, anchor: int, begin: int, end: int, t: datetime, label: bool,
        show_admission: bool = True, anchor_in_context: bool = False) -> Instance:
    hadm = ix.hadms[anchor]
    return Instance(task=task, subject_id=ix.subject_id, hadm_id=hadm, anchor=anchor, context_begin=begin,
                    context_end=end, prediction_time=format_time(t), labels=yes_no(label),
                    admissions_id=admission_header(ix, hadm, t) if show_admission else -1,
                    last_discharge_id=previous_discharge(ix, hadm, t), anchor_in_context=anchor_in_context)


# ------------------------------------------------------------------------------------------------ ED stay

def ed_outcomes(ix: TimelineIndex, k: int) -> dict[str, bool] | None:
    """All ED labels of the ``edstays`` event ``k``; None when the stay has no usable in/out time."""
    row = ix.first_item(k)
    intime, outtime = parse_any(row.get("intime")) or ix.times[k], parse_any(row.get("outtime"))
    if intime is None or outtime is None or outtime <= intime:
        return None
    hadm = ix.hadms[k]
    admitted = hadm is not None and hadm in ix.admission_index
    # Mortality: dod on or before the last event of the admission (or of the ED stay when not admitted).
    last = ix.last_event_time(hadm) if admitted else outtime
    died = _dead_by(ix, max(last, outtime) if last else outtime)
    icu_12h = False
    for j in ix.indices_of("icustays"):
        icu_in = parse_any(ix.first_item(j).get("intime")) or ix.times[j]
        if admitted and ix.hadms[j] == hadm and icu_in is not None and intime <= icu_in < outtime + timedelta(hours=12):
            icu_12h = True
    reattend = False
    for j in ix.indices_of("edstays"):
        other_in = parse_any(ix.first_item(j).get("intime")) or ix.times[j]
        if j != k and other_in is not None and outtime <= other_in < outtime + timedelta(hours=72):
            reattend = True
    return {"ED_Hospitalization": admitted, "ED_Inpatient_Mortality": died, "ED_ICU_Transfer_12hour": icu_12h,
            "ED_Reattendance_3day": reattend, "ED_Critical_Outcomes": icu_12h or died}


def _ed_generator(task: str):
    def generate(ix: TimelineIndex) -> Iterator[Instance]:
        for k in ix.indices_of("edstays"):
            outcomes = ed_outcomes(ix, k)
            if outcomes is None:
                continue
            t = parse_any(ix.first_item(k).get("outtime"))
            yield _rp(ix, task, k, k, forward_end(ix, k, t), t, outcomes[task], show_admission=False)
    return generate


# ------------------------------------------------------------------------------------- first 24 h of a stay

def admission_outcomes(ix: TimelineIndex, k: int) -> tuple[datetime, dict[str, bool]] | None:
    row = ix.first_item(k)
    admit, disch = parse_any(row.get("admittime")) or ix.times[k], parse_any(row.get("dischtime"))
    if admit is None or disch is None:
        return None
    t = admit + WINDOW
    if disch <= t or _dead_by(ix, t - DAY):
        return None  # discharged or dead inside the window: the outcome would be in the input
    return t, {"Inpatient_Mortality": _dead_by(ix, disch),
               "LengthOfStay_3day": disch - admit > 3 * DAY,
               "LengthOfStay_7day": disch - admit > 7 * DAY}


def _first_day_generator(anchor_table: str, outcomes_of: Callable):
    """Tasks predicted 24 h after an admission / ICU stay starts: the window is forward from the anchor."""
    def for_task(task: str):
        def generate(ix: TimelineIndex) -> Iterator[Instance]:
            for k in ix.indices_of(anchor_table):
                got = outcomes_of(ix, k)
                if got is not None:
                    t, outcomes = got
                    yield _rp(ix, task, k, k, forward_end(ix, k, t), t, outcomes[task])
        return generate
    return for_task


ICU_MORTALITY_DAYS = (1, 2, 3, 7, 14)


def icu_outcomes(ix: TimelineIndex, k: int) -> tuple[datetime, dict[str, bool]] | None:
    row = ix.first_item(k)
    intime, outtime = parse_any(row.get("intime")) or ix.times[k], parse_any(row.get("outtime"))
    if intime is None or outtime is None:
        return None
    t = intime + WINDOW
    if outtime <= t or _dead_by(ix, t - DAY):
        return None  # left the ICU (or died) inside the window
    hadm, stay = ix.hadms[k], norm_id(row.get("stay_id"))
    readmit = any(
        ix.hadms[j] == hadm and j != k and norm_id(ix.first_item(j).get("stay_id")) != stay
        and (parse_any(ix.first_item(j).get("intime")) or ix.times[j] or intime) > intime
        for j in ix.indices_of("icustays"))
    out = {f"ICU_Mortality_{n}day": _dead_by(ix, t + n * DAY - timedelta(seconds=1)) for n in ICU_MORTALITY_DAYS}
    out.update({"ICU_Stay_7day": outtime - intime >= 7 * DAY, "ICU_Stay_14day": outtime - intime >= 14 * DAY,
                "ICU_Readmission": readmit})
    return t, out


# -------------------------------------------------------------------------------------- discharge note

def readmission_time(ix: TimelineIndex, k: int) -> datetime | None:
    """Prediction time of the discharge-note window: when the note is available (placement time, rules off)."""
    return ix.avail[k] if ix.rules.availability else ix.times[k]


def readmission_outcomes(ix: TimelineIndex, k: int) -> dict[str, bool] | None:
    t, hadm = readmission_time(ix, k), ix.hadms[k]
    if t is None or hadm is None:
        return None
    row = ix.admission_row(hadm) or {}
    disch = ix.admission_time(hadm, "dischtime")
    if norm_id(row.get("hospital_expire_flag")) == "1" or _dead_by(ix, disch or t):
        return None
    start = disch if disch is not None and ix.rules.availability else t
    later = [a for a in (ix.times[ix.admission_index[h]] for h in ix.admission_index if h != hadm)
             if a is not None and a > start]
    if any(a <= t for a in later):
        return None  # readmitted before the note was signed: the window would show the new admission
    return {f"Readmission_{n}day": any(a - start < n * DAY for a in later) for n in (30, 60)}


def _discharge_generator(task: str):
    def generate(ix: TimelineIndex) -> Iterator[Instance]:
        for k in ix.indices_of("discharge"):
            outcomes = readmission_outcomes(ix, k)
            if outcomes is not None:
                t = readmission_time(ix, k)
                end = forward_end(ix, k, t) if ix.rules.availability else k + 1
                begin = window_begin_before(ix, end, ix.hadms[k], t)
                yield _rp(ix, task, k, min(begin, k), end, t, outcomes[task], anchor_in_context=True)
    return generate


# ------------------------------------------------------------------------------------------- registration

_WINDOWS: dict[str, tuple[str, Callable, tuple[str, ...]]] = {
    "ed": ("edstays", _ed_generator, ("edstays",)),
    "admission": ("admissions", _first_day_generator("admissions", admission_outcomes), ("admissions", "patients")),
    "icu": ("icustays", _first_day_generator("icustays", icu_outcomes), ("icustays",)),
    "note": ("discharge", _discharge_generator, ("discharge", "admissions")),
}

# (name, window, extra requirements, aliases); instructions: :mod:`instructions` (reference strings by default)
_RP_TASKS = [
    ("ED_Hospitalization", "ed", ("admissions",), ()),
    ("ED_Inpatient_Mortality", "ed", ("patients",), ()),
    ("ED_ICU_Transfer_12hour", "ed", ("icustays",), ("ED_ICU_Tranfer_12hour",)),
    ("ED_Reattendance_3day", "ed", (), ()),
    ("ED_Critical_Outcomes", "ed", ("icustays", "patients"), ()),
    ("Readmission_30day", "note", (), ()),
    ("Readmission_60day", "note", (), ()),
    ("Inpatient_Mortality", "admission", (), ()),
    ("LengthOfStay_3day", "admission", (), ()),
    ("LengthOfStay_7day", "admission", (), ()),
    *[(f"ICU_Mortality_{n}day", "icu", ("patients",), ()) for n in ICU_MORTALITY_DAYS],
    ("ICU_Stay_7day", "icu", (), ()),
    ("ICU_Stay_14day", "icu", (), ()),
    ("ICU_Readmission", "icu", (), ()),
]

for _name, _window, _req, _aliases in _RP_TASKS:
    _table, _factory, _base = _WINDOWS[_window]
    register(TaskSpec(
        name=_name, kind=RISK_PREDICTION, anchor_table=_table, target_key="label", metric="aucroc",
        instruction=REFERENCE[_name], generate=_factory(_name),
        requires=tuple(dict.fromkeys((*_base, *_req))), banned=ED_BANS if _window == "ed" else (),
        aliases=_aliases, show_admission=_window != "ed", answer_space=YES_NO, window=_window))
