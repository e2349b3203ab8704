"""The dataset build survives a lost worker: Ray Data re-runs the index task / restarts the rendering actor (system
failures only; a data error is not retried) and the datasets are the same as a clean build's."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from data_pipeline.datasets.config import BuildDatasetsConfig
from ray_jobs.config_loader import load_config
from tests.data_pipeline.test_timeline_worker_loss import WorkerKiller

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
NAMES = ("ehr_ins", "ehr_bench")


def _build(out: Path, timelines: Path):
    from data_pipeline.datasets.build import build_datasets

    cfg = load_config(BuildDatasetsConfig, ROOT / "ray_jobs/configs/build_datasets/demo.yaml",
                      [f"output_dir={out}", "timelines=null", f"timelines_dir={timelines}"])
    return build_datasets(cfg)


@pytest.fixture(scope="module")
def timelines(ray_session, tmp_path_factory) -> Path:
    from data_pipeline.mimic.synthetic import generate_cohort
    from data_pipeline.timeline.config import TimelineConfig
    from data_pipeline.timeline.pipeline import build_timelines

    tmp = tmp_path_factory.mktemp("ds-loss")
    root = generate_cohort(tmp / "mimic", num_patients=60, seed=5)
    return build_timelines(TimelineConfig(mimic_root=root, output_dir=tmp / "tl", num_buckets=4,
                                          write_markdown=False)).timelines_dir


@pytest.fixture(scope="module")
def clean(timelines, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds-clean")
    return out, _build(out, timelines)


@pytest.mark.parametrize("task", ["MapBatches(index_shards_to_parts)", "MapBatches(ShardRenderWorker)"])
def test_a_worker_killed_mid_build_gives_the_same_datasets(clean, timelines, tmp_path, task):
    out, summaries = clean
    with WorkerKiller(task) as killer:
        again = _build(tmp_path, timelines)
    assert killer.killed, f"no worker was seen running {task}; the test did not test anything"
    assert [s["samples"] for s in again.values()] == [s["samples"] for s in summaries.values()]
    for name in NAMES:
        assert (tmp_path / name / f"{name}.jsonl").read_bytes() == (out / name / f"{name}.jsonl").read_bytes()
        assert pq.read_table(tmp_path / name / f"{name}.parquet").equals(pq.read_table(out / name / f"{name}.parquet"))
