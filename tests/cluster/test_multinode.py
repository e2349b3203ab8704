"""Two Ray nodes on one machine (`ray start` head + worker, distinct node resources), the first pipeline stages
(timelines, datasets on Ray Data; SFT stage 1 on Ray Train) submitted with `ray job submit`: their Ray work must
run on both nodes, and killing the worker node mid-job must be
survived (the job succeeds) or reported clearly (the job fails naming the lost node/worker).

Only the Ray processes this test starts are stopped: each node has its own --temp-dir, and the processes whose
command line names it are killed by pid (never `ray stop`, which stops every Ray on the machine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.loopback import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _node_ports() -> list[str]:
    return ["--node-manager-port", str(free_port()), "--object-manager-port", str(free_port()),
            "--metrics-export-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
            "--dashboard-agent-grpc-port", str(free_port()), "--runtime-env-agent-port", str(free_port())]


def _env() -> dict:
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    # Jobs run the `python` on the PATH of `ray start`: this interpreter's environment, with the checkout importable.
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO)
    env.pop("RAY_ADDRESS", None)
    return env


def _kill_node(temp_dir: Path) -> None:
    import psutil

    mine = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(str(temp_dir) in arg for arg in proc.info["cmdline"] or []):
                mine.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    for proc in mine:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(mine, timeout=30)


def _log_tails(temp_dir: Path, chars: int = 1500) -> str:
    """The end of every Ray log of a node that failed to start: the reason `ray start` alone does not print."""
    tails = []
    for log in sorted(temp_dir.glob("session_*/logs/*")):
        if log.is_file() and log.suffix in {".err", ".out", ".log"} and log.stat().st_size:
            tails.append(f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}")
    return "\n".join(tails[-8:])


def _start_node(temp_dir: Path, role_args, attempts: int = 3) -> None:
    """`ray start` one node; a port another process took between our pick and Ray's bind is retried with fresh ports.

    Ports are picked free but released before Ray binds them, so a busy machine (CI, the session's own Ray) can take
    one in between: that, and only a failed start, is retried, after killing whatever the failed start left running.
    """
    failures = []
    for attempt in range(1, attempts + 1):
        args = [str(BIN / "ray"), "start", *role_args(), "--node-ip-address", "127.0.0.1", "--temp-dir",
                str(temp_dir), "--num-cpus", "1", *_node_ports(), "--disable-usage-stats"]
        done = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=180)
        if done.returncode == 0:
            return
        failures.append(f"attempt {attempt}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}\n"
                        f"{_log_tails(temp_dir)}")
        _kill_node(temp_dir)
        time.sleep(2)
    raise AssertionError(f"`ray start` of the node in {temp_dir} failed {attempts} times:\n" + "\n".join(failures))


class TwoNodes:
    def __init__(self, base: Path):
        self.base = base
        self.head_tmp, self.worker_tmp = base / "h", base / "w"
        self.gcs = self.dashboard = 0

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.dashboard}"

    def _head_args(self) -> list[str]:
        self.gcs, self.dashboard = free_port(), free_port()  # fresh on every attempt: a taken one fails again
        return [
            "--head", "--port", str(self.gcs), "--resources", '{"head_node": 1}', "--include-dashboard", "true",
            "--dashboard-host", "127.0.0.1", "--dashboard-port", str(self.dashboard),
            "--ray-client-server-port", str(free_port())]

    def start(self) -> None:
        _start_node(self.head_tmp, self._head_args)
        self.start_worker()

    def start_worker(self) -> None:
        _start_node(self.worker_tmp, lambda: [
            "--address", f"127.0.0.1:{self.gcs}", "--resources", '{"worker_node": 1}'])

    def stop(self) -> None:
        _kill_node(self.worker_tmp)
        _kill_node(self.head_tmp)

    def submit(self, job_id: str, *args: str) -> None:
        subprocess.run([str(BIN / "ray"), "job", "submit", "--address", self.address, "--submission-id", job_id,
                        "--working-dir", str(REPO), "--runtime-env", str(REPO / "cluster/runtime_env/default.yaml"),
                        "--no-wait", "--", "python", "-m", *args], check=True, env=_env(), capture_output=True,
                       timeout=300, cwd=REPO)

    def client(self):
        from ray.job_submission import JobSubmissionClient

        return JobSubmissionClient(self.address)

    def wait(self, job_id: str, timeout: float = 1200) -> str:
        client = self.client()
        deadline = time.time() + timeout
        while time.time() < deadline:
            status = str(client.get_job_status(job_id))
            if status.split(".")[-1] in {"SUCCEEDED", "FAILED", "STOPPED"}:
                return status.split(".")[-1]
            time.sleep(3)
        raise TimeoutError(f"job {job_id} still running after {timeout}s")

    def worker_node_id(self) -> str:
        from ray.util.state import list_nodes

        [node] = [n.node_id for n in list_nodes(address=self.address, detail=True)
                  if "worker_node" in (n.resources_total or {})]
        return node

    def task_nodes(self, job_id: str) -> set[str]:
        """Node ids of the Ray tasks/actors of the job so far (Ray's state API)."""
        from ray.util.state import list_tasks

        job = self.client().get_job_info(job_id).job_id
        if job is None:  # the driver has not started yet
            return set()
        tasks = list_tasks(address=self.address, filters=[("job_id", "=", job)], limit=10_000, detail=True,
                           raise_on_missing_output=False)
        return {t.node_id for t in tasks if t.node_id and t.type != "DRIVER_TASK"}


@pytest.fixture
def two_nodes(tmp_path_factory):
    base = Path(f"/tmp/ehr15mn-{os.getpid()}")  # short: Ray's socket paths live under the temp dir
    base.mkdir(parents=True, exist_ok=True)
    cluster = TwoNodes(base)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_first_stage_runs_on_both_nodes_and_a_lost_worker_is_survived_or_reported(two_nodes, tmp_path):
    out = tmp_path / "timelines"
    two_nodes.submit("timelines-1", "ray_jobs.build_timelines", "--config",
                     "ray_jobs/configs/build_timelines/demo.yaml", "synthetic.num_patients=40", "num_buckets=4",
                     f"output_dir={out}")
    status = two_nodes.wait("timelines-1")
    logs = two_nodes.client().get_job_logs("timelines-1")
    assert status == "SUCCEEDED", logs[-3000:]
    assert sorted((out / "timelines").glob("part-*.parquet")), "no timeline shards written"
    nodes = two_nodes.task_nodes("timelines-1")
    assert len(nodes) == 2, f"Ray work ran on {len(nodes)} node(s): {nodes}"

    # The next stage reads what the first wrote (Ray Data actors across both nodes).
    datasets = tmp_path / "datasets"
    two_nodes.submit("datasets-1", "ray_jobs.build_datasets", "--config", "ray_jobs/configs/build_datasets/demo.yaml",
                     "timelines=null", f"timelines_dir={out / 'timelines'}", f"output_dir={datasets}")
    status = two_nodes.wait("datasets-1")
    assert status == "SUCCEEDED", two_nodes.client().get_job_logs("datasets-1")[-3000:]
    assert (datasets / "ehr_ins" / "ehr_ins.parquet").is_file() and (datasets / "ehr_bench" / "ehr_bench.parquet").is_file()
    nodes = two_nodes.task_nodes("datasets-1")
    assert len(nodes) == 2, f"dataset work ran on {len(nodes)} node(s): {nodes}"

    # SFT stage 1 on Ray Train reads the datasets stage's EHR-Ins: one training worker per node (1 CPU each).
    runs = tmp_path / "runs"
    two_nodes.submit("sft-1", "ray_jobs.train_sft", "--config", "ray_jobs/configs/train_sft/demo_stage1.yaml",
                     f"tiny_model.output_dir={tmp_path / 'tiny_model'}",
                     f"data.paths=[{datasets / 'ehr_ins' / 'ehr_ins.jsonl'}]", "data.toy_data_if_missing=null",
                     "data.max_samples=16", "data.max_seq_length=256", "train.num_train_epochs=1",
                     "train.save_steps=1000", f"run.storage_path={runs}", "run.mlflow_tracking_uri=null",
                     "scaling.num_workers=2")
    status = two_nodes.wait("sft-1")
    assert status == "SUCCEEDED", two_nodes.client().get_job_logs("sft-1")[-3000:]
    assert (runs / "demo_stage1" / "final_model" / "config.json").is_file()
    nodes = two_nodes.task_nodes("sft-1")
    assert len(nodes) == 2, f"Ray Train workers ran on {len(nodes)} node(s): {nodes}"

    # A second run (a larger cohort) into a fresh folder; the worker node is killed as soon as the job has work on it.
    out2 = tmp_path / "timelines2"
    two_nodes.submit("timelines-2", "ray_jobs.build_timelines", "--config",
                     "ray_jobs/configs/build_timelines/demo.yaml", "synthetic.num_patients=400", "num_buckets=8",
                     f"output_dir={out2}")
    client = two_nodes.client()
    worker = two_nodes.worker_node_id()
    deadline = time.time() + 600
    while time.time() < deadline and worker not in two_nodes.task_nodes("timelines-2"):
        assert str(client.get_job_status("timelines-2")).split(".")[-1] in {"PENDING", "RUNNING"}, (
            client.get_job_logs("timelines-2")[-3000:])
        time.sleep(0.5)
    at_kill = str(client.get_job_status("timelines-2")).split(".")[-1]
    _kill_node(two_nodes.worker_tmp)
    assert at_kill == "RUNNING", f"the job was {at_kill} when the worker was killed; the kill tested nothing"
    status = two_nodes.wait("timelines-2")
    print(f"after losing the worker node mid-job: {status}")
    logs = client.get_job_logs("timelines-2")
    if status == "SUCCEEDED":
        assert sorted((out2 / "timelines").glob("part-*.parquet")), "succeeded without shards"
    else:
        info = client.get_job_info("timelines-2")
        message = f"{info.message or ''}\n{logs}"
        assert any(word in message for word in ("node", "Node", "worker", "Worker", "died", "unavailable")), (
            f"the failure does not name the lost node/worker:\n{message[-3000:]}")


PROBE = '''
import json, ray, training
ray.init()

@ray.remote(resources={"worker_node": 0.01}, num_cpus=0)
def where():
    import upload_probe_marker, training  # the marker exists only in the uploaded copy
    return {"training": training.__file__, "marker": upload_probe_marker.__file__}

print("PROBE " + json.dumps({"driver": training.__file__, "worker": ray.get(where.remote())}))
'''


def test_jobs_run_the_uploaded_working_dir_on_every_node(two_nodes, tmp_path):
    """`ray job submit --working-dir` carries the code: driver and worker-node tasks import the project from the
    uploaded copy (a module that exists only there is importable on the worker), not from the checkout."""
    import json

    upload = tmp_path / "upload"
    shutil.copytree(REPO, upload, ignore=shutil.ignore_patterns(".venv", ".git", "outputs", "__pycache__", "*.pyc"))
    (upload / "upload_probe_marker.py").write_text("# only in the uploaded working dir\n")
    (upload / "upload_probe.py").write_text(PROBE)
    subprocess.run([str(BIN / "ray"), "job", "submit", "--address", two_nodes.address, "--submission-id", "probe-1",
                    "--working-dir", str(upload), "--no-wait", "--", "python", "upload_probe.py"],
                   check=True, env=_env(), capture_output=True, timeout=300, cwd=tmp_path)
    assert two_nodes.wait("probe-1", timeout=300) == "SUCCEEDED", two_nodes.client().get_job_logs("probe-1")[-3000:]
    [line] = [x for x in two_nodes.client().get_job_logs("probe-1").splitlines() if x.startswith("PROBE ")]
    seen = json.loads(line[6:])
    for path in (seen["driver"], seen["worker"]["training"], seen["worker"]["marker"]):
        assert "runtime_resources" in path and str(REPO) not in path, seen
