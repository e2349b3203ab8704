"""EHR-Ins records -> tokenized, truncated, masked (and packed) training rows, prepared once on the driver.

Records (jsonl or parquet) need ``instruction``, ``input``, ``output`` (labels joined by "\\n", or a list of labels)
and, for reasoning samples, ``reasoning``. Other keys (candidates, task_info, idx) are ignored.

The chat template is rendered with a sentinel in place of the EHR text, so the tokens split into
prefix / input / suffix / completion segments (``training.sequences``) and only the EHR text is ever truncated.
The result is written atomically as a ``datasets`` directory with a ``stats.json`` and reused when the same data
config, files and tokenizer are prepared again (e.g. after a restart).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.chat_format import build_messages, format_assistant
from training.config import DataSpec
from training.mixing import mix_order
from training.sequences import build_labels, concat_row, fit_example, pack_first_fit_decreasing

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("instruction", "input", "output")
_SENTINEL = "\u2063EHR_INPUT\u2063"


def stratified_by_task(records: list[dict[str, Any]], limit: int, seed: int) -> list[dict[str, Any]]:
    """A seeded sample of ``limit`` records with an equal share per task (``task_info.task``; records without one
    form one group); tasks with fewer records give their share to the others. Returned in file order."""
    import random

    groups: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        groups.setdefault(str((rec.get("task_info") or {}).get("task", "")), []).append(i)
    rng = random.Random(seed)
    queues = [groups[t] for t in sorted(groups)]
    rng.shuffle(queues)  # a limit below the task count draws tasks, not the alphabetically first ones
    for idx in queues:
        rng.shuffle(idx)
    picked: list[int] = []
    depth = 0
    while len(picked) < limit:  # round-robin over tasks: one record of each task per round
        added = [q[depth] for q in queues if depth < len(q)]
        if not added:
            break
        picked += added[:limit - len(picked)]
        depth += 1
    return [records[i] for i in sorted(picked)]


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


def tokenize_examples(tokenizer, records: list[dict], spec: DataSpec,
                      stats: PrepStats) -> list[tuple[list[int], list[int]]]:
    """``(input_ids, labels)`` per record, truncated to ``spec.max_seq_length``; too-long ones are dropped."""
    segs = [render_segments(tokenizer, r, spec.format) for r in records]
    flat = [s for seg in segs for s in seg]
    ids = tokenizer(flat, add_special_tokens=False)["input_ids"]
    out = []
    for k in range(len(segs)):
        prefix, inp, suffix, completion = ids[4 * k: 4 * k + 4]
        fitted = fit_example(prefix, inp, suffix, completion, spec.max_seq_length)
        stats.records += 1
        if fitted is None:
            stats.dropped_too_long += 1
            continue
        prompt, completion, n_cut = fitted
        stats.truncated += n_cut > 0
        stats.input_tokens_cut += n_cut
        out.append(build_labels(prompt, completion, spec.completion_only_loss))
    return out


def build_rows(tokenizer, spec: DataSpec, seed: int) -> tuple[dict[str, list], PrepStats]:
    """All training rows (columns ``input_ids, labels[, position_ids]``) in training order, plus statistics."""
    stats = PrepStats()
    sources = [tokenize_examples(tokenizer, read_records(p, spec.max_samples, seed), spec, stats)
               for p in spec.paths]
    if any(not s for s in sources):
        raise ValueError(f"data: no example fits max_seq_length={spec.max_seq_length}; raise data.max_seq_length")
    if len(sources) == 2:
        examples = [sources[src][i] for src, i in mix_order(len(sources[0]), len(sources[1]), spec.mix, seed)]
    else:
        examples = sources[0]  # the trainer's sampler shuffles
    stats.examples = len(examples)
    if spec.packing:
        groups = pack_first_fit_decreasing([len(ids) for ids, _ in examples], spec.max_seq_length,
                                            spec.pack_chunk)
        rows = [concat_row([examples[i] for i in g]) for g in groups]
    else:
        rows = [{"input_ids": ids, "labels": labels} for ids, labels in examples]
    stats.rows = len(rows)
    stats.real_tokens = sum(len(r["input_ids"]) for r in rows)
    stats.row_capacity_tokens = stats.rows * spec.max_seq_length
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    return columns, stats


def fingerprint(spec: DataSpec, model_path: str | Path, seed: int) -> str:
    h = hashlib.sha256(json.dumps({"data": spec.model_dump(), "seed": seed}, sort_keys=True).encode())
    for p in [*spec.paths, *sorted(Path(model_path).glob("tokenizer*")), Path(model_path) / "chat_template.jinja"]:
        p = Path(p)
        if p.exists():
            st = p.stat()
            h.update(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def prepare_dataset(spec: DataSpec, model_path: str | Path, out_dir: str | Path, seed: int) -> tuple[Path, dict]:
    """Tokenize/pack once into ``out_dir`` (atomic, reused if the fingerprint matches); returns (dir, stats)."""
    import datasets
    from transformers import AutoTokenizer

    out_dir = Path(out_dir)
    fp = fingerprint(spec, model_path, seed)
    stats_file = out_dir / "stats.json"
    if stats_file.is_file():
        stats = json.loads(stats_file.read_text())
        if stats.get("fingerprint") == fp:
            log.info("reusing prepared data at %s (%d rows)", out_dir, stats["rows"])
            return out_dir, stats
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    columns, st = build_rows(tokenizer, spec, seed)
    stats = {**asdict(st), "fingerprint": fp, "max_seq_length": spec.max_seq_length, "packing": spec.packing}
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    datasets.Dataset.from_dict(columns).save_to_disk(str(tmp))
    (tmp / "stats.json").write_text(json.dumps(stats, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    log.info("prepared %d rows from %d records (%d truncated, %d dropped as too long) at %s",
             st.rows, st.records, st.truncated, st.dropped_too_long, out_dir)
    return out_dir, stats


def corpus_lines(paths: list[str], limit: int | None = None, seed: int = 0):
    """Text lines of the records, to train the tiny model's tokenizer on the data it will see."""
    for p in paths:
        for rec in read_records(p, limit, seed):
            for key in ("input", "instruction", "reasoning"):
                if rec.get(key):
                    yield from str(rec[key]).splitlines()
            yield from answer_text(rec["output"]).splitlines()
