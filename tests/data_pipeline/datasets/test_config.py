"""Every shipped build_datasets config and preset loads; bad configs fail before any work, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_pipeline.datasets.config import BuildDatasetsConfig, load_preset, preset_names
from data_pipeline.tasks import task_names
from ray_jobs.config_loader import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[3]
JOB_CONFIGS = sorted((ROOT / "ray_jobs" / "configs" / "build_datasets").rglob("*.yaml"))


def test_found_every_shipped_config():
    assert [p.name for p in JOB_CONFIGS] == ["demo.yaml", "ehr_bench.yaml", "ehr_ins.yaml"]
    assert preset_names() == ["ehr_bench", "ehr_ins"]


@pytest.mark.parametrize("path", JOB_CONFIGS, ids=lambda p: p.name)
def test_shipped_job_configs_load(path):
    cfg = load_config(BuildDatasetsConfig, path)
    assert cfg.presets and all(p.name in preset_names() for p in cfg.preset_objects())


# preset, task, expected (cap, mode)
PLANS = [
    ("ehr_ins", "labevents", (100000, "uniform")), ("ehr_ins", "omr", (20000, "uniform")),
    ("ehr_ins", "prescriptions", (200000, "uniform")), ("ehr_ins", "chartevents", (200000, "weighted")),
    ("ehr_ins", "emar", (100000, "weighted")), ("ehr_ins", "next_event", (100000, "weighted")),
    ("ehr_ins", "ED_Hospitalization", (40000, "weighted")), ("ehr_ins", "ICU_Mortality_1day", (20000, "weighted")),
    ("ehr_ins", "ICU_Mortality_7day", (40000, "weighted")), ("ehr_ins", "ED_ICU_Tranfer_12hour", (40000, "weighted")),
    ("ehr_bench", "labevents", (500, "uniform")), ("ehr_bench", "ICU_Stay_7day", (500, "balanced")),
]


@pytest.mark.parametrize("preset,task,expected", PLANS)
def test_preset_plans(preset, task, expected):
    assert load_preset(preset).sampling_for(task) == expected


def test_presets_cover_every_task_and_keep_reference_filters():
    for name in preset_names():
        p = load_preset(name)
        assert set(p.plan(task_names())) == set(task_names())
        assert (p.min_context_events, p.max_context_events, p.max_patient_events) == (10, 100, 1200)
    assert load_preset("ehr_ins").split == "train" and load_preset("ehr_bench").split == "test"


@pytest.mark.parametrize("overrides,needle", [
    (["presets=[nope]"], "unknown dataset preset 'nope'"),
    (["tasks=[labevent]"], "unknown task 'labevent'"),
    (["sampling.min_context_evnts=3"], "min_context_evnts"),
    (["sampling.tasks.foo.cap=3"], "unknown task(s) ['foo']"),
    (["sampling.max_context_events=5", "sampling.min_context_events=4"], "max_context_events=5"),
    (["test_ratio=1.0"], "test_ratio"),
    (["timelines_dir=null"], "set exactly one of timelines_dir"),
    (["tokenizer_path=/no/such/tokenizer"], "tokenizer_path"),
    (["output_dr=/tmp/x"], "output_dr"),
])
def test_bad_configs_name_the_field(overrides, needle):
    with pytest.raises(ConfigError) as err:
        load_config(BuildDatasetsConfig, ROOT / "ray_jobs/configs/build_datasets/ehr_ins.yaml", overrides)
    assert needle in str(err.value)


def test_embedded_timelines_config_is_validated_with_its_own_class():
    with pytest.raises(ConfigError, match="timelines"):
        load_config(BuildDatasetsConfig, ROOT / "ray_jobs/configs/build_datasets/demo.yaml",
                    ["timelines.num_bukets=3"])


def test_ehr_bench_preset_is_the_reference_45_tasks_untruncated_and_ehr_ins_keeps_discharge():
    from data_pipeline.datasets.config import load_preset
    from data_pipeline.tasks import task_names

    bench, ins = load_preset("ehr_bench"), load_preset("ehr_ins")
    assert [t for t in task_names() if bench.includes(t)] == [t for t in task_names() if t != "discharge"]
    assert len([t for t in task_names() if bench.includes(t)]) == 45
    assert not bench.truncate and ins.truncate and ins.includes("discharge")
    assert bench.admission_window_filter and ins.admission_window_filter


def test_leakage_and_audit_options_validate():
    from data_pipeline.datasets.config import AuditDatasetConfig, BuildDatasetsConfig

    cfg = BuildDatasetsConfig(timelines_dir="/x", output_dir="/y")
    assert cfg.leakage_rules.availability and cfg.leakage_rules.window_rules
    assert cfg.audit.enabled and not cfg.audit.allow_leaks and cfg.instruction_style == "reference"
    with pytest.raises(ValueError):
        BuildDatasetsConfig(timelines_dir="/x", output_dir="/y", instruction_style="fancy")
    with pytest.raises(ValueError):
        BuildDatasetsConfig(timelines_dir="/x", output_dir="/y", audit={"allow": True})
    with pytest.raises(ValueError, match="exclude_tasks"):
        BuildDatasetsConfig(timelines_dir="/x", output_dir="/y", sampling={"exclude_tasks": ["nope"]})
    assert AuditDatasetConfig(datasets_dir="/d").resolved_timelines_dir().as_posix() == "/d/timelines"
    with pytest.raises(ValueError, match="twice"):
        AuditDatasetConfig(datasets_dir="/d", datasets=["a", "a"])
