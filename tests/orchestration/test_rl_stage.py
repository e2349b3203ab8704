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


def _finished_rl_run(cfg):
    """A stage-2 model and an RL run directory marked finished for ``cfg``'s RL config and that model."""
    from jobkit.stage_state import begin_stage, finish_stage
    from rl.grpo.run import rl_stage_key, run_dir_of
    from training.tiny_model import build_tiny_model

    rl = cfg.rl_config()
    build_tiny_model(rl.model_path)
    run = run_dir_of(rl)
    assert begin_stage(run, rl_stage_key(rl, Path(rl.model_path).resolve())) == "fresh"
    (run / "final_model").mkdir()
    (run / "final_model" / "config.json").write_text("{}")
    finish_stage(run)
    return run / "final_model"


def test_finished_rl_stage_is_skipped_only_for_the_same_config(tmp_path):
    from jobkit.stage_state import StageChanged

    cfg = load_config(PipelineConfig, DEMO, [f"output_dir={tmp_path}"])
    final = _finished_rl_run(cfg)
    assert run_rl_stage(cfg) == final
    changed = load_config(PipelineConfig, DEMO, [f"output_dir={tmp_path}", "rl.grpo.learning_rate=0.5",
                                                 "rl.run.on_change=refuse"])
    with pytest.raises(StageChanged, match="config.grpo.learning_rate"):
        run_rl_stage(changed)
