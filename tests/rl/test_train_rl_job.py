"""ray_jobs.train_rl: --backend switch, the OpenRLHF dry run and submission (Ray Jobs SDK stand-in)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from ray_jobs import train_rl

REPO = Path(__file__).resolve().parents[2]
FIX = Path(__file__).parent / "fixtures"
CONFIG = REPO / "ray_jobs" / "configs" / "train_rl" / "ehr_r1_qwen3_8b.yaml"


def _overrides(tmp_path):
    return [f"data.sources=[{{kind: medcalc, path: {FIX / 'medcalc_bench.csv'}}}]",
            f"data.prompts_path={tmp_path / 'prompts.jsonl'}", f"run.storage_path={tmp_path / 'runs'}"]


def test_split_flags():
    assert train_rl._split_flags(["--config", "x.yaml", "--backend", "trl", "a=1", "--dry-run"]) == (
        ["--config", "x.yaml", "a=1"], "trl", True)
    assert train_rl._split_flags(["--backend=openrlhf"]) == ([], "openrlhf", False)


def test_openrlhf_dry_run_prints_a_checked_command(tmp_path, capsys):
    train_rl.main(["--config", str(CONFIG), "--backend", "openrlhf", "--dry-run", *_overrides(tmp_path)])
    out = capsys.readouterr().out
    entry = shlex.split(out.split("entrypoint: ", 1)[1].splitlines()[0])
    assert entry[:3] == ["python3", "-m", "openrlhf.cli.train_ppo_ray"]
    assert entry[entry.index("--data.prompt_dataset") + 1] == str(tmp_path / "prompts.jsonl")
    assert (tmp_path / "prompts.jsonl").is_file()  # exported before submission


def test_submit_uses_the_jobs_sdk(tmp_path, monkeypatch):
    calls = {}

    class FakeClient:
        def __init__(self, address):
            calls["address"] = address

        def submit_job(self, **kwargs):
            calls.update(kwargs)
            return "raysubmit_test"

    import ray.job_submission

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", FakeClient)
    from ray_jobs.config_loader import load_config
    from rl.config import RLJobConfig
    from rl.openrlhf.submit import submit

    cfg = load_config(RLJobConfig, CONFIG, [*_overrides(tmp_path), "openrlhf.address=http://head:8265"])
    assert submit(cfg) == "raysubmit_test"
    assert calls["address"] == "http://head:8265"
    assert calls["entrypoint"].startswith("python3 -m openrlhf.cli.train_ppo_ray ")
    env = calls["runtime_env"]
    assert env["working_dir"] == str(REPO) and json.loads(env["env_vars"]["EHR_RL_REWARD_SPEC"]) == cfg.reward
    assert env["env_vars"]["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"] == "1"
    from ray.runtime_env import RuntimeEnv

    assert not set(env) - RuntimeEnv.known_fields
    RuntimeEnv(**env)  # Ray's own validation: field types, string env vars


def test_submit_without_address_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    from ray_jobs.config_loader import load_config
    from rl.config import RLJobConfig
    from rl.openrlhf.submit import submit

    with pytest.raises(ValueError, match="openrlhf.address"):
        submit(load_config(RLJobConfig, CONFIG, _overrides(tmp_path)))


def test_invalid_config_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        train_rl.main(["--config", str(CONFIG), "grpo.num_generations=1"])
    assert exc.value.code == 2 and "grpo.num_generations" in capsys.readouterr().err


@pytest.mark.parametrize("config", sorted((REPO / "ray_jobs" / "configs" / "train_rl").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_every_preset_validates_with_its_own_backend(config):
    from ray_jobs.config_loader import load_config
    from rl.config import RLJobConfig

    cfg = load_config(RLJobConfig, config)
    if cfg.trl.use_vllm:  # the one-GPU TRL preset generates with vLLM on its GPU
        assert cfg.scaling.use_gpu and cfg.scaling.num_workers == 1 or cfg.backend == "openrlhf"
    if cfg.backend == "trl" and not cfg.scaling.use_gpu:
        assert cfg.grpo.max_prompt_length + cfg.grpo.max_completion_length <= 2048  # the tiny model's context
