"""Inference serving on Ray Serve: an OpenAI-compatible API plus ``/v1/ehr/predict``, with two engines.

Importing this package (or any module in it) does not import torch, transformers or vLLM.

- ``serving.app:build_app`` / ``build_app_from_config``: the Serve application (``serve run`` / ``serve deploy``).
- ``serving.config.ServeConfig``: the one strict config; ``ray_jobs/serve.py`` and ``benchmarks/bench_serve.py``
  take it as YAML.
- ``serving.engines.protocol.Engine``: ``generate`` / ``stream`` / ``next_token_logprobs`` / ``check_health``,
  implemented by ``TransformersEngine`` (in the replica) and ``VLLMServeEngine`` (Ray Serve LLM ``LLMServer``).
- ``serving.http_api.make_api``: the FastAPI app (routes, auth, limits, errors, metrics) for one service.
- ``serving.scoring.p_yes_from_logprobs``: p(yes) renormalised over {yes, no}.
"""
