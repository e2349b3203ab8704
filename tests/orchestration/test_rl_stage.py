"""The end-to-end job's RL stage: wired after SFT stage 2 under output_dir, validated before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from ray_jobs.config_loader import ConfigError, load_config
from orchestration.chain import run_rl_stage
from orchestration.config import PipelineConfig

DEMO = Path(__file__).resolve().parents[2] / "ray_jobs" / "configs" / "pipeline" / "demo.yaml"


def test_demo_runs_rl_after_stage2(tmp_path):
    cfg = load_config(PipelineConfig, DEMO, [f"output_dir={tmp_path}"])
    rl, s2 = cfg.rl_config(), cfg.stage_config(2)
    assert rl.backend == "trl"
    assert rl.model_path == str(tmp_path / "runs" / s2.run.name / "final_model")  # starts from stage 2
    assert [(s.kind, s.path) for s in rl.data.sources] == [("ehr_ins", str(cfg.ehr_ins_jsonl))]
    assert rl.run.storage_path == str(tmp_path / "runs") and rl.run.mlflow_tracking_uri == str(tmp_path / "mlruns")
    assert 0 < rl.grpo.max_steps <= 20  # a few steps in the demo


def test_rl_stage_is_optional(tmp_path):
    cfg = load_config(PipelineConfig, DEMO, [f"output_dir={tmp_path}", "rl=null"])
    assert cfg.rl_config() is None and run_rl_stage(cfg) is None


@pytest.mark.parametrize("override, fragment", [
    ("rl.grpo.num_generations=1", "rl.grpo.num_generations"),
    ("rl.reward={nope: 1.0}", "reward.nope: unknown reward"),
    ("rl.grpo={num_generations: 3, prompts_per_step: 3}", "multiple of scaling.num_workers"),
])
def test_bad_rl_settings_fail_before_any_work(tmp_path, override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(PipelineConfig, DEMO, [f"output_dir={tmp_path}", override])
    assert not any(tmp_path.iterdir())


def test_finished_rl_stage_is_skipped(tmp_path):
    cfg = load_config(PipelineConfig, DEMO, [f"output_dir={tmp_path}"])
    final = tmp_path / "runs" / "demo_rl" / "final_model"
    final.mkdir(parents=True)
    (final / "config.json").write_text("{}")
    assert run_rl_stage(cfg) == final
