"""Every task's default instruction is the reference's exact string (the published task table, typos included)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from data_pipeline.tasks import all_tasks, get_task
from data_pipeline.tasks.instructions import CLEAN, REFERENCE, instruction_for

TABLE = Path(__file__).with_name("data") / "ehr_r1_task_table.tsv"


def reference_rows() -> list[dict]:
    with TABLE.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_the_table_names_all_46_tasks():
    rows = reference_rows()
    assert len(rows) == 46
    assert {get_task(r["task"]).name for r in rows} == {t.name for t in all_tasks()}


@pytest.mark.parametrize("row", reference_rows(), ids=lambda r: r["task"])
def test_default_instruction_is_the_reference_string(row):
    spec = get_task(row["task"])  # the reference's ED_ICU_Tranfer_12hour resolves through the alias
    assert spec.instruction == row["instruction"]
    assert instruction_for(spec.name) == row["instruction"]
    assert spec.kind == row["task_type"]
    if row["task_type"] == "decision_making":
        assert spec.metric.startswith(row["metric"])  # rouge -> rouge1
    else:
        assert spec.metric == row["metric"]
    assert set(spec.banned) >= {b for b in row["banned_events"].split(",") if b}


def test_reference_typos_are_kept_and_the_clean_wording_is_an_option():
    assert "Labotary Test Events" in get_task("labevents").instruction
    assert get_task("ED_ICU_Tranfer_12hour").name == "ED_ICU_Transfer_12hour"
    assert set(CLEAN) == set(REFERENCE) == {t.name for t in all_tasks()}
    assert instruction_for("labevents", "clean") != instruction_for("labevents")
    with pytest.raises(ValueError, match="unknown instruction style"):
        instruction_for("labevents", "fancy")
