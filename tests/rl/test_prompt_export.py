"""RL prompt export: every source gives the same schema, labels the rewards accept, clear errors on bad rows."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from rl.config import PromptSourceSpec
from rl.prompts import export_prompts, read_prompts
from rl.prompts.sources import ehr_ins_prompts, ehrshot_prompts, medcalc_prompts, trial_matching_prompts
from rl.rewards import score_labelled

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def meds_root(tmp_path_factory):
    """The evaluation's made-up EHRSHOT MEDS release (tests/evaluation/meds_fixture.py)."""
    from tests.evaluation.meds_fixture import write_meds_fixture

    return write_meds_fixture(tmp_path_factory.mktemp("ehrshot") / "EHRSHOT_MEDS")


@pytest.fixture(autouse=True)
def _meds_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EHR_R1_MEDS_READER_CACHE", str(tmp_path / "meds_cache"))


@pytest.fixture
def sources(meds_root):
    return [
        PromptSourceSpec(kind="ehr_ins", path=str(FIX / "ehr_ins.jsonl")),
        PromptSourceSpec(kind="medcalc", path=str(FIX / "medcalc_bench.csv")),
        PromptSourceSpec(kind="trial_matching", path=str(FIX / "trial_matching")),
        PromptSourceSpec(kind="ehrshot", path=str(meds_root), tasks=["new_hypertension"], split=None,
                         reweight_classes=True),
    ]


def _gold_answer(label: dict) -> str:
    target = label["target"]
    return "\n".join(target) if isinstance(target, list) else str(target)


def test_all_sources_share_one_schema_and_gold_answers_score_full_marks(tmp_path, sources):
    out = tmp_path / "prompts.jsonl"
    counts = export_prompts(sources, out, seed=1)
    assert sum(counts.values()) == 4 + 4 + 3 + 8
    records = list(read_prompts(out))
    assert {r.source for r in records} == {"ehr_ins", "medcalc", "trial_matching", "ehrshot"}
    for r in records:
        raw = json.loads(json.dumps(r.__dict__))
        assert set(raw) == {"id", "source", "task", "prompt", "label"}
        assert [m["role"] for m in r.prompt] == ["system", "user"]
        assert r.prompt[-1]["content"].endswith(("/think", "/no_think"))
    labels = [json.loads(r.label) for r in records]
    gold = [("<think>\n\n</think>\n\n" if not lab.get("thinking", True) else "<think>\nwork\n</think>\n\n")
            + _gold_answer(lab) for lab in labels]
    scores = score_labelled(gold, [r.label for r in records]).components["task"]
    weights = [lab.get("class_weight", 1.0) for lab in labels]
    assert scores == pytest.approx(weights)  # the gold answer earns the full reward on every source
    assert list(read_prompts(out)) == records  # same order on re-read; seeded shuffle
    assert export_prompts(sources, tmp_path / "again.jsonl", seed=1) == counts
    assert (tmp_path / "again.jsonl").read_text() == out.read_text()


def test_ehr_ins_thinking_and_reward_follow_the_metric():
    recs = {r.task: r for r in ehr_ins_prompts(FIX / "ehr_ins.jsonl")}
    dm, rp = json.loads(recs["Diagnoses_ICD"].label), json.loads(recs["Inpatient_Mortality"].label)
    assert dm == {"reward": "ehr_set_f1", "target": ["Sepsis", "Acute kidney failure"], "thinking": True,
                  "metric": "recall"}
    assert rp == {"reward": "ehr_yes_no", "target": "no", "thinking": False}
    assert recs["Diagnoses_ICD"].prompt[1]["content"].endswith("\n/think")
    assert recs["Inpatient_Mortality"].prompt[1]["content"].endswith("\n/no_think")
    assert [r.task for r in ehr_ins_prompts(FIX / "ehr_ins.jsonl", {"Readmission_30"})] == ["Readmission_30"]


def test_medcalc_prompts_are_the_evaluation_prompts():
    from evaluation.medcalc_bench import load_medcalc
    from evaluation.samples import add_prompts

    rec = next(medcalc_prompts(FIX / "medcalc_bench.csv"))
    assert rec.prompt == json.loads(add_prompts(load_medcalc([str(FIX / "medcalc_bench.csv")])).iloc[0]["messages"])
    label = json.loads(rec.label)
    assert label["reward"] == "medcalc" and label["calculator_id"] == 6 and label["output_type"] == "decimal"
    assert float(label["lower_limit"]) < float(label["target"]) < float(label["upper_limit"])


def test_trial_labels_are_names_not_codes():
    labels = {r.id: json.loads(r.label)["target"] for r in trial_matching_prompts(FIX / "trial_matching")}
    assert labels == {"trial-trec-2021-fx1-NCT90000001": "eligible", "trial-trec-2021-fx2-NCT90000001": "excluded",
                      "trial-trec-2021-fx1-NCT90000002": "not relevant"}


def test_ehrshot_prompts_are_the_evaluation_prompts_with_class_weights(meds_root):
    from evaluation.ehrshot import load_ehrshot
    from evaluation.samples import add_prompts

    recs = list(ehrshot_prompts(meds_root, ["new_hypertension"], split=None, reweight_classes=True))
    labels = [json.loads(r.label) for r in recs]
    assert [lab["target"] for lab in labels].count("yes") == 2 and len(recs) == 8
    weights = {lab["target"]: lab["class_weight"] for lab in labels}
    assert weights == {"yes": pytest.approx(2.0), "no": pytest.approx(8 / 12)}
    evaluation = add_prompts(load_ehrshot(meds_root, split=None, tasks=["new_hypertension"]))
    assert recs[0].prompt == json.loads(evaluation.iloc[0]["messages"])
    assert recs[0].prompt[-1]["content"].endswith("Answer yes or no.\n/no_think")
    train_only = list(ehrshot_prompts(meds_root, ["new_hypertension"]))  # default split: train (subjects 1, 2)
    assert len(train_only) == 2 and "class_weight" not in json.loads(train_only[0].label)


def _broken_copy(tmp_path: Path, rel: str, old: str, new: str) -> Path:
    root = tmp_path / "fx"
    shutil.copytree(FIX, root)
    path = root / rel
    path.write_text(path.read_text().replace(old, new, 1))
    return root


@pytest.mark.parametrize("rel, old, new, call, fragment", [
    ("medcalc_bench.csv", "Calculator ID", "Calc", lambda r: medcalc_prompts(r / "medcalc_bench.csv"),
     "missing column(s) ['Calculator ID']"),
    ("medcalc_bench.csv", "\n1,6,", "\n1,six,", lambda r: medcalc_prompts(r / "medcalc_bench.csv"),
     "medcalc_bench.csv:2: column 'Calculator ID'"),
    ("trial_matching/qrels/test.tsv", "NCT90000001\t2", "NCT90000001\t7",
     lambda r: trial_matching_prompts(r / "trial_matching"), "row 2, column 'score'"),
    ("trial_matching/qrels/test.tsv", "trec-2021-fx1\tNCT90000001", "trec-2021-zz\tNCT90000001",
     lambda r: trial_matching_prompts(r / "trial_matching"), "query-id 'trec-2021-zz' is not in queries.jsonl"),
    ("ehr_ins.jsonl", '"metric": "recall"', '"metric": "bleu"', lambda r: ehr_ins_prompts(r / "ehr_ins.jsonl"),
     "record 1 has task_info.metric 'bleu'"),
])
def test_bad_rows_name_file_row_and_column(tmp_path, rel, old, new, call, fragment):
    root = _broken_copy(tmp_path, rel, old, new)
    with pytest.raises(ValueError, match=re.escape(fragment)):
        list(call(root))


def test_failed_export_writes_nothing(tmp_path):
    root = _broken_copy(tmp_path, "ehr_ins.jsonl", '"metric": "f1"', '"metric": "bleu"')
    out = tmp_path / "prompts.jsonl"
    with pytest.raises(ValueError):
        export_prompts([PromptSourceSpec(kind="ehr_ins", path=str(root / "ehr_ins.jsonl"))], out)
    assert not out.exists() and not list(tmp_path.glob(".prompts.jsonl*"))


def test_unknown_ehrshot_task_and_missing_paths(meds_root):
    with pytest.raises(ValueError, match="unknown EHRSHOT task"):
        list(ehrshot_prompts(meds_root, ["chexpert"]))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_prompts([PromptSourceSpec(kind="medcalc", path="/nonexistent.csv")], "/tmp/unused.jsonl")


def test_max_samples_draws_prompts_from_every_task_and_thinking_off_is_applied(tmp_path):
    from collections import Counter

    from rl.config import PromptSourceSpec
    from rl.prompts.export import source_prompts

    path = tmp_path / "ehr_ins.jsonl"
    rows = []
    for t, metric in (("labevents", "recall"), ("prescriptions", "recall"), ("Inpatient_Mortality", "aucroc")):
        for i in range(20):
            rows.append({"idx": len(rows), "instruction": f"{t}?", "input": "## EHR", "output": "yes",
                         "task_info": {"task": t, "metric": metric, "target": ["yes"], "label": "yes"}})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    picked = list(source_prompts(PromptSourceSpec(kind="ehr_ins", path=str(path), max_samples=9, thinking="off")))
    assert Counter(p.task for p in picked) == {"labevents": 3, "prescriptions": 3, "Inpatient_Mortality": 3}
    assert all(p.prompt[-1]["content"].endswith("/no_think") for p in picked)
    default = list(source_prompts(PromptSourceSpec(kind="ehr_ins", path=str(path), max_samples=9)))
    assert {p.prompt[-1]["content"].endswith("/think") for p in default if p.task != "Inpatient_Mortality"} == {True}
