"""Fixtures of the serving tests: one tiny model per session (training.tiny_model, built offline)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    from training.tiny_model import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("serve-tiny") / "model"))
