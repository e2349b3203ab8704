"""History cuts: which events a sample may see, as pure functions of one patient's timeline.

Rules (the reference's ``task_sample_info_gen.py``, with its gaps closed; each choice is documented where made):

* Every event gets an *effective time*: its ``starttime``; for an untimed event (``diagnoses_icd``,
  ``drgcodes``) the ``dischtime`` of its admission, because billing codes are assigned at discharge (the reference
  copied the previous event's time, which put the codes before the last day's events and showed them the
  discharge note); otherwise the previous event's time.
* Leakage rule shared by all tasks: a context event must be *available* (:mod:`availability`: result stored,
  note signed, date-only day over, codes billed) strictly before the prediction time; the only exception is the
  anchor of the pre-discharge-note window (the note is the input there). Windows are still slices of the
  timeline in placement order, so the rendered order stays the reference's. The family rules of
  :mod:`windows` (ED, admission, ICU) apply on top.
* Decision making (24 h same-admission window): context = ``[begin, anchor)`` where ``begin`` is the earliest
  event of the anchor's admission that starts less than 24 h before the anchor. Anchors without an admission
  (``omr``, outpatient labs) use events of any admission in that 24 h. As in the reference the window is a slice
  of the timeline, so an event without an admission id (ED triage, vitals) that falls inside it is shown.
* Risk prediction windows: ED stay (from ``edstays`` up to ED ``outtime``), the first 24 h of an admission or an
  ICU stay, and the 24 h before a discharge note plus the note.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from data_pipeline.events import Event, PatientTimeline
from data_pipeline.tasks.availability import LeakageRules, availability_times
from data_pipeline.tasks.windows import allowed_in_window

WINDOW = timedelta(hours=24)
MISSING_VALUES = frozenset({"", "nan", "None", "NaN", "NaT", "none", "null"})
UNTIMED_AT_DISCHARGE = ("diagnoses_icd", "drgcodes")


def clean(value) -> str | None:
    """A present, stripped value, or None for the missing/unmapped conventions of ``events.py``."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text in MISSING_VALUES else text


def norm_id(value) -> str | None:
    """Ids as canonical int strings: ``"20000001.0"`` -> ``"20000001"``; missing -> None."""
    text = clean(value)
    if text is None:
        return None
    try:
        return str(int(float(text)))
    except ValueError:
        return text


def parse_any(value) -> datetime | None:
    """Parse ``YYYY-MM-DD HH:MM:SS`` or a date-only ``YYYY-MM-DD`` (read as 00:00:00); None if missing.

    Uses ``datetime.fromisoformat`` (C, ~20x faster than ``strptime``; the generators parse every event time).
    """
    text = clean(value)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text[:19])
    except ValueError:
        return None


class TimelineIndex:
    """One patient's events with the lookups every generator shares (computed once per patient)."""

    def __init__(self, timeline: PatientTimeline, rules: LeakageRules | None = None):
        self.rules = rules or LeakageRules()
        self.subject_id = int(timeline.subject_id)
        self.events: list[Event] = timeline.events
        self.hadms: list[str | None] = [norm_id(e.hadm_id) for e in self.events]
        self.admission_index: dict[str, int] = {}
        for k, e in enumerate(self.events):
            if e.file_name == "admissions" and self.hadms[k] is not None:
                self.admission_index.setdefault(self.hadms[k], k)
        self.times: list[datetime | None] = []
        self.ends: list[datetime | None] = []
        previous: datetime | None = None
        for k, e in enumerate(self.events):
            start, stop = parse_any(e.starttime), parse_any(e.endtime)
            if start is None and e.file_name in UNTIMED_AT_DISCHARGE:
                start = self.admission_time(self.hadms[k], "dischtime")
            if start is None and e.file_name != "patients":
                start = previous
            end = stop if stop is not None and start is not None and stop >= start else start
            self.times.append(start)
            self.ends.append(end)
            if end is not None:
                previous = end
        #: When each event's information is available (placement end time when the rule is switched off).
        self.avail: list[datetime | None] = availability_times(self) if self.rules.availability else self.ends
        self.discharge_notes = [k for k, e in enumerate(self.events) if e.file_name == "discharge"]
        self.dod: date | None = None
        for e in self.events:
            if e.file_name == "patients" and e.items:
                dod = parse_any(e.items[0].get("dod"))
                self.dod = dod.date() if dod else None
                break

    def __len__(self) -> int:
        return len(self.events)

    def admission_row(self, hadm: str | None) -> dict | None:
        k = self.admission_index.get(hadm) if hadm else None
        return self.events[k].items[0] if k is not None and self.events[k].items else None

    def admission_time(self, hadm: str | None, column: str) -> datetime | None:
        row = self.admission_row(hadm)
        return parse_any(row.get(column)) if row else None

    def first_item(self, k: int) -> dict:
        return self.events[k].items[0] if self.events[k].items else {}

    def indices_of(self, file_name: str) -> list[int]:
        return [k for k, e in enumerate(self.events) if e.file_name == file_name]

    def last_event_time(self, hadm: str) -> datetime | None:
        """The latest effective end time among the events of one admission."""
        times = [t for k, t in enumerate(self.ends) if self.hadms[k] == hadm and t is not None]
        return max(times) if times else None


# --------------------------------------------------------------------------------------------- windows

def dm_window_begin(ix: TimelineIndex, anchor: int, t: datetime, hours: timedelta = WINDOW) -> int:
    """Start of the decision-making window: earliest same-admission event starting less than 24 h before ``t``.

    Returns ``anchor`` (an empty window) when no such event exists. Scans backwards and stops at the first timed
    event older than the window, so it is O(window size).
    """
    return window_begin_before(ix, anchor, ix.hadms[anchor], t, hours)


def forward_end(ix: TimelineIndex, start: int, t: datetime) -> int:
    """Exclusive end of a forward window: the first index >= ``start`` whose event starts at or after ``t``."""
    k = start
    while k < len(ix.events) and (ix.times[k] is None or ix.times[k] < t):
        k += 1
    return k


def visible(ix: TimelineIndex, k: int, t: datetime) -> bool:
    """The leakage rule: an event is visible at prediction time ``t`` only if it was available strictly before
    ``t`` (:mod:`availability`)."""
    avail = ix.avail[k]
    return avail is not None and avail < t


def window_begin_before(ix: TimelineIndex, end: int, hadm: str | None, t: datetime,
                        hours: timedelta = WINDOW) -> int:
    """Start of a backward window ending (exclusive) at index ``end``: the earliest event of admission ``hadm``
    starting less than ``hours`` before ``t`` (``end`` when there is none)."""
    begin = end
    floor = t - hours
    for j in range(end - 1, -1, -1):
        tj = ix.times[j]
        if tj is not None and tj <= floor:
            break
        if ix.events[j].file_name == "patients" or tj is None:
            continue
        if hadm is None or ix.hadms[j] == hadm:
            begin = j
    return begin


def admission_header(ix: TimelineIndex, hadm: str | None, t: datetime) -> int:
    """Index of the same-admission admissions event if it happened before ``t``, else -1."""
    k = ix.admission_index.get(hadm) if hadm else None
    if k is None or ix.times[k] is None or ix.times[k] >= t:
        return -1
    return k


def previous_discharge(ix: TimelineIndex, hadm: str | None, t: datetime) -> int:
    """Latest discharge note of a *different* admission written before ``t`` (the "medical history"), else -1."""
    best = -1
    for k in ix.discharge_notes:
        if ix.times[k] is None:
            continue
        if ix.times[k] >= t:
            break
        if ix.hadms[k] is not None and ix.hadms[k] != hadm and visible(ix, k, t):
            best = k
    return best


def context_indices(ix: TimelineIndex, begin: int, end: int, t: datetime, removed: frozenset[str],
                    anchor: int = -1, anchor_in_context: bool = False, family: str = "dm",
                    hadm: str | None = None) -> list[int]:
    """The events a sample shows, oldest first: the window minus removed tables, events the ``family`` rule
    forbids (:mod:`windows`, when ``ix.rules.window_rules``) and anything not yet available."""
    rules = ix.rules.window_rules and family != "dm"
    out = []
    for k in range(begin, end):
        if ix.events[k].file_name in removed:
            continue
        if rules and not allowed_in_window(ix, k, family, hadm):
            continue
        if k == anchor and anchor_in_context:
            out.append(k)
        elif visible(ix, k, t):
            out.append(k)
    return out
