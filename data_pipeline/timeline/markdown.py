"""Markdown for whole buckets: the text of ``data_pipeline.render.render_timeline``, written by
:class:`~data_pipeline.timeline.assemble.TextBuilder` from the same sorted columns as the timeline JSON.

Rendering one patient at a time in Python (``json.loads`` + one f-string per item) costs more than the rest of
the timeline build together. The layout (display names, info keys, ``str.title()`` keys, bullet list for one item
and table otherwise, ``[None]`` for patients, silent ``hcpcsevents``/``drgcodes`` dropped, events joined by
``"\\n\\n"``) comes from :mod:`data_pipeline.render`, and ``tests/data_pipeline/test_timeline_markdown.py`` checks
the output equals ``render_timeline`` patient by patient.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from data_pipeline.render import EVENT_DISPLAY, EVENT_SEPARATOR, SILENT_FILE_NAMES
from data_pipeline.timeline.assemble import TextBuilder

_RULE = "------"


def _table_head(keys: tuple[str, ...]) -> str:
    titled = [k.title() for k in keys]
    return "| " + " | ".join(titled) + " |\n| " + " | ".join([_RULE] * len(keys)) + " |"


def event_templates(tb: TextBuilder, table: str, columns: dict[str, pa.Array], when: int) -> np.ndarray:
    """The markdown templates of one (displayed) table, indexed ``[kind]``:

    0/1: heading of a one-item event (first of the patient / after ``"\\n\\n"``), 2/3: the same for a table event
    (heading + table head), 4: an item as bullet lines, 5: an item as a table row (after ``"\\n"``).
    ``when`` is the per-event start-time column (null -> ``None``; ``patients`` always print ``None``). The item
    values are ``columns`` (null -> ``nan``); a display key the table lacks prints ``None``.
    """
    display, keys = EVENT_DISPLAY[table]
    time = ["None"] if table == "patients" else [when]
    heading = [f"## {display} [", *time, "]\n"]
    values = [tb.column(columns[k]) if k in columns else "None" for k in keys]
    bullets: list = []
    row: list = ["\n| "]
    for i, (key, value) in enumerate(zip(keys, values)):
        bullets += [("" if i == 0 else "\n") + f"- {key.title()}: ", value]
        row += ([] if i == 0 else [" | "]) + [value]
    head = _table_head(keys)
    return np.array([tb.template(*heading, null="None"), tb.template(EVENT_SEPARATOR, *heading, null="None"),
                     tb.template(*heading, head, null="None"),
                     tb.template(EVENT_SEPARATOR, *heading, head, null="None"),
                     tb.template(*bullets), tb.template(*row, " |")], dtype=np.int64)


def render_bucket(tb: TextBuilder, md: np.ndarray, event_names: list[str], event_table: np.ndarray,
                  local_row: np.ndarray, perm: np.ndarray, starts: np.ndarray, patient_starts: np.ndarray
                  ) -> pa.Array:
    """One markdown text per patient.

    ``md[t]`` are the :func:`event_templates` of table ``t`` (any values for silent tables), ``event_names[t]`` its
    name; the other arguments are those of :func:`~data_pipeline.timeline.encode.encode_timelines`. Pieces per
    kept event of k items: its heading, then one bullet item (k = 1) or k table rows.
    """
    n_rows, n_events = len(perm), len(starts)
    n_items = np.diff(np.append(starts, n_rows))
    patient_of_event = np.repeat(np.arange(len(patient_starts)), np.diff(np.append(patient_starts, n_events)))
    silent = np.array([name in SILENT_FILE_NAMES for name in event_names], dtype=bool)
    kept = np.flatnonzero(~silent[event_table])
    patient = patient_of_event[kept]
    first = np.ones(len(kept), dtype=bool)
    first[1:] = patient[1:] != patient[:-1]
    single = n_items[kept] == 1
    size = 1 + n_items[kept]
    head = np.zeros(len(kept), dtype=np.int64)
    np.cumsum(size[:-1], out=head[1:])
    n_pieces = int(size.sum())
    templates = np.empty(n_pieces, dtype=np.int64)
    rows = np.empty(n_pieces, dtype=np.int64)
    table = event_table[kept]
    templates[head] = md[table, np.where(single, 0, 2) + np.where(first, 0, 1)]
    rows[head] = kept
    # every row of a kept event, in timeline order: its piece follows its event's heading
    per_event = n_items[kept]
    event_of_row = np.repeat(np.arange(len(kept)), per_event)
    first_of_event = np.zeros(len(kept), dtype=np.int64)
    np.cumsum(per_event[:-1], out=first_of_event[1:])
    rank = np.arange(int(per_event.sum())) - first_of_event[event_of_row]
    at = head[event_of_row] + 1 + rank
    templates[at] = md[table[event_of_row], np.where(single[event_of_row], 4, 5)]
    rows[at] = local_row[perm[starts[kept][event_of_row] + rank]]
    counts = np.bincount(patient, weights=size, minlength=len(patient_starts)).astype(np.int64)
    return tb.build(templates, rows, np.concatenate([[0], np.cumsum(counts)]))
