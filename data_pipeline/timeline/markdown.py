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


def row_fragments(table: str, cols: dict[str, pa.Array], n: int) -> tuple[list, pa.Array]:
    """Per row of ``table``: (the display values, for :func:`bullets`; the markdown table row text).

    Silent tables give no values and empty rows. The bullet-list text is not built here: only events of a
    single row print it, so :func:`bullets` builds it afterwards for those rows alone.
    """
    if table not in EVENT_DISPLAY:
        return [], _join([""], n)
    _, keys = EVENT_DISPLAY[table]
    vals = [pc.fill_null(cols[k], MISSING) if k in cols else "None" for k in keys]
    row: list = ["| "]
    for i, v in enumerate(vals):
        row += ([] if i == 0 else [" | "]) + [v]
    row.append(" |")
    return vals, _join(row, n)


def bullets(table: str, vals: list, rows: np.ndarray) -> pa.Array:
    """The bullet-list text (``- Key: value`` lines) of rows ``rows`` of ``table``, from its display values."""
    if table not in EVENT_DISPLAY or not vals:
        return _join([""], len(rows))
    _, keys = EVENT_DISPLAY[table]
    idx = pa.array(rows)
    parts: list = []
    for i, (key, v) in enumerate(zip(keys, vals)):
        parts += [("" if i == 0 else "\n") + f"- {key.title()}: ", v if isinstance(v, str) else v.take(idx)]
    return _join(parts or [""], len(rows))


def single_row_bullets(tables: list[tuple[str, list, int]], first_rows: np.ndarray, single: np.ndarray,
                       ttype: pa.DataType) -> pa.Array:
    """Per event, the bullet text of its first row where ``single`` (one-row events), ``""`` elsewhere.

    ``tables`` lists ``(table, display values, first global row)`` in concatenation order; ``first_rows`` is
    each event's first row as a global (unsorted) row index.
    """
    sel = np.flatnonzero(single)
    order = np.argsort(first_rows[sel], kind="stable")
    sel = sel[order]
    rows = first_rows[sel]
    bounds = np.append([off for _, _, off in tables[1:]], np.iinfo(np.int64).max)
    which = np.searchsorted(bounds, rows, side="right")
    chunks = []
    for i, (name, vals, off) in enumerate(tables):
        lo, hi = np.searchsorted(which, [i, i + 1])
        if hi > lo:
            chunks.append(bullets(name, vals, rows[lo:hi] - off).cast(ttype))
    pieces = pa.concat_arrays([*chunks, pa.array([""], ttype)])
    idx = np.full(len(first_rows), len(pieces) - 1, dtype=np.int64)
    idx[sel] = np.arange(len(sel))
    return pieces.take(pa.array(idx))


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
