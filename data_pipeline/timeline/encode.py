"""Vectorised JSON encoding of timeline rows, events and patients with pyarrow string kernels.

The text is byte-identical to ``json.dumps([event.to_dict() ...], ensure_ascii=False)`` (separators ``", "`` and
``": "``, keys in ``Event`` field order), i.e. to :meth:`data_pipeline.events.PatientTimeline.to_row`, without
building one Python object per row. Strings are escaped like ``json.dumps``: ``\\\\``, ``\\"``, ``\\n``, ``\\r``,
``\\t``, ``\\b``, ``\\f``; other control characters (rare) go through ``json.dumps`` itself.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_pipeline.events import MISSING

_NEEDS_ESCAPE = r'["\\\x00-\x1f]'
_RARE_CONTROL = r"[\x00-\x07\x0b\x0e-\x1f]"
_SIMPLE = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\x08", "\\b"),
           ("\x0c", "\\f"))


def json_escape(arr: pa.Array) -> pa.Array:
    """Escape a non-null string array for the inside of a JSON string literal."""
    if not pc.any(pc.match_substring_regex(arr, _NEEDS_ESCAPE)).as_py():
        return arr
    out = arr
    for raw, esc in _SIMPLE:
        out = pc.replace_substring(out, raw, esc)
    rare = pc.match_substring_regex(arr, _RARE_CONTROL)
    if pc.any(rare).as_py():
        idx = np.flatnonzero(rare.to_numpy(zero_copy_only=False))
        py = out.to_pylist()
        for i in idx:
            py[i] = json.dumps(arr[int(i)].as_py(), ensure_ascii=False)[1:-1]
        out = pa.array(py, out.type)
    return out


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


def decorate(rows: pa.Array, idx: np.ndarray, prefix: pa.Array | None = None,
             suffix: pa.Array | None = None) -> pa.Array:
    """``rows`` with ``prefix[k] + rows[idx[k]] + suffix[k]`` at positions ``idx`` (only those rows are rebuilt)."""
    mask = np.zeros(len(rows), dtype=bool)
    mask[idx] = True
    picked = rows.take(pa.array(idx))
    new = concat([p for p in (prefix, picked, suffix) if p is not None], rows.type)
    return pc.replace_with_mask(rows, pa.array(mask), new)


def encode_timelines(file_name: pa.Array, start: pa.Array, end: pa.Array, hadm: pa.Array, row_json: pa.Array,
                     starts: np.ndarray, patient_starts: np.ndarray) -> pa.Array:
    """The ``events`` column: one JSON list of event objects per patient.

    ``row_json`` holds the item objects in timeline order, ``starts`` the first row of each event, ``patient_starts``
    the first event of each patient; ``file_name``/``start``/``end``/``hadm`` are per event (null -> ``null``).
    Instead of nesting joins (which would copy the item text three times), each event's first item gets the
    event header (``{"file_name": ..., "items": [``) and its last item the footer (``]}``); patients' first and
    last items also get ``[`` / ``]``; then a patient's items joined by ``", "`` are exactly its JSON list.
    """
    tt = row_json.type
    n_rows, n_events = len(row_json), len(starts)
    ends = np.append(starts[1:], n_rows) - 1
    opens = np.zeros(n_events, dtype=bool)
    opens[patient_starts] = True
    closes = np.zeros(n_events, dtype=bool)
    closes[np.append(patient_starts[1:], n_events) - 1] = True
    header = concat([pc.if_else(pa.array(opens), pa.scalar("[", tt), pa.scalar("", tt)),
                     '{"file_name": "', file_name, '", "starttime": ', quoted_or_null(start),
                     ', "endtime": ', quoted_or_null(end), ', "hadm_id": ', quoted_or_null(hadm), ', "items": ['],
                    tt)
    footer = pc.if_else(pa.array(closes), pa.scalar("]}]", tt), pa.scalar("]}", tt))
    rows = decorate(row_json, starts, prefix=header)
    rows = decorate(rows, ends, suffix=footer)
    return join_lists(rows, np.append(starts[patient_starts], n_rows), ", ")
