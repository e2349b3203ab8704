"""A timeline build survives a lost worker (retried system failure), and a data error is never retried."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pyarrow.parquet as pq
import pytest

from data_pipeline.timeline import store
from data_pipeline.timeline.config import TimelineConfig

pytestmark = pytest.mark.slow


class WorkerKiller:
    """SIGKILLs the first Ray worker of this test session seen running ``task``: what an OOM kill or a preempted
    node does. Ray titles a busy worker's process ``ray::<function>``, a Ray Data task ``ray::MapBatches(<fn>)``
    and a Ray Data actor ``ray::MapWorker(MapBatches(<class>))``."""

    def __init__(self, task: str):
        self.task, self.killed, self._stop = task, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        me = psutil.Process()  # workers are children of this session's raylet, a child of this process
        while not self._stop.is_set() and not self.killed:
            for proc in me.children(recursive=True):
                try:
                    title = " ".join(proc.cmdline())
                    if title.startswith("ray::") and self.task in title:
                        os.kill(proc.pid, signal.SIGKILL)
                        self.killed.append(proc.pid)
                        return
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            time.sleep(0.005)

    def __enter__(self) -> "WorkerKiller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _outputs(out) -> dict:
    """Every output file's content (parquet as tables, with their metadata) and the manifest."""
    files = {f"{folder}/{p.name}": pq.read_table(p)
             for folder in (store.TIMELINES, store.MARKDOWN) for p in store.list_shards(out / folder)}
    return {"files": files, "manifest": json.loads((out / store.MANIFEST).read_text())}


@pytest.mark.parametrize("task", ["stage_table", "MapBatches(_build_buckets)"])
def test_a_worker_killed_mid_build_is_retried_and_the_output_matches_a_clean_run(ray_session, tmp_path, task):
    from data_pipeline.mimic.synthetic import generate_cohort
    from data_pipeline.timeline.pipeline import build_timelines

    root = generate_cohort(tmp_path / "mimic", num_patients=60, seed=11)
    clean = build_timelines(TimelineConfig(mimic_root=root, output_dir=tmp_path / "clean", num_buckets=4))
    with WorkerKiller(task) as killer:
        killed = build_timelines(TimelineConfig(mimic_root=root, output_dir=tmp_path / "killed", num_buckets=4))
    assert killer.killed, f"no worker was seen running {task}; the test did not test anything"
    assert killed.num_patients == clean.num_patients == 60 and killed.buckets_built == 4
    want, got = _outputs(clean.output_dir), _outputs(killed.output_dir)
    assert got["manifest"] == want["manifest"]
    assert sorted(got["files"]) == sorted(want["files"])
    for name, table in want["files"].items():
        assert got["files"][name].equals(table), name
        assert got["files"][name].schema.metadata == table.schema.metadata, name


def test_a_data_error_in_a_task_is_not_retried(ray_session, tmp_path):
    """The retry options re-run a task after a system failure only: a MimicDataError ends it after one attempt."""
    import ray

    from data_pipeline.mimic.reader import MimicDataError
    from data_pipeline.timeline.pipeline import task_retry_options

    attempts = tmp_path / "attempts"

    def fails(path: str) -> None:
        with open(path, "a") as f:
            f.write("x")
        raise MimicDataError("x.csv: data row 2, column 'charttime': bad")

    remote = ray.remote(num_cpus=0.1, **task_retry_options(3))(fails)
    with pytest.raises(MimicDataError, match="data row 2"):
        ray.get(remote.remote(str(attempts)))
    assert attempts.read_text() == "x"


def test_a_killed_task_is_retried_with_the_timeline_options(ray_session, tmp_path):
    """The same options re-run a task whose worker process died (the counterpart of the test above)."""
    import ray

    from data_pipeline.timeline.pipeline import task_retry_options

    attempts = tmp_path / "attempts"

    def dies_once(path: str) -> int:
        with open(path, "a") as f:
            f.write("x")
        if len(open(path).read()) == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return 7

    remote = ray.remote(num_cpus=0.1, **task_retry_options(3))(dies_once)
    assert ray.get(remote.remote(str(attempts))) == 7
    assert attempts.read_text() == "xx"
