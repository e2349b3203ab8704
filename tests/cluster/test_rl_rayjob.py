"""The RL RayJob is the RL run: its entrypoint and runtime env, exactly as the manifest ships them, submitted to a
local `ray start` head. OpenRLHF's real train_ppo_ray cannot start on this CPU machine (its GPU stack is absent), so
the run fails inside OpenRLHF: the job must read FAILED with OpenRLHF's own error in its log, never SUCCEEDED."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml


REPO = Path(__file__).resolve().parents[2]
FIX = REPO / "tests" / "rl" / "fixtures"
pytestmark = pytest.mark.slow


def test_rl_rayjob_reads_failed_when_openrlhf_fails(head, tmp_path):
    from training.tiny_model import build_tiny_model

    spec = yaml.safe_load((REPO / "cluster" / "kuberay" / "rayjob-train-rl.yaml").read_text())["spec"]
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    runtime_env.update(working_dir=str(REPO),
                       excludes=yaml.safe_load((REPO / "cluster/runtime_env/default.yaml").read_text())["excludes"])
    model = build_tiny_model(tmp_path / "stage2")
    entrypoint = shlex.join([*shlex.split(spec["entrypoint"]), f"model_path={model}",
                             f"data.sources=[{{kind: medcalc, path: {FIX / 'medcalc_bench.csv'}}}]",
                             f"data.prompts_path={tmp_path / 'rl' / 'prompts.jsonl'}",
                             f"run.storage_path={tmp_path / 'runs'}"])
    client = head.client()
    job = client.submit_job(entrypoint=entrypoint, runtime_env=runtime_env, submission_id="rl-rayjob-1")
    status = head.wait(job, timeout=900)
    logs = client.get_job_logs(job)
    assert status == "FAILED", logs[-3000:]
    assert "RL run failed: OpenRLHF exited with status" in logs, logs[-3000:]
    assert "openrlhf.cli.train_ppo_ray" in logs  # OpenRLHF itself ran in the job and failed there
    assert "Failed to merge the Job's runtime env" not in logs
    assert (tmp_path / "rl" / "prompts.fit.jsonl").is_file()  # the run's inputs were prepared before it failed
