"""A small made-up EHR-Bench in the exported layout (data_pipeline.datasets.export HF records): two decision and two
risk tasks, markdown inputs in the project's format. No patient data."""

from __future__ import annotations

import json
import random
from pathlib import Path

DM_TASKS = {"diagnoses_icd": ("diagnoses_icd", "recall", ["Sepsis", "Pneumonia", "Acute kidney failure",
                                                            "Hypertension", "Type 2 diabetes"]),
            "labevents": ("labevents", "em", ["Creatinine", "Potassium", "Sodium", "Hemoglobin"])}
RP_TASKS = {"Inpatient_Mortality": "admissions", "LengthOfStay_7day": "admissions"}


def write_ehr_bench(path: Path, per_task: int = 6, seed: int = 0) -> Path:
    rng = random.Random(seed)
    records, idx = [], 0
    for task, (events, metric, vocab) in DM_TASKS.items():
        for _ in range(per_task):
            target = rng.sample(vocab, rng.randint(1, 3))
            records.append({"idx": idx, "instruction": f"Predict the {task} items of the next event.",
                            "input": f"## Admissions [2150-01-0{idx % 9 + 1} 08:00:00]\n- Admission_Type: URGENT",
                            "output": "\n".join(target), "candidates": vocab,
                            "task_info": {"task": task, "target_key": "item", "events": events, "metric": metric,
                                          "target": target, "label": "\n".join(target)}})
            idx += 1
    for task, events in RP_TASKS.items():
        for i in range(per_task):
            label = "yes" if i % 2 == 0 else "no"
            records.append({"idx": idx, "instruction": f"Will the patient have {task}? Answer yes or no.",
                            "input": f"## Admissions [2150-02-0{idx % 9 + 1} 08:00:00]\n- Admission_Type: EW EMER.",
                            "output": label, "candidates": ["yes", "no"],
                            "task_info": {"task": task, "target_key": "label", "events": events, "metric": "aucroc",
                                          "target": [label], "label": label}})
            idx += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path
