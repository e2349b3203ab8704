"""Vectorised JSON encoding of timeline rows, events and patients with pyarrow string kernels.

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

from data_pipeline.events import MISSING

#: ``json.dumps(s, ensure_ascii=False)`` of one string (the C implementation when available).
_encode_basestring = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.py_encode_basestring


#: Bytes that a JSON string literal must escape: control characters, '"' and '\\'.
_ESCAPE_BYTE = np.zeros(256, dtype=bool)
_ESCAPE_BYTE[:0x20] = True
_ESCAPE_BYTE[[ord('"'), ord("\\")]] = True


def rows_needing_escape(arr: pa.Array) -> np.ndarray:
    """Indices of the values of a non-null string array that contain a byte JSON must escape.

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
    return np.unique(np.searchsorted(offsets, hits, side="right") - 1)


def json_escape(arr: pa.Array) -> pa.Array:
    """Escape a non-null string array for the inside of a JSON string literal.

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


def encode_rows(columns: dict[str, pa.Array], may_need_escape: set[str] | None = None) -> pa.Array:
    """``{"k": "v", ...}`` per row from string columns (nulls print as ``"nan"``), keys in ``columns`` order.

    ``may_need_escape`` limits escaping to the named columns (ids, numbers and times never need it); ``None``
    checks every column.
    """
    parts: list = []
    for i, (key, arr) in enumerate(columns.items()):
        arr = pc.fill_null(arr, MISSING)
        if may_need_escape is None or key in may_need_escape:
            arr = json_escape(arr)
        parts.append(("{" if i == 0 else '", ') + _lit(key) + ': "')
        parts.append(arr)
    parts.append('"}')
    return pc.binary_join_element_wise(*parts, "")


def quoted_or_null(arr: pa.Array) -> pa.Array:
    """A JSON string literal per value, or ``null`` where the value is null (values must not need escaping)."""
    return pc.fill_null(pc.binary_join_element_wise('"', arr, '"', ""), "null")


#: Above this many bytes of text a bucket switches to 64-bit string offsets (2 GiB is the 32-bit limit).
LARGE_TEXT_BYTES = 1_500_000_000


def text_type(arrays: list[pa.Array]) -> pa.DataType:
    """``string`` unless the arrays' text could overflow 32-bit offsets once joined, then ``large_string``."""
    return pa.large_string() if sum(a.nbytes for a in arrays) > LARGE_TEXT_BYTES else pa.string()


def join_lists(values: pa.Array, offsets: np.ndarray, sep: str) -> pa.Array:
    """``sep.join(values[offsets[i]:offsets[i+1]])`` for every i, in the string type of ``values``."""
    if pa.types.is_large_string(values.type):
        lists = pa.LargeListArray.from_arrays(pa.array(offsets.astype(np.int64)), values)
    else:
        lists = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values)
    return pc.binary_join(lists, pa.scalar(sep, values.type))


def concat(pieces: list, ttype: pa.DataType) -> pa.Array:
    """Element-wise concatenation of arrays and literals, all in ``ttype``."""
    return pc.binary_join_element_wise(*[pa.scalar(p, ttype) if isinstance(p, str) else p.cast(ttype)
                                         for p in pieces], pa.scalar("", ttype))


def _offsets(arr: pa.Array) -> np.ndarray:
    off_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    return np.frombuffer(arr.buffers()[1], dtype=off_type)[arr.offset:arr.offset + len(arr) + 1]


def encode_timelines(file_name: pa.Array, start: pa.Array, end: pa.Array, hadm: pa.Array, row_json: list[pa.Array],
                     perm: np.ndarray, starts: np.ndarray, patient_starts: np.ndarray) -> pa.Array:
    """The ``events`` column: one JSON list of event objects per patient.

    ``row_json`` holds the item objects (one array per table, concatenated = source order) and ``perm`` their
    timeline order; ``starts`` indexes the first (sorted) row of each event, ``patient_starts`` the first event
    of each patient; ``file_name``/``start``/``end``/``hadm`` are per event (null -> ``null``).

    A patient's text is the sequence of pieces ``header(e), item, ", ", item, ..., footer(e)`` over its events,
    where header = ``[`` (first event) or ``", "`` + ``{"file_name": ..., "items": [`` and footer = ``]}``
    (+ ``]`` after the last event). All pieces go into one array, one ``take`` lays them out in output order,
    and since consecutive patients are consecutive byte ranges of that result, the patients' strings are
    zero-copy slices of its data buffer: the item text is copied twice in all (concatenate, take) instead of
    five times with nested joins.
    """
    n_rows, n_events = len(perm), len(starts)
    opens = np.zeros(n_events, dtype=bool)
    opens[patient_starts] = True
    closes = np.zeros(n_events, dtype=bool)
    closes[np.append(patient_starts[1:], n_events) - 1] = True
    st = pa.string()
    header = concat([pc.if_else(pa.array(opens), pa.scalar("[", st), pa.scalar(", ", st)),
                     '{"file_name": "', file_name, '", "starttime": ', quoted_or_null(start),
                     ', "endtime": ', quoted_or_null(end), ', "hadm_id": ', quoted_or_null(hadm), ', "items": ['],
                    st)
    footer = pc.if_else(pa.array(closes), pa.scalar("]}]", st), pa.scalar("]}", st))
    tt = text_type([*row_json, header, footer])
    pieces = pa.concat_arrays([a.cast(tt) for a in [*row_json, header, footer, pa.array([", "], st)]])
    h0, f0, sep = n_rows, n_rows + n_events, n_rows + 2 * n_events
    # per event e with k items: header, item, (sep, item) * (k - 1), footer -> 2k + 1 pieces
    n_items = np.diff(np.append(starts, n_rows))
    first_piece = np.zeros(n_events + 1, dtype=np.int64)
    np.cumsum(2 * n_items + 1, out=first_piece[1:])
    idx = np.full(first_piece[-1], sep, dtype=np.int64)
    event_of_row = np.repeat(np.arange(n_events), n_items)
    rank_in_event = np.arange(n_rows) - starts[event_of_row]
    idx[first_piece[event_of_row] + 1 + 2 * rank_in_event] = perm
    idx[first_piece[:-1]] = h0 + np.arange(n_events)
    idx[first_piece[1:] - 1] = f0 + np.arange(n_events)
    laid = pieces.take(pa.array(idx))
    del pieces
    bounds = _offsets(laid)[first_piece[np.append(patient_starts, n_events)]]
    off_type = pa.int64() if pa.types.is_large_string(tt) else pa.int32()
    return pa.Array.from_buffers(tt, len(patient_starts), [None, pa.array(bounds, off_type).buffers()[1],
                                                           laid.buffers()[2]])
