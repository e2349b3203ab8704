"""Vectorised markdown for whole buckets: the text of ``data_pipeline.render.render_timeline``, built with pyarrow.

Rendering one patient at a time in Python (``json.loads`` + one f-string per item) costs more than the rest of
the timeline build together, so phase 2 renders from the same sorted columns it encodes as JSON. The layout
(display names, info keys, ``str.title()`` keys, bullet list for one item and table otherwise, ``[None]`` for
patients, silent ``hcpcsevents``/``drgcodes`` dropped, events joined by ``"\\n\\n"``) comes from
:mod:`data_pipeline.render`, and ``tests/data_pipeline/test_timeline_markdown.py`` checks the output equals
``render_timeline`` patient by patient.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_pipeline.events import MISSING
from data_pipeline.render import EVENT_DISPLAY, EVENT_SEPARATOR, SILENT_FILE_NAMES
from data_pipeline.timeline.encode import concat, join_lists

_RULE = "------"


def _join(parts: list, n: int) -> pa.Array:
    """Concatenate string arrays/literals element-wise into an array of length ``n``."""
    if not any(isinstance(p, (pa.Array, pa.ChunkedArray)) for p in parts):
        return pc.fill_null(pa.nulls(n, pa.string()), "".join(parts))
    return pc.binary_join_element_wise(*parts, "")


def row_fragments(table: str, cols: dict[str, pa.Array], n: int) -> tuple[pa.Array, pa.Array]:
    """Per row of ``table``: (bullet-list text, markdown table row); empty strings for silent tables."""
    if table not in EVENT_DISPLAY:
        empty = _join([""], n)
        return empty, empty
    _, keys = EVENT_DISPLAY[table]
    vals = [pc.fill_null(cols[k], MISSING) if k in cols else "None" for k in keys]
    bullet: list = []
    row: list = ["| "]
    for i, (key, v) in enumerate(zip(keys, vals)):
        bullet += [("" if i == 0 else "\n") + f"- {key.title()}: ", v]
        row += ([] if i == 0 else [" | "]) + [v]
    row.append(" |")
    return _join(bullet or [""], n), _join(row, n)


def _heads() -> tuple[dict[str, str], dict[str, str]]:
    heading, table_head = {}, {}
    for name, (display, keys) in EVENT_DISPLAY.items():
        titled = [k.title() for k in keys]
        heading[name] = f"## {display} ["
        table_head[name] = ("| " + " | ".join(titled) + " |\n| " + " | ".join([_RULE] * len(keys)) + " |")
    return heading, table_head


_HEADING, _TABLE_HEAD = _heads()


def render_bucket(names: list[str], event_table: np.ndarray, start: pa.Array, starts: np.ndarray,
                  bullets_first: pa.Array, rows_sorted: pa.Array, patient_starts: np.ndarray) -> pa.Array:
    """One markdown text per patient.

    ``names[event_table[i]]`` is event i's table; ``start`` its start time text (null -> ``None``);
    ``starts`` its first row in ``rows_sorted`` (table rows in timeline order); ``bullets_first`` the bullet text
    of each event's first row; ``patient_starts`` each patient's first event.
    """
    n_events = len(starts)
    tt = rows_sorted.type
    n_items = np.diff(np.append(starts, len(rows_sorted)))
    heading = pc.take(pa.array([_HEADING.get(t, "") for t in names], tt), pa.array(event_table))
    head = pc.take(pa.array([_TABLE_HEAD.get(t, "") for t in names], tt), pa.array(event_table))
    is_patient = np.array([t == "patients" for t in names])[event_table]
    when = pc.if_else(pa.array(is_patient), pa.scalar("None", tt), pc.fill_null(start.cast(tt), "None"))
    table_body = concat([head, "\n", join_lists(rows_sorted, np.append(starts, len(rows_sorted)), "\n")], tt)
    body = pc.if_else(pa.array(n_items == 1), bullets_first.cast(tt), table_body)
    text = concat([heading, when, "]\n", body], tt)
    silent = np.array([t in SILENT_FILE_NAMES for t in names])[event_table]
    patient_of_event = np.repeat(np.arange(len(patient_starts)),
                                 np.diff(np.append(patient_starts, n_events)))
    kept = np.bincount(patient_of_event[~silent], minlength=len(patient_starts))
    offsets = np.concatenate([[0], np.cumsum(kept)])
    return join_lists(text.filter(pa.array(~silent)), offsets, EVENT_SEPARATOR)
