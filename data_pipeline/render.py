"""Render timeline events as the markdown EHR text the published EHR-R1 weights were trained on.

This reproduces, byte for byte, the reference's generic renderer (``MIMICIVStringConvertor.input_process`` in
``mimiciv_dataset/input_format.py`` of MAGIC-AI4Med/EHR-R1), not its unused per-table ``*_item_to_free_text``
functions. An event with one item becomes a bullet list, an event with several items a markdown table::

    ## Labotary Test Events [2180-06-27 05:10:00]
    | Item_Name | Valuenum | Valueuom | Ref_Range_Lower | Ref_Range_Upper | Flag | Comments |
    | ------ | ------ | ------ | ------ | ------ | ------ | ------ |
    | INR(PT) | 1.5 | nan | 0.9 | 1.1 | abnormal | nan |

    ## Services [2180-06-26 18:28:08]
    - Curr_Service: MED

Reference quirks kept on purpose, because the model saw them in training:

* the display names, including the typo "Labotary Test Events";
* keys are ``str.title()``-d (``o2sat`` -> ``O2Sat``, ``ATC Type`` -> ``Atc Type``, ``ref_range_lower`` ->
  ``Ref_Range_Lower``);
* a key missing from an item prints ``None`` (``dict.get``), and a missing start time prints ``[None]``;
* ``icustays`` has no info keys, so its one-item form is the heading followed by a bare ``"\\n"``;
* ``hcpcsevents`` and ``drgcodes`` render as ``""`` and still take part in the ``"\\n\\n"`` join of sample
  assembly (so they leave a run of four newlines), see :func:`render_events`.

Values are printed as they are stored (``str(value)``): the timeline builder owns the value conventions
(``"nan"`` for a missing source value, ``"None"`` for a failed lookup, Python float text, and the radiology
``exam_name`` list text such as ``"['CHEST (PA & LAT)']"``). See :mod:`data_pipeline.events`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from data_pipeline.events import Event, PatientTimeline

#: file_name -> (display name, info keys), verbatim from the reference's ``EVENT_NAME`` and ``event_info``.
EVENT_DISPLAY: dict[str, tuple[str, tuple[str, ...]]] = {
    # hosp
    "patients": ("Patient Demographics", ("anchor_age", "gender")),
    "omr": ("Online Medical Record", ("result_name", "result_value")),
    "pharmacy": ("Pharmacy", ("medication", "proc_type", "status")),
    "prescriptions": ("Prescriptions", ("drug", "ATC Type", "prod_strength", "dose_val_rx", "dose_unit_rx")),
    "poe": ("Provider Order Entry", ("order_type", "order_subtype")),
    "procedures_icd": ("Procedures on International Classification of Diseases", ("procedures", "CCS Type")),
    "services": ("Services", ("curr_service",)),
    "labevents": ("Labotary Test Events", (
        "item_name", "valuenum", "valueuom", "ref_range_lower", "ref_range_upper", "flag", "comments")),
    "microbiologyevents": ("Microbiology Test Events", (
        "test_name", "dilution_text", "interpretation", "comments", "ab_name")),
    "admissions": ("Admissions", ("admission_type", "admission_location", "admission_info")),
    "transfers": ("Transfers", ("eventtype", "careunit")),
    "emar": ("Electronic Medicine Administration Record", ("medication", "event_txt")),
    "diagnoses_icd": ("Diagnoses on International Classification of Diseases", ("diagnoses", "CCS Type")),
    # note
    "radiology": ("Radiology Examinations", ("note_type", "exam_name", "text")),
    "discharge": ("Discharge", ("note_type", "text")),
    # ed
    "edstays": ("EDstays", ("gender", "race")),
    "triage": ("Triage", (
        "temperature", "heartrate", "resprate", "o2sat", "sbp", "dbp", "pain", "acuity", "chiefcomplaint")),
    "medrecon": ("Medrecon", ("name", "ATC Type")),
    "pyxis": ("Pyxis", ("name",)),
    # The triage vitals in the same order, with `rhythm` (a vitalsign-only column) in place of triage's
    # acuity/chiefcomplaint; published EHR-R1 prompts show exactly this order ("- O2Sat: ...", "- Rhythm: nan").
    "vitalsign": ("Vitalsign", ("temperature", "heartrate", "resprate", "o2sat", "sbp", "dbp", "pain", "rhythm")),
    "diagnosis": ("ED Diagnoses on International Classification of Diseases", ("icd_title", "CCS Type")),
    # icu
    "icustays": ("ICUstays", ()),
    "chartevents": ("Chart Events", ("item_name", "valuenum", "valueuom", "warning")),
    "ingredientevents": ("Ingredient Events", ("item_name", "amount", "amountuom", "rate", "rateuom")),
    "datetimeevents": ("Datetime Events", ("item_name",)),
    "procedureevents": ("Procedure Events", ("item_name", "value", "valueuom", "location", "locationcategory")),
    "inputevents": ("Input Events", ("item_name", "amount", "amountuom", "rate", "rateuom")),
    "outputevents": ("Output Events", ("item_name", "value", "valueuom")),
}

#: Event tables the reference keeps on the timeline but renders as "" (their ``event_info`` entries are
#: commented out). They still occupy a slot in the "\n\n" join, which the model saw in training.
SILENT_FILE_NAMES: frozenset[str] = frozenset({"hcpcsevents", "drgcodes"})

#: The joiner between rendered events in sample assembly (reference ``MIMICIV.process_cases``).
EVENT_SEPARATOR = "\n\n"

_TABLE_CELL_RULE = "------"


@dataclass(frozen=True)
class _Layout:
    """Everything about an event type that does not depend on its items, computed once at import."""

    heading_prefix: str          # "## Labotary Test Events ["
    keys: tuple[str, ...]
    bullet_prefixes: tuple[str, ...]  # "- Item_Name: ", ...
    table_head: str              # header row + "\n" + rule row


def _layout(display_name: str, keys: tuple[str, ...]) -> _Layout:
    titled = [k.title() for k in keys]
    header = "| " + " | ".join(titled) + " |"
    rule = "| " + " | ".join([_TABLE_CELL_RULE] * len(keys)) + " |"
    return _Layout(
        heading_prefix=f"## {display_name} [",
        keys=keys,
        bullet_prefixes=tuple(f"- {t}: " for t in titled),
        table_head=header + "\n" + rule,
    )


_LAYOUTS: dict[str, _Layout] = {name: _layout(display, keys) for name, (display, keys) in EVENT_DISPLAY.items()}


def render_event(event: Event | Mapping) -> str:
    """One event as reference markdown; ``""`` for ``hcpcsevents``/``drgcodes``.

    Accepts an :class:`~data_pipeline.events.Event` or its ``to_dict()`` form (what a parquet shard holds), so
    batch code need not build objects. Raises ``ValueError`` for a ``file_name`` that is not an event table:
    the reference silently printed ``""`` there, which would hide a timeline-builder bug.

    >>> render_event(Event("services", "2180-06-26 18:28:08", None, "1", [{"curr_service": "MED"}]))
    '## Services [2180-06-26 18:28:08]\\n- Curr_Service: MED'
    """
    if isinstance(event, Event):
        file_name, starttime, items = event.file_name, event.starttime, event.items
    else:
        file_name, starttime, items = event["file_name"], event.get("starttime"), event.get("items", ())
    layout = _LAYOUTS.get(file_name)
    if layout is None:
        if file_name in SILENT_FILE_NAMES:
            return ""
        raise ValueError(f"cannot render event file_name={file_name!r}: not a MIMIC-IV event table; "
                         f"expected one of {sorted(EVENT_DISPLAY) + sorted(SILENT_FILE_NAMES)}")
    # The reference's patients rows carry no time, so their heading always reads [None].
    heading = f"{layout.heading_prefix}{None if file_name == 'patients' else starttime}]"
    keys = layout.keys
    if len(items) == 1:
        item = items[0]
        body = "\n".join([prefix + str(item.get(key)) for prefix, key in zip(layout.bullet_prefixes, keys)])
    else:
        # The reference takes the table branch for every count but one, including an (unexpected) empty list.
        rows = ["| " + " | ".join([str(item.get(key)) for key in keys]) + " |" for item in items]
        body = "\n".join([layout.table_head, *rows])
    return heading + "\n" + body


def render_events(events: Iterable[Event | Mapping]) -> str:
    """Events joined with ``"\\n\\n"`` exactly as reference sample assembly does, empty renders included.

    This is the model-input path: an ``hcpcsevents`` or ``drgcodes`` event contributes ``""`` between two
    separators, as in the prompts the published weights were trained on.
    """
    return EVENT_SEPARATOR.join([render_event(e) for e in events])


def render_timeline(timeline: PatientTimeline, *, keep_silent_events: bool = False) -> str:
    """A whole patient timeline, for people reading it (dashboards, debugging, the serving API's echo).

    By default the events that render as ``""`` are dropped, so the text has no runs of blank lines. Pass
    ``keep_silent_events=True`` to get exactly ``render_events(timeline.events)``; build model prompts with
    :func:`render_events` on the chosen context events, never from this view.
    """
    if keep_silent_events:
        return render_events(timeline.events)
    return render_events([e for e in timeline.events if e.file_name not in SILENT_FILE_NAMES])
