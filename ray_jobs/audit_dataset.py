"""Audit exported EHR-Ins / EHR-Bench samples for label leakage against the timelines they were built from.

    python -m ray_jobs.audit_dataset --config ray_jobs/configs/audit_dataset/demo.yaml
    python -m ray_jobs.audit_dataset --config ray_jobs/configs/audit_dataset/demo.yaml \
        datasets_dir=/data/datasets timelines_dir=/data/timelines

Prints a per-task table (samples, leaking samples, most frequent leak kinds), writes ``audit.json`` and exits
non-zero when a sample leaks (``fail_on_leaks``).
"""

from __future__ import annotations

from data_pipeline.datasets.config import AuditDatasetConfig
from jobkit.config import parse_job_args
from jobkit.ray_runtime import setup_logging


def main(argv: list[str] | None = None) -> None:
    cfg = parse_job_args(AuditDatasetConfig, argv, description=__doc__)
    setup_logging(cfg.log_level)
    from data_pipeline.datasets.audit import run_audit

    run_audit(cfg)


if __name__ == "__main__":
    main()
