"""The main job killed midway (SIGKILL of the whole process group, as a lost pod or `ray job stop` would) and run
again resumes from the last finished stage: the finished stages are skipped and their outputs stay byte-identical."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SMALL = ["datasets.timelines.synthetic.num_patients=40", "reasoning.max_samples=32", "rl=null", "evaluation=null",
         "stage1.data.max_samples=48", "stage1.data.max_seq_length=256", "stage1.train.num_train_epochs=1",
         "stage2.data.max_samples=32", "stage2.data.max_seq_length=256", "stage2.train.num_train_epochs=1"]


def _command(out: Path) -> list[str]:
    return [sys.executable, "-m", "ray_jobs.pipeline", "--config", "ray_jobs/configs/pipeline/demo.yaml",
            f"output_dir={out}", "ray_num_cpus=2", *SMALL]


def _digests(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _finished(run_dir: Path) -> bool:
    """The stage marked its run finished (``stage.json``), which it does after ``fit()`` returns and the final
    model is in place: a kill between the two resumes the run instead of skipping it."""
    try:
        return json.loads((run_dir / "stage.json").read_text()).get("done") is True
    except (OSError, ValueError):
        return False


def test_a_killed_pipeline_resumes_from_the_last_finished_stage(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "RAY_ADDRESS": "", "PYTHONPATH": str(REPO)}
    stage1 = out / "runs" / "demo_stage1" / "final_model"
    log = (tmp_path / "first.log").open("w")
    job = subprocess.Popen(_command(out), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)  # its own process group: the kill takes its Ray with it
    try:
        deadline = time.time() + 1500
        while not ((stage1 / "config.json").is_file() and _finished(stage1.parent)):
            assert job.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.time() < deadline, "stage 1 never finished"
            time.sleep(1)
        time.sleep(2)  # let stage 2 get going before the kill
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(60)
    assert not (out / "runs" / "demo_stage2" / "final_model" / "config.json").is_file(), "killed too late"

    # the datasets, the thinking graph's reasoning records (datasets/ehr_ins_reasoning/) and the stage-1 model
    finished = sorted((out / "datasets").rglob("*.jsonl")) + sorted(stage1.glob("*.safetensors"))
    assert any("ehr_ins_reasoning" in str(p) for p in finished) and any(p.suffix == ".safetensors" for p in finished)
    before = _digests(finished)

    rerun = subprocess.run(_command(out), cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert _digests(finished) == before, "a finished stage was redone"
    assert "SFT stage 1 already finished with this config and these inputs" in rerun.stderr + rerun.stdout
    assert (out / "runs" / "demo_stage2" / "final_model" / "config.json").is_file()
