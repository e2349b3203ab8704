"""On-disk layout of a timeline build, atomic writes, resume checks and readers for downstream stages.

::

    <output_dir>/
      timelines/part-00000.parquet   subject_id int64, events JSON string (data_pipeline.events), sorted by subject;
                                     part b holds a contiguous subject_id range (timeline/buckets.py)
      markdown/part-00000.parquet    subject_id int64, markdown string (data_pipeline.render.render_timeline)
      manifest.json                  written last: settings, per-bucket counts, rows per source table
      _build.json                    the settings fingerprint of the build in progress (guards a resumed run)
      _staging/                      phase-1 spill files (removed after a successful build unless keep_staging)

A bucket is finished when ``timelines/part-XXXXX.parquet`` exists: its markdown part is written before it, and
both are written to a temporary name in the same folder and renamed (``os.replace``), so a crash never leaves a
half-written part under its final name.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from data_pipeline.events import PatientTimeline

TIMELINES = "timelines"
MARKDOWN = "markdown"
MANIFEST = "manifest.json"
STAGING = "_staging"
TMP_PREFIX = ".tmp-"


def part_name(bucket: int) -> str:
    return f"part-{bucket:05d}.parquet"


def tmp_path(final: Path) -> Path:
    """A temporary sibling of ``final`` (same folder, so ``os.replace`` is atomic)."""
    return final.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-{final.name}")


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_write_parquet(table, path: Path) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    try:
        # rows are whole patients. The text columns are unique per patient: dictionary encoding (the default)
        # only tries and falls back, and min/max statistics of long texts are useless; both cost more than
        # the zstd compression itself. zstd's fast level -1 compresses this text ~3x faster than Arrow's default
        # level 3, and 20-25% faster than level 1 for files 17-23% larger (BENCHMARKS.md): the JSON's repeated
        # keys are what compresses, and every level finds most of them. Reading is as fast at every level.
        pq.write_table(table, tmp, compression="zstd", compression_level=-1, row_group_size=128,
                       use_dictionary=False, write_statistics=["subject_id"])
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_tmp(folder: Path) -> int:
    """Delete temporary files an interrupted run left behind; returns how many."""
    n = 0
    if folder.is_dir():
        for p in folder.glob(f"{TMP_PREFIX}*"):
            p.unlink(missing_ok=True)
            n += 1
    return n


def bucket_done(output_dir: Path, bucket: int) -> bool:
    return (Path(output_dir) / TIMELINES / part_name(bucket)).is_file()


def list_shards(timelines_dir: str | Path) -> list[Path]:
    """The finished ``part-*.parquet`` files of a timelines (or markdown) folder, in bucket order."""
    folder = Path(timelines_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder; build timelines first "
                                f"(python -m ray_jobs.build_timelines --config ...)")
    return sorted(folder.glob("part-*.parquet"))


def iter_timelines(timelines_dir: str | Path, batch_rows: int = 256) -> Iterator[PatientTimeline]:
    """Every patient timeline of a build, shard by shard, reading ``batch_rows`` patients at a time."""
    import pyarrow.parquet as pq

    for shard in list_shards(timelines_dir):
        for batch in pq.ParquetFile(shard).iter_batches(batch_size=batch_rows, columns=["subject_id", "events"]):
            sids = batch.column(0).to_pylist()
            events = batch.column(1).to_pylist()
            for sid, ev in zip(sids, events):
                yield PatientTimeline.from_row({"subject_id": sid, "events": ev})


def iter_markdown(markdown_dir: str | Path, batch_rows: int = 256) -> Iterator[tuple[int, str]]:
    """``(subject_id, markdown)`` pairs of a build's markdown folder."""
    import pyarrow.parquet as pq

    for shard in list_shards(markdown_dir):
        for batch in pq.ParquetFile(shard).iter_batches(batch_size=batch_rows, columns=["subject_id", "markdown"]):
            yield from zip(batch.column(0).to_pylist(), batch.column(1).to_pylist())
