"""Slow: the README's stage-by-stage flow, job after job in the README's order, each on the previous job's outputs.

The jobs are read from the README's block (the `submit <module> ...` lines), `$OUT` set to a temporary directory,
and run in-process on the session's Ray instance with a few overrides that only make them smaller (fewer patients,
steps and samples); every path that wires one stage to the next is the README's own.
"""

from __future__ import annotations

import importlib
import json
import shlex
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- stage-by-stage flow"
SMALLER = {  # sizes only: never a path
    "ray_jobs.build_timelines": ["synthetic.num_patients=80"],
    "ray_jobs.train_sft": ["train.max_steps=4", "train.save_steps=4", "data.max_samples=24", "scaling.num_workers=1",
                           "data.max_seq_length=512"],
    "ray_jobs.evaluate": ["benchmark.max_samples_per_task=1", "backend.max_new_tokens=16", "scoring.n_bootstrap=20"],
}


def readme_jobs(text: str, out: Path) -> list[tuple[str, list[str]]]:
    block = text[text.index(MARKER):]
    block = block[block.index("```bash") + 7: block.index("```", block.index("```bash") + 7)]
    jobs = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line.replace("$OUT", str(out)), comments=True)
        if words and words[0] == "submit":
            jobs.append((words[1], words[2:]))
    return jobs


def test_the_readme_flow_parses_into_the_stage_order():
    modules = [m for m, _ in readme_jobs(README.read_text(), Path("/o"))]
    assert modules == ["ray_jobs.build_timelines", "ray_jobs.build_datasets", "ray_jobs.thinking_graph",
                       "ray_jobs.train_sft", "ray_jobs.train_sft", "ray_jobs.evaluate"]


def test_each_stage_runs_on_the_previous_stages_outputs(ray_session, tmp_path):
    out = tmp_path / "stages"
    for module, argv in readme_jobs(README.read_text(), out):
        importlib.import_module(module).main([*argv, *SMALLER.get(module, [])])
    assert (out / "datasets" / "ehr_ins" / "ehr_ins.jsonl").is_file()
    assert (out / "reasoning" / "ehr_ins_reasoning.jsonl").stat().st_size > 0
    for stage in ("demo_stage1", "demo_stage2"):
        assert (out / "runs" / stage / "final_model" / "config.json").is_file()
    stage1 = json.loads((out / "runs" / "demo_stage1" / "stage.json").read_text())["key"]
    assert str(out / "datasets" / "ehr_ins" / "ehr_ins.jsonl") in json.dumps(stage1)  # trained on the built data
    stage2 = json.loads((out / "runs" / "demo_stage2" / "stage.json").read_text())["key"]
    assert str(out / "reasoning" / "ehr_ins_reasoning.jsonl") in json.dumps(stage2)
    metrics = json.loads(next((out / "evaluation").glob("*/metrics.json")).read_text())["metrics"]
    assert metrics["overall"]
