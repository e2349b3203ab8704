"""The OpenRLHF run's runtime env against Ray's own merge: the shipped files merge, a conflicting key is refused
by our preflight exactly when Ray's ray.init (with the job config injected as the job supervisor does) refuses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rl.openrlhf.runtime_env import KNOWN_DRIVER_ENV_VARS, RuntimeEnvConflict, check_merge, load_runtime_env, \
    openrlhf_driver_env_vars

REPO = Path(__file__).resolve().parents[2]
RAYJOB = REPO / "cluster" / "kuberay" / "rayjob-train-rl.yaml"


def _rayjob_env() -> dict:
    return yaml.safe_load(yaml.safe_load(RAYJOB.read_text())["spec"]["runtimeEnvYAML"])


def test_driver_keys_are_read_from_the_installed_openrlhf():
    assert openrlhf_driver_env_vars() == KNOWN_DRIVER_ENV_VARS  # 0.11.2; a new version's keys show up here


@pytest.mark.parametrize("env", [load_runtime_env(REPO / "cluster" / "runtime_env" / "openrlhf.yaml"), _rayjob_env()],
                         ids=["runtime_env/openrlhf.yaml", "rayjob-train-rl runtimeEnvYAML"])
def test_shipped_runtime_envs_merge_with_openrlhfs_driver(env):
    check_merge(env, "shipped")


@pytest.mark.parametrize("key", sorted(KNOWN_DRIVER_ENV_VARS))
def test_a_key_openrlhf_sets_is_refused_by_name(key):
    with pytest.raises(RuntimeEnvConflict, match=key):
        check_merge({"env_vars": {key: "1", "HF_HOME": "/x"}}, "test.yaml")


_RAY_INIT_AS_OPENRLHF = """
import ray, sys
try:
    ray.init(address="local", num_cpus=1, include_dashboard=False,
             runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "true", "NCCL_DEBUG": "WARN",
                                       "RAY_ENABLE_ZERO_COPY_TORCH_TENSORS": "1"}})
except ValueError as exc:
    print(exc); sys.exit(3)
ray.shutdown()
"""


@pytest.mark.parametrize("extra, refused", [({}, False), ({"NCCL_DEBUG": "INFO"}, True)], ids=["shipped", "NCCL_DEBUG"])
def test_preflight_agrees_with_ray_init_inside_a_job(extra, refused):
    """Ray's own ray.init, with the RayJob's runtime env injected as the job supervisor injects it and the env vars
    OpenRLHF 0.11.2's train() passes: it fails exactly when our preflight says so."""
    job_env = _rayjob_env()
    job_env["env_vars"].update(extra)
    predicted = False
    try:
        check_merge(job_env, "test")
    except RuntimeEnvConflict:
        predicted = True
    env = dict(os.environ, RAY_JOB_CONFIG_JSON_ENV_VAR=json.dumps({"runtime_env": job_env, "metadata": {}}))
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, "-c", _RAY_INIT_AS_OPENRLHF], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == (3 if refused else 0), done.stdout + done.stderr[-2000:]
    assert predicted == refused
    if refused:
        assert "Failed to merge the Job's runtime env" in done.stdout
