"""One phase-2 unit of work: read a bucket's staged rows, build its timelines, write its shards atomically."""

from __future__ import annotations

import logging
from pathlib import Path

from data_pipeline.timeline import store
from data_pipeline.timeline.build import build_bucket
from data_pipeline.timeline.partition import read_bucket

log = logging.getLogger(__name__)


def build_one_bucket(bucket: int, staging_dir: Path, output_dir: Path, tables: list[str],
                     write_markdown: bool) -> dict:
    """Build bucket ``bucket`` from ``tables`` (staged relpaths); markdown first, the timelines part last.

    Returns ``{"bucket", "patients", "events", "rows"}``. A bucket whose timelines part exists is skipped.
    """
    final = output_dir / store.TIMELINES / store.part_name(bucket)
    md_final = output_dir / store.MARKDOWN / store.part_name(bucket)
    if final.is_file() and (not write_markdown or md_final.is_file()):
        return {"bucket": bucket, "patients": -1, "events": -1, "rows": -1}
    staged = {}
    for rp in tables:
        t = read_bucket(staging_dir, rp, bucket)
        if t is not None:
            staged[rp.split("/", 1)[1]] = t
    built = build_bucket(staged, with_markdown=write_markdown)
    stats = built.stats
    timelines = built.timelines.replace_schema_metadata({"events": str(stats.events), "rows": str(stats.rows)})
    if write_markdown:
        store.atomic_write_parquet(built.markdown, md_final)
    store.atomic_write_parquet(timelines, final)
    log.debug("bucket %d: %d patients, %d events, %d rows", bucket, stats.patients, stats.events, stats.rows)
    return {"bucket": bucket, "patients": stats.patients, "events": stats.events, "rows": stats.rows}
