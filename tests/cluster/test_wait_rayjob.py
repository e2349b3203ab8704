"""cluster/wait-rayjob.sh against a fake kubectl: it ends on every terminal state, failing with the job's logs."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "cluster" / "wait-rayjob.sh"

FAKE_KUBECTL = r"""#!/usr/bin/env bash
# states: one "jobStatus deploymentStatus" line per poll, the last one repeated; "MISSING" = no such RayJob
state_dir=$(dirname "$0")
n=$(cat "$state_dir/polls" 2>/dev/null || echo 0)
line=$(sed -n "$((n + 1))p" "$state_dir/states"); [[ -z "$line" ]] && line=$(tail -n 1 "$state_dir/states")
if [[ "$1" == get ]]; then
  [[ "$line" == MISSING ]] && { echo 'Error from server (NotFound)' >&2; exit 1; }
  case "$*" in
    *jobStatus*) echo -n "${line%% *}"; echo $((n + 1)) > "$state_dir/polls" ;;
    *jobDeploymentStatus*) echo -n "${line##* }" ;;
    *message*) echo -n "Job failed: driver exited 1" ;;
    *) echo "rayjob" ;;
  esac
elif [[ "$1" == logs ]]; then
  echo "RL run failed: OpenRLHF exited 1"
fi
"""


def _wait(tmp_path, states: list[str]) -> subprocess.CompletedProcess:
    fake = tmp_path / "kubectl"
    fake.write_text(FAKE_KUBECTL)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "states").write_text("\n".join(states) + "\n")
    return subprocess.run(["bash", str(SCRIPT), "ehr-r1-train-rl", "0"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "KUBECTL": str(fake)}, check=False)


@pytest.mark.parametrize(("states", "rc", "says"), [
    (["RUNNING Running", "RUNNING Running", "SUCCEEDED Complete"], 0, "SUCCEEDED"),
    (["PENDING Initializing", "RUNNING Running", "FAILED Complete"], 1, "RL run failed: OpenRLHF exited 1"),
    (["RUNNING Running", "STOPPED Complete"], 1, "job STOPPED"),
    (["x Failed"], 1, "deployment Failed"),  # the cluster never came up: no job status at all
    (["MISSING"], 1, "not found"),
])
def test_wait_ends_on_every_terminal_state(tmp_path, states, rc, says):
    out = _wait(tmp_path, states)
    assert out.returncode == rc, out.stderr
    assert says in out.stdout + out.stderr
    if rc:
        assert "Job failed: driver exited 1" in out.stderr or "not found" in out.stderr
