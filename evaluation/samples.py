"""Evaluation samples: one row schema for every benchmark, the EHR-Bench loader, and prompt building.

Every benchmark adapter (EHR-Bench here, :mod:`evaluation.ehrshot`, :mod:`evaluation.medcalc_bench`) turns its
data into rows of :data:`SAMPLE_COLUMNS`; inference and scoring only see these rows. The chat messages are built
by ``training.chat_format.build_messages`` (the code SFT trains on and ``/v1/ehr/predict`` serves), so a model
is evaluated on exactly the prompt format it learnt.

Baseline prompting (EHR-R1 ``test.py --prompt``, for general models): the instruction gets the candidate list
(when the sample has one) and the reference's answer-format suffix.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

Kind = Literal["decision", "risk", "calc"]
#: kind: decision (set of items), risk (yes/no, scored by p(yes)), calc (MedCalc-Bench, graded answer)
SAMPLE_COLUMNS = ["sample_id", "benchmark", "task", "family", "kind", "metric", "input", "instruction",
                  "candidates", "target", "label", "grading", "patient"]
#: ``patient`` is the unit of independence (the bootstrap resamples patients, the sampler spreads over them):
#: EHR-Bench / EHRSHOT subject_id, MedCalc-Bench note id; the sample id where a record names none.

DM_SUFFIX = ("Note that you should directly output the answer without any other information. If there are several "
             "items in the prediction, please separate them by `\\n`. For all predicted items, please use the item "
             "name instead of the item code. Do not output the code like ICD10 or ICD9.")
RP_SUFFIX = ("Note that you should directly output the answer without any other information. You can only choose "
             "one answer from the Candidate List.")
CANDIDATE_PREFIX = "You should choose the item from the candidate list below. Candidate List: [{}]."
YES_NO = ("yes", "no")


class SampleDataError(ValueError):
    """A benchmark file that cannot be evaluated; the message names the file, row and field."""


def make_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    missing = frame["patient"].isna() | (frame["patient"].astype(str) == "")
    frame["patient"] = frame["patient"].astype(object).where(~missing, frame["sample_id"]).astype(str)
    dupes = frame["sample_id"][frame["sample_id"].duplicated()]
    if len(dupes):
        raise SampleDataError(f"duplicate sample ids {sorted(set(dupes))[:5]}; sample ids must be unique per run")
    return frame


def _task_seed(seed: int, task: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(task.encode())])  # stable across runs and task orders


def spread_over_patients(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Rows in a seeded order that visits every patient once before any patient a second time."""
    if frame.empty:
        return frame
    shuffled = frame.iloc[rng.permutation(len(frame))]
    rank = shuffled.groupby("patient", sort=False).cumcount().to_numpy()
    return shuffled.iloc[np.lexsort((np.arange(len(shuffled)), rank))]


def select_samples(frame: pd.DataFrame, max_per_task: int | None, max_total: int | None = None,
                   tasks: Sequence[str] | None = None, seed: int = 0, balance_risk: bool = True) -> pd.DataFrame:
    """A seeded, stratified sample: per task at most ``max_per_task`` rows spread over as many patients as there
    are; risk tasks balanced between the two labels up to the cap (EHRSHOT's protocol; the short class is filled
    from the other one). The same seed and data give the same selection, whatever the order of the rows."""
    if tasks:
        unknown = sorted(set(tasks) - set(frame["task"]))
        if unknown:
            raise SampleDataError(f"tasks {unknown} are not in the benchmark (it has {sorted(set(frame['task']))})")
        frame = frame[frame["task"].isin(list(tasks))]
    if max_per_task is not None:
        picked = []
        for task, group in frame.groupby("task", sort=True):
            rng = _task_seed(seed, str(task))
            group = group.sort_values("sample_id", kind="stable")  # the same picks whatever the row order
            if balance_risk and group["kind"].iloc[0] == "risk" and group["label"].nunique() == 2:
                pos = spread_over_patients(group[group["label"] == 1], rng)
                neg = spread_over_patients(group[group["label"] == 0], rng)
                n_pos = min(len(pos), max(max_per_task // 2, max_per_task - len(neg)))
                n_neg = min(len(neg), max_per_task - n_pos)
                picked.append(spread_over_patients(pd.concat([pos.head(n_pos), neg.head(n_neg)]), rng))
            else:
                picked.append(spread_over_patients(group, rng).head(max_per_task))
        frame = pd.concat(picked) if picked else frame.head(0)
        frame = frame.sort_index(kind="stable")  # the file order of what was picked
    if max_total is not None and len(frame) > max_total:
        frame = spread_over_patients(frame, np.random.default_rng(seed)).head(max_total).sort_index(kind="stable")
    return frame.reset_index(drop=True)


def cap_per_task(frame: pd.DataFrame, max_per_task: int | None, max_total: int | None = None,
                 tasks: Sequence[str] | None = None, seed: int = 0) -> pd.DataFrame:
    """:func:`select_samples` with risk balancing (the evaluation's selection)."""
    return select_samples(frame, max_per_task, max_total, tasks, seed)


# -- EHR-Bench ------------------------------------------------------------------------------------------------
def _ehr_bench_records(path: Path) -> list[dict]:
    if path.is_dir():
        files = sorted(path.glob("*.parquet")) or sorted(path.glob("*.jsonl"))
        if not files:
            raise SampleDataError(f"{path}: no *.parquet or *.jsonl EHR-Bench file; point benchmark.paths at the "
                                  "ehr_bench output of ray_jobs.build_datasets")
        return [r for f in files for r in _ehr_bench_records(f)]
    if not path.is_file():
        raise SampleDataError(f"{path}: no such EHR-Bench file; build it with ray_jobs.build_datasets")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    records = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise SampleDataError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
    return records


def task_family(spec) -> str:
    """``decision: hosp``, ``risk: icu``, ...: the task kind and the MIMIC-IV module of its anchor table."""
    from data_pipeline.mimic.schema import TABLES

    modules = {t.name: t.module for t in TABLES.values()}
    kind = "risk" if spec.is_risk else "decision"
    return f"{kind}: {modules.get(spec.anchor_table, 'any event' if spec.anchor_table == '*' else 'other')}"


def load_ehr_bench(paths: Sequence[str]) -> pd.DataFrame:
    """EHR-Bench records (``data_pipeline.datasets.export`` layout, the published keys) -> sample rows."""
    import data_pipeline.tasks  # noqa: F401 - registers the 46 tasks
    from data_pipeline.tasks.spec import TaskRegistryError, get_task

    rows = []
    for raw_path in paths:
        path = Path(raw_path).expanduser()
        for n, rec in enumerate(_ehr_bench_records(path)):
            where = f"{path} record {n} (idx {rec.get('idx')})"
            info = rec.get("task_info") or {}
            for key in ("instruction", "input"):
                if not isinstance(rec.get(key), str):
                    raise SampleDataError(f"{where}: field {key!r} is missing or not text")
            try:
                spec = get_task(info.get("task") or "")
            except TaskRegistryError:
                raise SampleDataError(f"{where}: task_info.task {info.get('task')!r} is not a known task") from None
            kind = "risk" if spec.is_risk else "decision"
            target = [str(t) for t in (info.get("target") or [])] or [rec.get("output", "")]
            label = -1
            if kind == "risk":
                answer = str(info.get("label") or rec.get("output") or "").strip().lower()
                if answer not in YES_NO:
                    raise SampleDataError(f"{where}: a risk task needs label yes/no, got {answer!r}")
                label = int(answer == "yes")
            rows.append({"sample_id": f"ehr_bench:{path.stem}:{rec.get('idx', n)}", "benchmark": "ehr_bench",
                         "task": spec.name, "family": task_family(spec),
                         "kind": kind, "metric": info.get("metric") or spec.metric, "input": rec["input"],
                         "instruction": rec["instruction"], "candidates": list(rec.get("candidates") or []),
                         "target": target, "label": label, "grading": "",
                         "patient": "" if info.get("subject_id") is None else str(info["subject_id"])})
    if not rows:
        raise SampleDataError(f"{list(paths)}: no EHR-Bench records")
    return make_frame(rows)


# -- prompts --------------------------------------------------------------------------------------------------
PromptMode = Literal["ehr_r1", "baseline"]
Thinking = Literal["task_default", "on", "off", "none"]


def sample_thinking(kind: str, thinking: Thinking) -> bool | None:
    """EHR-R1 defaults: decision tasks (and calculations) think, risk tasks answer with one token.
    ``none`` adds no soft switch (general models with their own default)."""
    if thinking == "none":
        return None
    if thinking == "task_default":
        return kind != "risk"
    return thinking == "on"


def prompt_instruction(instruction: str, kind: str, candidates: Sequence[str], mode: PromptMode) -> str:
    """The instruction as sent: unchanged for EHR-R1 models; with candidates and the format suffix for baselines."""
    if mode == "ehr_r1":
        return instruction
    cands = list(candidates) or (list(YES_NO) if kind == "risk" else [])
    parts = [instruction]
    if cands:
        parts.append(CANDIDATE_PREFIX.format(", ".join(cands)))
    parts.append(RP_SUFFIX if kind == "risk" else DM_SUFFIX)
    return " ".join(parts)


def add_prompts(frame: pd.DataFrame, mode: PromptMode = "ehr_r1", thinking: Thinking = "task_default") -> pd.DataFrame:
    """Adds ``messages`` (JSON of the chat messages), ``prompt_instruction`` and ``thinking`` columns."""
    from training.chat_format import build_messages

    out = frame.copy()
    instructions, messages, flags = [], [], []
    for row in frame.itertuples(index=False):
        instr = prompt_instruction(row.instruction, row.kind, row.candidates, mode)
        flag = sample_thinking(row.kind, thinking)
        instructions.append(instr)
        flags.append(flag)
        messages.append(json.dumps(build_messages(row.input, instr, thinking=flag)))
    out["prompt_instruction"] = instructions
    out["thinking"] = pd.array(flags, dtype="boolean")
    out["messages"] = messages
    return out
