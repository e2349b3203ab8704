"""Phase 2: turn one bucket's staged rows into patient timelines (and their markdown).

Input: ``{table name: staged table}`` for one bucket (see :mod:`data_pipeline.timeline.partition`). Output: a
pyarrow table ``subject_id int64, events string`` in ascending subject order, the shard format of
:mod:`data_pipeline.events`.

Joins done here, because they need another per-patient table:

* ``triage`` rows get the time of their stay's ``edstays.intime`` + 1 s, ED ``diagnosis`` rows the stay's
  ``edstays.outtime`` (matched on ``stay_id``; a stay missing from edstays leaves the row untimed -> end).
* ``admissions.admission_info`` = ``"None"`` on every admission, as in the published EHR-R1/EHR-Bench prompts
  (``- Admission_Info: None``). It is never read from the admission's own discharge note: that note is
  written at discharge and states the outcome, and the admission header is shown in windows that end long
  before discharge (an earlier version filled it with the note's chief complaint, which leaked).
* ``radiology.exam_name`` = the ``exam_name`` values of the note's radiology_detail rows in ``field_ordinal``
  order, printed as a Python list (``"['CHEST (PA & LAT)']"``, the reference's text); ``"None"`` when absent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_pipeline.events import MISSING, TIME_FORMAT, UNMAPPED
from data_pipeline.mimic.schema import EVENT_TABLES
from data_pipeline.mimic.values import parse_datetime
from data_pipeline.render import EVENT_DISPLAY
from data_pipeline.timeline.assemble import TextBuilder
from data_pipeline.timeline.encode import encode_timelines, header_templates, item_templates
from data_pipeline.timeline.joins import display_fields
from data_pipeline.timeline.markdown import event_templates, render_bucket
from data_pipeline.timeline.order import (TABLE_RANK, TIE_BREAK_ORDER, Rows, event_runs, order_rows, row_kind,
                                          KIND_DIAGNOSES)

OUTPUT_SCHEMA = pa.schema([("subject_id", pa.int64()), ("events", pa.string())])
MARKDOWN_SCHEMA = pa.schema([("subject_id", pa.int64()), ("markdown", pa.string())])


@dataclass
class BucketStats:
    patients: int = 0
    events: int = 0
    rows: int = 0


def _lookup(keys: pa.Array, value_keys: pa.Array, values: pa.Array) -> pa.Array:
    """values[value_keys == key] per key (first match), null where absent."""
    return pc.take(values, pc.index_in(keys, value_set=value_keys))


def ed_times(tables: dict[str, pa.Table]) -> None:
    """Give triage (intime + 1 s) and ED diagnosis (outtime) rows their time, in place."""
    stays = tables.get("edstays")
    for name in ("triage", "diagnosis"):
        t = tables.get(name)
        if t is None:
            continue
        if stays is None:
            times = pa.nulls(t.num_rows, pa.int64())
        else:
            stay_keys = stays.column("stay_id").combine_chunks()
            if name == "triage":
                src = pc.add(stays.column("_t").combine_chunks(), 1)
            else:
                src = pc.cast(parse_datetime(stays.column("outtime").combine_chunks()), pa.int64())
            times = _lookup(t.column("stay_id").combine_chunks(), stay_keys, src)
        tables[name] = t.set_column(t.schema.get_field_index("_t"), "_t", times)


def admission_info(tables: dict[str, pa.Table]) -> None:
    """``admission_info`` = ``"None"`` (the published prompts' value; see the module doc for why not the note)."""
    adm = tables.get("admissions")
    if adm is None:
        return
    tables["admissions"] = adm.append_column("admission_info", pa.array([UNMAPPED] * adm.num_rows, pa.string()))


def exam_names(tables: dict[str, pa.Table]) -> None:
    rad = tables.get("radiology")
    if rad is None:
        return
    detail = tables.get("radiology_detail")
    names = pa.nulls(rad.num_rows, pa.string())
    if detail is not None and detail.num_rows:
        ordinal = pc.cast(pc.fill_null(detail.column("field_ordinal"), "0"), pa.int64(), safe=False)
        detail = detail.append_column("_ord", ordinal).sort_by([("note_id", "ascending"), ("_ord", "ascending"),
                                                                ("_row", "ascending")])
        grouped: dict[str, list[str]] = {}
        for nid, value in zip(detail.column("note_id").to_pylist(), detail.column("field_value").to_pylist()):
            grouped.setdefault(nid, []).append(value if value is not None else MISSING)
        keys = pa.array(list(grouped), pa.string())
        vals = pa.array([str(v) for v in grouped.values()], pa.string())
        names = _lookup(rad.column("note_id").combine_chunks(), keys, vals)
    tables["radiology"] = rad.append_column("exam_name", pc.fill_null(names, UNMAPPED))


def _escapable(table: str) -> set[str]:
    spec = EVENT_TABLES[table]
    return {c.lower() for c, typ in spec.columns if typ == "str"} | set(display_fields(table))


def time_text(name: str, t: pa.Table) -> pa.Array:
    """Each row's placement time as ``YYYY-MM-DD HH:MM:SS`` text (null when untimed / missing).

    Uses the already normalised time-field text (no per-value formatting); only ED triage/diagnosis times,
    computed from edstays, are formatted.
    """
    spec = EVENT_TABLES[name]
    if name in ("triage", "diagnosis"):
        return pc.strftime(pc.cast(t.column("_t").combine_chunks(), pa.timestamp("s")), format=TIME_FORMAT)
    if spec.time_field is None:
        return pa.nulls(t.num_rows, pa.string())
    text = t.column(spec.time_field).combine_chunks()
    if spec.dtype(spec.time_field) == "date":
        text = pc.binary_join_element_wise(text, " 00:00:00", "")
    return text


@dataclass
class BucketOutput:
    timelines: pa.Table                 # subject_id, events (JSON)
    markdown: pa.Table | None           # subject_id, markdown (same order), when asked for
    stats: BucketStats


def build_bucket(tables: dict[str, pa.Table], with_markdown: bool = False) -> BucketOutput:
    """Timelines (and optionally markdown) of every patient in ``tables`` (staged rows keyed by bare table name).

    ``tables`` is consumed (emptied) to free memory early.
    """
    ed_times(tables)
    admission_info(tables)
    exam_names(tables)
    names: list[str] = []
    columns: list[dict[str, pa.Array]] = []
    times: list[pa.Array] = []
    keys: dict[str, list[np.ndarray]] = {k: [] for k in ("sid", "time", "has_time", "rank", "kind", "row", "hadm")}
    for name in TIE_BREAK_ORDER:
        t = tables.pop(name, None)
        if t is None or t.num_rows == 0:
            continue
        spec = EVENT_TABLES[name]
        n = t.num_rows
        cols = {c.lower(): t.column(c.lower()).combine_chunks() for c in spec.column_names}
        cols.update({f: t.column(f).combine_chunks() for f in display_fields(name)})
        names.append(name)
        columns.append(cols)
        times.append(time_text(name, t))
        tcol = t.column("_t").combine_chunks()
        keys["sid"].append(t.column("_sid").to_numpy())
        keys["has_time"].append(pc.is_valid(tcol).to_numpy(zero_copy_only=False))
        keys["time"].append(pc.fill_null(tcol, 0).to_numpy())
        keys["rank"].append(np.full(n, TABLE_RANK[name], dtype=np.int16))
        keys["kind"].append(np.full(n, row_kind(name), dtype=np.int8))
        keys["row"].append(t.column("_row").to_numpy())
        if "hadm_id" in cols:
            keys["hadm"].append(pc.fill_null(pc.cast(cols["hadm_id"], pa.int64()), -1).to_numpy())
        else:
            keys["hadm"].append(np.full(n, -1, dtype=np.int64))
        del t
    tables.clear()
    if not names:
        empty_md = MARKDOWN_SCHEMA.empty_table() if with_markdown else None
        return BucketOutput(OUTPUT_SCHEMA.empty_table(), empty_md, BucketStats())
    rows = Rows(**{k: np.concatenate(v) for k, v in keys.items()})
    perm = order_rows(rows)
    sid, rank = rows.sid[perm], rows.rank[perm]
    untimed = rows.kind[perm] >= KIND_DIAGNOSES
    runs = event_runs(sid, rank, rows.time[perm], rows.has_time[perm], rows.hadm[perm], untimed)
    # rows are numbered in concatenation order: table t holds rows base[t]:base[t + 1]
    sizes = np.array([len(next(iter(c.values()))) for c in columns], dtype=np.int64)
    base = np.concatenate([[0], np.cumsum(sizes)])
    table_of_row = np.repeat(np.arange(len(names)), sizes)
    local_row = np.arange(len(perm), dtype=np.int64) - base[table_of_row]
    event_table = table_of_row[perm[runs.starts]]
    all_times = pa.chunked_array(times, pa.string()).combine_chunks()
    start = pc.if_else(pa.array(runs.has_start), all_times.take(pa.array(perm[runs.starts])),
                       pa.scalar(None, pa.string()))
    end = all_times.take(pa.array(perm[np.maximum(runs.end_row, 0)], mask=runs.end_row < 0))
    hadm = pc.cast(pa.array(runs.hadm, mask=runs.hadm < 0), pa.string())
    tb = TextBuilder()
    per_event = [tb.column(a) for a in (start, end, hadm)]
    headers = np.array([header_templates(tb, name, *per_event) for name in names], dtype=np.int64)
    items = np.array([item_templates(tb, cols, _escapable(name)) for name, cols in zip(names, columns)],
                     dtype=np.int64)
    patients = encode_timelines(tb, headers, items, table_of_row, local_row, event_table, perm, runs.starts,
                                runs.patient_starts)
    subject = pa.array(sid[runs.starts[runs.patient_starts]], pa.int64())
    out = pa.table({"subject_id": subject, "events": _to_string(patients)})
    del patients
    markdown = None
    if with_markdown:
        md = np.array([event_templates(tb, name, cols, per_event[0]) if name in EVENT_DISPLAY else [-1] * 6
                       for name, cols in zip(names, columns)], dtype=np.int64)
        text = render_bucket(tb, md, names, event_table, local_row, perm, runs.starts, runs.patient_starts)
        markdown = pa.table({"subject_id": subject, "markdown": _to_string(text)})
    return BucketOutput(out, markdown, BucketStats(patients=len(subject), events=len(runs.starts), rows=len(perm)))


def _to_string(arr: pa.Array, chunk: int = 4096) -> pa.ChunkedArray | pa.Array:
    """large_string -> string in chunks (each chunk's text must stay under 2 GiB)."""
    if pa.types.is_string(arr.type):
        return arr
    return pa.chunked_array([arr.slice(i, chunk).cast(pa.string()) for i in range(0, len(arr), chunk)] or
                            [pa.array([], pa.string())], pa.string())
