"""Readers that turn each source's native files into RL prompt records (:class:`rl.prompts.schema.RLPrompt`).

- EHR-Ins (``ray_jobs.build_datasets`` output, jsonl or parquet): ``instruction, input, output, task_info``.
- MedCalc-Bench CSV (its published columns: ``Row Number, Calculator ID, ..., Patient Note, Question, ...,
  Ground Truth Answer, Lower Limit, Upper Limit, ...``).
- TrialGPT-style matching data: a directory with ``queries.jsonl`` (``_id, text``), ``qrels/*.tsv``
  (``query-id, corpus-id, score``; TREC 2021: 2 eligible, 1 excluded, 0 not relevant) and ``trial_info.json``
  (NCT id -> ``brief_title, diseases_list, drugs_list, brief_summary, inclusion_criteria, exclusion_criteria``).
- EHRSHOT: a benchmark task's ``labeled_patients.csv`` (``patient_id, prediction_time, value, label_type``) plus
  a jsonl of the patients' EHR text at prediction time (``patient_id, prediction_time, ehr``; the markdown the
  evaluation's EHRSHOT adapter renders).

Errors name the file, the row and the fix; nothing is written until every row converted (the writer is atomic).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evaluation.metrics import PREFIX_METRICS, PROBABILITY_METRICS, SET_METRICS, TEXT_METRICS
from rl.prompts.schema import RLPrompt
from rl.rewards.ehrmind import TRIAL_LABELS, class_weights, normalise_trial_label
from training.chat_format import build_messages

MEDCALC_COLUMNS = ("Row Number", "Calculator ID", "Output Type", "Patient Note", "Question", "Ground Truth Answer")
MEDCALC_INSTRUCTION = ("{question}\nReason step by step, then give only the final answer after the reasoning: a "
                       "number, a date as MM/DD/YYYY, or (weeks, days).")
TRIAL_INSTRUCTION = ("Is the patient eligible for this clinical trial, excluded by its criteria, or is the trial not "
                     "relevant to the patient? Answer with exactly one of: " + ", ".join(TRIAL_LABELS) + ".")
#: EHRSHOT binary tasks (labelers in som-shahlab/ehrshot-benchmark) as yes/no questions; lab tasks ask whether the
#: result is abnormal (the benchmark's label is "any abnormal").
EHRSHOT_QUESTIONS = {
    "guo_los": "Will this admission last 7 days or longer?",
    "guo_readmission": "Will the patient be readmitted to the hospital within 30 days of this discharge?",
    "guo_icu": "Will the patient be transferred to the ICU during this admission?",
    "lab_thrombocytopenia": "Will the upcoming platelet count be abnormal (below 150 x10^9/L)?",
    "lab_hyperkalemia": "Will the upcoming potassium result be abnormal (above 5.5 mmol/L)?",
    "lab_hypoglycemia": "Will the upcoming glucose result be abnormal (3.9 mmol/L or below)?",
    "lab_hyponatremia": "Will the upcoming sodium result be abnormal (135 mmol/L or below)?",
    "lab_anemia": "Will the upcoming hemoglobin result be abnormal (below 120 g/L)?",
    "new_hypertension": "Will the patient be newly diagnosed with hypertension within the next year?",
    "new_hyperlipidemia": "Will the patient be newly diagnosed with hyperlipidemia within the next year?",
    "new_pancan": "Will the patient be newly diagnosed with pancreatic cancer within the next year?",
    "new_celiac": "Will the patient be newly diagnosed with celiac disease within the next year?",
    "new_lupus": "Will the patient be newly diagnosed with lupus within the next year?",
    "new_acutemi": "Will the patient be newly diagnosed with an acute myocardial infarction within the next year?",
}
YES_NO_SUFFIX = " Answer yes or no."


# ---------------------------------------------------------------- EHR-Ins

def _ehr_ins_rows(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            yield from batch.to_pylist()
        return
    with path.open() as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise ValueError(f"{path}:{n}: not JSON ({exc})") from None


def ehr_ins_prompts(path: str | Path, tasks: set[str] | None = None) -> Iterator[RLPrompt]:
    """EHR-Ins records -> prompts. Decision-making tasks think (``/think``, set F1); risk tasks answer yes/no
    without thinking (``/no_think``); text tasks get ROUGE-1."""
    path = Path(path)
    for n, rec in enumerate(_ehr_ins_rows(path), 1):
        info = rec.get("task_info") or {}
        missing = [k for k in ("instruction", "input", "output") if k not in rec] + (
            [] if info.get("metric") else ["task_info.metric"])
        if missing:
            raise ValueError(f"{path}: record {n} lacks {missing}; export EHR-Ins with ray_jobs.build_datasets")
        task = str(info.get("task") or "unknown")
        if tasks is not None and task not in tasks:
            continue
        metric = info["metric"]
        if metric in SET_METRICS:
            target = list(info.get("target") or [x for x in str(rec["output"]).split("\n") if x.strip()])
            reward, thinking, extra = "ehr_set_f1", True, {"metric": metric}
        elif metric in PROBABILITY_METRICS | PREFIX_METRICS:
            target = str(info.get("label") or rec["output"]).strip()
            reward, thinking, extra = "ehr_yes_no", False, {}
        elif metric in TEXT_METRICS:
            target = str(rec["output"])
            reward, thinking, extra = "ehr_rouge1", True, {}
        else:
            raise ValueError(f"{path}: record {n} has task_info.metric {metric!r}; expected one of "
                             f"{sorted(SET_METRICS | PROBABILITY_METRICS | PREFIX_METRICS | TEXT_METRICS)}")
        yield RLPrompt.make(f"ehr_ins-{rec.get('idx', n)}", "ehr_ins", task,
                            build_messages(str(rec["input"]), str(rec["instruction"]), thinking),
                            reward=reward, target=target, thinking=thinking, **extra)


# ---------------------------------------------------------------- MedCalc-Bench

def _blank(value: str | None) -> str | None:
    return None if value is None or not value.strip() else value.strip()


def medcalc_prompts(path: str | Path) -> Iterator[RLPrompt]:
    """MedCalc-Bench CSV rows -> prompts graded by ``medcalc`` (the evaluation's grader)."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in MEDCALC_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing MedCalc-Bench columns {missing}; expected the published CSV header")
        for n, row in enumerate(reader, 2):  # line 1 is the header
            try:
                calc_id = int(row["Calculator ID"])
            except ValueError:
                raise ValueError(f"{path}: row {n}, column 'Calculator ID': {row['Calculator ID']!r} is not an "
                                 "integer") from None
            truth = _blank(row["Ground Truth Answer"])
            if truth is None:
                raise ValueError(f"{path}: row {n}, column 'Ground Truth Answer' is empty")
            task = str(row.get("Calculator Name") or f"calculator_{calc_id}")
            yield RLPrompt.make(
                f"medcalc-{row['Row Number']}", "medcalc", task,
                build_messages(row["Patient Note"], MEDCALC_INSTRUCTION.format(question=row["Question"]), True),
                reward="medcalc", target=truth, output_type=row["Output Type"].strip(), calculator_id=calc_id,
                lower_limit=_blank(row.get("Lower Limit")), upper_limit=_blank(row.get("Upper Limit")),
                category=_blank(row.get("Category")))


# ---------------------------------------------------------------- TrialGPT-style trial matching

def _trial_text(info: dict[str, Any]) -> str:
    def listed(key: str) -> str:
        value = info.get(key) or []
        return ", ".join(value) if isinstance(value, list) else str(value)

    return (f"Title: {info.get('brief_title', '')}\nTarget diseases: {listed('diseases_list')}\n"
            f"Interventions: {listed('drugs_list')}\nSummary: {info.get('brief_summary', '')}\n"
            f"Inclusion criteria:\n{info.get('inclusion_criteria', '')}\n"
            f"Exclusion criteria:\n{info.get('exclusion_criteria', '')}")


def trial_matching_prompts(directory: str | Path, qrels: str = "qrels/test.tsv") -> Iterator[RLPrompt]:
    """(patient, trial) pairs with TREC qrels -> three-way prompts graded by ``trial_match``."""
    directory = Path(directory)
    queries_path, qrels_path, trials_path = directory / "queries.jsonl", directory / qrels, directory / "trial_info.json"
    for p in (queries_path, qrels_path, trials_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} does not exist; a TrialGPT-style directory holds queries.jsonl, "
                                    f"{qrels} and trial_info.json")
    patients = {}
    with queries_path.open() as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                q = json.loads(line)
                if "_id" not in q or "text" not in q:
                    raise ValueError(f"{queries_path}:{n}: a query needs '_id' and 'text'")
                patients[str(q["_id"])] = q["text"]
    trials = json.loads(trials_path.read_text())
    with qrels_path.open(newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        for col in ("query-id", "corpus-id", "score"):
            if col not in (reader.fieldnames or []):
                raise ValueError(f"{qrels_path}: missing column {col!r}; expected query-id, corpus-id, score")
        for n, row in enumerate(reader, 2):
            qid, tid = row["query-id"], row["corpus-id"]
            if qid not in patients:
                raise ValueError(f"{qrels_path}: row {n}: query-id {qid!r} is not in {queries_path.name}")
            if tid not in trials:
                raise ValueError(f"{qrels_path}: row {n}: corpus-id {tid!r} is not in {trials_path.name}")
            try:
                label = normalise_trial_label(int(row["score"]))
            except ValueError as exc:
                raise ValueError(f"{qrels_path}: row {n}, column 'score': {exc}") from None
            text = f"Patient:\n{patients[qid]}\n\nClinical trial {tid}:\n{_trial_text(trials[tid])}"
            yield RLPrompt.make(f"trial-{qid}-{tid}", "trial_matching", "trial_matching",
                                build_messages(text, TRIAL_INSTRUCTION, True), reward="trial_match", target=label)


# ---------------------------------------------------------------- EHRSHOT

def ehrshot_prompts(labels_csv: str | Path, ehr_jsonl: str | Path, task: str,
                    reweight_classes: bool = False) -> Iterator[RLPrompt]:
    """One EHRSHOT task's labels + the patients' EHR text -> yes/no prompts graded by ``ehrshot_yes_no``."""
    labels_csv, ehr_jsonl = Path(labels_csv), Path(ehr_jsonl)
    if task not in EHRSHOT_QUESTIONS:
        raise ValueError(f"EHRSHOT task {task!r} is not a binary task; choose one of {sorted(EHRSHOT_QUESTIONS)}")
    ehr: dict[tuple[str, str], str] = {}
    with ehr_jsonl.open() as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                rec = json.loads(line)
                try:
                    ehr[(str(rec["patient_id"]), str(rec["prediction_time"]))] = rec["ehr"]
                except KeyError as exc:
                    raise ValueError(f"{ehr_jsonl}:{n}: missing {exc}; records need patient_id, prediction_time, "
                                     "ehr") from None
    rows = []
    with labels_csv.open(newline="") as fh:
        reader = csv.DictReader(fh)
        for col in ("patient_id", "prediction_time", "value"):
            if col not in (reader.fieldnames or []):
                raise ValueError(f"{labels_csv}: missing column {col!r}; expected EHRSHOT's labeled_patients.csv")
        for n, row in enumerate(reader, 2):
            key = (row["patient_id"], row["prediction_time"])
            if key not in ehr:
                raise ValueError(f"{labels_csv}: row {n}: no EHR text for patient {key[0]} at {key[1]} in {ehr_jsonl}")
            value = row["value"].strip().lower()
            if value not in ("true", "false", "1", "0"):
                raise ValueError(f"{labels_csv}: row {n}, column 'value': {row['value']!r} is not a boolean label "
                                 "(lab tasks are binarised: any abnormal = True)")
            rows.append((n, key, "yes" if value in ("true", "1") else "no"))
    weights = class_weights([t for *_, t in rows]) if reweight_classes else {}
    instruction = EHRSHOT_QUESTIONS[task] + YES_NO_SUFFIX
    for n, (pid, time), target in rows:
        extra = {"class_weight": weights[target]} if weights else {}
        yield RLPrompt.make(f"ehrshot-{task}-{pid}-{time}", "ehrshot", task,
                            build_messages(ehr[(pid, time)], instruction, False), reward="ehrshot_yes_no",
                            target=target, thinking=False, **extra)
