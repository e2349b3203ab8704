"""Fixtures shared by the cluster tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture
def head():
    """A one-node `ray start` head (dashboard on a free port), stopped afterwards."""
    from tests.cluster.test_multinode import TwoNodes, _kill_node, _start_node

    base = Path(f"/tmp/ehrhd-{os.getpid()}")  # short: Ray's socket paths live under the temp dir
    base.mkdir(parents=True, exist_ok=True)
    cluster = TwoNodes(base)
    try:
        _start_node(cluster.head_tmp, cluster._head_args)
        yield cluster
    finally:
        _kill_node(cluster.head_tmp)
        shutil.rmtree(base, ignore_errors=True)
