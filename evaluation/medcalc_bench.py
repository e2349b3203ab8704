"""MedCalc-Bench from its CSV (``ncbi-nlp/MedCalc-Bench`` ``test_data.csv`` layout, or MedCalc-Bench-Verified) ->
evaluation samples graded by :func:`evaluation.medcalc.grade_medcalc`.

The prompt follows MedCalc-Bench's zero-shot setting in the project's chat format: the patient note is the input
and the question plus the JSON answer format is the instruction. Ground truth, output type and the tolerance
window travel with each sample (``grading`` JSON), so scoring needs nothing but the sample row.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd

from evaluation.medcalc import CATEGORY_BY_ID
from evaluation.samples import SampleDataError, make_frame

REQUIRED = ("Row Number", "Calculator ID", "Calculator Name", "Category", "Output Type", "Patient Note", "Question",
            "Ground Truth Answer", "Lower Limit", "Upper Limit")
ANSWER_FORMAT = ('Please think step-by-step to solve the question and then generate the required score. Your output '
                 'should only contain a JSON dict formatted as {"step_by_step_thinking": str(your_step_by_step_'
                 'thinking_process_to_solve_the_question), "answer": str(short_and_direct_answer_of_the_question)}.')


def load_medcalc(paths: list[str]) -> pd.DataFrame:
    rows = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_file():
            raise SampleDataError(f"{path}: no such MedCalc-Bench CSV (the released test_data.csv layout)")
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise SampleDataError(f"{path}: missing column(s) {missing}; expected the MedCalc-Bench CSV header")
            for line_no, rec in enumerate(reader, 2):
                try:
                    cid = int(rec["Calculator ID"])
                except ValueError:
                    raise SampleDataError(f"{path}:{line_no}: column 'Calculator ID' is {rec['Calculator ID']!r}, "
                                          "not an integer") from None
                grading = {"ground_truth": rec["Ground Truth Answer"], "output_type": rec["Output Type"],
                           "lower_limit": rec["Lower Limit"], "upper_limit": rec["Upper Limit"],
                           "calculator_id": cid}
                rows.append({"sample_id": f"medcalc:{path.stem}:{rec['Row Number']}", "benchmark": "medcalc",
                             "task": rec["Calculator Name"],
                             "family": CATEGORY_BY_ID.get(cid, rec.get("Category") or "other"), "kind": "calc",
                             "metric": "medcalc", "input": f"Here is the patient note:\n{rec['Patient Note']}",
                             "instruction": f"Here is the task:\n{rec['Question']}\n{ANSWER_FORMAT}",
                             "candidates": [], "target": [rec["Ground Truth Answer"]], "label": -1,
                             "grading": json.dumps(grading),
                             "patient": rec.get("Note ID") or f"row {rec['Row Number']}"})
    if not rows:
        raise SampleDataError(f"{paths}: no MedCalc-Bench rows")
    return make_frame(rows)
