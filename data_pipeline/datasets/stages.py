"""The two per-batch workers of the build, pure over pyarrow tables of timeline shards (Ray-free, testable).

* :func:`index_batch`: timelines -> candidate-instance index rows (no text), one row per (task, anchor), plus
  one ``__tables__`` row per batch listing the event tables seen (used to explain empty tasks);
  :func:`index_shards_to_parts` streams them to one parquet part per shard, written by the worker.
* :class:`RenderWorker`: timelines + the sampled index -> finished samples (text, candidates, provenance);
  (:class:`shards.ShardRenderWorker` renders one shard from its own selection file into a part.)
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator

import pyarrow as pa

from data_pipeline.datasets.schemas import INDEX_SCHEMA, SAMPLE_SCHEMA, TABLES_ROW, read_shard  # noqa: F401 (re-exported)
from data_pipeline.datasets.split import patient_split
from data_pipeline.datasets.truncation import cached_counter, make_token_counter, truncate_parts
from data_pipeline.events import PatientTimeline
from data_pipeline.render import render_event
from data_pipeline.tasks import get_task
from data_pipeline.tasks.assembly import assemble_parts, output_text, sample_context
from data_pipeline.tasks.availability import LeakageRules
from data_pipeline.tasks.candidates import Vocabulary, make_candidates
from data_pipeline.tasks.decision_making import covers_admission
from data_pipeline.tasks.history import TimelineIndex, norm_id
from data_pipeline.tasks.instructions import instruction_for
from data_pipeline.tasks.spec import Instance

def _timelines(batch: pa.Table):
    for sid, events in zip(batch.column("subject_id").to_pylist(), batch.column("events").to_pylist()):
        yield PatientTimeline.from_row({"subject_id": sid, "events": events})


def index_batch(batch: pa.Table, tasks: list[str], test_ratio: float, salt: str,
                rules: dict | None = None) -> pa.Table:
    """Candidate-instance rows of every patient in ``batch`` (a timeline shard slice)."""
    specs = [get_task(t) for t in tasks]
    leakage = LeakageRules.from_dict(rules)
    rows: list[dict] = []
    seen: set[str] = set()
    for tl in _timelines(batch):
        ix = TimelineIndex(tl, leakage)
        seen.update(e.file_name for e in tl.events)
        split = patient_split(tl.subject_id, test_ratio, salt)
        for spec in specs:
            for inst in spec.generate(ix):
                row = inst.to_row()
                row.update(event=ix.events[inst.anchor].file_name, n_context=len(sample_context(ix, inst, spec)),
                           n_patient_events=len(tl.events), split=split,
                           covers_admission=covers_admission(ix, inst) if spec.admission_window_filter else True)
                rows.append(row)
    rows.append({"task": TABLES_ROW, "subject_id": -1, "hadm_id": "", "anchor": -1, "context_begin": -1,
                 "context_end": -1, "prediction_time": "", "labels": sorted(seen), "admissions_id": -1,
                 "last_discharge_id": -1, "anchor_in_context": False, "event": "", "n_context": 0,
                 "n_patient_events": 0, "split": "", "covers_admission": True})
    return pa.Table.from_pylist(rows, schema=INDEX_SCHEMA)


PART_SCHEMA = pa.schema([("path", pa.string()), ("rows", pa.int64()), ("tables", pa.list_(pa.string()))])


def index_shards_to_parts(paths: pa.Table, tasks: list[str], test_ratio: float, salt: str,
                          out_dir: str, rules: dict | None = None) -> Iterator[pa.Table]:
    """Ray Data UDF: each timeline shard's candidate index streamed to ``<out_dir>/<shard>.parquet`` by the worker
    (atomic rename), so the index never passes through the driver. Yields one small row per shard: the part's
    path, its row count and the event tables seen."""
    import os
    from pathlib import Path

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    for path in paths.column("path").to_pylist():
        final = Path(out_dir) / f"{Path(path).stem}.parquet"
        tmp = final.with_name(f".{final.stem}.tmp-{os.getpid()}.parquet")
        seen: set[str] = set()
        rows = 0
        with pq.ParquetWriter(tmp, INDEX_SCHEMA) as writer:
            for batch in read_shard(path):
                table = index_batch(batch, tasks, test_ratio, salt, rules)
                is_tables = pc.equal(table["task"], TABLES_ROW)
                for labels in table.filter(is_tables)["labels"].to_pylist():
                    seen.update(labels)
                table = table.filter(pc.invert(is_tables))
                rows += table.num_rows
                writer.write_table(table)
        os.replace(tmp, final)
        yield pa.Table.from_pylist([{"path": str(final), "rows": rows, "tables": sorted(seen)}], schema=PART_SCHEMA)


def candidate_seed(seed: int, dataset: str, idx: int) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(dataset.encode()) * 7919 + int(idx)) & 0x7FFFFFFF


class RenderWorker:
    """Renders the selected samples of the patients in a batch. One instance per Ray actor.

    ``selection`` maps subject_id -> list of selected index rows (each with ``dataset`` and ``idx``);
    ``vocabularies`` maps task -> :class:`Vocabulary` from the train split. Either may be a Ray ObjectRef
    wrapped in a one-element list (so Ray Data passes it through untouched). ``datasets`` holds per-dataset
    options: ``truncate`` (left-truncate to ``max_input_tokens``; EHR-Bench: no, the evaluator applies its own
    budget) and ``min_context`` (the context-size filter, counted again after truncation). ``rules`` are the
    leakage rules of the history cut (:class:`LeakageRules` fields); with ``audit`` every sample is checked by
    the leakage auditor (always with the full rules) and its findings are kept in the ``leaks`` column.
    """

    def __init__(self, selection, vocabularies, max_input_tokens: int, tokenizer_path: str | None, seed: int,
                 max_candidates: int, rules: dict | None = None, instruction_style: str = "reference",
                 datasets: dict[str, dict] | None = None, audit: bool = True):
        self.selection: dict[int, list[dict]] = _deref(selection)
        self.vocab: dict[str, Vocabulary] = _deref(vocabularies)
        self.max_tokens = max_input_tokens
        self.count = cached_counter(make_token_counter(tokenizer_path))
        self.seed = seed
        self.max_candidates = max_candidates
        self.rules = LeakageRules.from_dict(rules)
        self.instruction_style = instruction_style
        self.datasets = datasets or {}
        self.audit = audit

    def __call__(self, batch: pa.Table) -> pa.Table:
        out: list[dict] = []
        for sid in batch.column("subject_id").to_pylist():
            if sid in self.selection:
                break
        else:
            return SAMPLE_SCHEMA.empty_table()
        for tl in _timelines(batch):
            chosen = self.selection.get(tl.subject_id)
            if not chosen:
                continue
            ix = TimelineIndex(tl, self.rules)
            # the auditor always applies the full rules, whatever the build used
            audit_ix = (ix if self.rules == LeakageRules() else TimelineIndex(tl)) if self.audit else None
            render = memo_renderer()
            for row in chosen:
                out.append(self.render(ix, row, render, audit_ix))
            self.count.clear()
        return pa.Table.from_pylist(out, schema=SAMPLE_SCHEMA)

    def render(self, ix: TimelineIndex, row: dict, render=None, audit_ix: TimelineIndex | None = None) -> dict:
        from data_pipeline.datasets.audit import audit_sample

        inst = Instance.from_row(row)
        spec = get_task(inst.task)
        instruction = instruction_for(spec.name, self.instruction_style)
        options = self.datasets.get(row["dataset"], {})
        parts = assemble_parts(ix, inst, spec, render=render)
        n_before = len(parts.context)
        budget = self.max_tokens if options.get("truncate", True) else None
        # the readmission sample's note (its anchor) is never truncated away
        pin = parts.context_ids.index(inst.anchor) if inst.anchor_in_context and inst.anchor in parts.context_ids \
            else None
        cut = truncate_parts(parts, budget, self.count, instruction, pinned_from=pin)
        drop = "" if cut.fits else "too_long"
        kept = len(cut.parts.context)
        if not drop and kept < n_before and (kept == 0 or kept <= options.get("min_context", -1)):
            drop = "context_after_truncation"  # never export an emptied (or filtered-out) context
        output = output_text(inst.labels)
        candidates = make_candidates(spec, inst.labels, self.vocab.get(spec.name),
                                     candidate_seed(self.seed, row["dataset"], row["idx"]), self.max_candidates)
        text = cut.parts.text()
        anchor_event = ix.events[inst.anchor]
        # null, not "", for an untimed anchor (diagnoses): HF's json loader reads the times as timestamps
        anchor_time = anchor_event.starttime if anchor_event.starttime not in (None, "", "nan", "None") else None
        stay_id = norm_id((anchor_event.items[0] if anchor_event.items else {}).get("stay_id")) or ""
        leaks = []
        if audit_ix is not None:
            leaks = audit_sample(audit_ix, spec, anchor=inst.anchor, hadm_id=inst.hadm_id,
                                 context_ids=cut.parts.context_ids,
                                 admissions_id=inst.admissions_id if spec.show_admission else -1,
                                 last_discharge_id=inst.last_discharge_id,
                                 prediction_time=inst.prediction_time,
                                 previous_discharge_shown=not cut.dropped_previous_discharge)
        record = {"idx": int(row["idx"]), "instruction": instruction, "input": text, "output": output,
                  "candidates": candidates, "task_info": {
                      "task": spec.name, "target_key": spec.target_key, "events": anchor_event.file_name,
                      "metric": spec.metric, "target": list(inst.labels), "label": output,
                      "subject_id": inst.subject_id, "hadm_id": inst.hadm_id or "", "stay_id": stay_id,
                      "anchor": inst.anchor, "anchor_time": anchor_time,
                      "prediction_time": inst.prediction_time}}
        return {
            "dataset": row["dataset"], "idx": int(row["idx"]), "instruction": instruction,
            "input": text, "output": output, "candidates": candidates, "task": spec.name,
            "target_key": spec.target_key, "events": anchor_event.file_name, "metric": spec.metric,
            "target": list(inst.labels), "label": output,
            "subject_id": inst.subject_id, "hadm_id": inst.hadm_id or "", "anchor": inst.anchor,
            "context_begin": inst.context_begin, "context_end": inst.context_end, "context_ids": cut.parts.context_ids,
            "admissions_id": inst.admissions_id, "last_discharge_id": inst.last_discharge_id,
            "prediction_time": inst.prediction_time, "n_tokens": cut.n_tokens, "dropped_events": cut.dropped_events,
            "dropped_previous_discharge": cut.dropped_previous_discharge, "fits": not drop,
            "stay_id": stay_id, "anchor_time": anchor_time, "drop_reason": drop,
            "leaks": "; ".join(leaks), "json": json.dumps(record, ensure_ascii=False),
        }


def memo_renderer():
    """``render_event`` memoised per event object: an event is rendered once per patient, however many of the
    patient's samples show it."""
    cache: dict[int, str] = {}

    def render(event) -> str:
        key = id(event)
        if key not in cache:
            cache[key] = render_event(event)
        return cache[key]

    return render


def _deref(value):
    if isinstance(value, list) and len(value) == 1:
        import ray

        if isinstance(value[0], ray.ObjectRef):
            return ray.get(value[0])
    return value
