"""Driver-side pieces of the build that need no Ray: skip reasons, selection, vocabularies."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from data_pipeline.datasets.build import explain_missing
from data_pipeline.datasets.selection import select, vocabularies
from data_pipeline.datasets.config import load_preset
from data_pipeline.datasets.stages import TABLES_ROW, index_batch
from data_pipeline.tasks import task_names, tasks_needing_tables
from data_pipeline.tasks.examples import example_timeline


def test_missing_module_skips_its_tasks_with_one_line_each():
    from data_pipeline.mimic.schema import TABLES

    have = {t.name for t in TABLES.values() if t.module != "ed"}
    pools = Counter({t: 5 for t in task_names()})
    notes = explain_missing(task_names(), have, pools)
    assert set(notes) == set(tasks_needing_tables(["ed"]))
    assert all(n.startswith("skipped: no ") and "module ed absent" in n for n in notes.values())
    assert "\n" not in "".join(notes.values())


def test_task_without_labels_names_its_mapping():
    from data_pipeline.mimic.schema import TABLES

    pools = Counter({t: 5 for t in task_names()})
    pools["prescriptions_atc"] = 0
    notes = explain_missing(task_names(), {t.name for t in TABLES.values()}, pools)
    assert list(notes) == ["prescriptions_atc"] and "mapping ndc_atc" in notes["prescriptions_atc"]


def _index():
    rows = [example_timeline(subject_id=s).to_row() for s in range(10000030, 10000050)]
    index = index_batch(pa.Table.from_pylist(rows), task_names(), test_ratio=0.5, salt="ehr-r1").to_pandas()
    return index[index["task"] != TABLES_ROW]


def test_select_draws_from_one_split_and_numbers_samples():
    index = _index()
    for name in ("ehr_ins", "ehr_bench"):
        preset = load_preset(name, {"min_context_events": -1, "max_context_events": None})
        chosen, pools = select(index, preset, task_names(), seed=0)
        assert set(chosen["split"]) == {preset.split}
        assert chosen["idx"].tolist() == list(range(len(chosen)))
        assert set(chosen["dataset"]) == {name} and sum(pools.values()) >= len(chosen) > 0


def test_vocabularies_come_from_the_train_split_only():
    index = _index()
    vocab = vocabularies(index, task_names())
    assert "labevents" in vocab and "next_event" not in vocab and "ICU_Stay_7day" not in vocab
    train_labels = {lab for labs in index[(index["split"] == "train") & (index["task"] == "labevents")]["labels"]
                    for lab in labs}
    assert set(vocab["labevents"].items) == train_labels


def test_imports_are_cheap():
    import subprocess
    import sys

    code = ("import sys, data_pipeline.tasks, data_pipeline.datasets.build, ray_jobs.build_datasets; "
            "print(sorted(m for m in ('ray', 'torch', 'transformers', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
