"""Benchmark adapters on their made-up fixtures: EHR-Bench (exported layout), EHRSHOT (MEDS release layout, read
with meds-reader) and MedCalc-Bench (released CSV layout); prompts in the project's format."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from evaluation.medcalc_bench import load_medcalc
from evaluation.samples import (CANDIDATE_PREFIX, DM_SUFFIX, RP_SUFFIX, SampleDataError, add_prompts, cap_per_task,
                                load_ehr_bench, prompt_instruction)
from tests.engines import require_engine

MEDCALC_CSV = Path(__file__).parent / "fixtures" / "medcalc" / "medcalc_bench_test.csv"


def test_ehr_bench_rows_and_families(ehr_bench_file):
    frame = load_ehr_bench([str(ehr_bench_file)])
    assert set(frame["kind"]) == {"decision", "risk"}
    risk = frame[frame["kind"] == "risk"]
    assert set(risk["label"]) == {0, 1} and (frame.loc[frame["kind"] == "decision", "label"] == -1).all()
    assert set(frame["family"]) == {"decision: hosp", "risk: hosp"}
    capped = cap_per_task(frame, 2)
    assert capped.groupby("task").size().max() == 2 and capped["sample_id"].is_unique


def test_prompts_are_the_training_format(ehr_bench_file):
    from training.chat_format import build_messages

    frame = add_prompts(cap_per_task(load_ehr_bench([str(ehr_bench_file)]), 1))
    for row in frame.itertuples():
        expected = build_messages(row.input, row.instruction, thinking=row.kind != "risk")
        assert json.loads(row.messages) == expected


def test_baseline_prompting_adds_candidates_and_the_reference_suffix():
    dm = prompt_instruction("Predict the diagnoses.", "decision", ["Sepsis", "AKI"], "baseline")
    assert dm == f"Predict the diagnoses. {CANDIDATE_PREFIX.format('Sepsis, AKI')} {DM_SUFFIX}"
    rp = prompt_instruction("Will the patient die?", "risk", [], "baseline")
    assert rp.endswith(RP_SUFFIX) and "Candidate List: [yes, no]" in rp
    assert prompt_instruction("x", "decision", ["a"], "ehr_r1") == "x"


def test_bad_ehr_bench_record_names_file_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"idx": 3, "instruction": "x", "input": "y", "task_info": {"task": "nope"}}) + "\n")
    with pytest.raises(SampleDataError, match=r"bad.jsonl record 0 \(idx 3\): task_info.task 'nope'"):
        load_ehr_bench([str(path)])
    path.write_text("{not json\n")
    with pytest.raises(SampleDataError, match="bad.jsonl:1: not valid JSON"):
        load_ehr_bench([str(path)])


def test_medcalc_adapter_runs_on_its_fixture():
    frame = load_medcalc([str(MEDCALC_CSV)])
    raw = pd.read_csv(MEDCALC_CSV)
    assert len(frame) == len(raw) and set(frame["kind"]) == {"calc"}
    assert set(frame["family"]) == set(raw["Category"])
    grading = json.loads(frame["grading"].iloc[0])
    assert grading["calculator_id"] == int(raw["Calculator ID"].iloc[0])
    assert raw["Patient Note"].iloc[0] in frame["input"].iloc[0] and "JSON dict" in frame["instruction"].iloc[0]


def test_medcalc_adapter_reports_missing_columns(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("Row Number,Question\n1,q\n")
    with pytest.raises(SampleDataError, match="missing column"):
        load_medcalc([str(bad)])


@pytest.fixture(scope="module")
def meds_root(tmp_path_factory):
    from meds_fixture import write_meds_fixture

    return write_meds_fixture(tmp_path_factory.mktemp("ehrshot") / "EHRSHOT_MEDS")


def test_ehrshot_fixture_is_valid_meds(meds_root):
    import meds
    import pyarrow.parquet as pq

    for part in sorted((meds_root / "data").glob("*.parquet")):
        table = pq.read_table(part)
        assert meds.DataSchema.align(table).schema.names[:5] == ["subject_id", "time", "code", "numeric_value",
                                                                 "text_value"]
    for labels in (meds_root / "labels").rglob("*.parquet"):
        meds.LabelSchema.align(pq.read_table(labels))


def test_ehrshot_adapter_runs_on_its_fixture(meds_root, tmp_path, monkeypatch):
    require_engine("meds_reader", "pip install -e '.[eval]'")
    from evaluation.ehrshot import load_ehrshot

    monkeypatch.setenv("EHR_R1_MEDS_READER_CACHE", str(tmp_path / "cache"))
    frame = load_ehrshot(meds_root)
    assert set(frame["task"]) == {"guo_los", "lab_hyperkalemia", "new_hypertension"}
    assert len(frame) == 3 * 6  # held_out subjects 3..8
    assert (frame["kind"] == "risk").all() and set(frame["label"]) == {0, 1}
    first = frame.iloc[0]
    assert first["input"].startswith("## Patient Demographics [None]\n- Anchor_Age: ")
    assert "## Labotary Test Events [2020-01-03 10:00:00]" in first["input"]
    assert "| Potassium [Moles/volume] in Serum or Plasma | 4.9 |" in first["input"]
    # nothing after the prediction time leaks into the prompt
    assert "2020-01-04 11:00:00" not in first["input"]
    # lab tasks ask about a normal result: yes = normal = MEDS label False
    lab = frame[frame["task"] == "lab_hyperkalemia"]
    assert lab["instruction"].str.contains("normal").all() and lab["label"].tolist() == [1, 1, 1, 0, 0, 0]
    # a second load reuses the converted database
    assert load_ehrshot(meds_root, tasks=["guo_los"], max_per_task=2)["task"].tolist() == ["guo_los"] * 2


def test_ehrshot_errors_name_the_problem(meds_root, tmp_path):
    from evaluation.ehrshot import load_ehrshot

    with pytest.raises(SampleDataError, match="no data; point benchmark.paths"):
        load_ehrshot(tmp_path)
    with pytest.raises(SampleDataError, match="unknown EHRSHOT task"):
        load_ehrshot(meds_root, tasks=["chexpert"])
