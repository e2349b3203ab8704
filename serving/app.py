"""The Ray Serve application: one ingress deployment (our FastAPI app) plus, for vLLM, an ``LLMServer`` deployment.

``serve run`` / ``serve deploy`` entry point: ``import_path: serving.app:build_app`` with
``args: {config_path: ray_jobs/configs/serve/demo.yaml}`` or ``args: {config: {...inline ServeConfig...}}``
(optionally ``overrides: ["limits.max_input_tokens=2048"]``).

- ``engine.kind: transformers``: the model runs inside the ingress replicas (no vLLM needed).
- ``engine.kind: vllm``: Ray Serve LLM's ``LLMServer`` deployment runs vLLM; the ingress holds its handle, so the
  OpenAI routes, ``/v1/ehr/predict``, auth, limits and metrics are the same on both paths.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ray import serve

from serving.config import ServeConfig, config_from_args

log = logging.getLogger(__name__)

INGRESS_NAME = "EHRIngress"


def resolve_model_path(cfg: ServeConfig) -> str:
    """The checkpoint directory: ``model.path`` or the tiny model built (or reused) by ``training.tiny_model``."""
    if cfg.model.path is not None:
        if not Path(cfg.model.path).exists():
            raise FileNotFoundError(f"model.path={cfg.model.path} does not exist; point it at an HF checkpoint "
                                    "directory or use `model.tiny_model: {}` for the demo model")
        return cfg.model.path
    from training.tiny_model import build_tiny_model

    spec = cfg.model.tiny_model
    return str(build_tiny_model(spec.output_dir, vocab_size=spec.vocab_size, seed=spec.seed))


def auth_banner(cfg: ServeConfig) -> str:
    n = len(cfg.auth.resolve_keys())
    if n:
        return f"API key auth ON ({n} key(s)); every route but /health needs `Authorization: Bearer <key>`"
    return ("API key auth OFF: no keys configured, so the server binds to 127.0.0.1 only "
            f"(set {cfg.auth.api_keys_env or 'auth.api_keys_file'} to enable keys)")


@serve.ingress()
class EHRIngress:
    """One replica: tokenizer + engine (or engine handle) + the FastAPI app."""

    def __init__(self, config: dict, model_path: str, llm_server=None):
        from jobkit.ray_runtime import setup_logging
        from serving.http_api import make_api  # noqa: F401 - fail fast on a broken install
        from serving.metrics import Metrics
        from serving.prompts import PromptCodec
        from serving.service import InferenceService

        cfg = ServeConfig.model_validate(config)
        setup_logging(cfg.log_level)
        self._keys = cfg.auth.resolve_keys()
        if not self._keys and not cfg.http.is_loopback:
            raise RuntimeError(f"refusing to start: http.host={cfg.http.host} without API keys")
        codec = PromptCodec(model_path, cfg.limits.max_input_tokens)
        if cfg.engine.kind == "transformers":
            from serving.engines.transformers_engine import TransformersEngine

            engine = TransformersEngine(model_path, cfg.model.dtype, cfg.engine.transformers.torch_threads)
        else:
            from serving.engines.vllm_engine import VLLMServeEngine

            if llm_server is None:
                raise RuntimeError("engine.kind=vllm but no LLM server handle was bound; build the app with "
                                   "serving.app.build_app")
            engine = VLLMServeEngine(llm_server, cfg.model.served_name)
        self._max_body = cfg.limits.max_body_bytes
        self.service = InferenceService(engine, codec, cfg.model.served_name, cfg.limits, Metrics())
        log.info("ingress ready: model %s, engine %s; %s", cfg.model.served_name, cfg.engine.kind,
                 "auth on" if self._keys else "auth off (loopback only)")

    async def __serve_build_asgi_app__(self):
        from serving.http_api import make_api

        return make_api(self.service, self._keys, self._max_body)

    async def check_health(self) -> None:
        await self.service.engine.check_health()


def build_app_from_config(cfg: ServeConfig):
    """The bound Serve application for a validated config."""
    model_path = resolve_model_path(cfg)
    log.info(auth_banner(cfg))
    ingress = serve.deployment(EHRIngress, name=INGRESS_NAME, **cfg.deployment.serve_options())
    llm_server = None
    if cfg.engine.kind == "vllm":
        from serving.engines.vllm_engine import build_llm_server

        llm_server = build_llm_server(cfg, model_path)
    return ingress.bind(cfg.model_dump(mode="json"), model_path, llm_server)


def build_app(args: dict):
    """``serve run``/``serve deploy`` builder: ``args`` = {config_path | config, overrides?}."""
    args = dict(args or {})
    unknown = set(args) - {"config_path", "config", "overrides"}
    if unknown:
        raise ValueError(f"serving.app:build_app got unknown args {sorted(unknown)}; use config_path, config, "
                         "overrides")
    cfg = config_from_args(args.get("config_path"), args.get("config"), args.get("overrides") or ())
    return build_app_from_config(cfg)
