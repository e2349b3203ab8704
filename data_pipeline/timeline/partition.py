"""Phase 1: stream one source table and partition its rows by patient into ``num_buckets`` buckets.

Every batch is normalised to timeline strings (:mod:`data_pipeline.mimic.values`), gets its dictionary display
fields (:mod:`data_pipeline.timeline.joins`) and three key columns:

``_sid`` (int64 subject_id), ``_t`` (int64 seconds of the table's time field, null when untimed/missing) and
``_row`` (the row's 0-based position in its source file, the last tie-break).

The file is read in chunks of about ``spill_bytes``; each chunk is normalised and written as one *spill file* in
which every bucket present is its own record batch (buckets are ``subject_id`` ranges,
:mod:`data_pipeline.timeline.buckets`; a chunk of a file in subject order is cut into slices as it is, others are
stably sorted by bucket first). Chunks are
independent, so phase 1 runs them as parallel Ray tasks while the driver streams the file. ``_index.json`` lists,
per spill file, the bucket of each row group; it is written last and atomically, so it also marks the table as
finished. A re-run skips tables that have an index and clears half-written ones. Memory is bounded by the chunk
size (times the tasks in flight), whatever the table size.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_pipeline.mimic.reader import MimicDataError, SourceFile, SourcePlan, iter_batches
from data_pipeline.mimic.schema import TABLES, TableSpec
from data_pipeline.mimic.values import ValueFormatError, normalise_column
from data_pipeline.timeline.buckets import Buckets
from data_pipeline.timeline.joins import Lookup, apply_joins, load_lookups
from data_pipeline.timeline.store import atomic_write_text, tmp_path

log = logging.getLogger(__name__)

INDEX = "_index.json"
#: Written into the staging folder by the driver when phase 1 fails, so that phase-2 tasks waiting for it stop.
FAILED = "_phase1_failed"
KEY_COLUMNS = ("_sid", "_t", "_row")
#: Detail tables that are partitioned (only the rows the timeline joins are kept).
DETAIL_FILTERS = {"note/radiology_detail": ("field_name", "exam_name")}


@dataclass(frozen=True)
class StageTask:
    """Everything one phase-1 task needs (picklable)."""

    relpath: str
    source: SourceFile
    staging_dir: Path
    buckets: Buckets
    block_bytes: int
    spill_bytes: int

    @property
    def out_dir(self) -> Path:
        return self.staging_dir / self.relpath.replace("/", "__")


def staged_tables(plan: SourcePlan) -> list[str]:
    """Relpaths partitioned in phase 1: event tables (incl. patients) and the filtered detail tables."""
    return [spec.relpath for spec, _ in plan.event_tables()] + [rp for rp in DETAIL_FILTERS if plan.get(rp)]


def table_dir(staging_dir: Path, relpath: str) -> Path:
    return staging_dir / relpath.replace("/", "__")


def is_staged(staging_dir: Path, relpath: str) -> bool:
    return (table_dir(staging_dir, relpath) / INDEX).is_file()


def normalise_batch(spec: TableSpec, batch: pa.RecordBatch | pa.Table, first_row: int,
                    lookups: dict[str, Lookup], path: Path) -> pa.Table:
    """One raw batch (or chunk) -> normalised string columns + display fields + key columns (module docstring)."""
    cols: dict[str, pa.Array] = {}
    ts: pa.Array | None = None
    for name, dtype in spec.columns:
        key = name.lower()
        try:
            text, parsed = normalise_column(batch.column(key), dtype)
        except ValueFormatError as exc:
            raise MimicDataError(
                f"{path}: data row {first_row + exc.row + 1}, column {key!r}: {exc.shown} is not {exc.expected}; "
                f"fix or remove that row (MIMIC-IV timestamps are 'YYYY-MM-DD HH:MM:SS', dates 'YYYY-MM-DD')"
            ) from None
        cols[key] = text
        if spec.time_field is not None and key == spec.time_field:
            ts = parsed
    cols.update(apply_joins(spec.name, cols, lookups))
    try:
        sid = pc.cast(cols["subject_id"], pa.int64())
    except pa.ArrowInvalid as exc:
        raise MimicDataError(f"{path}: column 'subject_id' has a non-integer value in the batch starting at data "
                             f"row {first_row + 1} ({exc}); subject ids must be integers") from None
    if sid.null_count:
        bad = int(np.flatnonzero(pc.is_null(sid).to_numpy(zero_copy_only=False))[0])
        raise MimicDataError(f"{path}: data row {first_row + bad + 1}, column 'subject_id' is empty; every row must "
                             f"name its patient - fix or drop the row")
    cols["_sid"] = sid
    cols["_t"] = pc.cast(ts, pa.int64()) if ts is not None else pa.nulls(len(sid), pa.int64())
    cols["_row"] = pa.array(np.arange(first_row, first_row + len(sid), dtype=np.int64))
    return pa.table(cols)


def iter_chunks(sf: SourceFile, columns: list[str], block_bytes: int, chunk_bytes: int
                ) -> Iterator[tuple[int, pa.Table]]:
    """Raw record batches of a file grouped into chunks of about ``chunk_bytes``: ``(first_row, table)``."""
    batches: list[pa.RecordBatch] = []
    size = 0
    first = 0
    for offset, batch in iter_batches(sf, columns, block_bytes):
        if not batches:
            first = offset
        batches.append(batch)
        size += batch.nbytes
        if size >= chunk_bytes:
            yield first, pa.Table.from_batches(batches)
            batches, size = [], 0
    if batches:
        yield first, pa.Table.from_batches(batches)


def write_spill(table: pa.Table, path: Path, buckets: Buckets) -> list[int]:
    """Write ``table`` grouped by bucket (row order kept within a bucket), one record batch per bucket present;
    return those buckets.

    Spill files are Arrow IPC files: their footer is a small list of batch offsets, so a phase-2 task can
    open hundreds of them and read one bucket's batch each without parsing large parquet footers. They are not
    compressed: lz4 (per buffer, and these batches have many small buffers) cost about as much CPU as sorting
    and writing, and again to decompress in phase 2, for temporary files deleted after the build; the price is
    staging disk space of about the uncompressed source size.
    """
    bucket = buckets.of(table.column("_sid").to_numpy())
    if len(bucket) > 1 and bool((bucket[1:] < bucket[:-1]).any()):
        order = np.argsort(bucket, kind="stable")
        table, bucket = table.take(pa.array(order)), bucket[order]
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]]) if len(bucket) else np.zeros(0, np.int64)
    ends = np.append(starts[1:], len(bucket))
    tmp = tmp_path(path)
    options = pa.ipc.IpcWriteOptions(compression=None)  # see the docstring
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema, options=options) as writer:
        for start, end in zip(starts, ends):
            # one record batch per bucket (phase 2 reads batch i of the file); a slice across the chunks of the
            # normalised batches is concatenated, a contiguous copy far cheaper than a gather
            part = table.slice(int(start), int(end - start)).combine_chunks()
            writer.write_table(part, max_chunksize=max(1, part.num_rows))
    tmp.replace(path)
    return [int(bucket[i]) for i in starts]


def stage_chunk(relpath: str, out_dir: Path, chunk_no: int, first_row: int, raw: pa.Table,
                lookups: dict[str, Lookup], buckets: Buckets, source: Path) -> dict:
    """Normalise, join and partition one raw chunk into ``spill-<chunk_no>.arrow`` (a Ray task in phase 1)."""
    spec = TABLES[relpath]
    # The chunk is normalised as one table, not batch by batch: the CSV reader's small blocks parse with half
    # the CPU of large ones, and one set of kernel calls per chunk keeps their per-call cost out of the way.
    table = normalise_batch(spec, raw, first_row, lookups, source) if raw.num_rows else None
    keep = DETAIL_FILTERS.get(relpath)
    if keep is not None and table is not None:
        table = table.filter(pc.equal(pc.utf8_lower(table.column(keep[0])), keep[1]))
    entry = {"chunk": chunk_no, "rows_read": raw.num_rows, "rows": 0, "file": None, "buckets": []}
    if table is not None and table.num_rows:
        name = f"spill-{chunk_no:05d}.arrow"
        entry.update(rows=table.num_rows, file=name, buckets=write_spill(table, out_dir / name, buckets))
    return entry


def prepare_table_dir(out: Path) -> None:
    """Start a table afresh: drop what a half-finished earlier attempt left."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)


def finish_table(relpath: str, out: Path, source: Path, entries: list[dict]) -> dict:
    """Write the table's ``_index.json`` (last, atomically): it marks the table as staged."""
    entries = sorted(entries, key=lambda e: e["chunk"])
    index = {"table": relpath, "source": str(source), "rows": sum(e["rows"] for e in entries),
             "rows_read": sum(e["rows_read"] for e in entries),
             "files": [{"file": e["file"], "buckets": e["buckets"]} for e in entries if e["file"]]}
    atomic_write_text(out / INDEX, json.dumps(index))
    log.debug("staged %s: %d rows in %d spill files", relpath, index["rows"], len(index["files"]))
    return index


def stage_table(task: StageTask, plan: SourcePlan) -> dict:
    """Partition one table in this process (phase 1 without Ray). Returns its index; a no-op if already staged."""
    out = task.out_dir
    if (out / INDEX).is_file():
        return json.loads((out / INDEX).read_text())
    prepare_table_dir(out)
    spec = TABLES[task.relpath]
    lookups = load_lookups(plan, spec.name)
    columns = [c.lower() for c in spec.column_names]
    # Chunk n is normalised and written on a second thread while this one reads chunk n + 1 (Arrow and the
    # CSV parser release the GIL): the largest table's task is what phase 1 waits for last, and this lets it use
    # the CPU the other tasks have finished with. One chunk in flight keeps memory at two chunks.
    entries: list[dict] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage") as pool:
        in_flight = None
        for n, (first, raw) in enumerate(iter_chunks(task.source, columns, task.block_bytes, task.spill_bytes)):
            if in_flight is not None:
                entries.append(in_flight.result())
            in_flight = pool.submit(stage_chunk, task.relpath, out, n, first, raw, lookups, task.buckets,
                                    task.source.path)
            del raw
        if in_flight is not None:
            entries.append(in_flight.result())
    return finish_table(task.relpath, out, task.source.path, entries)


def mark_failed(staging_dir: Path) -> None:
    """Tell phase-2 tasks waiting in :func:`wait_until_staged` that phase 1 will not finish."""
    staging_dir.mkdir(parents=True, exist_ok=True)
    (staging_dir / FAILED).touch()


def clear_failed(staging_dir: Path) -> None:
    (staging_dir / FAILED).unlink(missing_ok=True)


def wait_until_staged(staging_dir: Path, tables: list[str], poll_s: float = 0.05) -> float:
    """Block until every table of ``tables`` is staged; return the seconds waited.

    Phase 2 starts while phase 1 is still partitioning its last (largest) tables, on the CPUs phase 1 no longer
    uses: its first tasks start their workers and imports, then wait here. Raises if the driver marks phase 1
    as failed (:func:`mark_failed`).
    """
    t0 = time.monotonic()
    missing = [rp for rp in tables if not is_staged(staging_dir, rp)]
    while missing:
        if (staging_dir / FAILED).exists():
            raise RuntimeError(f"phase 1 failed (see the driver's error); {len(missing)} tables were not staged")
        time.sleep(poll_s)
        missing = [rp for rp in missing if not is_staged(staging_dir, rp)]
    return time.monotonic() - t0


@functools.lru_cache(maxsize=64)
def _load_index(path: str, mtime_ns: int) -> dict:
    """A table's index, cached per worker process (phase-2 workers read it for every bucket)."""
    return json.loads(Path(path).read_text())


def read_bucket(staging_dir: Path, relpath: str, bucket: int) -> pa.Table | None:
    """All staged rows of ``relpath`` for one bucket (None if the table has none or was not staged)."""
    d = table_dir(staging_dir, relpath)
    index_path = d / INDEX
    if not index_path.is_file():
        return None
    index = _load_index(str(index_path), index_path.stat().st_mtime_ns)
    parts = []
    for entry in index["files"]:
        buckets = entry["buckets"]
        pos = int(np.searchsorted(buckets, bucket))
        if pos < len(buckets) and buckets[pos] == bucket:
            # memory-mapped, zero-copy (the spill files are uncompressed); the build copies what it keeps, and
            # on POSIX a mapping stays valid even if a re-run deletes the file
            with pa.memory_map(str(d / entry["file"]), "rb") as source:
                parts.append(pa.Table.from_batches([pa.ipc.open_file(source).get_batch(pos)]))
    if not parts:
        return None
    return pa.concat_tables(parts)
