"""Readers that turn each source's native files into RL prompt records (:class:`rl.prompts.schema.RLPrompt`).

- EHR-Ins (``ray_jobs.build_datasets`` output, jsonl or parquet): ``instruction, input, output, task_info``.
- MedCalc-Bench CSV (its published columns), read and prompted by the evaluation adapter
  (:func:`evaluation.medcalc_bench.load_medcalc` + :func:`evaluation.samples.add_prompts`): RL trains on exactly
  the prompt the benchmark is scored with.
- TrialGPT-style matching data: a directory with ``queries.jsonl`` (``_id, text``), ``qrels/*.tsv``
  (``query-id, corpus-id, score``; TREC 2021: 2 eligible, 1 excluded, 0 not relevant) and ``trial_info.json``
  (NCT id -> ``brief_title, diseases_list, drugs_list, brief_summary, inclusion_criteria, exclusion_criteria``).
- EHRSHOT: its MEDS release and MEDS LabelSchema labels, read and rendered by the evaluation adapter
  (:func:`evaluation.ehrshot.load_ehrshot`, markdown EHR up to the prediction time, yes/no instruction per task).

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

TRIAL_INSTRUCTION = ("Is the patient eligible for this clinical trial, excluded by its criteria, or is the trial not "
                     "relevant to the patient? Answer with exactly one of: " + ", ".join(TRIAL_LABELS) + ".")


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


def ehr_ins_prompts(path: str | Path, tasks: set[str] | None = None, think: bool = True) -> Iterator[RLPrompt]:
    """EHR-Ins records -> prompts. Decision-making tasks think (``/think``, set F1; ``think=False``: no thinking);
    risk tasks answer yes/no without thinking (``/no_think``); text tasks get ROUGE-1."""
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
            reward, thinking, extra = "ehr_set_f1", think, {"metric": metric}
        elif metric in PROBABILITY_METRICS | PREFIX_METRICS:
            target = str(info.get("label") or rec["output"]).strip()
            reward, thinking, extra = "ehr_yes_no", False, {}
        elif metric in TEXT_METRICS:
            target = str(rec["output"])
            reward, thinking, extra = "ehr_rouge1", think, {}
        else:
            raise ValueError(f"{path}: record {n} has task_info.metric {metric!r}; expected one of "
                             f"{sorted(SET_METRICS | PROBABILITY_METRICS | PREFIX_METRICS | TEXT_METRICS)}")
        yield RLPrompt.make(f"ehr_ins-{rec.get('idx', n)}", "ehr_ins", task,
                            build_messages(str(rec["input"]), str(rec["instruction"]), thinking),
                            reward=reward, target=target, thinking=thinking, **extra)


# ---------------------------------------------------------------- MedCalc-Bench

def _blank(value: Any) -> str | None:
    return None if value is None or not str(value).strip() else str(value).strip()


def medcalc_prompts(path: str | Path) -> Iterator[RLPrompt]:
    """MedCalc-Bench CSV rows -> the evaluation's prompts, graded by ``medcalc`` (the evaluation's grader)."""
    from evaluation.medcalc_bench import load_medcalc
    from evaluation.samples import add_prompts

    frame = add_prompts(load_medcalc([str(path)]))
    for row in frame.itertuples(index=False):
        grading = json.loads(row.grading)
        truth = _blank(grading["ground_truth"])
        if truth is None:
            raise ValueError(f"{path}: sample {row.sample_id}: column 'Ground Truth Answer' is empty")
        yield RLPrompt.make(row.sample_id.replace(":", "-"), "medcalc", row.task, json.loads(row.messages),
                            reward="medcalc", target=truth, output_type=str(grading["output_type"]).strip(),
                            calculator_id=int(grading["calculator_id"]), lower_limit=_blank(grading["lower_limit"]),
                            upper_limit=_blank(grading["upper_limit"]), category=row.family)


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

def ehrshot_prompts(meds_root: str | Path, tasks: list[str] | None = None, labels: str | None = None,
                    split: str | None = "train", reweight_classes: bool = False,
                    max_per_task: int | None = None) -> Iterator[RLPrompt]:
    """EHRSHOT binary tasks from the MEDS release -> the evaluation's yes/no prompts, graded by ``ehrshot_yes_no``;
    with ``reweight_classes`` each label carries ``0.5 * N / N_class`` of its task (balanced-accuracy reward)."""
    from evaluation.ehrshot import load_ehrshot
    from evaluation.samples import add_prompts

    frame = add_prompts(load_ehrshot(meds_root, labels=labels, split=split, tasks=tasks, max_per_task=max_per_task))
    weights = {task: class_weights([t[0] for t in group["target"]]) for task, group in frame.groupby("task")} \
        if reweight_classes else {}
    for row in frame.itertuples(index=False):
        target = row.target[0]
        extra = {"class_weight": weights[row.task][target]} if weights else {}
        yield RLPrompt.make(row.sample_id.replace(":", "-"), "ehrshot", row.task, json.loads(row.messages),
                            reward="ehrshot_yes_no", target=target, thinking=False, **extra)
