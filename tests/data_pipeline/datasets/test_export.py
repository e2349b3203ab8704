"""Index and render stages on hand-made timelines, then the export, loaded back with HF ``datasets``."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_pipeline.datasets.export import HF_SCHEMA, DatasetWriter, format_summary, is_finished
from data_pipeline.datasets.stages import TABLES_ROW, RenderWorker, index_batch
from data_pipeline.tasks import task_names
from data_pipeline.tasks.candidates import build_vocabulary
from data_pipeline.tasks.examples import example_timeline

HF_KEYS = {"idx", "instruction", "input", "output", "candidates", "task_info"}
INFO_KEYS = {"task", "target_key", "events", "metric", "target", "label",
             # provenance of every sample (the leakage auditor checks against it)
             "subject_id", "hadm_id", "stay_id", "anchor", "anchor_time", "prediction_time"}


def shard() -> pa.Table:
    rows = [example_timeline(subject_id=s, dod=d).to_row()
            for s, d in [(10000032, "nan"), (10000033, "2180-01-06"), (10000034, "nan")]]
    return pa.Table.from_pylist(rows)


@pytest.fixture(scope="module")
def samples() -> pa.Table:
    index = index_batch(shard(), task_names(), test_ratio=0.5, salt="ehr-r1").to_pandas()
    assert (index["task"] == TABLES_ROW).sum() == 1
    index = index[index["task"] != TABLES_ROW].reset_index(drop=True)
    index = index.assign(dataset="ehr_bench", idx=range(len(index)))
    selection = {}
    for row in index.to_dict("records"):
        selection.setdefault(row["subject_id"], []).append(row)
    vocab = {"labevents": build_vocabulary([["Glucose", "Sodium"], ["Potassium"]])}
    worker = RenderWorker(selection, vocab, max_input_tokens=400, tokenizer_path=None, seed=0, max_candidates=100)
    return worker(shard())


def test_index_rows_cover_every_task(samples):
    assert set(samples.column("task").to_pylist()) == set(task_names())


def test_rendered_samples(samples):
    rows = samples.to_pylist()
    for r in rows:
        assert r["input"].startswith("## Patient Demographics [None]")
        assert r["n_tokens"] <= 400 or not r["fits"]
        assert set(r["target"]) <= set(r["candidates"]) or r["task"] == "discharge"
        if r["metric"] == "aucroc":
            assert r["output"] in ("yes", "no") and r["candidates"] == ["yes", "no"]
        else:
            assert r["output"].split("\n") == r["target"]
    note = next(r for r in rows if r["task"] == "Readmission_30day" and r["subject_id"] == 10000032
                and r["anchor"] == 28)
    assert "Discharge summary text." in note["input"] and note["output"] == "yes"
    assert any(r["dropped_events"] > 0 for r in rows)  # the 400-token budget truncates some samples


def test_written_files_load_with_hf_datasets(tmp_path, samples):
    from datasets import load_dataset

    writer = DatasetWriter(tmp_path, "ehr_bench")
    writer.write(samples.slice(0, 40))
    writer.write(samples.slice(40))
    summary = {"dataset": "ehr_bench", "split": "test", "samples": samples.num_rows, "patients": 3,
               "tasks": [{"task": "labevents", "kind": "DM", "pool": 4, "samples": 4, "yes": None, "no": None,
                          "too_long": 0}]}
    final = writer.commit(summary, fingerprint="abc")
    assert sorted(p.name for p in final.iterdir()) == ["_SUCCESS.json", "ehr_bench.jsonl", "ehr_bench.parquet",
                                                       "provenance.parquet", "summary.json"]
    assert is_finished(final, "abc") and not is_finished(final, "other")
    assert not list(tmp_path.glob(".ehr_bench.tmp-*"))

    js = load_dataset("json", data_files=str(final / "ehr_bench.jsonl"), split="train")
    pa_ds = load_dataset("parquet", data_files=str(final / "ehr_bench.parquet"), split="train")
    for ds in (js, pa_ds):
        assert len(ds) == samples.num_rows
        assert set(ds.column_names) == HF_KEYS
        assert set(ds[0]["task_info"]) == INFO_KEYS
        info = ds[0]["task_info"]
        assert info["subject_id"] == samples.column("subject_id")[0].as_py()
        assert str(info["prediction_time"]) == samples.column("prediction_time")[0].as_py()  # json: HF parses times
        assert info["anchor"] == samples.column("anchor")[0].as_py()
    assert js["idx"] == pa_ds["idx"] == samples.column("idx").to_pylist()
    assert js[5]["input"] == pa_ds[5]["input"] == samples.column("input")[5].as_py()
    assert pq.read_schema(final / "ehr_bench.parquet").equals(HF_SCHEMA)

    prov = pq.read_table(final / "provenance.parquet").to_pylist()
    assert [p["idx"] for p in prov] == samples.column("idx").to_pylist()
    assert {"subject_id", "hadm_id", "task", "anchor", "context_begin", "context_end", "context_ids"} <= set(prov[0])
    assert "labevents" in format_summary(summary)


def test_commit_replaces_an_older_dataset_atomically(tmp_path, samples):
    for fp in ("one", "two"):
        w = DatasetWriter(tmp_path, "ehr_ins")
        w.write(samples.slice(0, 3))
        w.commit({"dataset": "ehr_ins"}, fp)
    assert is_finished(tmp_path / "ehr_ins", "two")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ehr_ins"]


def test_abort_leaves_nothing(tmp_path, samples):
    w = DatasetWriter(tmp_path, "ehr_ins")
    w.write(samples.slice(0, 3))
    w.abort()
    assert list(tmp_path.iterdir()) == []
