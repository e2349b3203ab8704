"""Writing EHR-Ins / EHR-Bench: HF-``datasets``-loadable jsonl and parquet, a provenance index, a summary.

Layout of one dataset ``<output_dir>/<name>/``::

    <name>.jsonl               one HF record per line
    <name>.parquet             the same records
    provenance.parquet         idx -> subject_id, hadm_id, task, anchor, context window/indices, token counts
    summary.json               per-task counts (and why a task has none)
    _SUCCESS.json              fingerprint of the inputs; a re-run with the same fingerprint skips the dataset

HF record keys (the published EHR-Bench keys plus ``idx``): ``idx``, ``instruction``, ``input``, ``output``,
``candidates``, ``task_info`` = {``task``, ``target_key``, ``events``, ``metric``, ``target``, ``label``} plus
the sample's provenance {``subject_id``, ``hadm_id``, ``stay_id``, ``anchor``, ``anchor_time``,
``prediction_time``}: ``anchor`` is the anchor event's position in the patient's timeline, ``prediction_time``
the time after which nothing is shown (the leakage auditor checks every sample against it). ``task_info.task``
and the provenance fields are additions to the published keys; ``events`` is the anchor event's table,
``target`` the label list, ``label`` the output text. The ids are MIMIC-IV's own: a dataset built from real
MIMIC-IV falls under its data use agreement like the source files.

Every file is written under a temporary name in a temporary directory that replaces the final one in a single
rename, so a crash never leaves a half-written dataset that looks finished.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TASK_INFO = pa.struct([("task", pa.string()), ("target_key", pa.string()), ("events", pa.string()),
                       ("metric", pa.string()), ("target", pa.list_(pa.string())), ("label", pa.string()),
                       ("subject_id", pa.int64()), ("hadm_id", pa.string()), ("stay_id", pa.string()),
                       ("anchor", pa.int64()), ("anchor_time", pa.string()), ("prediction_time", pa.string())])
HF_SCHEMA = pa.schema([("idx", pa.int64()), ("instruction", pa.string()), ("input", pa.string()),
                       ("output", pa.string()), ("candidates", pa.list_(pa.string())), ("task_info", TASK_INFO)])
PROVENANCE_COLUMNS = ["idx", "task", "subject_id", "hadm_id", "anchor", "context_begin", "context_end",
                      "context_ids", "admissions_id", "last_discharge_id", "prediction_time", "n_tokens",
                      "dropped_events", "dropped_previous_discharge", "stay_id", "anchor_time", "leaks"]
SUCCESS = "_SUCCESS.json"


def hf_table(samples: pa.Table) -> pa.Table:
    """Sample rows (``stages.SAMPLE_SCHEMA``) -> HF-facing records."""
    info = pa.StructArray.from_arrays([samples.column(k).combine_chunks() for k in TASK_INFO.names],
                                      fields=list(TASK_INFO))
    cols = [samples.column(k) for k in ("idx", "instruction", "input", "output", "candidates")]
    return pa.Table.from_arrays([*cols, info], schema=HF_SCHEMA)


def is_finished(directory: Path, fingerprint: str) -> bool:
    marker = directory / SUCCESS
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("fingerprint") == fingerprint
    except (OSError, json.JSONDecodeError):
        return False


class DatasetWriter:
    """Streams one dataset's samples to a temporary directory; :meth:`commit` moves it into place atomically."""

    def __init__(self, output_dir: Path, name: str):
        self.name = name
        self.final = Path(output_dir) / name
        self.tmp = Path(output_dir) / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
        self.tmp.mkdir(parents=True)
        self._jsonl = open(self.tmp / f"{name}.jsonl", "w", encoding="utf-8")
        self._parquet = pq.ParquetWriter(self.tmp / f"{name}.parquet", HF_SCHEMA)
        self._prov: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, samples: pa.Table) -> None:
        self.write_lines(samples)
        self.write_records(samples)

    def write_lines(self, samples: pa.Table) -> None:
        """The jsonl half of :meth:`write` (its bytes do not depend on how the samples are chunked)."""
        if samples.num_rows == 0:
            return
        if "json" in samples.column_names:  # serialised by the render workers
            lines = samples.column("json").to_pylist()
        else:
            lines = [json.dumps(rec, ensure_ascii=False) for rec in hf_table(samples).to_pylist()]
        self._jsonl.write("\n".join(lines) + "\n")
        self.rows += samples.num_rows

    def write_records(self, samples: pa.Table) -> None:
        """The parquet half of :meth:`write`: one row group per call in both parquet files, so callers batch."""
        if samples.num_rows == 0:
            return
        self._parquet.write_table(hf_table(samples))
        prov = samples.select(PROVENANCE_COLUMNS)
        if self._prov is None:
            self._prov = pq.ParquetWriter(self.tmp / "provenance.parquet", prov.schema)
        self._prov.write_table(prov)

    def commit(self, summary: dict, fingerprint: str) -> Path:
        self._jsonl.close()
        self._parquet.close()
        if self._prov is None:  # an empty dataset still gets a (typed, empty) provenance file
            from data_pipeline.datasets.schemas import SAMPLE_SCHEMA

            pq.write_table(SAMPLE_SCHEMA.empty_table().select(PROVENANCE_COLUMNS), self.tmp / "provenance.parquet")
        else:
            self._prov.close()
        (self.tmp / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
        (self.tmp / SUCCESS).write_text(json.dumps({"fingerprint": fingerprint, "rows": self.rows}))
        old = None
        if self.final.exists():
            old = self.final.with_name(f".{self.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(self.final, old)
        os.replace(self.tmp, self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.final

    def abort(self) -> None:
        for handle in (self._jsonl, self._parquet, self._prov):
            try:
                if handle is not None:
                    handle.close()
            except Exception:  # noqa: BLE001 - best effort while already failing
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def format_summary(summary: dict) -> str:
    """A printable per-task count table for one dataset's summary."""
    lines = [f"{summary['dataset']} ({summary['split']} split): {summary['samples']} samples, "
             f"{summary['patients']} patients",
             f"{'task':<26} {'kind':<4} {'pool':>8} {'samples':>8} {'yes':>6} {'no':>6} {'too_long':>8} "
             f"{'emptied':>7} {'leaking':>7}  note"]
    for row in summary["tasks"]:
        yes = "" if row.get("yes") is None else row["yes"]
        no = "" if row.get("no") is None else row["no"]
        lines.append(f"{row['task']:<26} {row['kind']:<4} {row['pool']:>8} {row['samples']:>8} {yes!s:>6} {no!s:>6} "
                     f"{row['too_long']:>8} {row.get('emptied', 0):>7} {row.get('leaking', 0):>7}  "
                     f"{row.get('note', '')}")
    return "\n".join(lines)
