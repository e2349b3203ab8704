"""The arrow schemas the dataset build passes between its stages, and the timeline-shard reader they all share.

Kept apart from :mod:`stages` (the per-patient work) so that the writer (:mod:`export`), the auditor
(:mod:`audit`) and the shard plumbing (:mod:`shards`) can use them without importing the workers, and no
module of the package imports one that imports it back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

TABLES_ROW = "__tables__"

INDEX_SCHEMA = pa.schema([
    ("task", pa.string()), ("subject_id", pa.int64()), ("hadm_id", pa.string()), ("anchor", pa.int64()),
    ("context_begin", pa.int64()), ("context_end", pa.int64()), ("prediction_time", pa.string()),
    ("labels", pa.list_(pa.string())), ("admissions_id", pa.int64()), ("last_discharge_id", pa.int64()),
    ("anchor_in_context", pa.bool_()), ("event", pa.string()), ("n_context", pa.int64()),
    ("n_patient_events", pa.int64()), ("split", pa.string()),
    # the reference's 24 h-covers-the-admission filter (procedure/diagnosis tasks; True for the others)
    ("covers_admission", pa.bool_()),
])

SAMPLE_SCHEMA = pa.schema([
    ("dataset", pa.string()), ("idx", pa.int64()), ("instruction", pa.string()), ("input", pa.string()),
    ("output", pa.string()), ("candidates", pa.list_(pa.string())), ("task", pa.string()),
    ("target_key", pa.string()), ("events", pa.string()), ("metric", pa.string()),
    ("target", pa.list_(pa.string())), ("label", pa.string()),
    # provenance (kept out of the HF-facing records)
    ("subject_id", pa.int64()), ("hadm_id", pa.string()), ("anchor", pa.int64()), ("context_begin", pa.int64()),
    ("context_end", pa.int64()), ("context_ids", pa.list_(pa.int64())), ("admissions_id", pa.int64()),
    ("last_discharge_id", pa.int64()), ("prediction_time", pa.string()), ("n_tokens", pa.int64()),
    ("dropped_events", pa.int64()), ("dropped_previous_discharge", pa.bool_()), ("fits", pa.bool_()),
    ("stay_id", pa.string()), ("anchor_time", pa.string()),
    # why a sample is not exported ("" = exported): too_long, context_after_truncation
    ("drop_reason", pa.string()),
    # the auditor's findings ("" = clean), ``; ``-joined
    ("leaks", pa.string()),
    # the HF record serialised as one jsonl line, made in the (parallel) workers rather than the writing driver
    ("json", pa.string()),
])


def read_shard(path: str, batch_rows: int = 64) -> Iterator[pa.Table]:
    """A timeline shard, ``batch_rows`` patients at a time (bounded memory whatever the shard size)."""
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=["subject_id", "events"]):
        yield pa.Table.from_batches([batch])
