"""Evaluate a model on EHR-Bench, EHRSHOT or MedCalc-Bench with Ray Data batch inference; writes a report.

    ray job submit --working-dir . -- python -m ray_jobs.evaluate --config ray_jobs/configs/evaluate/demo.yaml

Backends: transformers (actor pool), vLLM (ray.data.llm), or an OpenAI-compatible endpoint. Re-running the same
command resumes: samples already predicted are kept, only the missing or failed ones are sent to the model.
"""

from __future__ import annotations

import sys

from evaluation.config import EvaluateConfig
from ray_jobs.config_loader import parse_job_args
from ray_jobs.runtime import init_ray, setup_logging


def main(argv: list[str] | None = None) -> None:
    cfg = parse_job_args(EvaluateConfig, argv, description=__doc__)
    setup_logging(cfg.log_level)
    init_ray(cfg.ray_address, cfg.ray_num_cpus)
    from evaluation.run import EvaluationIncomplete, evaluate, headline

    try:
        result = evaluate(cfg)
    except EvaluationIncomplete as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(3) from None
    print(f"\n{cfg.model_name} on {cfg.benchmark.kind}:\n{headline(result.metrics)}")
    print(f"report: {result.report_html}\n        {result.report_md}")
    if result.comparison:
        print(f"comparison: {result.comparison}")


if __name__ == "__main__":
    main()
