"""End to end at demo size: synthetic cohort -> timelines -> EHR-Ins + EHR-Bench on a local Ray instance."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from data_pipeline.datasets.config import BuildDatasetsConfig
from data_pipeline.tasks import task_names
from ray_jobs.config_loader import load_config

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_demo_build_writes_both_datasets_with_every_task(ray_session, tmp_path):
    from datasets import load_dataset

    from data_pipeline.datasets.build import build_datasets

    cfg = load_config(BuildDatasetsConfig, ROOT / "ray_jobs/configs/build_datasets/demo.yaml",
                      [f"output_dir={tmp_path}"])
    summaries = build_datasets(cfg)

    assert set(summaries) == {"ehr_ins", "ehr_bench"}
    rp = set(task_names("risk_prediction"))
    for name, summary in summaries.items():
        rows = {r["task"]: r for r in summary["tasks"]}
        empty = sorted(t for t in task_names() if rows.get(t, {}).get("samples", 0) == 0)
        # EHR-Bench is the reference's 45 tasks: the discharge generation task is built for EHR-Ins only
        assert empty == ([] if name == "ehr_ins" else ["discharge"]), f"{name}: tasks without samples: {empty}"
        assert summary["leaking"] == 0 and all(r["leaking"] == 0 for r in summary["tasks"])
        one_class = sorted(t for t in rp if not (rows[t]["yes"] and rows[t]["no"]))
        assert one_class == [], f"{name}: risk tasks with a single class: {one_class}"

        folder = tmp_path / name
        js = load_dataset("json", data_files=str(folder / f"{name}.jsonl"), split="train")
        pa_ds = load_dataset("parquet", data_files=str(folder / f"{name}.parquet"), split="train")
        assert len(js) == len(pa_ds) == summary["samples"]
        assert set(js.column_names) == {"idx", "instruction", "input", "output", "candidates", "task_info"}
        assert sorted(js["idx"]) == sorted(pa_ds["idx"]) and len(set(js["idx"])) == len(js)
        assert json.loads((folder / "summary.json").read_text())["samples"] == summary["samples"]
        info = js[0]["task_info"]
        assert {"subject_id", "hadm_id", "stay_id", "anchor", "prediction_time"} <= set(info)

    ins = set(pq.read_table(tmp_path / "ehr_ins" / "provenance.parquet", columns=["subject_id"])[0].to_pylist())
    bench = set(pq.read_table(tmp_path / "ehr_bench" / "provenance.parquet", columns=["subject_id"])[0].to_pylist())
    assert ins and bench and not ins & bench  # patient-level split

    # a re-run with the same settings reuses the index and skips both finished datasets
    stamps = {n: (tmp_path / n / "_SUCCESS.json").stat().st_mtime_ns for n in summaries}
    again = build_datasets(cfg)
    assert again == summaries
    assert stamps == {n: (tmp_path / n / "_SUCCESS.json").stat().st_mtime_ns for n in summaries}


@pytest.mark.slow
def test_the_audit_job_passes_the_demo_build_and_a_build_with_the_rules_off_is_refused(ray_session, tmp_path):
    from data_pipeline.datasets.audit import LeakageFound, run_audit
    from data_pipeline.datasets.build import LeakageError, build_datasets
    from data_pipeline.datasets.config import AuditDatasetConfig

    tasks = ["Inpatient_Mortality", "ED_Hospitalization", "ED_ICU_Transfer_12hour", "labevents", "discharge"]
    cfg = load_config(BuildDatasetsConfig, ROOT / "ray_jobs/configs/build_datasets/demo.yaml",
                      [f"output_dir={tmp_path / 'on'}", f"tasks={tasks}"])
    build_datasets(cfg)
    reports = run_audit(load_config(AuditDatasetConfig, ROOT / "ray_jobs/configs/audit_dataset/demo.yaml",
                                    [f"datasets_dir={tmp_path / 'on'}"]))
    assert all(r.total_leaking == 0 and sum(r.samples.values()) > 0 for r in reports.values())

    # the reference's windows (rules off) on the same timelines: the build stops before committing anything
    off = [f"timelines_dir={tmp_path / 'on' / 'timelines'}", "timelines=null", f"tasks={tasks}",
           "leakage_rules.availability=false", "leakage_rules.window_rules=false"]
    cfg_off = load_config(BuildDatasetsConfig, ROOT / "ray_jobs/configs/build_datasets/demo.yaml",
                          [f"output_dir={tmp_path / 'off'}", *off])
    with pytest.raises(LeakageError, match="leak"):
        build_datasets(cfg_off)
    assert not (tmp_path / "off" / "ehr_ins").exists() and not (tmp_path / "off" / "ehr_bench").exists()
    # ... unless told to; the standalone auditor then finds the leaks in the written datasets
    cfg_off = load_config(BuildDatasetsConfig, ROOT / "ray_jobs/configs/build_datasets/demo.yaml",
                          [f"output_dir={tmp_path / 'off'}", *off, "audit.allow_leaks=true"])
    summaries = build_datasets(cfg_off)
    assert sum(s["leaking"] for s in summaries.values()) > 0
    with pytest.raises(LeakageFound):
        run_audit(AuditDatasetConfig(datasets_dir=str(tmp_path / "off"),
                                     timelines_dir=str(tmp_path / "on" / "timelines")))
