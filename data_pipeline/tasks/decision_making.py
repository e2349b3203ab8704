"""The 28 decision-making tasks: predict the items of the next event of one table from the last 24 h.

Label rule shared by all of them: the anchor event's ``target_key`` values, read from every row of the event,
missing/unmapped values (``nan``/``None``) dropped, deduplicated in first-seen order. Labels are always the
joined *names* (``procedures`` = d_icd_procedures.long_title, ``CCS Type``, ``ATC Type``, ``item_name``), never
codes; an anchor with no named value yields no sample. History cut: :func:`history.dm_window_begin`.

Documented choices where the reference is ambiguous or wrong:

* ``transfers``: ``careunit``, or ``eventtype`` for a row whose careunit is missing (a discharge row).
* ``chartevents``: only anchors with fewer than 10 distinct labels (the reference's filter, kept per task).
* Diagnosis tasks (``diagnoses_*``, ED ``diagnosis*``) ban discharge notes from the context: the note lists the
  diagnoses. ``diagnoses_icd`` is untimed; its prediction time is the admission's ``dischtime``.
* ``discharge`` is a generation task: the label is the note text (one "line"), metric rouge1.
* ``next_event``: every event except demographics is an anchor; the label is its table name (``file_name``).
* Not reproduced: the reference's ``data_index_gen.py`` filter "procedure/diagnosis tasks need admissions_id >
  context_begin or NaN" (its intent is not documented and, read literally, it keeps only windows that start
  before the admission event). The leakage rule and the discharge-note ban cover what such a filter could guard.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from data_pipeline.events import format_time
from data_pipeline.tasks.history import (TimelineIndex, admission_header, clean, dm_window_begin,
                                         previous_discharge)
from data_pipeline.tasks.instructions import DISCHARGE_INSTRUCTION, dm_instruction
from data_pipeline.tasks.spec import DECISION_MAKING, Instance, TaskSpec, register

DIAGNOSIS_BANS = ("discharge",)


def split_values(value: str | None) -> list[str]:
    """One stored value as label strings: list text (radiology ``exam_name`` = ``"['CHEST (PA & LAT)']"``)
    becomes its elements; anything else is one value. Missing values give ``[]``.

    >>> split_values("['CHEST (PA & LAT)', 'CT HEAD']"), split_values("Heparin"), split_values("nan")
    (['CHEST (PA & LAT)', 'CT HEAD'], ['Heparin'], [])
    """
    if value is None:
        return []
    if value.startswith("[") and value.endswith("]"):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, (list, tuple)):
            return [v for v in (clean(x) for x in parsed) if v is not None]
    return [value]


def item_labels(items: list[dict], key: str, fallback: str | None = None) -> list[str]:
    """Deduplicated, ordered, non-missing ``key`` values of an event's rows (``fallback`` where key is missing).

    >>> item_labels([{"drug": "Heparin"}, {"drug": "nan"}, {"drug": "Heparin"}, {"drug": "Insulin"}], "drug")
    ['Heparin', 'Insulin']
    """
    out: list[str] = []
    for row in items:
        value = clean(row.get(key))
        if value is None and fallback is not None:
            value = clean(row.get(fallback))
        for v in split_values(value):
            if v not in out:
                out.append(v)
    return out


def dm_instance(ix: TimelineIndex, task: str, anchor: int, labels: list[str]) -> Instance | None:
    """The decision-making sample anchored at ``anchor`` (None if the anchor has no usable time)."""
    t = ix.times[anchor]
    if t is None or not labels:
        return None
    hadm = ix.hadms[anchor]
    return Instance(
        task=task, subject_id=ix.subject_id, hadm_id=hadm, anchor=anchor,
        context_begin=dm_window_begin(ix, anchor, t), context_end=anchor, prediction_time=format_time(t),
        labels=tuple(labels), admissions_id=admission_header(ix, hadm, t),
        last_discharge_id=previous_discharge(ix, hadm, t))


def _table_generator(task: str, table: str, key: str, fallback: str | None = None, max_labels: int | None = None):
    def generate(ix: TimelineIndex) -> Iterator[Instance]:
        for k, event in enumerate(ix.events):
            if event.file_name != table:
                continue
            labels = item_labels(event.items, key, fallback)
            if max_labels is not None and len(labels) > max_labels:
                continue
            inst = dm_instance(ix, task, k, labels)
            if inst is not None:
                yield inst
    generate.__name__ = f"generate_{task}"
    return generate


def generate_next_event(ix: TimelineIndex) -> Iterator[Instance]:
    for k, event in enumerate(ix.events):
        if event.file_name == "patients":
            continue
        inst = dm_instance(ix, "next_event", k, [event.file_name])
        if inst is not None:
            yield inst


# (name, anchor table, target key, metric, what-phrase, extra requirements, banned, fallback, max_labels)
_TABLE_TASKS = [
    ("admissions", "admissions", "admission_type", "em", "admission type", (), (), None, None),
    ("omr", "omr", "result_name", "em", "online medical record measurement", (), (), None, None),
    ("procedures_icd", "procedures_icd", "procedures", "recall", "procedure", ("d_icd_procedures",), (), None, None),
    ("procedures_ccs", "procedures_icd", "CCS Type", "recall", "procedure CCS category", ("ccs_procedures",), (),
     None, None),
    ("diagnoses_icd", "diagnoses_icd", "diagnoses", "recall", "diagnosis", ("d_icd_diagnoses",), DIAGNOSIS_BANS,
     None, None),
    ("diagnoses_ccs", "diagnoses_icd", "CCS Type", "recall", "diagnosis CCS category", ("ccs_diagnoses",),
     DIAGNOSIS_BANS, None, None),
    ("labevents", "labevents", "item_name", "em", "laboratory test", ("d_labitems",), (), None, None),
    ("microbiologyevents", "microbiologyevents", "test_name", "em", "microbiology test", (), (), None, None),
    ("services", "services", "curr_service", "em", "service", (), (), None, None),
    ("transfers", "transfers", "careunit", "em", "care unit transfer", (), (), "eventtype", None),
    ("emar", "emar", "medication", "em", "medication administration", (), (), None, None),
    ("poe", "poe", "order_type", "em", "provider order", (), (), None, None),
    ("prescriptions", "prescriptions", "drug", "recall", "prescription", (), (), None, None),
    ("prescriptions_atc", "prescriptions", "ATC Type", "recall", "prescription ATC category", ("ndc_atc",), (),
     None, None),
    ("radiology", "radiology", "exam_name", "em", "radiology examination", ("radiology_detail",), (), None, None),
    ("medrecon", "medrecon", "name", "recall", "medication reconciliation", (), (), None, None),
    ("medrecon_atc", "medrecon", "ATC Type", "recall", "medication reconciliation ATC category", ("ndc_atc",), (),
     None, None),
    ("pyxis", "pyxis", "name", "em", "medication dispensing (Pyxis)", (), (), None, None),
    ("diagnosis", "diagnosis", "icd_title", "recall", "emergency department diagnosis", ("edstays",),
     DIAGNOSIS_BANS, None, None),
    ("diagnosis_ccs", "diagnosis", "CCS Type", "recall", "emergency department diagnosis CCS category",
     ("edstays", "ccs_diagnoses"), DIAGNOSIS_BANS, None, None),
    ("chartevents", "chartevents", "item_name", "em", "chart event", ("d_items",), (), None, 9),
    ("ingredientevents", "ingredientevents", "item_name", "em", "ingredient", ("d_items",), (), None, None),
    ("datetimeevents", "datetimeevents", "item_name", "em", "datetime event", ("d_items",), (), None, None),
    ("procedureevents", "procedureevents", "item_name", "em", "ICU procedure", ("d_items",), (), None, None),
    ("inputevents", "inputevents", "item_name", "em", "ICU input", ("d_items",), (), None, None),
    ("outputevents", "outputevents", "item_name", "em", "ICU output", ("d_items",), (), None, None),
]

# Insert order follows the reference's task_info (discharge after radiology, next_event last).
for _name, _table, _key, _metric, _what, _req, _banned, _fallback, _max in _TABLE_TASKS:
    register(TaskSpec(
        name=_name, kind=DECISION_MAKING, anchor_table=_table, target_key=_key, metric=_metric,
        instruction=dm_instruction(_what), generate=_table_generator(_name, _table, _key, _fallback, _max),
        requires=(_table, "admissions", *_req), banned=_banned,
        # The admissions task predicts the admission itself: its header would be the answer.
        show_admission=_name != "admissions"))
    if _name == "radiology":
        register(TaskSpec(
            name="discharge", kind=DECISION_MAKING, anchor_table="discharge", target_key="text", metric="rouge1",
            instruction=DISCHARGE_INSTRUCTION, generate=_table_generator("discharge", "discharge", "text"),
            requires=("discharge", "admissions"), notes="generation task: the output is the note text"))

register(TaskSpec(
    name="next_event", kind=DECISION_MAKING, anchor_table="*", target_key="file_name", metric="acc",
    instruction=dm_instruction("event type"), generate=generate_next_event, requires=("admissions",),
    notes="candidates are the event-type list (the reference looked them up under a key that never matched)"))
