"""The main job: every stage's config is wired under output_dir and validated before any work; a small run works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ray_jobs.config_loader import ConfigError, load_config
from orchestration.config import PipelineConfig

DEMO = Path(__file__).resolve().parents[2] / "ray_jobs" / "configs" / "pipeline" / "demo.yaml"


def test_demo_config_wires_stages_under_output_dir(tmp_path):
    cfg = load_config(PipelineConfig, DEMO, [f"output_dir={tmp_path}"])
    s1, s2 = cfg.stage_config(1), cfg.stage_config(2)
    assert cfg.datasets_config().output_dir == str(tmp_path / "datasets")
    assert s1.data.paths == [str(tmp_path / "datasets" / "ehr_ins" / "ehr_ins.jsonl")]
    assert s1.tiny_model.output_dir == str(tmp_path / "tiny_model")
    assert s2.model_path == str(tmp_path / "runs" / s1.run.name / "final_model")
    assert s2.data.paths[0].endswith("ehr_ins_reasoning.jsonl") and s2.data.format == "reasoning"
    assert {s1.run.storage_path, s2.run.storage_path} == {str(tmp_path / "runs")}
    assert s1.run.mlflow_tracking_uri == str(tmp_path / "mlruns")
    ev = cfg.evaluation_config()
    # the chain's last model is evaluated: RL's when the RL stage is on, else stage 2's
    assert ev.model.path == str(tmp_path / "runs" / cfg.rl_config().run.name / "final_model")
    assert load_config(PipelineConfig, DEMO, [f"output_dir={tmp_path}", "rl=null"]).evaluation_config().model.path \
        == str(tmp_path / "runs" / s2.run.name / "final_model")
    assert ev.benchmark.paths == [str(tmp_path / "datasets" / "ehr_bench" / "ehr_bench.jsonl")]
    assert ev.output_dir == str(tmp_path / "evaluation") and ev.mlflow_tracking_uri == str(tmp_path / "mlruns")


@pytest.mark.parametrize("override, fragment", [
    ("stage2.run.name=demo_stage1", "stage2.run.name: must differ"),
    ("stage1.train.global_batch_size=3", "stage1"),
    ("stage1.bogus=1", "stage1.bogus"),
    ("datasets.test_ratio=2", "datasets.test_ratio"),
    ("reasoning.max_samples=0", "reasoning.max_samples"),
    ("evaluation.backend.kind=teleport", "evaluation.backend.kind"),
    ("datasets.presets=[ehr_ins]", "evaluation: needs the ehr_bench dataset"),
    ("stage2.data.max_seq_length=1024", "stage2.data.max_seq_length: 1024 > the tiny model's context"),
])
def test_invalid_stage_settings_fail_before_any_work(tmp_path, override, fragment):
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        load_config(PipelineConfig, DEMO, [f"output_dir={tmp_path}", override])
    assert not any(tmp_path.iterdir()), "validation must not create outputs"


def test_every_stage_resolved_config_is_written_to_the_run_directory(tmp_path):
    from orchestration.chain import write_resolved_configs

    cfg = load_config(PipelineConfig, DEMO, [f"output_dir={tmp_path}"])
    folder = write_resolved_configs(cfg)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{name}.yaml" for name in ["pipeline", "datasets", "thinking_graph", "sft_stage1", "sft_stage2", "rl",
                                    "evaluation", "evaluation_untrained", "evaluation_stage1", "evaluation_stage2",
                                    "evaluation_baseline_prior", "evaluation_baseline_count_lr"])
    import yaml

    stage2 = yaml.safe_load((folder / "sft_stage2.yaml").read_text())
    assert stage2["model_path"] == str(tmp_path / "runs" / "demo_stage1" / "final_model")
    evaluation = yaml.safe_load((folder / "evaluation.yaml").read_text())
    assert evaluation["model"]["path"] == str(tmp_path / "runs" / "demo_rl" / "final_model")
    untrained = yaml.safe_load((folder / "evaluation_untrained.yaml").read_text())
    assert untrained["model"]["path"] == str(tmp_path / "tiny_model")  # stage 1's starting point
    baseline = yaml.safe_load((folder / "evaluation_baseline_count_lr.yaml").read_text())
    assert baseline["backend"]["baseline"]["training_data"] == [str(tmp_path / "datasets" / "ehr_ins" /
                                                                    "ehr_ins.jsonl")]
    # every run scores the same samples: one benchmark selection
    assert {yaml.safe_load(p.read_text())["benchmark"]["seed"] for p in folder.glob("evaluation*.yaml")} == {0}


def test_the_chain_compares_every_stage_with_the_untrained_model_and_the_baselines(tmp_path):
    cfg = load_config(PipelineConfig, DEMO, [f"output_dir={tmp_path}"])
    assert list(cfg.evaluation_configs()) == ["untrained", "stage1", "stage2", "rl", "baseline_prior",
                                              "baseline_count_lr"]
    assert cfg.comparison_pairs() == [("untrained", "stage1"), ("stage1", "stage2"), ("stage2", "rl"),
                                      ("untrained", "stage2"), ("untrained", "rl"), ("baseline_prior", "rl"),
                                      ("baseline_count_lr", "rl")]
    last = load_config(PipelineConfig, DEMO, [f"output_dir={tmp_path}", "rl=null", "compare.stages=false",
                                              "compare.baselines=[]"])
    assert list(last.evaluation_configs()) == ["untrained", "stage2"]
    assert last.comparison_pairs() == [("untrained", "stage2")]
    ev = cfg.evaluation_config()
    assert ev.decoding.budget == "from_training" and ev.decoding.training_data == [str(cfg.ehr_ins_jsonl)]


def test_summary_names_the_report_metrics_dashboard_and_how_to_serve(tmp_path):
    from orchestration.chain import PipelineResult
    from orchestration.summary import describe

    cfg = load_config(PipelineConfig, DEMO, [f"output_dir={tmp_path}"])
    metrics = {"overall": {"risk": {"auroc": 0.61, "auroc_lo": 0.5, "auroc_hi": 0.7, "tasks": 18.0, "n": 72.0},
                           "decision": {"f1": 0.25, "f1_lo": 0.2, "f1_hi": 0.3, "tasks": 27.0, "n": 108.0}}}
    result = PipelineResult({"ehr_ins": {"samples": 10}}, cfg.reasoning_jsonl, tmp_path / "s1", tmp_path / "s2",
                            tmp_path / "report.html", rl_model=tmp_path / "runs" / "demo_rl" / "final_model",
                            metrics=metrics, dashboard_url="http://127.0.0.1:8265")
    text = describe(cfg, result)
    assert "0.61" in text and "0.25" in text  # the evaluation summary
    assert str(tmp_path / "report.html") in text and "http://127.0.0.1:8265" in text
    assert f"model.path={result.rl_model}" in text  # serves the chain's last model
    assert "curl http://127.0.0.1:8000/v1/ehr/predict" in text and "from openai import OpenAI" in text


@pytest.mark.slow
def test_small_pipeline_end_to_end(tmp_path, ray_session):
    from orchestration.chain import run_pipeline
    from orchestration.summary import describe

    overrides = [f"output_dir={tmp_path}", "datasets.timelines.synthetic.num_patients=40",
                 "evaluation.benchmark.max_samples_per_task=2", "reasoning.max_samples=32",
                 "stage1.data.max_samples=48", "stage1.data.max_seq_length=256", "stage1.train.num_train_epochs=1",
                 "stage2.data.max_samples=32", "stage2.data.max_seq_length=256", "stage2.train.num_train_epochs=1"]
    cfg = load_config(PipelineConfig, DEMO, overrides)
    result = run_pipeline(cfg)
    assert result.datasets["ehr_ins"]["samples"] > 0
    first = json.loads(cfg.reasoning_jsonl.read_text().splitlines()[0])
    assert first["reasoning"].startswith("## Extraction") and "## Final Results" in first["reasoning"]

    from transformers import AutoModelForCausalLM

    for model_dir in (result.stage1_model, result.stage2_model):
        assert AutoModelForCausalLM.from_pretrained(model_dir).num_parameters() > 0
    text = describe(cfg, result)
    assert str(result.stage2_model) in text and "ray_jobs.serve" in text
    # the stage-2 model was evaluated on the synthetic EHR-Bench and the report written
    assert result.report.is_file() and str(result.report) in text
    metrics = json.loads((result.report.parent / "metrics.json").read_text())
    # the RL stage ran a few GRPO steps from the stage-2 model, and its model was the one evaluated
    rl_log = json.loads((result.rl_model / "training_state.json").read_text())["log_history"]
    assert [h["step"] for h in rl_log if "reward" in h] == list(range(1, cfg.rl_config().grpo.max_steps + 1))
    assert metrics["run"]["model"] == str(result.rl_model) and metrics["run"]["scored"] > 0
    assert result.metrics["overall"] and (tmp_path / "run_configs" / "evaluation.yaml").is_file()
    # every model and baseline scored the same samples; none was refused for length; the summary prints the table
    import pandas as pd

    ids = {name: set(pd.read_parquet(tmp_path / "evaluation" / name / "scores.parquet")["sample_id"])
           for name in cfg.evaluation_configs()}
    assert len({frozenset(v) for v in ids.values()}) == 1 and all(ids.values())
    for name in ("untrained", "stage1", "stage2", "rl"):
        scores = pd.read_parquet(tmp_path / "evaluation" / name / "scores.parquet")
        assert (scores["outcome"] != "refused").all() and (scores["prompt_tokens"] + scores["max_new_tokens"]
                                                            <= 2048).all()
    assert result.comparison.is_file() and "baseline_count_lr" in text and "Paired differences" in \
        result.comparison.read_text()

    # A job stopped after stage 2 (RL and evaluation outputs gone) resumes from there: the finished stages are
    # skipped with byte-identical outputs, the missing ones run again.
    import hashlib
    import shutil

    def fingerprints():
        files = [*(tmp_path / "datasets").rglob("*.jsonl"), cfg.reasoning_jsonl,
                 *result.stage1_model.glob("*.safetensors"), *result.stage2_model.glob("*.safetensors")]
        return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in files}

    before = fingerprints()
    shutil.rmtree(result.rl_model.parent)
    shutil.rmtree(result.report.parent)
    again = run_pipeline(cfg)
    assert fingerprints() == before
    assert again.stage2_model == result.stage2_model and again.rl_model == result.rl_model
    assert again.report.is_file() and (again.rl_model / "config.json").is_file()
