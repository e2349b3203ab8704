"""SFT rows on Ray Data: EHR-Ins files -> tokenized, packed rows in parquet shards, with a flat driver at any scale.

The driver never holds a record. Three passes:

1. **plan** (driver): each file is cut into chunks of ``RECORDS_PER_CHUNK`` records -- jsonl by a streaming newline
   scan (byte ranges), parquet by row group.
2. **scan** (Ray tasks): every chunk is parsed and every record validated (the file and line are named on error);
   only ``(line, task)`` comes back. From those the driver draws the task-stratified sample (``data.max_samples``)
   and the training order (``training.data.training_order``) as numpy arrays: 16 bytes per record.
3. **tokenize** (Ray Data, ``Tokenize`` actors, ``data.prep_concurrency``): each task takes a group of chunks
   (about ``data.prep_block_mb`` of tokens at most), tokenizes its selected records with their training position
   and writes them by *bucket* -- a run of consecutive packing chunks (``position // data.pack_chunk``) of about
   ``data.prep_block_mb`` -- as ``tok/b-BBBBBB/g-GGGGGGGG.parquet``.
4. **pack** (Ray tasks): each bucket's files are read (one bucket in memory, never the dataset), every packing chunk
   packed first-fit-decreasing and written as one parquet shard, ``rows/chunk-NNNNNNNN.parquet``. Shard names
   sort in training order.

This is a shuffle through files with a bounded fan-out (groups x buckets files), not Ray's in-memory shuffle:
a worker holds one group or one bucket, whatever the dataset's size, and the driver holds only counts. Every
file is written atomically under a name fixed by its inputs, so a retried task rewrites the same file.

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
    """Ray Data actor: a group of chunks -> its selected records tokenized, written by bucket; returns counts."""

    def __init__(self, model_path: str, spec: dict, lookup: Any, work_dir: str, chunks_per_bucket: int):
        import ray
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.spec = DataSpec.model_validate(spec)
        self.lookup = ray.get(lookup) if isinstance(lookup, ray.ObjectRef) else lookup
        self.work, self.per_bucket = Path(work_dir), chunks_per_bucket

    def examples(self, chunks: list[dict[str, Any]]) -> pa.Table:
        positions, records = [], []
        for chunk in chunks:
            lines, pos = self.lookup[int(chunk["source"])]
            for n, rec in read_chunk(chunk):
                i = int(np.searchsorted(lines, n))
                if i < len(lines) and lines[i] == n:
                    positions.append(int(pos[i]))
                    records.append(rec)
        cols: dict[str, list] = {"position": [], "input_ids": [], "labels": [], "n_cut": []}
        for p, enc in zip(positions, encode_examples(self.tokenizer, records, self.spec)):
            if enc is None:
                continue
            cols["position"].append(p)
            cols["input_ids"].append(enc[0])
            cols["labels"].append(enc[1])
            cols["n_cut"].append(enc[2])
        return pa.table({"position": pa.array(cols["position"], pa.int64()),
                         "input_ids": pa.array(cols["input_ids"], pa.list_(pa.int32())),
                         "labels": pa.array(cols["labels"], pa.list_(pa.int32())),
                         "n_cut": pa.array(cols["n_cut"], pa.int32())})

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import pyarrow.compute as pc

        groups, buckets = [], []
        for group, chunks in zip(batch["group"], batch["chunks"]):
            # one chunk's records and Python token lists at a time; the group is held as compact Arrow columns
            table = pa.concat_tables([self.examples([chunk]) for chunk in json.loads(str(chunks))])
            bucket = pc.divide(pc.divide(table["position"], self.spec.pack_chunk), self.per_bucket).to_numpy()
            for b in np.unique(bucket):
                final = self.work / f"b-{int(b):06d}" / f"g-{int(group):08d}.parquet"
                final.parent.mkdir(parents=True, exist_ok=True)
                tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
                pq.write_table(table.filter(pa.array(bucket == b)), tmp)
                os.replace(tmp, final)  # a retried task rewrites the same file
            groups.append(int(group))
            buckets.append(len(np.unique(bucket)))
        return {"group": np.asarray(groups, np.int64), "buckets": np.asarray(buckets, np.int64)}


def pack_and_write(group: pa.Table, spec: DataSpec, rows_dir: str) -> dict[str, int]:
    """One packing chunk's examples (sorted by position) -> its rows written as ``chunk-NNNNNNNN.parquet``."""
    ids, labels = group.column("input_ids").to_pylist(), group.column("labels").to_pylist()
    examples = list(zip(ids, labels))
    rows = rows_of(examples, pack_groups([len(x) for x in ids], spec), spec.packing)
    chunk = int(group.column("position")[0].as_py()) // spec.pack_chunk
    table = pa.table({k: pa.array([r[k] for r in rows], pa.list_(pa.int32())) for k in rows[0]})
    final = Path(rows_dir) / f"chunk-{chunk:08d}.parquet"
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, final)  # a retried task rewrites the same shard
    n_cut = group.column("n_cut").to_numpy()
    return {"rows": len(rows), "examples": len(examples), "truncated": int((n_cut > 0).sum()),
            "input_tokens_cut": int(n_cut.sum()), "real_tokens": sum(len(x) for x in ids)}


def _pack_bucket(batch: dict[str, np.ndarray], spec: dict, rows_dir: str) -> dict[str, np.ndarray]:
    """Ray Data task body: each bucket folder -> its packing chunks' shards; returns the counts per shard."""
    sp = DataSpec.model_validate(spec)
    out: dict[str, list[int]] = {"rows": [], "examples": [], "truncated": [], "input_tokens_cut": [],
                                 "real_tokens": []}
    for folder in batch["bucket_dir"]:
        files = sorted(Path(str(folder)).glob("g-*.parquet"))
        if not files:
            continue
        table = pa.concat_tables([pq.read_table(f) for f in files]).sort_by("position")
        chunk = (table["position"].to_numpy() // sp.pack_chunk)
        bounds = np.flatnonzero(np.diff(chunk)) + 1
        for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), len(chunk)]):
            for k, v in pack_and_write(table.slice(lo, hi - lo), sp, rows_dir).items():
                out[k].append(v)
    return {k: np.asarray(v, np.int64) for k, v in out.items()}


def _layout(spec: DataSpec, n_chunks: int) -> tuple[int, int]:
    """(file chunks per tokenize task, packing chunks per bucket): each about ``prep_block_mb`` of tokens at the
    worst case (every example ``max_seq_length`` tokens, input ids and labels as int32)."""
    per_example = spec.max_seq_length * 8
    budget = spec.prep_block_mb << 20
    chunks_per_bucket = max(1, budget // (spec.pack_chunk * per_example))
    chunks_per_group = max(1, budget // (RECORDS_PER_CHUNK * per_example))
    return min(chunks_per_group, max(n_chunks, 1)), chunks_per_bucket


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
    del scanned, selected, positions

    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / ROWS_DIR).mkdir(parents=True)
    work = tmp / "tok"
    per_group, per_bucket = _layout(spec, len(chunks))
    groups = [{"group": g, "chunks": json.dumps(chunks[i:i + per_group])}
              for g, i in enumerate(range(0, len(chunks), per_group))]
    (ray.data.from_items(groups, override_num_blocks=len(groups))
     .map_batches(Tokenize, batch_size=1, batch_format="numpy",
                  compute=ray.data.ActorPoolStrategy(size=min(spec.prep_concurrency, len(groups))),
                  fn_constructor_kwargs={"model_path": str(model_path), "spec": spec.model_dump(), "lookup": lookup,
                                         "work_dir": str(work), "chunks_per_bucket": per_bucket})
     .materialize())
    buckets = [{"bucket_dir": str(d)} for d in sorted(work.glob("b-*"))]
    counts = {k: 0 for k in ("rows", "examples", "truncated", "input_tokens_cut", "real_tokens", "shards")}
    if buckets:
        packed = ray.data.from_items(buckets, override_num_blocks=len(buckets)).map_batches(
            _pack_bucket, batch_size=1, batch_format="numpy",
            fn_kwargs={"spec": spec.model_dump(), "rows_dir": str(tmp / ROWS_DIR)})
        for batch in packed.iter_batches(batch_format="numpy", batch_size=None):
            for k in counts:
                counts[k] += int(batch[k].sum()) if k != "shards" else len(batch["rows"])
    shutil.rmtree(work, ignore_errors=True)
    if not counts["shards"]:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"data: no example fits max_seq_length={spec.max_seq_length}; raise data.max_seq_length")
    st.examples = counts["examples"]
    st.dropped_too_long = st.records - st.examples
    st.truncated, st.input_tokens_cut = counts["truncated"], counts["input_tokens_cut"]
    st.rows, st.real_tokens = counts["rows"], counts["real_tokens"]
    st.row_capacity_tokens = st.rows * spec.max_seq_length
    stats = {**asdict(st), "fingerprint": fp, "max_seq_length": spec.max_seq_length, "packing": spec.packing,
             "shards": counts["shards"]}
    (tmp / "stats.json").write_text(json.dumps(stats, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    log.info("prepared %d rows from %d records (%d truncated, %d dropped as too long) in %d shards at %s",
             st.rows, st.records, st.truncated, st.dropped_too_long, counts["shards"], out_dir)
    return out_dir / ROWS_DIR, stats


def shard_files(rows_dir: str | Path) -> list[str]:
    """The row shards in training order."""
    return sorted(str(p) for p in Path(rows_dir).glob("chunk-*.parquet"))


def read_rows(rows_dir: str | Path) -> dict[str, list]:
    """All rows as columns (tests and small checks only: this holds them in memory)."""
    table = pa.concat_tables([pq.read_table(f) for f in shard_files(rows_dir)])
    return {k: table.column(k).to_pylist() for k in table.column_names}
