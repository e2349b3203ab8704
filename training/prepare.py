"""SFT rows on Ray Data: EHR-Ins files -> tokenized, packed rows in parquet shards, with a flat driver at any scale.

The driver never holds a record. Three passes:

1. **plan** (driver): each file is cut into chunks of ``RECORDS_PER_CHUNK`` records -- jsonl by a streaming newline
   scan (byte ranges), parquet by row group.
2. **scan** (Ray tasks): every chunk is parsed and every record validated (the file and line are named on error);
   only ``(line, task)`` comes back. From those the driver draws the task-stratified sample (``data.max_samples``)
   and the training order (``training.data.training_order``) as numpy arrays: 16 bytes per record.
3. **build** (Ray Data): ``Tokenize`` actors (``data.prep_concurrency``) tokenize the selected records of each chunk
   with their training position; rows are grouped by packing chunk (``position // data.pack_chunk``), packed
   first-fit-decreasing and each chunk written as one parquet shard, ``rows/chunk-NNNNNNNN.parquet``. Shard names
   sort in training order, and a retried task rewrites the same shard (atomic, idempotent).

The rows equal :func:`training.data.build_rows` (tested). Everything goes to a temporary directory renamed into
place with ``stats.json``; a re-run with the same fingerprint (data config, files, tokenizer) reuses it.
Ray Train workers read their share with ``ray.train.get_dataset_shard`` (``training.worker``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from training.config import DataSpec
from training.data import REQUIRED_KEYS, PrepStats, encode_examples, fingerprint, pack_groups, rows_of, \
    stratified_indices, task_of, training_order

log = logging.getLogger(__name__)
RECORDS_PER_CHUNK = 2048
ROWS_DIR = "rows"
_SCAN_BUFFER = 1 << 24


def plan_chunks(path: str | Path, source: int, per_chunk: int = RECORDS_PER_CHUNK) -> list[dict[str, Any]]:
    """Chunks of one file: ``{source, path, kind, start, end, first_line}``; jsonl byte ranges of ``per_chunk``
    lines (found without holding the file), or one parquet row group each (``start`` = its index)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data.paths: {path} does not exist; point it to an EHR-Ins jsonl/parquet export")
    if path.suffix == ".parquet":
        meta = pq.ParquetFile(path).metadata
        chunks, first = [], 0
        for rg in range(meta.num_row_groups):
            chunks.append({"source": source, "path": str(path), "kind": "parquet", "start": rg, "end": rg + 1,
                           "first_line": first})
            first += meta.row_group(rg).num_rows
        return chunks
    starts, offset, line = [0], 0, 0  # byte offset where every per_chunk-th line starts
    with path.open("rb") as fh:
        while buf := fh.read(_SCAN_BUFFER):
            ends = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 10)
            numbers = line + 1 + np.arange(len(ends))  # lines ended in this buffer
            starts += (offset + ends[numbers % per_chunk == 0] + 1).tolist()
            line += len(ends)
            offset += len(buf)
    if starts[-1] != offset:
        starts.append(offset)
    return [{"source": source, "path": str(path), "kind": "jsonl", "start": a, "end": b,
             "first_line": 1 + k * per_chunk} for k, (a, b) in enumerate(zip(starts, starts[1:]))]


def read_chunk(chunk: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, record)`` of one chunk (jsonl: 1-based line numbers; parquet: 0-based row numbers), validated."""
    path, first = chunk["path"], int(chunk["first_line"])
    if chunk["kind"] == "parquet":
        pf = pq.ParquetFile(path)
        cols = [c for c in (*REQUIRED_KEYS, "reasoning", "task_info") if c in pf.schema_arrow.names]
        items = enumerate(pf.read_row_group(int(chunk["start"]), columns=cols).to_pylist(), start=first)
        where = "row"
    else:
        with open(path, "rb") as fh:
            fh.seek(int(chunk["start"]))
            raw = fh.read(int(chunk["end"]) - int(chunk["start"]))
        items = ((n, line) for n, line in enumerate(raw.split(b"\n"), start=first) if line.strip())
        where = "line"
    for n, rec in items:
        if isinstance(rec, bytes):
            try:
                rec = json.loads(rec)
            except ValueError as exc:
                raise ValueError(f"{path}: {where} {n} is not valid JSON ({exc}); fix or remove that line") from None
        missing = [k for k in REQUIRED_KEYS if k not in rec]
        if missing:
            raise ValueError(f"{path}: {where} {n} lacks {missing}; EHR-Ins records need {list(REQUIRED_KEYS)}")
        yield n, rec


def _scan_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    sources, lines, tasks = [], [], []
    for k in range(len(batch["path"])):
        chunk = {key: batch[key][k] for key in batch}
        for n, rec in read_chunk(chunk):
            sources.append(int(chunk["source"]))
            lines.append(n)
            tasks.append(task_of(rec))
    return {"source": np.asarray(sources, dtype=np.int8), "line": np.asarray(lines, dtype=np.int64),
            "task": np.asarray(tasks, dtype=object)}


def scan_records(chunks: list[dict[str, Any]], n_sources: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per source: the line numbers of its records (ascending) and their task codes (sorted-name order)."""
    import ray.data

    names: dict[str, int] = {}
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    ds = ray.data.from_items(chunks, override_num_blocks=len(chunks)).map_batches(_scan_batch, batch_size=1)
    for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
        uniq, inverse = np.unique(batch["task"].astype(str), return_inverse=True)
        local = np.asarray([names.setdefault(str(u), len(names)) for u in uniq], dtype=np.int64)
        parts.append((batch["source"], batch["line"], local[inverse.reshape(-1)] if len(uniq) else inverse))
    rank = np.empty(len(names), dtype=np.int64)  # first-seen codes -> sorted-name codes, as read_records uses
    rank[np.argsort(np.asarray(list(names), dtype=object))] = np.arange(len(names))
    source = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int8)
    line = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    code = rank[np.concatenate([p[2] for p in parts]).astype(np.int64)] if parts else np.zeros(0, np.int64)
    out = []
    for s in range(n_sources):
        mine = source == s
        order = np.argsort(line[mine], kind="stable")
        out.append((line[mine][order], code[mine][order]))
    return out


class Tokenize:
    """Ray Data actor: a chunk -> its selected records as examples with their training position."""

    def __init__(self, model_path: str, spec: dict, lookup: Any):
        import ray
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.spec = DataSpec.model_validate(spec)
        self.lookup = ray.get(lookup) if isinstance(lookup, ray.ObjectRef) else lookup

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        positions, records = [], []
        for k in range(len(batch["path"])):
            chunk = {key: batch[key][k] for key in batch}
            lines, pos = self.lookup[int(chunk["source"])]
            for n, rec in read_chunk(chunk):
                i = int(np.searchsorted(lines, n))
                if i < len(lines) and lines[i] == n:
                    positions.append(int(pos[i]))
                    records.append(rec)
        cols: dict[str, list] = {"position": [], "chunk": [], "input_ids": [], "labels": [], "n_cut": []}
        for p, enc in zip(positions, encode_examples(self.tokenizer, records, self.spec)):
            if enc is None:
                continue
            cols["position"].append(p)
            cols["chunk"].append(p // self.spec.pack_chunk)
            cols["input_ids"].append(enc[0])
            cols["labels"].append(enc[1])
            cols["n_cut"].append(enc[2])
        return pa.table({"position": pa.array(cols["position"], pa.int64()),
                         "chunk": pa.array(cols["chunk"], pa.int64()),
                         "input_ids": pa.array(cols["input_ids"], pa.list_(pa.int32())),
                         "labels": pa.array(cols["labels"], pa.list_(pa.int32())),
                         "n_cut": pa.array(cols["n_cut"], pa.int32())})


def pack_and_write(group: pa.Table, spec: dict, rows_dir: str) -> pa.Table:
    """``map_groups`` body: one packing chunk -> its rows written as ``chunk-NNNNNNNN.parquet``; returns counts."""
    sp = DataSpec.model_validate(spec)
    group = group.sort_by("position")
    ids, labels = group.column("input_ids").to_pylist(), group.column("labels").to_pylist()
    examples = list(zip(ids, labels))
    rows = rows_of(examples, pack_groups([len(x) for x in ids], sp), sp.packing)
    chunk = int(group.column("chunk")[0].as_py())
    table = pa.table({k: pa.array([r[k] for r in rows], pa.list_(pa.int32())) for k in rows[0]})
    final = Path(rows_dir) / f"chunk-{chunk:08d}.parquet"
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, final)  # a retried task rewrites the same shard
    n_cut = group.column("n_cut").to_numpy()
    return pa.table({"chunk": [chunk], "rows": [len(rows)], "examples": [len(examples)],
                     "truncated": [int((n_cut > 0).sum())], "input_tokens_cut": [int(n_cut.sum())],
                     "real_tokens": [sum(len(x) for x in ids)]})


def prepare_rows(spec: DataSpec, model_path: str | Path, out_dir: str | Path, seed: int) -> tuple[Path, dict]:
    """Build (or reuse) ``out_dir`` with ``rows/*.parquet`` and ``stats.json``; returns ``(rows dir, stats)``."""
    import ray
    import ray.data

    out_dir = Path(out_dir)
    fp = fingerprint(spec, model_path, seed)
    stats_file = out_dir / "stats.json"
    if stats_file.is_file():
        stats = json.loads(stats_file.read_text())
        if stats.get("fingerprint") == fp:
            log.info("reusing prepared data at %s (%d rows)", out_dir, stats["rows"])
            return out_dir / ROWS_DIR, stats
    chunks = [c for s, p in enumerate(spec.paths) for c in plan_chunks(p, s)]
    scanned = scan_records(chunks, len(spec.paths))
    for p, (lines, _) in zip(spec.paths, scanned):
        if not len(lines):
            raise ValueError(f"data.paths: {p} holds no records")
    selected = [lines[stratified_indices(codes, spec.max_samples, seed)] if spec.max_samples else lines
                for lines, codes in scanned]
    positions = training_order([len(s) for s in selected], spec, seed)
    lookup = ray.put({s: (sel, pos) for s, (sel, pos) in enumerate(zip(selected, positions))})
    st = PrepStats(records=sum(len(s) for s in selected))
    pack_chunks = -(-st.records // spec.pack_chunk)
    del scanned, selected, positions

    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / ROWS_DIR).mkdir(parents=True)
    examples = (ray.data.from_items(chunks, override_num_blocks=len(chunks))
                .map_batches(Tokenize, batch_size=1, batch_format="numpy",
                             compute=ray.data.ActorPoolStrategy(size=min(spec.prep_concurrency, len(chunks))),
                             fn_constructor_kwargs={"model_path": str(model_path), "spec": spec.model_dump(),
                                                    "lookup": lookup}))
    # a partition per packing chunk up to Ray's default (200): tiny runs do not pay for 200 empty reducers
    counts = (examples.groupby("chunk", num_partitions=min(pack_chunks, 200))
              .map_groups(pack_and_write, batch_format="pyarrow",
                          fn_kwargs={"spec": spec.model_dump(), "rows_dir": str(tmp / ROWS_DIR)})
              .to_pandas())
    if counts.empty:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"data: no example fits max_seq_length={spec.max_seq_length}; raise data.max_seq_length")
    st.examples = int(counts["examples"].sum())
    st.dropped_too_long = st.records - st.examples
    st.truncated, st.input_tokens_cut = int(counts["truncated"].sum()), int(counts["input_tokens_cut"].sum())
    st.rows, st.real_tokens = int(counts["rows"].sum()), int(counts["real_tokens"].sum())
    st.row_capacity_tokens = st.rows * spec.max_seq_length
    stats = {**asdict(st), "fingerprint": fp, "max_seq_length": spec.max_seq_length, "packing": spec.packing,
             "shards": len(counts)}
    (tmp / "stats.json").write_text(json.dumps(stats, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    log.info("prepared %d rows from %d records (%d truncated, %d dropped as too long) in %d shards at %s",
             st.rows, st.records, st.truncated, st.dropped_too_long, len(counts), out_dir)
    return out_dir / ROWS_DIR, stats


def shard_files(rows_dir: str | Path) -> list[str]:
    """The row shards in training order."""
    return sorted(str(p) for p in Path(rows_dir).glob("chunk-*.parquet"))


def read_rows(rows_dir: str | Path) -> dict[str, list]:
    """All rows as columns (tests and small checks only: this holds them in memory)."""
    table = pa.concat_tables([pq.read_table(f) for f in shard_files(rows_dir)])
    return {k: table.column(k).to_pylist() for k in table.column_names}
