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


def prepare(cfg, st_ev, records_path: Path, work: Path, fingerprint: str):
    """The samples to write (joined with their evidence, graph filter, cap), sorted by idx, as a Stage."""
    import ray

    st = Stage(work, "prepared", fingerprint, cfg.overwrite)
    if st.done:
        return st
    import pyarrow.compute as pc

    evidence = pa.concat_tables(st_ev.read(columns=["idx", "evidence", "n_paths"]).iter_batches(
        batch_format="pyarrow", batch_size=None)) if any(st_ev.dir.glob("*.parquet")) else PREPARED_SCHEMA.empty_table()
    if cfg.evidence.require_graph:
        evidence = evidence.filter(pc.greater(evidence["n_paths"], 0))
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
    if cfg.max_samples is not None:
        ds = ds.limit(cfg.max_samples)
    st.write(ds.repartition(1))
    return st


def iter_prepared(st):
    import pyarrow.parquet as pq

    for part in sorted(st.dir.glob("*.parquet")):
        for batch in pq.ParquetFile(part).iter_batches(batch_size=256):
            yield from batch.to_pylist()


def write_records(cfg, out: Path, st_ev, records_path: Path, fingerprint: str) -> dict:
    final = out / cfg.output_name
    marker = out / f".{cfg.output_name}.done.json"
    if not cfg.overwrite and final.is_file() and marker.is_file():
        done = json.loads(marker.read_text())
        # an LLM run with unfinished samples (endpoint failures, interruption) is resumed, not skipped
        if done.get("fp") == fingerprint and not done["summary"].get("samples_unfinished"):
            log.info("reasoning records exist with the same inputs, skipping (%s)", final)
            return done["summary"]
    st = prepare(cfg, st_ev, records_path, out / "_work", fingerprint)
    syn = cfg.synthesis
    chosen: dict[int, tuple[str, str]] = {}
    summary: dict = {"mode": syn.mode}
    if syn.mode == "llm":
        from data_pipeline.thinking_graph.synthesis import synthesise

        jobs = []
        for row in iter_prepared(st):
            rec, evidence = json.loads(row["record"]), json.loads(row["evidence"])
            labels = list(rec["task_info"]["target"])
            jobs.append((row["idx"], build_prompt(rec["input"], rec["instruction"], labels, evidence,
                                                  syn.with_knowledge), labels))
        chosen, summary = synthesise(jobs, syn, out / "_work" / "responses.jsonl")
        finished = summary.pop("finished")
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    written = templated = rejected = unfinished = 0
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
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            written += 1
    os.replace(tmp, final)
    summary.update(records=written, template_written=templated, dropped_rejected=rejected,
                   left_for_next_run=unfinished, path=str(final))
    tmp_marker = marker.with_name(marker.name + f".tmp-{os.getpid()}")
    tmp_marker.write_text(json.dumps({"fp": fingerprint, "summary": summary}))
    os.replace(tmp_marker, marker)
    log.info("wrote %d reasoning records (%d template-written, %d dropped) to %s", written, templated, rejected,
             final)
    return summary
