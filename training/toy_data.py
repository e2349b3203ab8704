"""A small synthetic EHR-Ins-shaped data set for demos, tests and benchmarks (no MIMIC data needed).

Records have the export's keys (instruction, input, output, candidates, task_info, idx) and, with
``reasoning=True``, a templated ``reasoning``. Labels follow simple rules of the rendered labs, so a model can learn
them. Real runs use the datasets stage's EHR-Ins exports instead.

CLI: ``python -m training.toy_data --out FILE.jsonl [--n 64] [--reasoning] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path

LABS = [("Creatinine", "mg/dL", 0.5, 1.1), ("Potassium", "mEq/L", 3.5, 5.1), ("Sodium", "mEq/L", 135, 145),
        ("Hemoglobin", "g/dL", 12, 16), ("Glucose", "mg/dL", 70, 100), ("White Blood Cells", "K/uL", 4.0, 11.0)]
DIAGNOSES = {"Creatinine": "Acute kidney failure", "Potassium": "Hyperkalemia", "Sodium": "Hyponatremia",
             "Hemoglobin": "Anemia", "Glucose": "Hyperglycemia", "White Blood Cells": "Leukocytosis"}
DM_INSTRUCTION = "Based on the patient's record, predict the diagnoses of this admission."
RP_INSTRUCTION = "Will the patient be readmitted within 30 days? Answer yes or no."


def toy_record(idx: int, rng: random.Random, reasoning: bool, n_events: int | tuple[int, int]) -> dict:
    lines, abnormal = [], []
    days = n_events if isinstance(n_events, int) else rng.randint(*n_events)
    for day in range(days):
        lines.append(f"## Labotary Test Events [2180-06-{10 + day:02d} 05:10:00]")
        lines.append("| Item_Name | Valuenum | Valueuom | Flag |")
        for name, unit, lo, hi in rng.sample(LABS, 3):
            high = rng.random() < 0.35
            value = round(hi * (1.3 + rng.random()) if high else rng.uniform(lo, hi), 1)
            lines.append(f"| {name} | {value} | {unit} | {'abnormal' if high else 'normal'} |")
            if high and DIAGNOSES[name] not in abnormal:
                abnormal.append(DIAGNOSES[name])
    binary = idx % 2 == 1
    if binary:
        instruction, output = RP_INSTRUCTION, "yes" if len(abnormal) >= 3 else "no"
        task = {"target_key": "readmission", "metric": "aucroc", "label": output}
    else:
        instruction, output = DM_INSTRUCTION, "\n".join(abnormal) or "Hypertension"
        task = {"target_key": "diagnoses", "metric": "f1", "label": output.split("\n")}
    rec = {"instruction": instruction, "input": "\n".join(lines), "output": output,
           "candidates": ["yes", "no"] if binary else [], "task_info": task, "idx": idx}
    if reasoning:
        found = ", ".join(abnormal) or "no abnormal results"
        rec["reasoning"] = (f"## Extraction\nAbnormal findings: {found}.\n## Reasoning\n"
                            f"{len(abnormal)} abnormal groups point to the answer.\n## Final Results\n{output}")
    return rec


def write_toy_data(path: str | Path, n: int = 64, reasoning: bool = False, seed: int = 0,
                   n_events: int | tuple[int, int] = 3) -> Path:
    """Write ``n`` toy records as jsonl (atomically); returns the path. ``n_events=(lo, hi)`` varies the length."""
    rng = random.Random(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with tmp.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps(toy_record(i, rng, reasoning, n_events)) + "\n")
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--reasoning", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    print(write_toy_data(a.out, a.n, a.reasoning, a.seed))


if __name__ == "__main__":
    main()
