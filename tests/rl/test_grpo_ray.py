"""Slow: GRPO with TRL under Ray Train (2 CPU workers) from a stage-2 SFT checkpoint of the tiny model.

One stage-2 SFT run (a few steps) makes the checkpoint; GRPO then runs a few steps, stops, and a second submission
with the same run name resumes from its checkpoint. Asserts the per-step reward logs change over steps and every
required metric (reward mean, per-component means, completion length, KL, clip ratio) is logged to Ray and MLflow.
"""

from __future__ import annotations

import json

import pytest

from rl.config import RLJobConfig
from training.toy_data import write_toy_data

pytestmark = pytest.mark.slow
REQUIRED = ("reward", "rewards/task/mean", "rewards/ehr_format/mean", "completions/mean_length", "kl",
            "clip_ratio/region_mean")


@pytest.fixture(scope="module")
def stage2(ray_session, tmp_path_factory):
    from training.config import SFTJobConfig
    from training.sft import run_sft
    from training.tiny_model import build_tiny_model

    tmp = tmp_path_factory.mktemp("rl")
    base = build_tiny_model(tmp / "tiny")  # stands in for the stage-1 model: stage 2 is what RL starts from
    reasoning = write_toy_data(tmp / "reasoning.jsonl", n=32, reasoning=True, seed=3)
    plain = write_toy_data(tmp / "plain.jsonl", n=32, seed=4)
    cfg = SFTJobConfig.model_validate({
        "stage": 2, "model_path": str(base), "data": {"paths": [str(reasoning), str(plain)], "format": "reasoning",
                                                      "max_seq_length": 512},
        "train": {"learning_rate": 3e-3, "max_steps": 6, "global_batch_size": 4, "per_device_train_batch_size": 2,
                  "logging_steps": 2, "save_steps": 6, "warmup_ratio": 0.0},
        "scaling": {"num_workers": 2}, "run": {"name": "stage2", "storage_path": str(tmp / "runs")}})
    return tmp, run_sft(cfg).final_model, plain


def _rl_cfg(tmp, model, prompts, max_steps):
    return RLJobConfig.model_validate({
        "model_path": str(model),
        "data": {"sources": [{"kind": "ehr_ins", "path": str(prompts), "max_samples": 16}]},
        "reward": {"task": 1.0, "ehr_format": 0.5},
        "grpo": {"num_generations": 4, "prompts_per_step": 2, "max_prompt_length": 768, "max_completion_length": 24,
                 "learning_rate": 5e-3, "warmup_ratio": 0.0, "max_steps": max_steps, "logging_steps": 1,
                 "save_steps": 2, "kl_coef": 0.05, "temperature": 1.0},
        "scaling": {"num_workers": 2},
        "run": {"name": "grpo", "storage_path": str(tmp / "runs"), "mlflow_tracking_uri": str(tmp / "mlruns")}})


@pytest.fixture(scope="module")
def grpo(stage2):
    from rl.grpo.run import run_grpo

    tmp, model, prompts = stage2
    first = run_grpo(_rl_cfg(tmp, model, prompts, max_steps=2))
    first_history = _history(first)  # the second run writes the same final_model directory
    second = run_grpo(_rl_cfg(tmp, model, prompts, max_steps=4))  # same run name: resumes at step 2
    return tmp, first_history, second


def _history(result):
    return json.loads((result.final_model / "training_state.json").read_text())["log_history"]


def test_reward_logs_change_over_steps_and_every_metric_is_logged(grpo):
    _, _, second = grpo
    first_steps = [h for h in grpo[1] if "reward" in h]
    assert [h["step"] for h in first_steps] == [1, 2]
    every = [h for h in _history(second) if "reward" in h]  # the resumed run carries steps 1-2 from its checkpoint
    assert [h["step"] for h in every] == [1, 2, 3, 4]
    assert every[:2] == first_steps
    for h in every:
        assert all(k in h for k in REQUIRED), sorted(h)
    rewards = [h["reward"] for h in every]
    assert len(set(rewards)) > 1, f"the reward log did not change over steps: {rewards}"
    assert any(h["kl"] > 0 for h in every[1:])  # the policy moved away from the stage-2 reference
    assert second.metrics["step"] == 4 and "rewards/task/mean" in second.metrics  # reported to Ray


def test_resumed_from_the_checkpoint_not_from_zero(grpo):
    tmp, first, second = grpo
    attempts = [json.loads(x)["start_step"] for x in (second.run_dir / "attempts.jsonl").read_text().splitlines()]
    assert attempts == [0, 2]
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(second.final_model).num_parameters() > 0


def test_metrics_in_mlflow(grpo, monkeypatch):
    tmp, _, _ = grpo
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=(tmp / "mlruns").as_uri())
    exp = client.get_experiment_by_name("ehr-r1-rl-grpo")
    runs = client.search_runs([exp.experiment_id])
    keys = set().union(*(r.data.metrics for r in runs))
    assert {"reward", "rewards/task/mean", "kl", "completions/mean_length"} <= keys, sorted(keys)


def test_prompts_selected_by_pass_rate_and_rechecked_after_training(stage2):
    from rl.grpo.run import prepare_prompts, run_grpo

    tmp, model, prompts = stage2
    raw = _rl_cfg(tmp, model, prompts, max_steps=2).model_dump()
    raw["data"]["select_by_pass_rate"] = {"keep": 4, "samples": 2, "recheck_samples": 2}
    raw["run"].update(name="grpo_selected", mlflow_tracking_uri=None)
    cfg = RLJobConfig.model_validate(raw)
    result = run_grpo(cfg)
    selected = result.run_dir / "prompts.selected.jsonl"
    stats = json.loads(selected.with_suffix(".stats.json").read_text())
    kept = selected.read_text().splitlines()
    assert stats["candidates"] == 16 and stats["kept"] == len(kept) and 2 <= len(kept) <= 4
    assert stats["mixed"] + stats["always_zero"] + stats["always_max"] == 16
    assert set(stats["rates"]) == {json.loads(x)["id"] for x in kept}
    check = json.loads((result.run_dir / "rl_check.json").read_text())
    recheck = check["recheck"]
    assert recheck["prompts"] == len(kept) and recheck["samples"] == 2
    assert 0.0 <= recheck["pass_rate_start"] <= 1.5 and 0.0 <= recheck["pass_rate_final"] <= 1.5
    assert (result.run_dir / "rl_steps.png").is_file() and check["plot"]
    mtime = selected.stat().st_mtime_ns
    assert prepare_prompts(cfg, model)[0] == selected and selected.stat().st_mtime_ns == mtime  # reused, not redrawn
