"""Pure pieces of the launcher and the Serve builder: URL, usage text, auth banner, build_app args."""

from __future__ import annotations

import pytest

from serving.config import ServeConfig


def _cfg(**parts) -> ServeConfig:
    return ServeConfig.model_validate({"model": {"tiny_model": {}, "served_name": "m"}} | parts)


@pytest.mark.parametrize("http, url", [
    ({}, "http://127.0.0.1:8000"),
    ({"port": 9000, "route_prefix": "/api"}, "http://127.0.0.1:9000/api"),
    ({"host": "localhost"}, "http://localhost:8000"),
])
def test_base_url(http, url):
    from serving.launch import base_url

    assert base_url(_cfg(http=http)) == url


def test_usage_and_banner_without_keys(monkeypatch):
    from serving.app import auth_banner
    from serving.launch import usage_text

    monkeypatch.delenv("EHR_SERVE_API_KEYS", raising=False)
    cfg = _cfg()
    assert "127.0.0.1 only" in auth_banner(cfg)
    text = usage_text(cfg)
    assert "curl http://127.0.0.1:8000/v1/models\n" in text and "Authorization" not in text
    assert 'openai.OpenAI(base_url="http://127.0.0.1:8000/v1"' in text


def test_usage_and_banner_with_keys(monkeypatch):
    from serving.app import auth_banner
    from serving.launch import usage_text

    monkeypatch.setenv("EHR_SERVE_API_KEYS", "secret-1,secret-2")
    cfg = _cfg(http={"host": "0.0.0.0"})
    assert "ON (2 key(s))" in auth_banner(cfg)
    text = usage_text(cfg)
    assert '-H "Authorization: Bearer $EHR_SERVE_API_KEYS"' in text and "secret-1" not in text


def test_build_app_rejects_unknown_args():
    from serving.app import build_app

    with pytest.raises(ValueError, match="unknown args \\['config_file'\\]"):
        build_app({"config_file": "x.yaml"})


def test_importing_serving_is_cheap():
    import subprocess
    import sys

    code = ("import sys, serving, serving.app, serving.config, serving.service, serving.http_api, "
            "serving.engines.vllm_engine, serving.engines.transformers_engine; "
            "print(sorted(m for m in ('torch', 'vllm', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
