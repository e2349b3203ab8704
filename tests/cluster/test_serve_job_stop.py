"""Slow: `ray job stop` on the serve job takes the Serve app down with it (a local `ray start` head)."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest

from tests.cluster.test_multinode import REPO
from tests.loopback import free_port

pytestmark = pytest.mark.slow


def _apps(address: str) -> dict:
    import json

    with urllib.request.urlopen(f"{address}/api/serve/applications/", timeout=10) as resp:
        return json.loads(resp.read()).get("applications") or {}


def test_stopping_the_serve_job_deletes_the_serve_app(head, tmp_path):
    port = free_port()
    client = head.client()
    job = client.submit_job(
        entrypoint=f"python -m ray_jobs.serve --config ray_jobs/configs/serve/demo.yaml http.port={port} "
                   f"model.tiny_model.output_dir={tmp_path / 'tiny'} ray.num_cpus=null",
        runtime_env={"working_dir": str(REPO), "excludes": [".venv", ".git", "outputs"]}, submission_id="serve-1")
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        assert str(client.get_job_status(job)).split(".")[-1] not in {"FAILED", "STOPPED"}, client.get_job_logs(job)
        time.sleep(3)
    else:
        pytest.fail("the serve job never answered /v1/models:\n" + client.get_job_logs(job)[-3000:])
    assert _apps(head.address), "the app is not listed while the job runs"
    client.stop_job(job)
    assert head.wait(job, timeout=120) == "STOPPED"
    deadline = time.time() + 120
    while _apps(head.address) and time.time() < deadline:
        time.sleep(2)
    assert not _apps(head.address), f"the Serve app outlived its job: {_apps(head.address)}"
