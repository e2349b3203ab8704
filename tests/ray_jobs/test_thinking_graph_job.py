"""ray_jobs.thinking_graph: its configs validate strictly and refuse a third-party endpoint before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_pipeline.thinking_graph.config import ThinkingGraphConfig
from ray_jobs.config_loader import ConfigError, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "ray_jobs" / "configs" / "thinking_graph"


@pytest.mark.parametrize("name", ["demo.yaml", "umls_llm.yaml"])
def test_shipped_configs_validate(name):
    cfg = load_config(ThinkingGraphConfig, CONFIGS / name)
    assert cfg.matcher.threshold == 0.7 and cfg.umls.max_path_length == 10  # the reference's settings


@pytest.mark.parametrize("override, fragment", [
    ("synthesis.mode=llm synthesis.base_url=https://api.openai.com/v1", "allow_ehr_to_third_party_api"),
    ("evidence.bogus=1", "evidence.bogus"),
    ("tasks=[Inpatient_Mortality]", "risk prediction"),
    ("tasks=[no_such_task]", "unknown"),
    ("matcher.similarity_name=levenshtein", "matcher.similarity_name"),
])
def test_bad_settings_fail_at_load(tmp_path, override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(ThinkingGraphConfig, CONFIGS / "demo.yaml", [f"output_dir={tmp_path}", *override.split()])
    assert not any(tmp_path.iterdir())


def test_third_party_endpoint_needs_the_named_opt_in(tmp_path):
    cfg = load_config(ThinkingGraphConfig, CONFIGS / "demo.yaml",
                      ["synthesis.mode=llm", "synthesis.base_url=https://api.example.com/v1",
                       "synthesis.allow_ehr_to_third_party_api=true"])
    assert cfg.synthesis.allow_ehr_to_third_party_api
    cfg = load_config(ThinkingGraphConfig, CONFIGS / "demo.yaml",
                      ["synthesis.mode=llm", "synthesis.base_url=http://ray-head-svc:8000/v1",
                       "synthesis.trusted_hosts=[ray-head-svc]"])
    assert cfg.synthesis.trusted_hosts == ["ray-head-svc"]
