"""Fixtures of the evaluation tests: the tiny model (training.tiny_model, offline) and a made-up EHR-Bench."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def eval_tiny_model(tmp_path_factory) -> str:
    from training.tiny_model import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("eval-tiny") / "model"))


@pytest.fixture(scope="session")
def ehr_bench_file(tmp_path_factory) -> Path:
    from ehr_bench_fixture import write_ehr_bench

    return write_ehr_bench(tmp_path_factory.mktemp("ehr-bench") / "ehr_bench.jsonl")
