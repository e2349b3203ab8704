"""The ``events`` JSON of a bucket's patients, written by :class:`~data_pipeline.timeline.assemble.TextBuilder`.

The text is byte-identical to ``json.dumps([event.to_dict() ...], ensure_ascii=False)`` (separators ``", "`` and
``": "``, keys in ``Event`` field order), i.e. to :meth:`data_pipeline.events.PatientTimeline.to_row`, without
building one Python object per row. Values that need escaping (found by a numpy scan of the bytes; in practice
note text) are escaped by ``json.dumps``'s own string encoder, so escapes match the reference exactly.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_pipeline.timeline.assemble import TextBuilder

#: ``json.dumps(s, ensure_ascii=False)`` of one string (the C implementation when available).
_encode_basestring = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.py_encode_basestring


#: Bytes that a JSON string literal must escape: control characters, '"' and '\\'.
_ESCAPE_BYTE = np.zeros(256, dtype=bool)
_ESCAPE_BYTE[:0x20] = True
_ESCAPE_BYTE[[ord('"'), ord("\\")]] = True


def rows_needing_escape(arr: pa.Array) -> np.ndarray:
    """Indices of the non-null values of a string array that contain a byte JSON must escape.

    One table lookup per byte of the values buffer (numpy), instead of a regex over every value: most columns
    hold no such byte at all, and in note tables only the rows that do get re-encoded.
    """
    if len(arr) == 0 or arr.buffers()[2] is None:
        return np.zeros(0, dtype=np.int64)
    off_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], dtype=off_type)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    hits = np.flatnonzero(_ESCAPE_BYTE[data]) + offsets[0]
    if len(hits) == 0:
        return np.zeros(0, dtype=np.int64)
    rows = np.unique(np.searchsorted(offsets, hits, side="right") - 1)
    if arr.null_count:  # Arrow does not promise that a null slot spans no bytes
        rows = rows[pc.is_valid(arr).to_numpy(zero_copy_only=False)[rows]]
    return rows


def json_escape(arr: pa.Array) -> pa.Array:
    """Escape a string array for the inside of a JSON string literal (nulls stay null).

    Only the values that need it are re-encoded, by the C encoder behind ``json.dumps(..., ensure_ascii=False)``
    (so the escapes are exactly the reference's), and put back with one masked replace.
    """
    idx = rows_needing_escape(arr)
    if len(idx) == 0:
        return arr
    picked = arr.take(pa.array(idx)).to_pylist()
    escaped = pa.array([_encode_basestring(v)[1:-1] for v in picked], arr.type)
    mask = np.zeros(len(arr), dtype=bool)
    mask[idx] = True
    return pc.replace_with_mask(arr, pa.array(mask), escaped)


def _lit(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)


def item_templates(tb: TextBuilder, columns: dict[str, pa.Array],
                   may_need_escape: set[str] | None = None) -> tuple[int, int]:
    """Templates of one table's item object ``{"k": "v", ...}`` (nulls print ``"nan"``, keys in ``columns``
    order): ``(alone, followed by ", ")``.

    ``may_need_escape`` limits escaping to the named columns (ids, numbers and times never need it); ``None``
    checks every column.
    """
    parts: list = []
    for i, (key, arr) in enumerate(columns.items()):
        if may_need_escape is None or key in may_need_escape:
            arr = json_escape(arr)
        parts += [("{" if i == 0 else '", ') + _lit(key) + ': "', tb.column(arr)]
    if not parts:
        return tb.template("{}"), tb.template("{}, ")
    return tb.template(*parts, '"}'), tb.template(*parts, '"}, ')


def header_templates(tb: TextBuilder, file_name: str, start: int, end: int, hadm: int) -> tuple[int, int]:
    """Templates of an event's opening ``{"file_name": ..., "items": [`` (``start``/``end``/``hadm`` are per-event
    columns, null -> ``null``): ``(first event of a patient, any other)``; the first opens the list with ``[``."""
    body = ['{"file_name": ' + _lit(file_name) + ', "starttime": ', start, ', "endtime": ', end, ', "hadm_id": ',
            hadm, ', "items": [']
    return (tb.template("[", *body, null="null", quoted=(start, end, hadm)),
            tb.template(", ", *body, null="null", quoted=(start, end, hadm)))


def encode_timelines(tb: TextBuilder, headers: np.ndarray, items: np.ndarray, table_of_row: np.ndarray,
                     local_row: np.ndarray, event_table: np.ndarray, perm: np.ndarray, starts: np.ndarray,
                     patient_starts: np.ndarray) -> pa.Array:
    """The ``events`` column: one JSON list of event objects per patient.

    ``headers[t]`` / ``items[t]`` are the :func:`header_templates` / :func:`item_templates` pairs of table ``t``;
    ``table_of_row`` / ``local_row`` give each row's table and its index there (rows numbered in concatenation
    order); ``perm`` is the timeline order of the rows, ``starts`` the first (sorted) row of each event,
    ``event_table`` each event's table and ``patient_starts`` each patient's first event. The header templates'
    columns are indexed by event.

    Pieces per event of k items: header, k items (all but the last followed by ``", "``), footer ``]}`` (``]}]``
    after a patient's last event).
    """
    n_rows, n_events = len(perm), len(starts)
    closes = np.zeros(n_events, dtype=bool)
    closes[np.append(patient_starts[1:], n_events) - 1] = True
    opens = np.zeros(n_events, dtype=bool)
    opens[patient_starts] = True
    n_items = np.diff(np.append(starts, n_rows))
    n_pieces = n_rows + 2 * n_events
    templates = np.empty(n_pieces, dtype=np.int64)
    rows = np.zeros(n_pieces, dtype=np.int64)
    head = starts + 2 * np.arange(n_events)  # rows before the event + 2 pieces per earlier event
    templates[head] = headers[event_table, np.where(opens, 0, 1)]
    rows[head] = np.arange(n_events)
    foot = head + n_items + 1
    templates[foot] = np.where(closes, tb.template("]}]"), tb.template("]}"))
    event_of_row = np.repeat(np.arange(n_events), n_items)
    at = np.arange(n_rows) + 2 * event_of_row + 1
    last = np.zeros(n_rows, dtype=bool)
    last[starts + n_items - 1] = True
    table = table_of_row[perm]
    templates[at] = items[table, np.where(last, 0, 1)]
    rows[at] = local_row[perm]
    return tb.build(templates, rows, np.append(head[patient_starts], n_pieces))
