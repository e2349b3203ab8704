"""The stage-2 dataset: EHR-Ins records + reasoning (template-written or LLM-written), one jsonl in ``idx`` order.

Each record is the EHR-Ins record (``idx, instruction, input, output, candidates, task_info``) plus
``reasoning`` (what ``training.data`` reads for stage 2), ``reasoning_source`` (``"template"`` for the LLM-free
rendering of the evidence graph, ``"llm"`` for an endpoint-written chain), ``reasoning_model`` and
``thinking_graph`` = the sample's evidence (target, history concept, lift, count, UMLS path).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pyarrow as pa

from data_pipeline.thinking_graph.reasoning import build_prompt, template_reasoning
from data_pipeline.thinking_graph.stage_store import Stage

log = logging.getLogger(__name__)
PREPARED_SCHEMA = pa.schema([("idx", pa.int64()), ("record", pa.string()), ("evidence", pa.string()),
                             ("n_paths", pa.int64())])


def prepare(cfg, st_ev, records_path: Path, work: Path, fingerprint: str, tasks_of: pa.Table | None = None):
    """The samples to write (joined with their evidence, graph filter, cap), sorted by idx, as a Stage.

    ``max_samples`` keeps a seeded draw stratified by task (:mod:`selection`) over the samples that passed the
    graph filter; ``tasks_of`` (``idx``, ``task``) names each sample's task."""
    import ray

    st = Stage(work, "prepared", fingerprint, cfg.overwrite)
    if st.done:
        return st
    import pyarrow.compute as pc

    evidence = pa.concat_tables(st_ev.read(columns=["idx", "evidence", "n_paths"]).iter_batches(
        batch_format="pyarrow", batch_size=None)) if any(st_ev.dir.glob("*.parquet")) else PREPARED_SCHEMA.empty_table()
    if cfg.evidence.require_graph:
        evidence = evidence.filter(pc.greater(evidence["n_paths"], 0))
    if cfg.max_samples is not None and evidence.num_rows > cfg.max_samples:
        evidence = _stratified(evidence, tasks_of, cfg.max_samples, cfg.seed)
    ev_ref = ray.put(evidence.select(["idx", "evidence", "n_paths"]).sort_by("idx"))

    def to_prepared(batch: pa.Table) -> pa.Table:
        import numpy as np

        ev = ray.get(ev_ref)
        ids = ev["idx"].to_numpy()
        rows = []
        for r in batch.to_pylist():
            p = int(np.searchsorted(ids, r["idx"]))  # binary search in the shared, idx-sorted evidence
            if p >= len(ids) or ids[p] != r["idx"]:
                continue
            rec = {k: r[k] for k in ("idx", "instruction", "input", "output", "candidates", "task_info")}
            rows.append({"idx": r["idx"], "record": json.dumps(rec, ensure_ascii=False),
                         "evidence": ev["evidence"][p].as_py(), "n_paths": ev["n_paths"][p].as_py()})
        return pa.Table.from_pylist(rows, schema=PREPARED_SCHEMA)

    ds = ray.data.read_parquet(str(records_path)).map_batches(to_prepared, batch_format="pyarrow").sort("idx")
    st.write(ds.repartition(1))
    return st


def _stratified(evidence: pa.Table, tasks_of: pa.Table | None, cap: int, seed: int) -> pa.Table:
    import pyarrow.compute as pc

    from data_pipeline.thinking_graph.selection import stratified_sample

    if tasks_of is None:
        raise ValueError("max_samples needs each sample's task (tasks_of) to draw a sample stratified by task")
    pos = pc.index_in(evidence["idx"], value_set=tasks_of["idx"])
    if pos.null_count:
        raise ValueError(f"{pos.null_count} evidence rows have no sample metadata; rerun with overwrite: true")
    tasks = tasks_of["task"].take(pos).to_numpy(zero_copy_only=False)
    keep = stratified_sample(evidence["idx"].to_numpy(), tasks, cap, seed)
    log.info("max_samples=%d: a seeded draw stratified by task keeps %d of %d samples over %d tasks", cap,
             len(keep), evidence.num_rows, len(set(tasks.tolist())))
    return evidence.filter(pc.is_in(evidence["idx"], value_set=pa.array(keep)))


def iter_prepared(st):
    import pyarrow.parquet as pq

    for part in sorted(st.dir.glob("*.parquet")):
        for batch in pq.ParquetFile(part).iter_batches(batch_size=256):
            yield from batch.to_pylist()


def write_records(cfg, out: Path, st_ev, records_path: Path, fingerprint: str,
                  tasks_of: pa.Table | None = None) -> dict:
    final = out / cfg.output_name
    marker = out / f".{cfg.output_name}.done.json"
    if not cfg.overwrite and final.is_file() and marker.is_file():
        done = json.loads(marker.read_text())
        # an LLM run with unfinished samples (endpoint failures, interruption) is resumed, not skipped
        if done.get("fp") == fingerprint and not done["summary"].get("samples_unfinished"):
            log.info("reasoning records exist with the same inputs, skipping (%s)", final)
            return done["summary"]
    st = prepare(cfg, st_ev, records_path, out / "_work", fingerprint, tasks_of)
    syn = cfg.synthesis
    chosen: dict[int, tuple[str, str]] = {}
    summary: dict = {"mode": syn.mode}
    if syn.mode == "llm":
        from data_pipeline.thinking_graph.synthesis import synthesise

        def jobs():  # read batch by batch as the requests go out: no prompt list in memory
            for row in iter_prepared(st):
                rec, evidence = json.loads(row["record"]), json.loads(row["evidence"])
                labels = list(rec["task_info"]["target"])
                yield row["idx"], build_prompt(rec["input"], rec["instruction"], labels, evidence,
                                               syn.with_knowledge), labels

        chosen, summary = synthesise(jobs(), syn, out / "_work" / "responses.jsonl")
        finished = summary.pop("finished")
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    written = templated = rejected = unfinished = 0
    coverage = {"labels": 0, "with_evidence": 0, "with_path": 0, "with_readable_path": 0}
    task_counts: dict[str, int] = {}
    with tmp.open("w", encoding="utf-8") as fh:
        for row in iter_prepared(st):
            rec, evidence = json.loads(row["record"]), json.loads(row["evidence"])
            labels = list(rec["task_info"]["target"])
            if syn.mode == "llm" and row["idx"] not in finished:
                unfinished += 1  # the endpoint never answered: requested again by the next run
                continue
            if syn.mode == "llm" and row["idx"] in chosen:
                text, model = chosen[row["idx"]]
                source = "llm"
            elif syn.mode == "llm" and syn.on_rejected == "drop":
                rejected += 1
                continue
            else:
                text, model, source = template_reasoning(rec["input"], rec["instruction"], labels, evidence), None, \
                    "template"
                templated += 1
            rec.update(reasoning=text, reasoning_source=source, reasoning_model=model,
                       thinking_graph={"evidence": evidence})
            _count_coverage(coverage, labels, evidence)
            task = rec["task_info"].get("task", "?")
            task_counts[task] = task_counts.get(task, 0) + 1
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            written += 1
    os.replace(tmp, final)
    share = {f"share_{k}": round(v / coverage["labels"], 3) for k, v in coverage.items() if k != "labels" and
             coverage["labels"]}
    summary.update(records=written, template_written=templated, dropped_rejected=rejected,
                   left_for_next_run=unfinished, path=str(final), label_coverage={**coverage, **share},
                   records_per_task=dict(sorted(task_counts.items())))
    tmp_marker = marker.with_name(marker.name + f".tmp-{os.getpid()}")
    tmp_marker.write_text(json.dumps({"fp": fingerprint, "summary": summary}))
    os.replace(tmp_marker, marker)
    log.info("wrote %d reasoning records (%d template-written, %d dropped) over %d tasks to %s; labels with a "
             "readable UMLS path: %d of %d", written, templated, rejected, len(task_counts), final,
             coverage["with_readable_path"], coverage["labels"])
    return summary


def _count_coverage(coverage: dict[str, int], labels: list[str], evidence: list[dict]) -> None:
    """How many of a record's labels have evidence, a UMLS path, a path a clinician reads (``readable_path``)."""
    from data_pipeline.thinking_graph.reasoning import readable_path

    for label in labels:
        mine = [e for e in evidence if e["target"] == label]
        coverage["labels"] += 1
        coverage["with_evidence"] += bool(mine)
        coverage["with_path"] += any(e.get("path") for e in mine)
        coverage["with_readable_path"] += any(readable_path(e.get("path")) for e in mine)
