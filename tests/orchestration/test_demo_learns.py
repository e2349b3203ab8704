"""The demo's model learns, and its RL stage changes it: the whole main job at demo scale, fixed seeds.

A run that learns nothing fails here (not only in a reader's eyes): stage 1 and stage 2 must beat the untrained
model on the decision tasks with a paired patient-level interval above zero, and the RL run must have had reward
variance, moved the weights away from stage 2's and raised the mean reward on its own prompts (the stage-2 model
and the RL policy sampled again on the same prompts after training, ``rl_check.json``'s recheck). The comparison
judges its targets (evaluation.targets) and says which are not met.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobkit.config import load_config
from orchestration.config import PipelineConfig

pytestmark = pytest.mark.slow

DEMO = Path(__file__).resolve().parents[2] / "ray_jobs" / "configs" / "pipeline" / "demo.yaml"


def test_the_demo_model_beats_the_untrained_model_and_rl_changes_it(tmp_path, ray_session):
    from orchestration.chain import run_pipeline

    cfg = load_config(PipelineConfig, DEMO, [f"output_dir={tmp_path}", "evaluation.scoring.n_bootstrap=200"])
    result = run_pipeline(cfg)
    comparison = json.loads((result.comparison.parent / "comparison.json").read_text())
    differences = comparison["differences"]
    for stage in ("stage1", "stage2"):
        d = differences[f"{stage} - untrained"]["overall"]["decision"]
        assert d["diff_lo"] > 0, f"{stage} does not beat the untrained model on decision F1: {d}"
    check = json.loads((result.rl_model.parent / "rl_check.json").read_text())
    assert check["changed"] and not check["warnings"], check
    assert any(s["frac_reward_zero_std"] < 1.0 for s in check["steps"]) and any(s["reward"] > 0 for s in
                                                                                check["steps"])
    recheck = check["recheck"]
    assert recheck["pass_rate_final"] > recheck["pass_rate_start"], f"RL did not raise its mean reward: {recheck}"
    assert not check["notes"] and (result.rl_model.parent / "rl_steps.png").is_file()
    assert comparison["targets"] and all(t["met"] in (True, False) for t in comparison["targets"])
    summary = (tmp_path / "evaluation" / "comparison.md").read_text()
    assert "baseline_count_lr" in summary and "rl − stage2" in summary and "## Targets" in summary
