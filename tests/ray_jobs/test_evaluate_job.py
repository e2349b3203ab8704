"""ray_jobs.evaluate: every shipped config validates; the job evaluates the tiny model on a made-up EHR-Bench, writes
the report (markdown + self-contained HTML with embedded plots), logs to MLflow, compares runs and resumes."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from evaluation.config import EvaluateConfig
from ray_jobs.config_loader import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "ray_jobs" / "configs" / "evaluate").glob("*.yaml"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_validate(path):
    cfg = load_config(EvaluateConfig, path)
    assert cfg.benchmark.paths


@pytest.mark.slow
def test_job_writes_report_logs_mlflow_compares_and_resumes(ray_session, tmp_path, capsys):
    from ehr_bench_fixture import write_ehr_bench

    from ray_jobs import evaluate as job
    from training.tiny_model import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny")
    bench = write_ehr_bench(tmp_path / "bench" / "ehr_bench.jsonl", per_task=4)
    base = ["--config", str(CONFIGS[[p.stem for p in CONFIGS].index("demo")]), f"output_dir={tmp_path / 'eval'}",
            f"model.path={model}", f"benchmark.paths=[{bench}]", f"mlflow_tracking_uri={tmp_path / 'mlruns'}",
            f"decoding.training_data=[{bench}]", "backend.max_new_tokens=8", "scoring.n_bootstrap=30",
            "progress=false"]
    job.main(base + ["run_name=a"])
    run = tmp_path / "eval" / "a"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["run"]["scored"] == 16 and set(metrics["metrics"]["overall"]) == {"decision", "risk"}
    page = (run / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 2  # per-task bars + ROC curves, embedded
    assert not re.search(r"""(src|href)=['"]https?://""", page)  # self-contained
    md = (run / "report.md").read_text()
    assert "Inpatient_Mortality" in md and "AUROC" in md and str(model) in md
    assert "report:" in capsys.readouterr().out

    import mlflow

    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    runs = mlflow.search_runs(experiment_names=["ehr-r1-evaluation"])
    assert len(runs) == 1 and runs["metrics.overall/risk/auroc"].notna().all()

    # a second run compares itself with the first; a re-run of the first predicts nothing again
    job.main(base + ["run_name=b", "prompting.mode=baseline", f"compare_with=[{run}]"])
    comparison = (tmp_path / "eval" / "b" / "comparison.md").read_text()
    assert "| metric | a | b |" in comparison and "Inpatient_Mortality" in comparison
    assert "b − a" in comparison and "## Verdict" in comparison  # the paired difference, in words too
    assert (tmp_path / "eval" / "b" / "comparison.json").is_file()
    parts = sorted((run / "predictions").glob("part-*.parquet"))
    job.main(base + ["run_name=a"])
    assert sorted((run / "predictions").glob("part-*.parquet")) == parts
    # a different model in the same run folder is refused instead of mixing predictions
    with pytest.raises(ValueError, match="different model"):
        job.main(base + ["run_name=a", "model.name=other"])
