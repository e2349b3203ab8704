"""A small made-up EHRSHOT-style MEDS dataset (meds 0.4 layout: data/*.parquet, metadata/codes.parquet,
metadata/subject_splits.parquet, metadata/dataset.json) with LabelSchema labels under labels/<task>/.
Codes follow the EHRSHOT MEDS release's vocabularies (LOINC, SNOMED, ICD10CM, RxNorm, CPT4, Visit, Gender).
Invented subjects and values; no patient data."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CODES = {
    "MEDS_BIRTH": "Birth", "Gender/F": "Female", "Gender/M": "Male",
    "Visit/IP": "Inpatient Visit", "Visit/OP": "Outpatient Visit",
    "LOINC/2823-3": "Potassium [Moles/volume] in Serum or Plasma",
    "LOINC/2951-2": "Sodium [Moles/volume] in Serum or Plasma",
    "LOINC/718-7": "Hemoglobin [Mass/volume] in Blood",
    "SNOMED/38341003": "Hypertensive disorder", "ICD10CM/E11.9": "Type 2 diabetes mellitus without complications",
    "RxNorm/197361": "amlodipine 5 MG Oral Tablet", "CPT4/93000": "Electrocardiogram, routine ECG",
}


def write_meds_fixture(root: Path, n_subjects: int = 8) -> Path:
    rows: list[dict] = []
    labels: dict[str, list[dict]] = {"guo_los": [], "lab_hyperkalemia": [], "new_hypertension": []}
    for sid in range(1, n_subjects + 1):
        birth = datetime(1950 + sid, 1, 1)
        admit = datetime(2020, 1, sid, 8, 0)
        ev = [(None, f"Gender/{'F' if sid % 2 else 'M'}", None, None), (birth, "MEDS_BIRTH", None, None),
              (admit - timedelta(days=300), "Visit/OP", None, None),
              (admit - timedelta(days=300), "SNOMED/38341003" if sid % 3 == 0 else "ICD10CM/E11.9", None, None),
              (admit, "Visit/IP", None, None), (admit + timedelta(hours=1), "CPT4/93000", None, None),
              (admit + timedelta(hours=2), "LOINC/2823-3", 4.0 + sid * 0.3, None),
              (admit + timedelta(hours=2), "LOINC/2951-2", 131.0 + sid, None),
              (admit + timedelta(hours=2), "LOINC/718-7", 11.0 + sid * 0.2, None),
              (admit + timedelta(hours=5), "RxNorm/197361", None, "5 mg"),
              (admit + timedelta(days=1, hours=3), "LOINC/2823-3", 4.2 + sid * 0.25, None)]
        ev.sort(key=lambda e: (e[0] is not None, e[0] or datetime.min))
        rows += [{"subject_id": sid, "time": t, "code": c, "numeric_value": v, "text_value": txt}
                 for t, c, v, txt in ev]
        end_of_day = admit.replace(hour=23, minute=59)
        labels["guo_los"].append({"subject_id": sid, "prediction_time": end_of_day, "boolean_value": sid % 2 == 0})
        labels["lab_hyperkalemia"].append({"subject_id": sid, "prediction_time": admit + timedelta(days=1, hours=2),
                                           "boolean_value": 4.2 + sid * 0.25 > 5.5})
        labels["new_hypertension"].append({"subject_id": sid, "prediction_time": end_of_day + timedelta(days=3),
                                           "boolean_value": sid % 4 == 1})
    data_schema = pa.schema([("subject_id", pa.int64()), ("time", pa.timestamp("us")), ("code", pa.string()),
                             ("numeric_value", pa.float32()), ("text_value", pa.large_string())])
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    half = len([r for r in rows if r["subject_id"] <= n_subjects // 2])
    pq.write_table(pa.Table.from_pylist(rows[:half], schema=data_schema), root / "data" / "0.parquet")
    pq.write_table(pa.Table.from_pylist(rows[half:], schema=data_schema), root / "data" / "1.parquet")
    pq.write_table(pa.Table.from_pylist([{"code": c, "description": d, "parent_codes": []} for c, d in CODES.items()],
                                        schema=pa.schema([("code", pa.string()), ("description", pa.string()),
                                                          ("parent_codes", pa.list_(pa.string()))])),
                   root / "metadata" / "codes.parquet")
    pq.write_table(pa.Table.from_pylist([{"subject_id": s, "split": "held_out" if s > 2 else "train"}
                                         for s in range(1, n_subjects + 1)]), root / "metadata" / "subject_splits.parquet")
    (root / "metadata" / "dataset.json").write_text(json.dumps({"dataset_name": "EHRSHOT-fixture",
                                                                "dataset_version": "0", "meds_version": "0.4.1"}))
    label_schema = pa.schema([("subject_id", pa.int64()), ("prediction_time", pa.timestamp("us")),
                              ("boolean_value", pa.bool_())])
    for task, recs in labels.items():
        (root / "labels" / task).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(recs, schema=label_schema), root / "labels" / task / "0.parquet")
    return root
