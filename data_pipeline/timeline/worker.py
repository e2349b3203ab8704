"""One phase-2 unit of work: read a bucket's staged rows, build its timelines, write its shards atomically."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from data_pipeline.timeline import store
from data_pipeline.timeline.build import build_bucket
from data_pipeline.timeline.partition import read_bucket

log = logging.getLogger(__name__)

PATIENTS = "hosp/patients"
#: Parquet metadata key of a timelines part: its orphan rows per table (see :func:`split_orphans`).
ORPHANS_KEY = b"orphan_rows"


def split_orphans(staged: dict[str, pa.Table], drop: bool) -> tuple[dict[str, pa.Table], dict[str, int], int]:
    """Find the rows whose subject has no ``hosp/patients`` row (the MIMIC-IV demo has some), and drop them if
    ``drop``. ``staged`` maps relpaths to one bucket's staged rows; it must hold ``hosp/patients`` when the
    source has it (an absent table in a bucket means no patients there).

    Returns ``(tables, {relpath: orphan rows}, orphan subjects)``; tables without orphans are left out of the
    counts. A bucket holds whole patients, so the subject counts of all buckets add up.
    """
    patients = staged.get(PATIENTS)
    known = patients.column("_sid").combine_chunks() if patients is not None else pa.array([], pa.int64())
    counts: dict[str, int] = {}
    subjects: set[int] = set()
    out = dict(staged)
    for rp, table in staged.items():
        if rp == PATIENTS or not table.num_rows:
            continue
        found = pc.is_in(table.column("_sid"), value_set=known)
        n = table.num_rows - int(pc.sum(found).as_py() or 0)
        if n:
            counts[rp] = n
            subjects.update(pc.unique(table.filter(pc.invert(found)).column("_sid")).to_pylist())
            if drop:
                out[rp] = table.filter(found)
    return out, counts, len(subjects)


def build_one_bucket(bucket: int, staging_dir: Path, output_dir: Path, tables: list[str],
                     write_markdown: bool, drop_orphans: bool = False) -> dict:
    """Build bucket ``bucket`` from ``tables`` (staged relpaths); markdown first, the timelines part last.

    Returns ``{"bucket", "patients", "events", "rows"}``. A bucket whose timelines part exists is skipped. Rows
    of subjects without a ``hosp/patients`` row are counted in the part's metadata (:data:`ORPHANS_KEY`), and
    left out of the timelines if ``drop_orphans``.
    """
    final = output_dir / store.TIMELINES / store.part_name(bucket)
    md_final = output_dir / store.MARKDOWN / store.part_name(bucket)
    if final.is_file() and (not write_markdown or md_final.is_file()):
        return {"bucket": bucket, "patients": -1, "events": -1, "rows": -1}
    by_path = {}
    for rp in tables:
        t = read_bucket(staging_dir, rp, bucket)
        if t is not None:
            by_path[rp] = t
    orphans: dict[str, int] = {}
    subjects = 0
    if PATIENTS in tables:  # without a patients table every row would be an orphan: nothing to report
        by_path, orphans, subjects = split_orphans(by_path, drop_orphans)
    built = build_bucket({rp.split("/", 1)[1]: t for rp, t in by_path.items()}, with_markdown=write_markdown)
    stats = built.stats
    timelines = built.timelines.replace_schema_metadata({
        "events": str(stats.events), "rows": str(stats.rows),
        ORPHANS_KEY.decode(): json.dumps({"rows_per_table": orphans, "subjects": subjects}, sort_keys=True)})
    if write_markdown:
        store.atomic_write_parquet(built.markdown, md_final)
    store.atomic_write_parquet(timelines, final)
    log.debug("bucket %d: %d patients, %d events, %d rows", bucket, stats.patients, stats.events, stats.rows)
    return {"bucket": bucket, "patients": stats.patients, "events": stats.events, "rows": stats.rows}
