"""Registry, requirements and published metadata of the 46 tasks."""

from __future__ import annotations

import pytest

from data_pipeline.tasks import all_tasks, get_task, register, task_names, tasks_needing_tables
from data_pipeline.tasks.spec import TaskRegistryError, missing_requirements


def test_46_tasks_28_dm_18_rp():
    assert len(all_tasks()) == 46
    assert len(task_names("decision_making")) == 28 and len(task_names("risk_prediction")) == 18


def test_duplicate_names_and_aliases_are_refused():
    spec = get_task("labevents")
    with pytest.raises(TaskRegistryError, match="already registered"):
        register(spec)
    rp = get_task("ED_Hospitalization")
    from dataclasses import replace
    with pytest.raises(TaskRegistryError, match="ED_ICU_Transfer_12hour"):
        register(replace(rp, name="something_new", aliases=("ED_ICU_Tranfer_12hour",)))
    assert "something_new" not in task_names()


def test_unknown_task_names_the_known_ones():
    with pytest.raises(TaskRegistryError, match="labevents"):
        get_task("labevent")


@pytest.mark.parametrize("tables,expected_subset,excluded", [
    (["ndc_atc"], {"prescriptions_atc", "medrecon_atc"}, {"prescriptions", "medrecon"}),
    (["ccs_diagnoses"], {"diagnoses_ccs", "diagnosis_ccs"}, {"diagnoses_icd"}),
    (["ccs_procedures"], {"procedures_ccs"}, {"procedures_icd"}),
    (["icu"], {"chartevents", "ICU_Stay_7day", "ED_ICU_Transfer_12hour", "ED_Critical_Outcomes"},
     {"ED_Hospitalization", "labevents"}),
    (["ed/edstays"], {"ED_Hospitalization", "diagnosis"}, {"pyxis", "Readmission_30day"}),
    (["note"], {"discharge", "radiology", "Readmission_30day", "Readmission_60day"}, {"labevents"}),
    (["radiology_detail"], {"radiology"}, {"discharge"}),
    ([], set(), {"labevents"}),
])
def test_tasks_needing_tables(tables, expected_subset, excluded):
    got = set(tasks_needing_tables(tables))
    assert expected_subset <= got
    assert not got & excluded


def test_missing_requirements_names_them():
    assert missing_requirements(get_task("diagnosis_ccs"), ["hosp", "ed"]) == ["ccs_diagnoses"]
    assert missing_requirements(get_task("labevents"), ["hosp"]) == []


@pytest.mark.parametrize("spec", all_tasks(), ids=lambda s: s.name)
def test_published_metadata(spec):
    assert spec.instruction.startswith("Given the sequence of events that have occurred in a hospital,")
    if spec.kind == "risk_prediction":
        assert spec.metric == "aucroc" and spec.answer_space == ("yes", "no")
        assert "please predict whether" in spec.instruction
    else:
        assert spec.metric in {"em", "recall", "acc", "rouge1"}
        assert "please give the next" in spec.instruction or spec.name == "discharge"
    assert "admissions" not in spec.banned  # admissions are always removed; listing them would be a typo
