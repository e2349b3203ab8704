"""The ordering and merging rules of a patient timeline, as pure vectorised functions over numpy arrays.

Rules (EHR-R1 reference ``rank.py`` / ``combination.py``, see docs in ehr-r1-reference.md section 2):

1. The ``patients`` row comes first.
2. Every other row is placed at its table's time field (``schema.TableSpec.time_field``; a date-only field counts
   as ``<date> 00:00:00``). ED ``triage`` is placed at its stay's ``edstays.intime + 1 s`` and ED ``diagnosis`` at
   the stay's ``edstays.outtime`` (the caller supplies those times).
3. Untimed ``diagnoses_icd`` and ``drgcodes`` rows go right after the last timed row with the same
   ``(subject, hadm_id)`` (diagnoses before drgcodes); without such a row they go to the end of the timeline.
   Rows of a timed table whose time is missing also go to the end.
4. **Tie-break** (documented choice; the reference left it to a stable sort over its file order): at equal
   placement time, timed rows come before untimed ones placed there, then tables are ordered by
   :data:`TIE_BREAK_ORDER` (encounter-opening tables first: admissions, edstays, transfers, icustays, services;
   then the schema order), then rows keep their order in the source file.
5. Each maximal run of consecutive rows of the same table (per patient) is one event: ``starttime`` = time of
   its first row, ``endtime`` = the largest time in the run, ``hadm_id`` = the first non-missing hadm_id in the
   run. Untimed rows have no time, so an event made only of them has ``starttime = endtime = None``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from data_pipeline.mimic.schema import EVENT_TABLES

START = np.iinfo(np.int64).min
END = np.iinfo(np.int64).max

KIND_PATIENT, KIND_TIMED, KIND_DIAGNOSES, KIND_DRG = 0, 1, 2, 3
#: Untimed tables placed after their admission's last row, and their order there.
UNTIMED_KIND = {"diagnoses_icd": KIND_DIAGNOSES, "drgcodes": KIND_DRG}
_FIRST = ("patients", "admissions", "edstays", "transfers", "icustays", "services")
TIE_BREAK_ORDER: tuple[str, ...] = _FIRST + tuple(t for t in EVENT_TABLES if t not in _FIRST)
TABLE_RANK: dict[str, int] = {name: i for i, name in enumerate(TIE_BREAK_ORDER)}


def row_kind(table: str) -> int:
    if table == "patients":
        return KIND_PATIENT
    return UNTIMED_KIND.get(table, KIND_TIMED)


@dataclass
class Rows:
    """Keys of every row of one bucket (any order). ``time`` is int64 seconds, valid where ``has_time``;
    ``hadm`` is -1 where missing; ``rank`` is :data:`TABLE_RANK` of the row's table; ``row`` its file position."""

    sid: np.ndarray
    time: np.ndarray
    has_time: np.ndarray
    rank: np.ndarray
    kind: np.ndarray
    row: np.ndarray
    hadm: np.ndarray

    def __len__(self) -> int:
        return len(self.sid)


def placement_time(rows: Rows) -> np.ndarray:
    """The time each row is sorted by (rules 1-3), with :data:`START`/:data:`END` sentinels."""
    t = np.where(rows.has_time, rows.time, END).astype(np.int64)
    t[rows.kind == KIND_PATIENT] = START
    untimed = rows.kind >= KIND_DIAGNOSES
    t[untimed] = END
    with_hadm = rows.hadm >= 0
    anchors = with_hadm & (rows.kind == KIND_TIMED) & rows.has_time
    targets = with_hadm & untimed
    if targets.any() and anchors.any():
        sel = anchors | targets
        inv = _pair_ids(rows.sid[sel], rows.hadm[sel])
        last = np.full(int(inv.max()) + 1, START, dtype=np.int64)
        np.maximum.at(last, inv[anchors[sel]], rows.time[anchors])
        placed = last[inv[targets[sel]]]
        t[targets] = np.where(placed == START, END, placed)
    return t


def _pair_ids(sid: np.ndarray, hadm: np.ndarray) -> np.ndarray:
    """Dense ids of (sid, hadm) pairs (hadm >= 0): one int64 key when it fits, else a structured unique."""
    hmax = int(hadm.max()) + 1
    smax = int(sid.max()) + 1 if len(sid) else 1
    if sid.min() >= 0 and smax < (2**62) // hmax:
        # a hash table (first-appearance ids) instead of np.unique's sort: only grouping matters here
        return pa.array(sid * hmax + hadm).dictionary_encode().indices.to_numpy().astype(np.int64)
    pairs = np.empty(len(sid), dtype=[("s", "<i8"), ("h", "<i8")])
    pairs["s"], pairs["h"] = sid, hadm
    _, inv = np.unique(pairs, return_inverse=True)
    return inv.reshape(-1)


def order_rows(rows: Rows) -> np.ndarray:
    """The permutation that puts the rows in timeline order (patients grouped by ascending subject_id)."""
    t = placement_time(rows)
    # kind (2 bits) | rank (8 bits) | row (53 bits) packed into one key when rows fit (always, in practice)
    if len(rows) and int(rows.row.max()) < 2**53 and int(rows.rank.max()) < 2**8:
        tie = (rows.kind.astype(np.int64) << 61) | (rows.rank.astype(np.int64) << 53) | rows.row
        return np.lexsort((tie, t, rows.sid))
    return np.lexsort((rows.row, rows.rank, rows.kind, t, rows.sid))


@dataclass
class Runs:
    """Events of sorted rows: ``starts[i]`` is the first row of event i; per-event start/end times and hadm."""

    starts: np.ndarray
    start_time: np.ndarray
    has_start: np.ndarray
    end_time: np.ndarray
    has_end: np.ndarray
    hadm: np.ndarray  # -1 where no row of the event has one
    patient_starts: np.ndarray  # index into events of each patient's first event
    end_row: np.ndarray  # row holding the event's largest time (-1 when none)


def event_runs(sid: np.ndarray, rank: np.ndarray, time: np.ndarray, has_time: np.ndarray, hadm: np.ndarray,
               untimed: np.ndarray) -> Runs:
    """Split rows already in timeline order into events (rule 5). ``untimed`` rows contribute no time."""
    n = len(sid)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Runs(empty, empty, empty.astype(bool), empty, empty.astype(bool), empty, empty, empty)
    new_patient = np.ones(n, dtype=bool)
    new_patient[1:] = sid[1:] != sid[:-1]
    boundary = new_patient.copy()
    boundary[1:] |= rank[1:] != rank[:-1]
    starts = np.flatnonzero(boundary)
    timed = has_time & ~untimed
    has_end = np.logical_or.reduceat(timed, starts)
    end = np.maximum.reduceat(np.where(timed, time, START), starts)
    # rows of a run are in time order, so its largest time is that of its last timed row
    end_row = np.maximum.reduceat(np.where(timed, np.arange(n, dtype=np.int64), -1), starts)
    big = np.int64(n)
    first_hadm = np.minimum.reduceat(np.where(hadm >= 0, np.arange(n, dtype=np.int64), big), starts)
    ev_hadm = np.where(first_hadm < big, hadm[np.minimum(first_hadm, n - 1)], -1)
    patient_starts = np.flatnonzero(new_patient[starts])
    return Runs(starts, time[starts], timed[starts], end, has_end, ev_hadm, patient_starts, end_row)
