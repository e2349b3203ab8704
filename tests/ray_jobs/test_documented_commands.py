"""Every `python -m ray_jobs.X --config Y` the README and Makefile tell a user to run names a real job and a
config that its own config class accepts (so a renamed job or preset cannot silently break the docs)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from ray_jobs.config_loader import load_config

ROOT = Path(__file__).resolve().parents[2]
COMMAND = re.compile(r"-m (ray_jobs\.\w+)(?:\s+--config\s+(\S+))?")


def _config_class(module_name: str):
    """The strict config class a job parses: the first argument of its `parse_job_args` call."""
    source = (ROOT / (module_name.replace(".", "/") + ".py")).read_text()
    match = re.search(r"parse_job_args\((\w+)", source)
    assert match, f"{module_name} does not call parse_job_args"
    module = importlib.import_module(module_name)
    return getattr(module, match.group(1))


def _documented() -> list[tuple[str, str, str | None]]:
    found = []
    makefile = (ROOT / "Makefile").read_text()
    config_default = re.search(r"^CONFIG\s*\?=\s*(\S+)", makefile, re.M).group(1)
    for doc in ("README.md", "Makefile"):
        text = (ROOT / doc).read_text().replace("$(CONFIG)", config_default)
        found += [(doc, m.group(1), m.group(2) and m.group(2).rstrip("`,.;)")) for m in COMMAND.finditer(text)]
    return found


def test_docs_name_commands():
    docs = {doc for doc, _, _ in _documented()}
    assert docs == {"README.md", "Makefile"}, "both the README and the Makefile must show the main job"
    assert len(_documented()) >= 8


@pytest.mark.parametrize("doc, module, config", _documented(), ids=lambda v: str(v))
def test_documented_command_is_runnable(doc, module, config):
    assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), f"{doc}: {module} does not exist"
    if config is None or "<" in config:
        return
    path = ROOT / config
    assert path.is_file(), f"{doc}: {config} does not exist"
    load_config(_config_class(module), path)
