"""Slow: timelines -> concepts -> lift -> paths -> reasoning records on a small synthetic cohort, on Ray.

LLM-free mode (and its resume), endpoint mode against a scripted local fake server (interrupted, then resumed
without repeating finished requests), and the served tiny model (the project's Ray Serve app) whose output SFT
stage 2 trains on.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_pipeline.thinking_graph.config import ThinkingGraphConfig
from data_pipeline.thinking_graph.reasoning import rejection_reason
from tests.engines import require_engine

pytestmark = pytest.mark.slow
require_engine("quickumls", "pip install -e '.[umls]'")

TASKS = ["labevents", "prescriptions", "prescriptions_atc", "diagnoses_icd", "procedures_icd", "radiology",
         "microbiologyevents", "emar"]


@pytest.fixture(scope="module")
def datasets_dir(ray_session, tmp_path_factory) -> Path:
    from data_pipeline.datasets.build import build_datasets
    from data_pipeline.datasets.config import BuildDatasetsConfig

    out = tmp_path_factory.mktemp("tg-datasets")
    build_datasets(BuildDatasetsConfig.model_validate({
        "timelines": {"synthetic": {"num_patients": 30, "seed": 3, "volume": "demo"}, "num_buckets": 2,
                      "write_markdown": False},
        "output_dir": str(out), "presets": ["ehr_ins"], "tasks": TASKS, "test_ratio": 0.2,
        "max_input_tokens": 256, "sampling": {"min_context_events": -1, "max_context_events": None}}))
    return out


def config(datasets_dir: Path, out: Path, **kw) -> ThinkingGraphConfig:
    return ThinkingGraphConfig.model_validate({
        "timelines_dir": str(datasets_dir / "timelines"), "ehr_ins_dir": str(datasets_dir / "ehr_ins"),
        "output_dir": str(out), "evidence": {"min_support": 2, "threshold": 1.5}, "num_partitions": 2, **kw})


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_llm_free_end_to_end_and_resume(datasets_dir, tmp_path):
    from data_pipeline.thinking_graph.pipeline import build

    cfg = config(datasets_dir, tmp_path)
    summary = build(cfg)
    recs = records(Path(summary["path"]))
    assert summary["records"] == len(recs) > 0 and summary["kept_pairs"] > 0
    for rec in recs:
        assert rec["reasoning_source"] == "template" and rec["reasoning_model"] is None
        assert rejection_reason(rec["reasoning"], rec["task_info"]["target"]) is None
        assert rec["task_info"]["task"] in TASKS
        assert any(e["path"] for e in rec["thinking_graph"]["evidence"])  # require_graph (reference filter)
        assert {"instruction", "input", "output"} <= rec.keys()
    assert [r["idx"] for r in recs] == sorted(r["idx"] for r in recs)
    spans = __import__("pyarrow.parquet", fromlist=["x"]).read_table(tmp_path / "_work" / "concepts")["spans"]
    assert sum(len(s) for s in spans.to_pylist()) > 0  # notes went through QuickUMLS
    # a re-run finds every stage finished and rewrites nothing
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "_work").glob("*.json")}
    out_mtime = Path(summary["path"]).stat().st_mtime_ns
    assert build(cfg)["records"] == len(recs)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert Path(summary["path"]).stat().st_mtime_ns == out_mtime


def test_max_samples_draws_every_task_with_evidence(datasets_dir, tmp_path):
    from data_pipeline.thinking_graph.pipeline import build

    every = records(Path(build(config(datasets_dir, tmp_path / "all"))["path"]))
    tasks = {r["task_info"]["task"] for r in every}
    cap = 2 * len(tasks)
    assert len(tasks) >= 3 and len(every) > cap
    drawn = records(Path(build(config(datasets_dir, tmp_path / "cap", max_samples=cap))["path"]))
    assert len(drawn) == cap and {r["task_info"]["task"] for r in drawn} == tasks  # not the first ids' tasks
    assert {r["idx"] for r in drawn} <= {r["idx"] for r in every}
    first_ids = sorted(r["idx"] for r in every)[:cap]
    assert sorted(r["idx"] for r in drawn) != first_ids


def test_llm_mode_resumes_without_repeating_finished_requests(datasets_dir, tmp_path, fake_openai):
    from data_pipeline.thinking_graph.pipeline import build

    # first run: every third sample's endpoint call fails (as if the run was cut off before they finished)
    with fake_openai(lambda sample, attempt: "error" if sample % 3 == 0 else "ok") as server:
        syn = {"mode": "llm", "base_url": server.base_url, "api_key_env": None, "candidates_per_sample": 1,
               "max_retries": 1, "backoff_seconds": 0.01, "timeout_seconds": 5}
        cfg = config(datasets_dir, tmp_path, synthesis=syn, max_samples=12)
        first = build(cfg)
        first_requests = list(server.requests)
        assert first["left_for_next_run"] > 0 and first["records"] == 12 - first["left_for_next_run"]
        server.script = lambda sample, attempt: "ok"
        second = build(cfg)
        again = server.requests[len(first_requests):]
    failed = {s for s in first_requests if int(s) % 3 == 0}
    assert set(again) == failed and len(again) == len(failed)  # only the unfinished samples were requested
    assert second["records"] == 12 and second["left_for_next_run"] == 0
    recs = records(Path(second["path"]))
    assert {r["reasoning_source"] for r in recs} == {"llm"} and {r["reasoning_model"] for r in recs} == {"fake-model"}
    assert all(rejection_reason(r["reasoning"], r["task_info"]["target"]) is None for r in recs)


def test_served_tiny_model_mode_and_stage2_trains_on_it(datasets_dir, tmp_path, ray_session):
    import socket

    from ray import serve

    from data_pipeline.thinking_graph.pipeline import build
    from serving.app import build_app_from_config
    from serving.config import ServeConfig
    from training.config import SFTJobConfig
    from training.sft import run_sft
    from training.tiny_model import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = "tg-tiny"
    scfg = ServeConfig.model_validate({
        "app_name": app, "model": {"path": str(model), "served_name": "tiny"},
        "engine": {"kind": "transformers", "transformers": {"torch_threads": 1}}, "http": {"port": port},
        "auth": {"api_keys_env": None}, "limits": {"max_input_tokens": 1900, "max_new_tokens": 64,
                                                  "default_max_tokens": 32, "predict_max_new_tokens": 16},
        "deployment": {"num_cpus": 0.25, "max_ongoing_requests": 2, "max_queued_requests": 8}})
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app_from_config(scfg), name=app, route_prefix="/")
    try:
        syn = {"mode": "llm", "base_url": f"http://127.0.0.1:{port}/v1", "api_key_env": None,
               "candidates_per_sample": 1, "max_tokens": 32, "max_concurrency": 2, "backoff_seconds": 0.1,
               # a random tiny model never writes a valid chain: keep template text for those (marked as such)
               "on_rejected": "template"}
        # the actor pool stays small next to the Serve replica on the 2-CPU test cluster
        summary = build(config(datasets_dir, tmp_path / "tg", synthesis=syn, max_samples=4, worker_cpus=0.25))
    finally:
        serve.delete(app)
        serve.shutdown()
    assert summary["mode"] == "llm" and summary["requests"] >= 4 and summary["completion_tokens"] > 0
    # a request the endpoint refuses (e.g. a prompt over its token limit) leaves that sample for the next run
    assert summary["records"] >= 1 and summary["records"] + summary["left_for_next_run"] == 4
    responses = records(tmp_path / "tg" / "_work" / "responses.jsonl")
    assert {r["model"] for r in responses} == {"tiny"} and len(responses) == summary["records"]
    recs = records(Path(summary["path"]))
    assert all(r["reasoning_source"] in ("llm", "template") for r in recs)

    sft = SFTJobConfig.model_validate({
        "stage": 2, "model_path": str(model),
        "data": {"paths": [summary["path"]], "format": "reasoning", "max_seq_length": 2048},
        "train": {"max_steps": 2, "global_batch_size": 2, "per_device_train_batch_size": 1, "logging_steps": 1,
                  "save_steps": 2, "learning_rate": 1e-3, "warmup_ratio": 0.0},
        "scaling": {"num_workers": 2, "resources_per_worker": {"CPU": 0.5}},
        "run": {"name": "tg_stage2", "storage_path": str(tmp_path / "runs")}})
    result = run_sft(sft)
    assert (result.final_model / "config.json").is_file()
