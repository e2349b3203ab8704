"""Per-shard files between selection, rendering and export, so no stage holds the whole selection (Ray-free).

At MIMIC-IV scale EHR-Ins selects ~5M rows: sending them to every render actor (or holding them rendered on the
driver) costs several GB per process. Instead:

* :func:`write_shard_selections` (driver, end of the selection pass): the selected rows of every dataset split
  by timeline shard into ``<work>/selected/<shard>.parquet`` (only shards with selected rows get a file);
* :func:`render_shard` (render actor): reads its shard and only that shard's selection file, writes the rendered
  samples to ``<work>/rendered/<shard>.parquet`` in small row groups, renamed into place;
* :func:`export_parts` (driver): streams the rendered parts, one row group at a time (output parquet row groups
  gathered up to a bounded size), in shard order into the dataset writers; :func:`in_order` releases the parts
  in shard order whatever order the actors finish in.

The output order is the one of the former build (shard, then patient within the shard, then dataset and ``idx``
within the patient; not global ``idx`` order) and its files are reproduced byte for byte (checked on the demo
build). Output parquet row groups end at a part's end or after 128 MiB of rendered samples, as Ray Data's
blocks (about) made them before.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data_pipeline.datasets.schemas import INDEX_SCHEMA, SAMPLE_SCHEMA, read_shard
from data_pipeline.datasets.stages import RenderWorker

SELECTED_SCHEMA = pa.schema([*INDEX_SCHEMA, pa.field("dataset", pa.string()), pa.field("idx", pa.int64())])
#: A rendered part: the samples plus the number of the patient batch each came from (export flushes only at
#: batch ends, as the old pipeline's blocks did).
RENDERED_SCHEMA = pa.schema([*SAMPLE_SCHEMA, pa.field("batch", pa.int32())])
DONE_SCHEMA = pa.schema([("shard", pa.string()), ("path", pa.string()), ("rows", pa.int64())])


def _atomic_parquet(table_or_batches, final: Path, schema: pa.Schema) -> int:
    """Write tables to ``final`` through a temporary name (one row group per table); returns the row count."""
    tmp = final.with_name(f".{final.stem}.tmp-{os.getpid()}.parquet")
    rows = 0
    with pq.ParquetWriter(tmp, schema) as writer:
        for table in table_or_batches:
            writer.write_table(table)
            rows += table.num_rows
    os.replace(tmp, final)
    return rows


def selection_table(frames: list[tuple[str, pd.DataFrame]]) -> pa.Table:
    """The numbered selections (``selection.number_selection``) of the datasets, in the given dataset order and
    each in ``idx`` order, as one SELECTED_SCHEMA table (arrow: far smaller than row dicts)."""
    tables = [pa.Table.from_pandas(frame.assign(dataset=name)[SELECTED_SCHEMA.names], schema=SELECTED_SCHEMA,
                                   preserve_index=False) for name, frame in frames]
    return pa.concat_tables(tables) if tables else SELECTED_SCHEMA.empty_table()


def shard_of_rows(selection: pa.Table, shard_subjects: list) -> np.ndarray:
    """The position in ``shard_subjects`` (one subject-id array per shard) of every selected row's shard, -1 if
    the patient is in none. One hash lookup per row: O(rows), not O(rows x shards)."""
    sids = [pa.array(s, pa.int64()) for s in shard_subjects]
    shard_no = np.repeat(np.arange(len(sids)), [len(s) for s in sids])
    pos = pc.index_in(selection["subject_id"], value_set=pa.concat_arrays(sids) if sids else pa.array([], pa.int64()))
    pos = pos.to_numpy(zero_copy_only=False)
    found = ~np.isnan(pos) if pos.dtype.kind == "f" else np.ones(len(pos), bool)
    out = np.full(len(pos), -1, dtype=np.int64)
    out[found] = shard_no[pos[found].astype(np.int64)]
    return out


def write_shard_selections(selection: pa.Table, shards: Iterable[str], folder: Path) -> dict[str, str]:
    """One selection file per timeline shard with selected rows (see the module doc): ``{shard: file}``, in shard
    order; each file keeps the rows' order in ``selection``.

    A shard's patients come from its ``subject_id`` column only (one row per patient: cheap to read)."""
    shards = [str(s) for s in shards]
    subjects = [pq.read_table(s, columns=["subject_id"])["subject_id"].combine_chunks() for s in shards]
    shard = shard_of_rows(selection, subjects)
    if (shard < 0).any():  # the index is built from these very shards: a stray row means mixed-up inputs
        missing = sorted(set(selection["subject_id"].to_numpy()[shard < 0].tolist()))[:5]
        raise ValueError(f"selected rows of patients in no timeline shard, e.g. subject_id {missing}")
    order = np.argsort(shard, kind="stable")  # grouped by shard, original order within a shard
    bounds = np.searchsorted(shard[order], np.arange(len(shards) + 1))
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, path in enumerate(shards):
        if bounds[i + 1] > bounds[i]:
            final = folder / f"{Path(path).stem}.parquet"
            _atomic_parquet([selection.take(pa.array(order[bounds[i]:bounds[i + 1]]))], final, SELECTED_SCHEMA)
            out[path] = str(final)
    return out


def read_shard_selection(path: str) -> dict[int, list[dict]]:
    """A shard's selection file as ``subject_id -> rows`` in file order (the renderer's lookup)."""
    by_subject: dict[int, list[dict]] = {}
    for row in pq.read_table(path).to_pylist():
        by_subject.setdefault(int(row["subject_id"]), []).append(row)
    return by_subject


def render_shard(render_batch, shard: str, out: Path, batch_rows: int = 64, group_bytes: int = 8 << 20) -> int:
    """Render one shard with ``render_batch`` (a patient batch -> SAMPLE_SCHEMA table) into ``out`` atomically
    (RENDERED_SCHEMA); returns the row count. Row groups hold ~``group_bytes`` of samples of one patient batch:
    64 patients' samples can be hundreds of MiB, and a row group is the unit the exporting driver holds."""
    tables = (t for t in (render_batch(batch) for batch in read_shard(shard, batch_rows)) if t.num_rows)
    pieces = (piece.append_column("batch", pa.array([b] * piece.num_rows, pa.int32()))
              for b, t in enumerate(tables) for piece in _slices(t, group_bytes))
    return _atomic_parquet(pieces, out, RENDERED_SCHEMA)


def _slices(table: pa.Table, max_bytes: int) -> Iterator[pa.Table]:
    step = max(1, int(table.num_rows * max_bytes / max(table.nbytes, 1)))
    for start in range(0, table.num_rows, step):
        yield table.slice(start, step)


def in_order(done: Iterable[tuple[str, str]], order: list[str]) -> Iterator[str]:
    """Part paths from ``done`` ((shard, part) pairs in any completion order) released in ``order`` of the
    shards as soon as every earlier shard is done (shards absent from ``done`` at the end are skipped)."""
    ready: dict[str, str] = {}
    pos = 0
    for shard, path in done:
        ready[shard] = path
        while pos < len(order) and order[pos] in ready:
            yield ready.pop(order[pos])
            pos += 1
    # shards never reported (no selected rows) do not block the ones after them
    for shard in order[pos:]:
        if shard in ready:
            yield ready.pop(shard)


def empty_export_stats() -> dict:
    return {"samples": Counter(), "yes": Counter(), "no": Counter(), "too_long": Counter(), "emptied": Counter(),
            "leaking": Counter(), "leak_examples": [], "patients": set()}


def export_parts(parts: Iterable[str], writers: dict, stats: dict[str, dict], max_bytes: int = 128 << 20) -> int:
    """Stream rendered parts (in the given order) into ``writers`` (one per dataset, ``export.DatasetWriter``),
    counting into ``stats``; only the fitting samples are written. Returns the rows kept.

    Every row group of a part is filtered, counted and appended to the jsonl files on its own; the parquet row
    groups gather a part's row groups up to ``max_bytes`` of rendered samples (Ray Data's default block size,
    which set them before), so the files do not get one small row group per patient batch. The driver holds at
    most that much (without the serialised json) plus one rendered row group (:func:`render_shard`)."""
    n = 0
    for path in parts:
        f = pq.ParquetFile(path)
        pending: dict[str, list[pa.Table]] = {name: [] for name in writers}
        size = 0
        for i in range(f.num_row_groups):
            # parquet names list items "element": back to SAMPLE_SCHEMA's "item", which the writers' schemas (and
            # so their files' bytes) carry
            batch = f.read_row_group(i, columns=SAMPLE_SCHEMA.names).cast(SAMPLE_SCHEMA)
            size += batch.nbytes
            for name, writer in writers.items():
                part = batch.filter(pc.equal(batch["dataset"], name))
                if part.num_rows == 0:
                    continue
                _count(stats[name], part)
                kept = part.filter(part["fits"])
                writer.write_lines(kept)
                pending[name].append(kept.drop_columns(["json"]))
                n += kept.num_rows
            batch = part = kept = None  # only the pending records outlive a row group
            if size >= max_bytes and _batch_ends(f, i) or i == f.num_row_groups - 1:
                for name, tables in pending.items():
                    if tables:  # one chunk per column: parquet pages (so the bytes) depend on the chunking
                        writers[name].write_records(pa.concat_tables(tables).combine_chunks())
                pending, size = {name: [] for name in writers}, 0
    return n


def _batch_ends(f: pq.ParquetFile, i: int) -> bool:
    """Whether row group ``i`` of a rendered part is the last of its patient batch."""
    if i + 1 >= f.num_row_groups:
        return True
    return f.read_row_group(i, columns=["batch"])["batch"][0] != f.read_row_group(i + 1, columns=["batch"])["batch"][0]


def _count(st: dict, part: pa.Table) -> None:
    cols = ("task", "fits", "output", "subject_id", "drop_reason", "leaks", "idx")
    for task, fits, output, sid, drop, leaks, idx in zip(*(part[c].to_pylist() for c in cols)):
        if not fits:
            st["emptied" if drop == "context_after_truncation" else "too_long"][task] += 1
            continue
        st["samples"][task] += 1
        st["patients"].add(sid)
        if output in ("yes", "no"):
            st[output][task] += 1
        if leaks:
            st["leaking"][task] += 1
            if len(st["leak_examples"]) < 20:
                st["leak_examples"].append((task, idx, leaks.split("; ")[0]))


class ShardRenderWorker(RenderWorker):
    """:class:`RenderWorker` as a Ray Data UDF over items ``{path, selection, out}``: a timeline shard, the file
    of that shard's selected rows and the part to write (this module). Only one shard's selection is held at a
    time, never the whole selection; yields one small row per shard (``DONE_SCHEMA``)."""

    def __init__(self, vocabularies, max_input_tokens: int, tokenizer_path: str | None, seed: int,
                 max_candidates: int, **options):
        super().__init__({}, vocabularies, max_input_tokens, tokenizer_path, seed, max_candidates, **options)

    def __call__(self, items: pa.Table) -> Iterator[pa.Table]:
        for item in items.to_pylist():
            self.selection = read_shard_selection(item["selection"])
            try:
                rows = render_shard(super().__call__, item["path"], Path(item["out"]))
            finally:
                self.selection = {}
            yield pa.Table.from_pylist([{"shard": item["path"], "path": item["out"], "rows": rows}],
                                       schema=DONE_SCHEMA)
