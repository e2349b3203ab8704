"""The one strict config of the serving stack, validated before Ray, a model or a port is touched.

Every default lives here (not in the YAML files, not in the code that reads the config). The same model is
used by ``ray_jobs/serve.py`` (``--config FILE key=value``), by ``serving.app:build_app`` (``serve run`` /
``serve deploy`` YAML ``args: {config_path: ...}`` or ``args: {config: {...}}``) and by the benchmark.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TinyModelSpec(_Strict):
    """Build (or reuse) the random tiny Qwen3 of ``training.tiny_model`` instead of loading a checkpoint."""

    output_dir: Path = Path("/tmp/ehr-r1-serve/tiny-model")
    vocab_size: int = Field(512, ge=64)
    seed: int = 0


class ModelConfig(_Strict):
    path: str | None = Field(None, description="HF checkpoint directory (model + tokenizer with a chat template)")
    tiny_model: TinyModelSpec | None = None
    served_name: str = Field("ehr-r1", min_length=1, description="the `model` id clients send and /v1/models lists")
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"

    @model_validator(mode="after")
    def _one_source(self) -> "ModelConfig":
        if (self.path is None) == (self.tiny_model is None):
            raise ValueError("set exactly one of model.path (an HF checkpoint directory) or model.tiny_model "
                             "(e.g. `tiny_model: {}` to build the random tiny model for demos)")
        return self


class HttpConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    route_prefix: str = "/"

    @property
    def is_loopback(self) -> bool:
        if self.host in LOOPBACK_HOSTS:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


class AuthConfig(_Strict):
    """Bearer API keys: the union of a comma-separated environment variable and a file (one key per line)."""

    api_keys_env: str | None = "EHR_SERVE_API_KEYS"
    api_keys_file: Path | None = None

    def resolve_keys(self) -> tuple[str, ...]:
        """The configured keys (empty tuple = auth off). Reads the environment and the file at call time."""
        keys: list[str] = []
        if self.api_keys_env:
            keys += [k.strip() for k in os.environ.get(self.api_keys_env, "").split(",")]
        if self.api_keys_file is not None:
            if not self.api_keys_file.is_file():
                raise ValueError(f"auth.api_keys_file={self.api_keys_file} does not exist; create it (one key per "
                                 "line) or unset auth.api_keys_file")
            keys += [line.strip() for line in self.api_keys_file.read_text().splitlines()]
        return tuple(dict.fromkeys(k for k in keys if k and not k.startswith("#")))


class LimitsConfig(_Strict):
    max_body_bytes: int = Field(2_000_000, ge=1024, description="larger request bodies get 413")
    max_input_tokens: int = Field(4096, ge=16, description="longer prompts get 413")
    max_new_tokens: int = Field(1024, ge=1, description="a larger `max_tokens` gets 422")
    default_max_tokens: int = Field(256, ge=1, description="`max_tokens` when the request omits it")
    predict_max_new_tokens: int = Field(512, ge=1, description="generation budget of /v1/ehr/predict")

    @model_validator(mode="after")
    def _defaults_within_caps(self) -> "LimitsConfig":
        for name in ("default_max_tokens", "predict_max_new_tokens"):
            if getattr(self, name) > self.max_new_tokens:
                raise ValueError(f"limits.{name}={getattr(self, name)} exceeds limits.max_new_tokens="
                                 f"{self.max_new_tokens}; lower it or raise max_new_tokens")
        return self


class AutoscalingConfig(_Strict):
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(2, ge=1)
    target_ongoing_requests: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> "AutoscalingConfig":
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"autoscaling.min_replicas={self.min_replicas} > max_replicas={self.max_replicas}")
        return self


class DeploymentConfig(_Strict):
    """Ray Serve options of one deployment. Overload beyond ongoing + queued requests is answered with 503."""

    num_replicas: int = Field(1, ge=1)
    autoscaling: AutoscalingConfig | None = Field(None, description="when set, replaces num_replicas")
    num_cpus: float = Field(0.5, ge=0, description="per replica; keep it fractional on small machines")
    max_ongoing_requests: int = Field(8, ge=1)
    max_queued_requests: int = Field(16, ge=-1, description="-1 = unbounded (no 503 on overload)")
    health_check_period_s: float = Field(10.0, gt=0)
    health_check_timeout_s: float = Field(30.0, gt=0)

    def serve_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "max_ongoing_requests": self.max_ongoing_requests,
            "max_queued_requests": self.max_queued_requests,
            "health_check_period_s": self.health_check_period_s,
            "health_check_timeout_s": self.health_check_timeout_s,
            "ray_actor_options": {"num_cpus": self.num_cpus},
        }
        if self.autoscaling is not None:
            opts["autoscaling_config"] = self.autoscaling.model_dump()
        else:
            opts["num_replicas"] = self.num_replicas
        return opts


class TransformersEngineConfig(_Strict):
    torch_threads: int | None = Field(None, ge=1, description="torch intra-op threads per replica (None = torch)")


class VLLMEngineConfig(_Strict):
    """vLLM behind Ray Serve LLM (`LLMServer` deployment); the ingress calls it through a deployment handle."""

    accelerator: Literal["cpu", "gpu"] = "gpu"
    accelerator_type: str | None = Field(None, description="e.g. A10G, L4 (GPU only)")
    placement_bundles: list[dict[str, float]] | None = Field(
        None, description="vLLM placement bundles; default {'CPU': 1} on cpu and Ray Serve LLM's on gpu")
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="vLLM AsyncEngineArgs")
    env_vars: dict[str, str] = Field(default_factory=dict, description="runtime_env env vars of the LLM server")
    deployment: DeploymentConfig = Field(default_factory=lambda: DeploymentConfig(num_cpus=0.0))

    @model_validator(mode="after")
    def _consistent(self) -> "VLLMEngineConfig":
        if self.accelerator == "cpu" and self.accelerator_type is not None:
            raise ValueError("engine.vllm.accelerator_type is a GPU type; unset it or set accelerator: gpu")
        if self.accelerator == "cpu" and any("GPU" in b for b in self.placement_bundles or []):
            raise ValueError("engine.vllm.placement_bundles asks for GPU with accelerator: cpu; remove the GPU key")
        return self


class EngineConfig(_Strict):
    kind: Literal["transformers", "vllm"] = "transformers"
    transformers: TransformersEngineConfig = Field(default_factory=TransformersEngineConfig)
    vllm: VLLMEngineConfig = Field(default_factory=VLLMEngineConfig)


class RayConfig(_Strict):
    address: str | None = Field(None, description="None: RAY_ADDRESS or a private local instance")
    num_cpus: int | None = Field(None, ge=1, description="logical CPUs of a private local instance")


class ServeConfig(_Strict):
    app_name: str = "ehr-r1"
    model: ModelConfig
    engine: EngineConfig = Field(default_factory=EngineConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    deployment: DeploymentConfig = Field(default_factory=DeploymentConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _vllm_context_fits_limits(self) -> "ServeConfig":
        mml = self.engine.vllm.engine_kwargs.get("max_model_len")
        need = self.limits.max_input_tokens + self.limits.max_new_tokens + 16  # see vllm_engine.MODEL_LEN_SLACK
        if self.engine.kind == "vllm" and mml is not None and int(mml) < need:
            raise ValueError(f"engine.vllm.engine_kwargs.max_model_len={mml} is smaller than limits.max_input_tokens"
                             f" + limits.max_new_tokens + 16 = {need}; lower the limits or raise max_model_len")
        return self

    @model_validator(mode="after")
    def _public_bind_needs_keys(self) -> "ServeConfig":
        if not self.http.is_loopback and not self.auth.resolve_keys():
            env = self.auth.api_keys_env or "EHR_SERVE_API_KEYS"
            raise ValueError(f"http.host={self.http.host} exposes the server beyond this machine but no API key "
                             f"is configured; export {env}=key1,key2 (auth.api_keys_env) or set "
                             "auth.api_keys_file, or set http.host=127.0.0.1")
        return self


def config_from_args(config_path: str | None = None, config: dict | None = None,
                     overrides: list[str] | tuple[str, ...] = ()) -> ServeConfig:
    """Validate the config given to ``build_app``: a YAML path or an inline mapping (not both)."""
    from jobkit.config import ConfigError, load_config, validate_config

    if (config_path is None) == (config is None):
        raise ConfigError("serving.app:build_app needs exactly one of args.config_path (a YAML file) or "
                          "args.config (an inline mapping)")
    if config_path is not None:
        path = Path(config_path)
        repo_root = Path(__file__).resolve().parents[1]
        if not path.is_absolute() and not path.exists() and (repo_root / path).exists():
            path = repo_root / path  # `serve deploy` builds the app in a worker whose cwd is not the repo
        return load_config(ServeConfig, path, list(overrides))
    return validate_config(ServeConfig, config, "args.config", list(overrides))
