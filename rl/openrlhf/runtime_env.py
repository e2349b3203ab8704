"""The runtime env an OpenRLHF run lives in, checked with Ray's own merge before any GPU is booked.

OpenRLHF 0.11's driver calls ``ray.init(runtime_env={"env_vars": {...}})`` with a few variables of its own
(NCCL_DEBUG, TOKENIZERS_PARALLELISM, ...). Inside a Ray job, ``ray.init`` merges that with the job's runtime env
(injected by the job supervisor) and refuses any key both set. :func:`check_merge` runs that same merge
(``ray.runtime_env.runtime_env._merge_runtime_env``) with OpenRLHF's keys read from its installed source
(:func:`rl.openrlhf.cli_check.driver_env_vars`), so a conflicting job fails here with the key to remove.
OpenRLHF reads those variables from ``os.environ`` first, so they belong in the process environment, not the job's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

# OpenRLHF 0.11.2's keys, for a driver where openrlhf is not installed (the submitting laptop).
KNOWN_DRIVER_ENV_VARS = frozenset({"TOKENIZERS_PARALLELISM", "NCCL_DEBUG", "RAY_ENABLE_ZERO_COPY_TORCH_TENSORS"})


class RuntimeEnvConflict(ValueError):
    """The job's runtime env sets a variable OpenRLHF's driver sets too."""


def openrlhf_driver_env_vars() -> frozenset[str]:
    from rl.openrlhf.cli_check import driver_env_vars, openrlhf_version

    return frozenset(driver_env_vars()) if openrlhf_version() else KNOWN_DRIVER_ENV_VARS


def load_runtime_env(path: str | Path) -> dict:
    env = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(env, dict):
        raise ValueError(f"{path}: a runtime env is a mapping (env_vars, working_dir, excludes, ...)")
    return env


def check_merge(job_runtime_env: dict | None, where: str) -> None:
    """Ray's own merge of ``job_runtime_env`` with OpenRLHF's driver env; raises RuntimeEnvConflict naming the keys."""
    from ray.runtime_env.runtime_env import _merge_runtime_env

    driver = {"env_vars": {name: "" for name in openrlhf_driver_env_vars()}}
    if _merge_runtime_env(job_runtime_env or {}, driver) is not None:
        return
    clash = sorted(set((job_runtime_env or {}).get("env_vars") or {}) & set(driver["env_vars"]))
    raise RuntimeEnvConflict(
        f"{where}: the job's runtime env sets {clash}, which OpenRLHF's driver sets in its own ray.init; Ray would "
        "refuse to merge them (\"Failed to merge the Job's runtime env\") and the run would die before booking a "
        "GPU. Remove them from env_vars and set them in the container's environment instead (OpenRLHF reads "
        "them from os.environ)")


def injected_job_runtime_env() -> dict | None:
    """The runtime env of the Ray job this process is the driver of (as the job supervisor injects it), or None."""
    from ray._private.runtime_env.constants import RAY_JOB_CONFIG_JSON_ENV_VAR

    raw = os.environ.get(RAY_JOB_CONFIG_JSON_ENV_VAR)
    return (json.loads(raw).get("runtime_env") or {}) if raw else None
