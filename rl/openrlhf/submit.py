"""Submit the OpenRLHF run to a GPU Ray cluster with the Ray Jobs SDK (what ``ray job submit`` does).

The job's working_dir is this repository (so ``rl/openrlhf/reward_func.py`` and ``rl.rewards`` reach every vLLM
actor), and its runtime env is ``cluster/runtime_env/openrlhf.yaml``: OpenRLHF's pinned stack (openrlhf 0.11.2,
vllm 0.29.0, transformers 5.15, deepspeed 0.19.6, flash-attn) installed for the job only, beside the cluster's ray.
The prompts are exported on the driver into shared storage first; paths must be visible to every node.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from rl.config import RLJobConfig
from rl.openrlhf.argv import build_command
from rl.openrlhf.reward_func import SPEC_ENV

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Submission:
    submission_id: str | None
    entrypoint: str
    runtime_env: dict
    address: str | None


def prepare_submission(cfg: RLJobConfig, check_with_parser: bool = True) -> Submission:
    """Export the prompts, build and check the argv, assemble the runtime env (no cluster contact)."""
    import shlex

    from rl.grpo.run import prompts_path_of, run_dir_of
    from rl.prompts import export_prompts

    run_dir = run_dir_of(cfg)
    prompts = prompts_path_of(cfg)
    export_prompts(cfg.data.sources, prompts, cfg.data.seed)
    command = build_command(cfg, model_path=cfg.model_path, prompts_path=str(prompts),
                            reward_file=cfg.openrlhf.reward_file, save_path=str(run_dir / "final_model"),
                            ckpt_path=str(run_dir / "checkpoints"))
    if check_with_parser:
        from rl.openrlhf.cli_check import openrlhf_version, parse_openrlhf_argv

        if openrlhf_version() is None:
            log.warning("openrlhf is not installed here: the argv is checked by the cluster only")
        else:
            parse_openrlhf_argv(command[3:])
    env_path = Path(cfg.openrlhf.runtime_env)
    env_path = env_path if env_path.is_absolute() else REPO_ROOT / env_path
    runtime_env = yaml.safe_load(env_path.read_text()) or {}
    runtime_env.setdefault("working_dir", str(REPO_ROOT))
    runtime_env.setdefault("env_vars", {})[SPEC_ENV] = json.dumps(cfg.reward)
    return Submission(submission_id=cfg.openrlhf.submission_id, entrypoint=shlex.join(command),
                      runtime_env=runtime_env,
                      address=cfg.openrlhf.address or os.environ.get("RAY_API_SERVER_ADDRESS")
                      or os.environ.get("RAY_ADDRESS"))


def submit(cfg: RLJobConfig) -> str:
    """Submit to the cluster's job server; returns the submission id (follows the logs with openrlhf.wait)."""
    from ray.job_submission import JobSubmissionClient

    sub = prepare_submission(cfg)
    if not sub.address:
        raise ValueError("openrlhf.address: no Ray cluster to submit to; set it (http://<head>:8265) or "
                         "RAY_API_SERVER_ADDRESS")
    client = JobSubmissionClient(sub.address)
    job_id = client.submit_job(entrypoint=sub.entrypoint, runtime_env=sub.runtime_env,
                               submission_id=sub.submission_id, entrypoint_num_cpus=1,
                               metadata={"job": "ehr-r1-rl-openrlhf", "run": cfg.run.name})
    log.info("submitted %s to %s; follow it with: ray job logs -f --address %s %s", job_id, sub.address,
             sub.address, job_id)
    if cfg.openrlhf.wait:
        import asyncio

        async def follow():
            async for lines in client.tail_job_logs(job_id):
                print(lines, end="")

        asyncio.run(follow())
        log.info("job %s: %s", job_id, client.get_job_status(job_id))
    return job_id
