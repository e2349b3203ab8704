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
* ``discharge`` (generation) is predicted at the admission's ``dischtime`` (the note is charted at the
  discharge date 00:00:00 in MIMIC-IV-Note, which would cut the discharge day from its window); the window runs
  to ``dischtime`` and never shows the note itself. Not in the EHR-Bench preset (the reference's 45 tasks).
* ``next_event``: anchors are the timed events of tables that render to text (not the demographics, not the
  untimed ``diagnoses_icd``/``drgcodes``, not ``hcpcsevents``, which renders as ""); the label is the table name
  (``file_name``) and the candidate list holds exactly those tables (:data:`NEXT_EVENT_TABLES`).
* The reference's ``data_index_gen.py`` filter for procedure and diagnosis samples ("admissions_id >
  context_begin or NaN"): the 24 h window must cover the admission event (or the admission has none). Flagged
  here (``TaskSpec.admission_window_filter``, index column ``covers_admission``) and applied by the dataset
  presets by default (``admission_window_filter: false`` turns it off).
* Instructions are the reference's exact strings (:mod:`instructions`).
* Leakage fixes over the reference: every context event must be *available* before the prediction time
  (:mod:`availability`): lab results at their ``storetime``, date-only rows at the end of their day, notes when
  signed. The reference compared placement times only.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from data_pipeline.events import format_time
from data_pipeline.render import EVENT_DISPLAY
from data_pipeline.tasks.history import (TimelineIndex, admission_header, clean, dm_window_begin, forward_end,
                                         previous_discharge, window_begin_before)
from data_pipeline.tasks.instructions import REFERENCE
from data_pipeline.tasks.spec import DECISION_MAKING, Instance, TaskSpec, register

DIAGNOSIS_BANS = ("discharge",)
#: Tables whose events anchor next_event samples and form its candidate list: timed and rendered to text.
NEXT_EVENT_TABLES = tuple(sorted(t for t in EVENT_DISPLAY if t not in ("patients", "diagnoses_icd")))
ADMISSION_FILTER_TASKS = ("procedures_icd", "procedures_ccs", "diagnoses_icd", "diagnoses_ccs")


def covers_admission(ix: TimelineIndex, inst: Instance) -> bool:
    """The reference's filter for procedure/diagnosis samples: the window covers the admission event (or the
    admission has none on the timeline)."""
    k = ix.admission_index.get(inst.hadm_id) if inst.hadm_id else None
    return k is None or inst.context_begin <= k


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
    begin, end = dm_window_begin(ix, anchor, t), anchor
    if task == "discharge" and ix.rules.availability:
        disch = ix.admission_time(hadm, "dischtime")
        if disch is not None and disch > t:  # predicted at discharge, not at the note's date-only charttime
            t = disch
            end = forward_end(ix, anchor, t)
            begin = window_begin_before(ix, end, hadm, t)
    return Instance(
        task=task, subject_id=ix.subject_id, hadm_id=hadm, anchor=anchor,
        context_begin=begin, context_end=end, prediction_time=format_time(t),
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
        if event.file_name not in NEXT_EVENT_TABLES or event.starttime in (None, "", "nan", "None"):
            continue
        inst = dm_instance(ix, "next_event", k, [event.file_name])
        if inst is not None:
            yield inst


# (name, anchor table, target key, metric, extra requirements, banned, fallback, max_labels)
_TABLE_TASKS = [
    ("admissions", "admissions", "admission_type", "em", (), (), None, None),
    ("omr", "omr", "result_name", "em", (), (), None, None),
    ("procedures_icd", "procedures_icd", "procedures", "recall", ("d_icd_procedures",), (), None, None),
    ("procedures_ccs", "procedures_icd", "CCS Type", "recall", ("ccs_procedures",), (), None, None),
    ("diagnoses_icd", "diagnoses_icd", "diagnoses", "recall", ("d_icd_diagnoses",), DIAGNOSIS_BANS, None, None),
    ("diagnoses_ccs", "diagnoses_icd", "CCS Type", "recall", ("ccs_diagnoses",), DIAGNOSIS_BANS, None, None),
    ("labevents", "labevents", "item_name", "em", ("d_labitems",), (), None, None),
    ("microbiologyevents", "microbiologyevents", "test_name", "em", (), (), None, None),
    ("services", "services", "curr_service", "em", (), (), None, None),
    ("transfers", "transfers", "careunit", "em", (), (), "eventtype", None),
    ("emar", "emar", "medication", "em", (), (), None, None),
    ("poe", "poe", "order_type", "em", (), (), None, None),
    ("prescriptions", "prescriptions", "drug", "recall", (), (), None, None),
    ("prescriptions_atc", "prescriptions", "ATC Type", "recall", ("ndc_atc",), (), None, None),
    ("radiology", "radiology", "exam_name", "em", ("radiology_detail",), (), None, None),
    ("medrecon", "medrecon", "name", "recall", (), (), None, None),
    ("medrecon_atc", "medrecon", "ATC Type", "recall", ("ndc_atc",), (), None, None),
    ("pyxis", "pyxis", "name", "em", (), (), None, None),
    ("diagnosis", "diagnosis", "icd_title", "recall", ("edstays",), DIAGNOSIS_BANS, None, None),
    ("diagnosis_ccs", "diagnosis", "CCS Type", "recall", ("edstays", "ccs_diagnoses"), DIAGNOSIS_BANS, None, None),
    ("chartevents", "chartevents", "item_name", "em", ("d_items",), (), None, 9),
    ("ingredientevents", "ingredientevents", "item_name", "em", ("d_items",), (), None, None),
    ("datetimeevents", "datetimeevents", "item_name", "em", ("d_items",), (), None, None),
    ("procedureevents", "procedureevents", "item_name", "em", ("d_items",), (), None, None),
    ("inputevents", "inputevents", "item_name", "em", ("d_items",), (), None, None),
    ("outputevents", "outputevents", "item_name", "em", ("d_items",), (), None, None),
]

# Insert order follows the reference's task_info (discharge after radiology, next_event last).
for _name, _table, _key, _metric, _req, _banned, _fallback, _max in _TABLE_TASKS:
    register(TaskSpec(
        name=_name, kind=DECISION_MAKING, anchor_table=_table, target_key=_key, metric=_metric,
        instruction=REFERENCE[_name], generate=_table_generator(_name, _table, _key, _fallback, _max),
        requires=(_table, "admissions", *_req), banned=_banned,
        # The admissions task predicts the admission itself: its header would be the answer.
        show_admission=_name != "admissions", admission_window_filter=_name in ADMISSION_FILTER_TASKS))
    if _name == "radiology":
        register(TaskSpec(
            name="discharge", kind=DECISION_MAKING, anchor_table="discharge", target_key="text", metric="rouge1",
            instruction=REFERENCE["discharge"], generate=_table_generator("discharge", "discharge", "text"),
            requires=("discharge", "admissions"), notes="generation task: the output is the note text"))

register(TaskSpec(
    name="next_event", kind=DECISION_MAKING, anchor_table="*", target_key="file_name", metric="acc",
    instruction=REFERENCE["next_event"], generate=generate_next_event, requires=("admissions",),
    notes="candidates are the event-type list (the reference looked them up under a key that never matched)"))
