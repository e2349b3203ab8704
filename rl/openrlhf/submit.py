"""The OpenRLHF run's inputs (prompts fitted to the actor, the run's reward hook, the checked argv) and its launch.

Both launches run the same command, ``python3 -m openrlhf.cli.train_ppo_ray <argv>``:

- ``openrlhf.launch: in_job`` (the RL RayJob): this process runs it and exits with its status, so the RayJob's
  status, logs and ``final_model`` are the RL run's (:func:`run_in_job`).
- ``openrlhf.launch: submit``: submit it as its own Ray job to the dashboard at ``openrlhf.address`` (working_dir =
  this repository, runtime env ``cluster/runtime_env/openrlhf.yaml``), follow its logs, and raise unless it
  SUCCEEDED (:func:`submit`).

Layout of a run (``{run.storage_path}/{run.name}/``, on storage every node reads)::

    prompts.jsonl, prompts.fit.jsonl   exported, then fitted to grpo.max_prompt_length (as the TRL backend does)
    reward_func.py                     the run's reward hook (its ``reward`` weights)
    checkpoints/, final_model/         written by OpenRLHF
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rl.config import RLJobConfig
from rl.openrlhf.argv import build_command
from rl.openrlhf.runtime_env import check_merge, injected_job_runtime_env, load_runtime_env

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


class RLRunFailed(RuntimeError):
    """The OpenRLHF run ended without producing its final model."""


@dataclass
class Submission:
    submission_id: str | None
    command: list[str]
    runtime_env: dict
    address: str | None
    final_model: Path

    @property
    def entrypoint(self) -> str:
        return shlex.join(self.command)


def write_reward_file(path: Path, spec: dict[str, float]) -> Path:
    """The run's reward hook: :mod:`rl.openrlhf.reward_func` bound to this run's weights (no env var to carry)."""
    text = (f'"""OpenRLHF reward hook of this run (written by rl.openrlhf.submit): the reward weights {spec}."""\n'
            "try:\n    from rl.openrlhf.reward_func import make_reward_func\n"
            "except ImportError:  # a vLLM worker without the project on sys.path: the image's checkout\n"
            "    import sys\n\n"
            f"    sys.path.insert(0, {str(REPO_ROOT)!r})\n"
            "    from rl.openrlhf.reward_func import make_reward_func\n\n"
            f"reward_func = make_reward_func({json.dumps(spec)})\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def submit_address(cfg: RLJobConfig) -> str | None:
    ray_address = os.environ.get("RAY_ADDRESS", "")
    return (cfg.openrlhf.address or os.environ.get("RAY_API_SERVER_ADDRESS")
            or (ray_address if ray_address.startswith(("http://", "https://")) else None))


def prepare_submission(cfg: RLJobConfig, *, write: bool = True, check_with_parser: bool = True) -> Submission:
    """Export and fit the prompts and write the reward hook (unless ``write`` is False: a dry run writes nothing),
    build the argv and check it with OpenRLHF's own parser, assemble the runtime env and check it merges."""
    from rl.grpo.run import prompts_path_of, run_dir_of

    run_dir = run_dir_of(cfg)
    raw = prompts_path_of(cfg)
    fitted = raw.with_name(raw.stem + ".fit.jsonl")
    reward_file = cfg.openrlhf.reward_file or str(run_dir / "reward_func.py")
    if write:
        fit_openrlhf_prompts(cfg, raw, fitted)
        if cfg.openrlhf.reward_file is None:
            write_reward_file(Path(reward_file), cfg.reward)
    command = build_command(cfg, model_path=cfg.model_path, prompts_path=str(fitted), reward_file=reward_file,
                            save_path=str(run_dir / "final_model"), ckpt_path=str(run_dir / "checkpoints"))
    if check_with_parser:
        from rl.openrlhf.cli_check import openrlhf_version, parse_openrlhf_argv

        if openrlhf_version() is None:
            log.warning("openrlhf is not installed here: the argv is checked by the cluster only")
        else:
            parse_openrlhf_argv(command[3:])
    runtime_env: dict = {}
    if cfg.openrlhf.launch == "submit":
        env_path = Path(cfg.openrlhf.runtime_env)
        env_path = env_path if env_path.is_absolute() else REPO_ROOT / env_path
        runtime_env = load_runtime_env(env_path)
        runtime_env.setdefault("working_dir", str(REPO_ROOT))
        check_merge(runtime_env, str(env_path))
    return Submission(submission_id=cfg.openrlhf.submission_id, command=command, runtime_env=runtime_env,
                      address=submit_address(cfg), final_model=run_dir / "final_model")


def fit_openrlhf_prompts(cfg: RLJobConfig, raw: Path, fitted: Path) -> None:
    """The TRL backend's export and fit: OpenRLHF would otherwise cut long prompts from the left, system turn and
    chat-template head included, and score them against a prompt the query no longer starts with."""
    from transformers import AutoTokenizer

    from rl.grpo.data import fit_prompts
    from rl.prompts import export_prompts

    if not (Path(cfg.model_path) / "config.json").is_file():
        raise ValueError(f"model_path: {cfg.model_path} is not an HF checkpoint (no config.json); the prompts are "
                         "fitted with its tokenizer: point it to the stage-2 final_model")
    export_prompts(cfg.data.sources, raw, cfg.data.seed)
    stats = fit_prompts(raw, AutoTokenizer.from_pretrained(cfg.model_path), cfg.grpo.max_prompt_length, fitted)
    log.info("prompts: %d (%d cut to %d tokens, %d dropped) -> %s", stats.prompts, stats.truncated,
             cfg.grpo.max_prompt_length, stats.dropped, fitted)


def _require_final_model(sub: Submission, what: str) -> Path:
    if not (sub.final_model / "config.json").is_file():
        raise RLRunFailed(f"{what} ended without a final model at {sub.final_model} (no config.json); see its log")
    return sub.final_model


def run_in_job(cfg: RLJobConfig) -> Path:
    """Run OpenRLHF in this process's job: its output is this job's log, its exit status this job's status."""
    sub = prepare_submission(cfg)
    job_env = injected_job_runtime_env()
    if job_env is not None:
        check_merge(job_env, "this Ray job's runtime env (the RayJob's runtimeEnvYAML)")
    log.info("running OpenRLHF in this job: %s", sub.entrypoint)
    # OpenRLHF's driver connects to the cluster this job runs on (RAY_ADDRESS, set by the job supervisor).
    command = [sys.executable, *sub.command[1:]]
    code = subprocess.run(command, cwd=REPO_ROOT, check=False).returncode
    if code != 0:
        raise RLRunFailed(f"OpenRLHF exited with status {code} ({' '.join(command[:3])} ...); its log is above")
    return _require_final_model(sub, "OpenRLHF")


def submit(cfg: RLJobConfig, poll_s: float = 5.0, tail_lines: int = 40) -> Path:
    """Submit the run to the dashboard, follow its logs until it ends; the final model, or RLRunFailed."""
    from ray.job_submission import JobSubmissionClient

    sub = prepare_submission(cfg)
    if not sub.address:
        raise ValueError("openrlhf.address: no Ray dashboard to submit to; set it (http://<head>:8265) or "
                         "RAY_API_SERVER_ADDRESS, or use openrlhf.launch: in_job inside the cluster")
    client = JobSubmissionClient(sub.address)
    job_id = client.submit_job(entrypoint=sub.entrypoint, runtime_env=sub.runtime_env,
                               submission_id=sub.submission_id, entrypoint_num_cpus=1,
                               metadata={"job": "ehr-r1-rl-openrlhf", "run": cfg.run.name})
    log.info("submitted %s to %s (ray job logs -f --address %s %s)", job_id, sub.address, sub.address, job_id)
    status = _follow(client, job_id, poll_s)
    if status != "SUCCEEDED":
        tail = "\n".join((client.get_job_logs(job_id) or "").splitlines()[-tail_lines:])
        raise RLRunFailed(f"OpenRLHF job {job_id} ended {status}; its last log lines:\n{tail}")
    return _require_final_model(sub, f"OpenRLHF job {job_id}")


def _follow(client, job_id: str, poll_s: float) -> str:
    """Stream the job's logs, then its terminal status (polled: the log stream can end before the status does)."""
    import asyncio

    async def stream():
        async for lines in client.tail_job_logs(job_id):
            print(lines, end="", flush=True)

    try:
        asyncio.run(stream())
    except Exception as exc:  # noqa: BLE001 - a broken log stream must not hide the job's status
        log.warning("log stream of %s ended: %s; waiting for its status", job_id, exc)
    while True:
        status = str(client.get_job_status(job_id)).rsplit(".", 1)[-1]
        if status in TERMINAL:
            return status
        time.sleep(poll_s)
