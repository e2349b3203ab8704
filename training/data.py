"""EHR-Ins records -> tokenized, truncated, masked (and packed) training rows: the pure functions.

Records (jsonl or parquet) need ``instruction``, ``input``, ``output`` (labels joined by "\\n", or a list of labels)
and, for reasoning samples, ``reasoning``. Other keys (candidates, task_info, idx) are ignored.

The chat template is rendered with a sentinel in place of the EHR text, so the tokens split into
prefix / input / suffix / completion segments (``training.sequences``) and only the EHR text is ever truncated.
Records are put in training order first (``training_order``), then tokenized and packed ``pack_chunk`` positions at a
time. :func:`build_rows` does it in memory (tests, benchmarks); ``training.prepare`` does the same on Ray Data and
writes parquet shards, which is what the SFT job trains on.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.chat_format import build_messages, format_assistant
from training.config import DataSpec
from training.mixing import mix_positions
from training.sequences import build_labels, concat_row, fit_example, pack_first_fit_decreasing

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("instruction", "input", "output")
_SENTINEL = "\u2063EHR_INPUT\u2063"


def stratified_indices(task_codes: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Row numbers (ascending) of a seeded sample of ``limit`` rows with an equal share per task; tasks with fewer
    rows give their share to the others. ``task_codes`` numbers the tasks in sorted-name order (:func:`task_codes`).
    Round-robin over the tasks in a seeded order, one row of each per round, vectorised: a few bytes per row."""
    codes = np.asarray(task_codes, dtype=np.int64)
    n = len(codes)
    if limit >= n:
        return np.arange(n)
    n_tasks = int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    task_turn = rng.permutation(n_tasks)  # a limit below the task count draws tasks, not the alphabetically first
    shuffled = rng.permutation(n)
    by_task = shuffled[np.argsort(codes[shuffled], kind="stable")]  # rows grouped by task, shuffled inside each
    starts = np.searchsorted(codes[by_task], np.arange(n_tasks))
    round_of = np.empty(n, dtype=np.int64)
    round_of[by_task] = np.arange(n) - starts[codes[by_task]]
    picked = np.lexsort((task_turn[codes], round_of))[:limit]
    return np.sort(picked)


def task_codes(tasks: Sequence[str]) -> np.ndarray:
    """Task names -> codes numbered in sorted-name order (what :func:`stratified_indices` expects)."""
    return np.unique(np.asarray(list(tasks), dtype=object), return_inverse=True)[1].astype(np.int64).reshape(-1)


def task_of(record: dict[str, Any]) -> str:
    return str((record.get("task_info") or {}).get("task", ""))


def stratified_by_task(records: list[dict[str, Any]], limit: int, seed: int) -> list[dict[str, Any]]:
    """:func:`stratified_indices` over ``task_info.task`` (records without one form one group), in file order."""
    return [records[i] for i in stratified_indices(task_codes([task_of(r) for r in records]), limit, seed)]


def read_records(path: str | Path, limit: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Read ``instruction, input, output[, reasoning]`` from a jsonl or parquet file; with ``limit``, a seeded
    task-stratified sample of that many records (:func:`stratified_by_task`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data.paths: {path} does not exist; point it to an EHR-Ins jsonl/parquet export")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        cols = [c for c in (*REQUIRED_KEYS, "reasoning") if c in names]
        if "task_info" in names:
            cols.append("task_info")
        records = pq.read_table(path, columns=cols).to_pylist()
    else:
        records = []
        with path.open() as fh:
            for line in fh:
                if line.strip():
                    records.append(json.loads(line))
    if limit is not None and len(records) > limit:
        records = stratified_by_task(records, limit, seed)
    for n, rec in enumerate(records):
        missing = [k for k in REQUIRED_KEYS if k not in rec]
        if missing:
            raise ValueError(f"{path}: record {n} lacks {missing}; EHR-Ins records need {list(REQUIRED_KEYS)}")
    if not records:
        raise ValueError(f"data.paths: {path} holds no records")
    return records


def answer_text(output: Any) -> str:
    return "\n".join(str(x) for x in output) if isinstance(output, (list, tuple)) else str(output)


def render_segments(tokenizer, record: dict[str, Any], fmt: str) -> tuple[str, str, str, str]:
    """``(prefix, input, suffix, completion)`` strings of one record, via the tokenizer's chat template."""
    reasoning = record.get("reasoning") if fmt == "reasoning" else None
    thinking = False if fmt == "plain" else bool(reasoning)
    msgs = build_messages(_SENTINEL, record["instruction"], thinking)
    prompt = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assistant = {"role": "assistant", "content": format_assistant(answer_text(record["output"]), reasoning)}
    full = tokenizer.apply_chat_template([*msgs, assistant], tokenize=False)
    if not full.startswith(prompt) or prompt.count(_SENTINEL) != 1:
        raise ValueError("the model's chat template does not render the assistant turn as a continuation of the "
                         "generation prompt; use a ChatML/Qwen3 template (model_path's chat_template.jinja)")
    prefix, suffix = prompt.split(_SENTINEL)
    return prefix, str(record["input"]), suffix, full[len(prompt):]


@dataclass
class PrepStats:
    records: int = 0
    dropped_too_long: int = 0
    truncated: int = 0
    input_tokens_cut: int = 0
    examples: int = 0
    rows: int = 0
    real_tokens: int = 0
    row_capacity_tokens: int = 0  # rows * max_seq_length


def encode_examples(tokenizer, records: list[dict], spec: DataSpec) -> list[tuple[list[int], list[int], int] | None]:
    """``(input_ids, labels, n_cut)`` per record, truncated to ``spec.max_seq_length``; None where the fixed parts
    alone do not fit (the record is dropped)."""
    segs = [render_segments(tokenizer, r, spec.format) for r in records]
    flat = [s for seg in segs for s in seg]
    ids = tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else []
    out: list[tuple[list[int], list[int], int] | None] = []
    for k in range(len(segs)):
        prefix, inp, suffix, completion = ids[4 * k: 4 * k + 4]
        fitted = fit_example(prefix, inp, suffix, completion, spec.max_seq_length)
        if fitted is None:
            out.append(None)
            continue
        prompt, completion, n_cut = fitted
        out.append((*build_labels(prompt, completion, spec.completion_only_loss), n_cut))
    return out


def tokenize_examples(tokenizer, records: list[dict], spec: DataSpec,
                      stats: PrepStats) -> list[tuple[list[int], list[int]]]:
    """``(input_ids, labels)`` per record that fits, counting truncated and dropped records in ``stats``."""
    out = []
    for enc in encode_examples(tokenizer, records, spec):
        stats.records += 1
        if enc is None:
            stats.dropped_too_long += 1
            continue
        ids, labels, n_cut = enc
        stats.truncated += n_cut > 0
        stats.input_tokens_cut += n_cut
        out.append((ids, labels))
    return out


def training_order(sizes: Sequence[int], spec: DataSpec, seed: int) -> list[np.ndarray]:
    """Training position of every selected record of each source: two sources mixed by ``spec.mix``, one source
    shuffled (rows are read in this order; there is no sampler)."""
    if len(sizes) == 2:
        return list(mix_positions(sizes[0], sizes[1], spec.mix, seed))
    return [mix_positions(sizes[0], 0, "shuffle", seed)[0]]


def pack_groups(lengths: Sequence[int], spec: DataSpec) -> list[list[int]]:
    """Example indices of each row of one packing chunk (``spec.pack_chunk`` consecutive positions)."""
    if not spec.packing:
        return [[i] for i in range(len(lengths))]
    return pack_first_fit_decreasing(lengths, spec.max_seq_length, max(len(lengths), 1))


def rows_of(examples: Sequence[tuple[Sequence[int], Sequence[int]]], groups: list[list[int]],
            packing: bool) -> list[dict[str, list[int]]]:
    if packing:
        return [concat_row([examples[i] for i in g]) for g in groups]
    return [{"input_ids": list(examples[g[0]][0]), "labels": list(examples[g[0]][1])} for g in groups]


def build_rows(tokenizer, spec: DataSpec, seed: int) -> tuple[dict[str, list], PrepStats]:
    """All training rows (columns ``input_ids, labels[, position_ids]``) in training order, plus statistics, in
    memory: the reference for small data and tests; :func:`training.prepare.prepare_rows` builds the same rows on
    Ray Data at any scale."""
    stats = PrepStats()
    sources = [read_records(p, spec.max_samples, seed) for p in spec.paths]
    ordered: list[dict[str, Any]] = [{}] * sum(len(s) for s in sources)
    for records, positions in zip(sources, training_order([len(s) for s in sources], spec, seed)):
        for rec, pos in zip(records, positions.tolist()):
            ordered[pos] = rec
    rows: list[dict[str, list[int]]] = []
    for start in range(0, len(ordered), spec.pack_chunk):
        chunk = tokenize_examples(tokenizer, ordered[start:start + spec.pack_chunk], spec, stats)
        stats.examples += len(chunk)
        rows += rows_of(chunk, pack_groups([len(ids) for ids, _ in chunk], spec), spec.packing)
    if not rows:
        raise ValueError(f"data: no example fits max_seq_length={spec.max_seq_length}; raise data.max_seq_length")
    stats.rows = len(rows)
    stats.real_tokens = sum(len(r["input_ids"]) for r in rows)
    stats.row_capacity_tokens = stats.rows * spec.max_seq_length
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    return columns, stats


def fingerprint(spec: DataSpec, model_path: str | Path, seed: int) -> str:
    # what decides the rows: not how many actors build them; "layout" names the on-disk format (parquet shards)
    data = spec.model_dump(exclude={"prep_concurrency", "prep_block_mb", "toy_data_if_missing"})
    h = hashlib.sha256(json.dumps({"data": data, "seed": seed, "layout": "rows-v1"}, sort_keys=True).encode())
    for p in [*spec.paths, *sorted(Path(model_path).glob("tokenizer*")), Path(model_path) / "chat_template.jinja"]:
        p = Path(p)
        if p.exists():
            st = p.stat()
            h.update(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def corpus_lines(paths: list[str], limit: int | None = None, seed: int = 0):
    """Text lines of the records, to train the tiny model's tokenizer on the data it will see."""
    for p in paths:
        for rec in read_records(p, limit, seed):
            for key in ("input", "instruction", "reasoning"):
                if rec.get(key):
                    yield from str(rec[key]).splitlines()
            yield from answer_text(rec["output"]).splitlines()
