"""The timeline record shared by every stage: one patient, a time-ordered list of events.

An *event* is a maximal run of consecutive rows from the same source table (the EHR-R1 reference's
``combination.py`` semantics). Every row keeps all of its source columns as strings, plus the display fields
joined in from dictionaries and code mappings, so that the renderer and the task generators are pure functions
of this record.

Joined display fields (added by the timeline builder, read by the renderer and the task labels):

=====================  =====================================================================
event ``file_name``     joined keys
=====================  =====================================================================
labevents               ``item_name`` (d_labitems.label)
chartevents, ...events  ``item_name`` (d_items.label) for every icu table with an ``itemid``
procedures_icd          ``procedures`` (d_icd_procedures.long_title), ``CCS Type``
diagnoses_icd           ``diagnoses`` (d_icd_diagnoses.long_title), ``CCS Type``
diagnosis (ed)          ``CCS Type``
prescriptions           ``ATC Type``
medrecon (ed)           ``ATC Type``
radiology               ``exam_name`` (radiology_detail field ``exam_name``)
admissions              ``admission_info`` (always ``None``, as in the published prompts; see timeline builder)
=====================  =====================================================================

Value conventions (those of the reference, whose text the published EHR-R1 weights were trained on):
a missing source value is the string ``"nan"``; a lookup that finds nothing is ``"None"``; float columns print
as Python floats (``"1.5"``, ``"143.0"``); times are ``YYYY-MM-DD HH:MM:SS``.

On disk a timeline shard is a parquet file with columns ``subject_id`` (int64) and ``events`` (a JSON list of
event dicts), one row per patient, patients in ascending ``subject_id``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MISSING = "nan"
UNMAPPED = "None"


@dataclass
class Event:
    file_name: str
    starttime: str | None
    endtime: str | None
    hadm_id: str | None
    items: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Event":
        return cls(d["file_name"], d.get("starttime"), d.get("endtime"), d.get("hadm_id"), list(d.get("items", [])))

    @property
    def start(self) -> datetime | None:
        return parse_time(self.starttime)

    @property
    def end(self) -> datetime | None:
        return parse_time(self.endtime)


@dataclass
class PatientTimeline:
    subject_id: int
    events: list[Event]

    def to_row(self) -> dict:
        return {"subject_id": int(self.subject_id),
                "events": json.dumps([e.to_dict() for e in self.events], ensure_ascii=False)}

    @classmethod
    def from_row(cls, row: dict) -> "PatientTimeline":
        events = row["events"]
        if isinstance(events, (str, bytes)):
            events = json.loads(events)
        return cls(int(row["subject_id"]), [Event.from_dict(e) for e in events])


def parse_time(value: str | None) -> datetime | None:
    if value is None or value in (MISSING, UNMAPPED, ""):
        return None
    return datetime.strptime(value, TIME_FORMAT)


def format_time(value: datetime) -> str:
    return value.strftime(TIME_FORMAT)
