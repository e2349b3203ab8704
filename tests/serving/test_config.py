"""ServeConfig validation and every shipped serve config (found recursively)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ray_jobs.config_loader import ConfigError, load_config
from serving.config import ServeConfig, config_from_args

CONFIG_DIR = Path(__file__).resolve().parents[2] / "ray_jobs" / "configs" / "serve"
TINY = {"tiny_model": {}}


def _cfg(**parts):
    return ServeConfig.model_validate({"model": TINY} | parts)


def test_every_shipped_serve_config_loads(monkeypatch):
    monkeypatch.setenv("EHR_SERVE_API_KEYS", "k1")  # vllm_gpu.yaml binds 0.0.0.0, which needs keys
    serve_configs = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if p.name != "serve_config.yaml")
    assert [p.name for p in serve_configs] == ["demo.yaml", "vllm_cpu.yaml", "vllm_gpu.yaml"]
    kinds = {p.name: load_config(ServeConfig, p).engine.kind for p in serve_configs}
    assert kinds == {"demo.yaml": "transformers", "vllm_cpu.yaml": "vllm", "vllm_gpu.yaml": "vllm"}
    # the Serve YAML points at a config that exists and loads
    serve_yaml = yaml.safe_load((CONFIG_DIR / "serve_config.yaml").read_text())
    (app,) = serve_yaml["applications"]
    assert app["import_path"] == "serving.app:build_app"
    repo = CONFIG_DIR.parents[2]
    assert config_from_args(str(repo / app["args"]["config_path"])).model.tiny_model is not None


def test_public_host_without_keys_is_an_error(monkeypatch):
    monkeypatch.delenv("EHR_SERVE_API_KEYS", raising=False)
    with pytest.raises(ValueError, match=r"http.host=0.0.0.0 .*EHR_SERVE_API_KEYS"):
        _cfg(http={"host": "0.0.0.0"})
    monkeypatch.setenv("EHR_SERVE_API_KEYS", "secret")
    assert _cfg(http={"host": "0.0.0.0"}).auth.resolve_keys() == ("secret",)


def test_keys_from_env_and_file(monkeypatch, tmp_path):
    monkeypatch.setenv("MY_KEYS", " a, b ,,a")
    keys = tmp_path / "keys"
    keys.write_text("# comment\nc\n\nb\n")
    cfg = _cfg(auth={"api_keys_env": "MY_KEYS", "api_keys_file": str(keys)})
    assert cfg.auth.resolve_keys() == ("a", "b", "c")
    assert _cfg(auth={"api_keys_env": None}).auth.resolve_keys() == ()


@pytest.mark.parametrize("data, field", [
    ({"model": {}}, "model"),                                                     # neither path nor tiny model
    ({"model": {"path": "/m", "tiny_model": {}}}, "model"),                       # both
    ({"model": TINY, "engine": {"kind": "onnx"}}, "engine.kind"),
    ({"model": TINY, "deploymnet": {}}, "deploymnet"),                            # typo -> extra forbidden
    ({"model": TINY, "limits": {"default_max_tokens": 2048}}, "limits"),           # default above the cap
    ({"model": TINY, "deployment": {"autoscaling": {"min_replicas": 3, "max_replicas": 1}}}, "autoscaling"),
    ({"model": TINY, "engine": {"vllm": {"accelerator": "cpu", "accelerator_type": "A10G"}}}, "vllm"),
    ({"model": TINY, "engine": {"vllm": {"accelerator": "cpu", "placement_bundles": [{"GPU": 1}]}}}, "vllm"),
    ({"model": TINY, "engine": {"kind": "vllm", "vllm": {"engine_kwargs": {"max_model_len": 4096}}}},
     "max_model_len=4096 is smaller"),
])
def test_invalid_configs_name_the_field(data, field):
    with pytest.raises(ConfigError, match=field):
        config_from_args(config=data)


def test_build_app_args_need_exactly_one_source():
    with pytest.raises(ConfigError, match="exactly one of args.config_path"):
        config_from_args()
    assert config_from_args(config={"model": TINY}, overrides=["http.port=8123"]).http.port == 8123


def test_deployment_serve_options():
    d = _cfg(deployment={"num_cpus": 0.25, "max_queued_requests": 4}).deployment.serve_options()
    assert d == {"max_ongoing_requests": 8, "max_queued_requests": 4, "health_check_period_s": 10.0,
                 "health_check_timeout_s": 30.0, "ray_actor_options": {"num_cpus": 0.25}, "num_replicas": 1}
    auto = _cfg(deployment={"autoscaling": {"max_replicas": 3}}).deployment.serve_options()
    assert "num_replicas" not in auto
    assert auto["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 3, "target_ongoing_requests": 2.0}


def test_vllm_llm_config_kwargs_cpu_and_gpu():
    from serving.engines.vllm_engine import llm_config_kwargs

    cpu = _cfg(engine={"kind": "vllm", "vllm": {"accelerator": "cpu", "engine_kwargs": {"max_num_seqs": 4}}})
    kw = llm_config_kwargs(cpu, "/m")
    assert kw["accelerator_config"] == {"kind": "cpu"}
    assert kw["placement_group_config"] == {"bundles": [{"CPU": 1}]}
    assert kw["runtime_env"]["env_vars"]["VLLM_TARGET_DEVICE"] == "cpu"
    assert kw["engine_kwargs"]["max_num_seqs"] == 4 and kw["engine_kwargs"]["dtype"] == "float32"
    assert kw["engine_kwargs"]["max_model_len"] == 4096 + 1024 + 16  # limits + slack for the thinking p(yes)
    assert kw["model_loading_config"] == {"model_id": "ehr-r1", "model_source": "/m"}
    gpu = _cfg(engine={"kind": "vllm", "vllm": {"accelerator_type": "L4"}})
    kw = llm_config_kwargs(gpu, "/m")
    assert kw["accelerator_type"] == "L4" and "accelerator_config" not in kw and "runtime_env" not in kw
