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


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    from training.tiny_model import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("rl-job") / "tiny"))


def _cfg(tmp_path, tiny, *extra):
    from ray_jobs.config_loader import load_config
    from rl.config import RLJobConfig

    return load_config(RLJobConfig, CONFIG, [*_overrides(tmp_path), f"model_path={tiny}", *extra])


def test_openrlhf_dry_run_prints_a_checked_command_and_writes_nothing(tmp_path, capsys):
    # the model and the prompt inputs need not exist: a dry run only prints what would run
    train_rl.main(["--config", str(CONFIG), "--backend", "openrlhf", "--dry-run", *_overrides(tmp_path),
                   f"data.sources=[{{kind: medcalc, path: {tmp_path / 'missing.csv'}}}]"])
    out = capsys.readouterr().out
    entry = shlex.split(out.split("entrypoint: ", 1)[1].splitlines()[0])
    assert entry[:3] == ["python3", "-m", "openrlhf.cli.train_ppo_ray"]
    assert entry[entry.index("--data.prompt_dataset") + 1] == str(tmp_path / "prompts.fit.jsonl")
    assert entry[entry.index("--reward.remote_url") + 1].endswith("/reward_func.py")
    assert "launch: in_job" in out
    assert list(tmp_path.iterdir()) == []


class FakeJobs:
    """The Ray Jobs SDK client, ending the submitted job with ``final`` after one RUNNING poll."""

    def __init__(self, final: str, on_submit=None):
        self.final, self.on_submit, self.calls, self.polls = final, on_submit, {}, 0

    def __call__(self, address):
        self.calls["address"] = address
        return self

    def submit_job(self, **kwargs):
        self.calls.update(kwargs)
        if self.on_submit:
            self.on_submit()
        return "raysubmit_test"

    async def tail_job_logs(self, job_id):
        yield "step 1\n"

    def get_job_status(self, job_id):
        self.polls += 1
        return "RUNNING" if self.polls == 1 else f"JobStatus.{self.final}"

    def get_job_logs(self, job_id):
        return "".join(f"line {i}\n" for i in range(100)) + "Traceback: CUDA out of memory\n"


def _fake_jobs(monkeypatch, fake):
    import ray.job_submission

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", fake)


def test_submit_follows_the_job_and_returns_its_final_model(tmp_path, tiny, monkeypatch):
    from rl.openrlhf.submit import submit

    cfg = _cfg(tmp_path, tiny, "openrlhf.launch=submit", "openrlhf.address=http://head:8265")
    final = tmp_path / "runs" / cfg.run.name / "final_model"
    fake = FakeJobs("SUCCEEDED", on_submit=lambda: (final.mkdir(parents=True), (final / "config.json").write_text("{}")))
    _fake_jobs(monkeypatch, fake)
    assert submit(cfg, poll_s=0) == final
    calls = fake.calls
    assert calls["address"] == "http://head:8265"
    assert calls["entrypoint"].startswith("python3 -m openrlhf.cli.train_ppo_ray ")
    env = calls["runtime_env"]
    assert env["working_dir"] == str(REPO) and "EHR_RL_REWARD_SPEC" not in env["env_vars"]
    assert env["env_vars"]["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"] == "1"
    from ray.runtime_env import RuntimeEnv

    assert not set(env) - RuntimeEnv.known_fields
    RuntimeEnv(**env)  # Ray's own validation: field types, string env vars
    # the run's own reward hook carries the weights; the prompts were fitted to the actor
    hook = Path(shlex.split(calls["entrypoint"])[shlex.split(calls["entrypoint"]).index("--reward.remote_url") + 1])
    assert json.dumps(cfg.reward) in hook.read_text()
    assert (tmp_path / "prompts.fit.jsonl").is_file()


@pytest.mark.parametrize("final", ["FAILED", "STOPPED"])
def test_a_failed_submitted_run_exits_non_zero_with_its_last_log_lines(tmp_path, tiny, monkeypatch, final, capsys):
    _fake_jobs(monkeypatch, FakeJobs(final))
    with pytest.raises(SystemExit) as exc:
        train_rl.main(["--config", str(CONFIG), "--backend", "openrlhf", *_overrides(tmp_path), f"model_path={tiny}",
                       "openrlhf.launch=submit", "openrlhf.address=http://head:8265"])
    message = str(exc.value.code)
    assert f"ended {final}" in message and "CUDA out of memory" in message and "line 99" in message
    assert "line 10\n" not in message  # only the tail


def test_a_succeeded_run_without_a_final_model_is_a_failure(tmp_path, tiny, monkeypatch):
    from rl.openrlhf.submit import RLRunFailed, submit

    _fake_jobs(monkeypatch, FakeJobs("SUCCEEDED"))
    with pytest.raises(RLRunFailed, match="without a final model"):
        submit(_cfg(tmp_path, tiny, "openrlhf.launch=submit", "openrlhf.address=http://head:8265"), poll_s=0)


def test_submit_never_takes_the_gcs_address_for_the_dashboard(tmp_path, tiny, monkeypatch):
    # inside a job driver RAY_ADDRESS is the GCS (<ip>:6379), which takes no job submissions
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    from rl.openrlhf.submit import submit

    with pytest.raises(ValueError, match="openrlhf.address"):
        submit(_cfg(tmp_path, tiny, "openrlhf.launch=submit"))
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265")
    fake = FakeJobs("FAILED")
    _fake_jobs(monkeypatch, fake)
    from rl.openrlhf.submit import RLRunFailed

    with pytest.raises(RLRunFailed):
        submit(_cfg(tmp_path, tiny, "openrlhf.launch=submit"), poll_s=0)
    assert fake.calls["address"] == "http://head:8265"


def test_in_job_runs_openrlhf_here_and_exits_with_its_status(tmp_path, tiny, monkeypatch):
    import subprocess

    from rl.openrlhf import submit as launch

    cfg = _cfg(tmp_path, tiny)
    ran = []

    def fake_run(command, cwd, check):
        ran.append(command)
        return subprocess.CompletedProcess(command, 3)

    monkeypatch.setattr(launch.subprocess, "run", fake_run)
    with pytest.raises(launch.RLRunFailed, match="status 3"):
        launch.run_in_job(cfg)
    assert ran[0][1:3] == ["-m", "openrlhf.cli.train_ppo_ray"] and ran[0][0].endswith("python")
    final = tmp_path / "runs" / cfg.run.name / "final_model"
    monkeypatch.setattr(launch.subprocess, "run", lambda c, cwd, check: subprocess.CompletedProcess(c, 0))
    with pytest.raises(launch.RLRunFailed, match="without a final model"):
        launch.run_in_job(cfg)
    final.mkdir(parents=True)
    (final / "config.json").write_text("{}")
    assert launch.run_in_job(cfg) == final


def test_in_job_refuses_a_job_env_that_openrlhf_cannot_merge(tmp_path, tiny, monkeypatch):
    from rl.openrlhf import submit as launch
    from rl.openrlhf.runtime_env import RuntimeEnvConflict

    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps(
        {"runtime_env": {"env_vars": {"NCCL_DEBUG": "INFO", "HF_HOME": "/x"}}, "metadata": {}}))
    monkeypatch.setattr(launch.subprocess, "run", lambda *a, **k: pytest.fail("OpenRLHF must not start"))
    with pytest.raises(RuntimeEnvConflict, match="NCCL_DEBUG"):
        launch.run_in_job(_cfg(tmp_path, tiny))


def test_in_job_on_this_machine_fails_with_openrlhfs_own_error(tmp_path, tiny):
    """The real ``python -m openrlhf.cli.train_ppo_ray`` cannot start on a CPU box (its GPU stack is absent): the
    entrypoint must exit non-zero, not report success."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "ray_jobs.train_rl", "--config", str(CONFIG), "--backend", "openrlhf",
                           *_overrides(tmp_path), f"model_path={tiny}"], capture_output=True, text=True, timeout=600,
                          cwd=REPO)
    assert done.returncode != 0
    assert "RL run failed: OpenRLHF exited with status" in done.stderr


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
