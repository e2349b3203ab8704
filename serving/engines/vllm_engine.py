"""vLLM through Ray Serve LLM: an ``LLMServer`` deployment (built from an ``LLMConfig``) called by handle.

Our ingress keeps every route (OpenAI, /v1/ehr/predict, auth, limits, metrics) and talks to the LLM server with
``handle.completions.remote(CompletionRequest, None)`` (token-id prompts), the same call Ray Serve LLM's own
``OpenAiIngress`` makes. p(yes) uses vLLM's ``prompt_logprobs``: one request with two prompts,
``prompt + [yes]`` and ``prompt + [no]``, reading the log-prob of the appended token (raw distribution).

Importing this module is cheap; ``ray.serve.llm`` / vLLM are imported only when an LLM config or request is built.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from serving.config import ServeConfig
from serving.engines.protocol import Delta, EngineError, Generation, Sampling

log = logging.getLogger(__name__)

LLM_SERVER_PREFIX = "EHRLLMServer:"
MODEL_LEN_SLACK = 16
VLLM_CPU_ENV = {"VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_KVCACHE_SPACE": "1"}


def llm_config_kwargs(cfg: ServeConfig, model_path: str) -> dict[str, Any]:
    """The ``LLMConfig`` keyword arguments for our config (pure; tested without vLLM)."""
    v = cfg.engine.vllm
    deployment = v.deployment.serve_options()
    # Ray Serve LLM places the replica in the first placement bundle; its own CPU share is merged into it.
    # + slack: a thinking risk prediction scores the answer token after prompt + generation + "</think>\n\n"
    engine_kwargs = {"dtype": cfg.model.dtype, "max_model_len": cfg.limits.max_input_tokens
                     + cfg.limits.max_new_tokens + MODEL_LEN_SLACK} | v.engine_kwargs
    kwargs: dict[str, Any] = {
        "model_loading_config": {"model_id": cfg.model.served_name, "model_source": model_path},
        "engine_kwargs": engine_kwargs,
        "deployment_config": deployment,
        "experimental_configs": {"stream_batching_interval_ms": 0},
        "log_engine_metrics": True,
    }
    env = dict(v.env_vars)
    if v.accelerator == "cpu":
        kwargs["accelerator_config"] = {"kind": "cpu"}
        kwargs["placement_group_config"] = {"bundles": v.placement_bundles or [{"CPU": 1}]}
        env = VLLM_CPU_ENV | env
    else:
        if v.accelerator_type:
            kwargs["accelerator_type"] = v.accelerator_type
        if v.placement_bundles:
            kwargs["placement_group_config"] = {"bundles": v.placement_bundles}
    if env:
        kwargs["runtime_env"] = {"env_vars": env}
    return kwargs


def build_llm_server(cfg: ServeConfig, model_path: str):
    """The bound ``LLMServer`` deployment (an Application to pass to the ingress' ``bind``)."""
    from ray.serve.llm import LLMConfig, build_llm_deployment

    return build_llm_deployment(LLMConfig(**llm_config_kwargs(cfg, model_path)), name_prefix=LLM_SERVER_PREFIX)


def _raise_if_error(obj: Any) -> None:
    err = getattr(obj, "error", None)
    if type(obj).__name__ == "ErrorResponse" and err is not None:
        raise EngineError(getattr(err, "message", str(err)), status=int(getattr(err, "code", 500) or 500),
                          err_type=str(getattr(err, "type", "engine_error")))


def parse_sse_chunks(chunk: Any) -> list[dict]:
    """Turn what the LLM server streams (one or a list of ``"data: {...}\\n\\n"`` strings) into JSON objects."""
    items = chunk if isinstance(chunk, list) else [chunk]
    out: list[dict] = []
    for item in items:
        _raise_if_error(item)
        if not isinstance(item, str):
            out.append(item.model_dump() if hasattr(item, "model_dump") else dict(item))
            continue
        for line in item.splitlines():
            line = line.strip()
            if not line.startswith("data:"):
                continue
            payload = line[len("data:"):].strip()
            if payload and payload != "[DONE]":
                obj = json.loads(payload)
                if "error" in obj and "choices" not in obj:
                    e = obj["error"]
                    raise EngineError(e.get("message", "engine error"), status=int(e.get("code") or 500))
                out.append(obj)
    return out


class VLLMServeEngine:
    def __init__(self, handle, model_id: str):
        # Import the request models (and so vLLM's protocol module, ~10 s) now, not on the first request.
        from ray.serve.llm.openai_api_models import CompletionRequest  # noqa: F401

        self._handle = handle.options(stream=True)
        self.model_id = model_id

    def _request(self, prompt, sampling: Sampling | None = None, **extra):
        from ray.serve.llm.openai_api_models import CompletionRequest

        fields: dict[str, Any] = {"model": self.model_id, "prompt": prompt}
        if sampling is not None:
            fields.update(max_tokens=sampling.max_tokens, temperature=sampling.temperature, top_p=sampling.top_p,
                          top_k=sampling.top_k, seed=sampling.seed, stop=list(sampling.stop))
        return CompletionRequest(**(fields | extra))

    async def _call(self, request) -> list[Any]:
        from ray.serve.exceptions import BackPressureError

        try:
            return [r async for r in self._handle.completions.remote(request, None)]
        except BackPressureError as exc:
            raise EngineError(str(exc), status=503, err_type="overloaded") from exc

    async def generate(self, prompt_ids: Sequence[int], sampling: Sampling) -> Generation:
        results = await self._call(self._request(list(prompt_ids), sampling))
        for r in results:
            _raise_if_error(r)
        resp = results[-1]
        choice = resp.choices[0]
        return Generation(text=choice.text, completion_tokens=resp.usage.completion_tokens,
                          finish_reason="length" if choice.finish_reason == "length" else "stop")

    async def stream(self, prompt_ids: Sequence[int], sampling: Sampling) -> AsyncIterator[Delta]:
        from ray.serve.exceptions import BackPressureError

        request = self._request(list(prompt_ids), sampling, stream=True,
                                stream_options={"include_usage": True})
        finish, tokens = None, 0
        try:
            async for chunk in self._handle.completions.remote(request, None):
                for obj in parse_sse_chunks(chunk):
                    if obj.get("usage"):
                        tokens = obj["usage"].get("completion_tokens", tokens)
                    for choice in obj.get("choices") or []:
                        finish = choice.get("finish_reason") or finish
                        if choice.get("text"):
                            yield Delta(text=choice["text"])
        except BackPressureError as exc:
            raise EngineError(str(exc), status=503, err_type="overloaded") from exc
        yield Delta(text="", finish_reason="length" if finish == "length" else "stop", completion_tokens=tokens)

    async def next_token_logprobs(self, prompt_ids: Sequence[int], candidates: Sequence[int]) -> list[float]:
        prompts = [list(prompt_ids) + [c] for c in candidates]
        results = await self._call(self._request(prompts, max_tokens=1, temperature=0.0, prompt_logprobs=0))
        for r in results:
            _raise_if_error(r)
        choices = sorted(results[-1].choices, key=lambda c: c.index)
        out = []
        for cand, choice in zip(candidates, choices, strict=True):
            last = (choice.prompt_logprobs or [None])[-1]
            if not last:
                raise EngineError("the LLM server returned no prompt_logprobs; is it a vLLM build with "
                                  "prompt_logprobs support?")
            entry = last.get(cand) if cand in last else last.get(str(cand))
            lp = entry.logprob if hasattr(entry, "logprob") else entry["logprob"]
            out.append(float(lp))
        return out

    async def token_logprobs(self, prompt_ids: Sequence[int], completion_ids: Sequence[int],
                             top_k: int) -> list[tuple[float, list[tuple[int, float]]]]:
        if not completion_ids:
            return []
        # one scoring pass: the prompt log-probs of prompt + completion hold every completion position
        results = await self._call(self._request([list(prompt_ids) + list(completion_ids)], max_tokens=1,
                                                 temperature=0.0, prompt_logprobs=max(top_k, 1)))
        for r in results:
            _raise_if_error(r)
        choice = sorted(results[-1].choices, key=lambda c: c.index)[0]
        positions = (choice.prompt_logprobs or [])[len(prompt_ids):]
        if len(positions) != len(completion_ids):
            raise EngineError("the LLM server returned no prompt_logprobs for the completion; is it a vLLM build "
                              "with prompt_logprobs support?")

        def value(entry) -> float:
            return float(entry.logprob if hasattr(entry, "logprob") else entry["logprob"])

        out = []
        for chosen, entries in zip(completion_ids, positions):
            entries = {int(k): value(v) for k, v in (entries or {}).items()}
            top = sorted(entries.items(), key=lambda kv: -kv[1])[:top_k]
            out.append((entries.get(int(chosen), float("-inf")), top))
        return out

    async def check_health(self) -> None:
        return None
