"""An RL run that did nothing is caught: zero-variance groups, zero rewards, weights equal to the start."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from rl.grpo.check import check_rl_run, step_table


def _model(d, value: float):
    d.mkdir(parents=True, exist_ok=True)
    save_file({"w": torch.full((3, 3), value), "b": torch.zeros(3)}, str(d / "model.safetensors"))
    return d


def _history(rewards, zero_std):
    return [{"step": i + 1, "reward": r, "reward_std": 0.0 if z >= 1 else 0.3, "frac_reward_zero_std": z,
             "kl": 0.01 * i, "completions/mean_length": 20.0} for i, (r, z) in enumerate(zip(rewards, zero_std))]


@pytest.mark.parametrize("rewards, zero_std, final_value, expect", [
    ([0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.25, 0.0], 1.5, []),
    ([0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], 1.0, ["zero reward variance", "equal the start"]),
    ([0.0, 0.0], [0.5, 0.5], 1.2, ["reward was 0"]),
    ([0.4, 0.4], [1.0, 1.0], 1.0, ["zero reward variance", "equal the start"]),
])
def test_check_rl_run(tmp_path, rewards, zero_std, final_value, expect):
    start = _model(tmp_path / "start", 1.0)
    final = _model(tmp_path / "run" / "final_model", final_value)
    (final / "training_state.json").write_text(json.dumps({"log_history": _history(rewards, zero_std) +
                                                           [{"step": 4, "train_loss": 0.1}]}))
    report = check_rl_run(start, final)
    assert len(report["warnings"]) == len(expect)
    for fragment, warning in zip(expect, report["warnings"]):
        assert fragment in warning
    assert report["changed"] == (final_value != 1.0)
    assert report["max_weight_change"] == pytest.approx(abs(final_value - 1.0))
    assert json.loads((final.parent / "rl_check.json").read_text())["warnings"] == report["warnings"]


def test_step_table_keeps_reward_steps_only():
    rows = step_table(_history([0.1, 0.2], [0.0, 0.5]) + [{"step": 2, "loss": 1.0}])
    assert [r["step"] for r in rows] == [1, 2] and rows[1]["completion_length"] == 20.0
