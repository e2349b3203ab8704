"""Thinking graph: timelines + EHR-Ins -> concepts -> co-occurrence lift -> UMLS paths -> stage-2 reasoning records.

    python -m ray_jobs.thinking_graph --config ray_jobs/configs/thinking_graph/demo.yaml
    ray job submit --working-dir . -- python -m ray_jobs.thinking_graph \
        --config ray_jobs/configs/thinking_graph/umls_llm.yaml timelines_dir=/data/timelines ehr_ins_dir=/data/ehr_ins
"""

from __future__ import annotations

from data_pipeline.thinking_graph.config import ThinkingGraphConfig
from ray_jobs.config_loader import parse_job_args
from ray_jobs.runtime import setup_logging


def main(argv: list[str] | None = None) -> None:
    cfg = parse_job_args(ThinkingGraphConfig, argv, description=__doc__)
    setup_logging(cfg.log_level)
    from data_pipeline.thinking_graph.pipeline import build

    summary = build(cfg)
    print(f"reasoning records: {summary['records']} ({summary['mode']}) -> {summary['path']}")


if __name__ == "__main__":
    main()
