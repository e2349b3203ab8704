"""EHRSHOT from its MEDS release -> yes/no evaluation samples rendered in the project's markdown format.

Reading: the MEDS dataset (``data/*.parquet``, ``metadata/codes.parquet``, ``metadata/subject_splits.parquet``)
is converted once with ``meds_reader_convert`` (PyPI ``meds-reader``) into a cache next to nothing the user owns
(``~/.cache/ehr_r1/meds_reader/<hash>``) and read with ``meds_reader.SubjectDatabase``; labels are MEDS
``LabelSchema`` parquet files (``subject_id, prediction_time, boolean_value`` or ``integer_value``), one folder
per task (``labels/<task>/``), checked against the ``meds`` package's schema.

Prompt: the subject's events up to the prediction time (the last ``max_events`` timed ones plus the static facts)
mapped onto the project's event tables and rendered by ``data_pipeline.render.render_events`` (the markdown the
model was trained on): demographics -> Patient Demographics, visits -> Admissions, LOINC measurements -> Labotary
Test Events, SNOMED / ICD conditions -> Diagnoses, RxNorm / ATC drugs -> Prescriptions, CPT4 / ICD procedures ->
Procedures. Each binary task becomes a yes/no instruction; as in EHR-R1's EHRSHOT runs the lab tasks ask whether
the result comes back *normal* (``yes`` = normal). EHRSHOT's multilabel CheXpert task is not a yes/no task and is
not included.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.samples import SampleDataError, make_frame

log = logging.getLogger(__name__)

# task -> (family, instruction, yes means the MEDS label is True (False: yes = normal lab))
TASKS: dict[str, tuple[str, str, bool]] = {
    "guo_los": ("operational", "Will this hospital admission last 7 days or longer?", True),
    "guo_readmission": ("operational", "Will the patient be readmitted to the hospital within 30 days after this "
                                       "discharge?", True),
    "guo_icu": ("operational", "Will the patient be transferred to the intensive care unit during this "
                               "admission?", True),
    "lab_thrombocytopenia": ("lab", "Will the upcoming platelet count come back normal (>= 150 x10^9/L)?", False),
    "lab_hyperkalemia": ("lab", "Will the upcoming potassium result come back normal (<= 5.5 mmol/L)?", False),
    "lab_hypoglycemia": ("lab", "Will the upcoming glucose result come back normal (> 3.9 mmol/L)?", False),
    "lab_hyponatremia": ("lab", "Will the upcoming sodium result come back normal (> 135 mmol/L)?", False),
    "lab_anemia": ("lab", "Will the upcoming hemoglobin result come back normal (>= 120 g/L)?", False),
    **{f"new_{k}": ("new diagnosis", f"Will the patient be newly diagnosed with {v} within the next year?", True)
       for k, v in {"hypertension": "hypertension", "hyperlipidemia": "hyperlipidemia",
                    "pancan": "pancreatic cancer", "celiac": "celiac disease", "lupus": "lupus",
                    "acutemi": "acute myocardial infarction"}.items()},
}
ANSWER_SUFFIX = " Answer yes or no."
LAB_VOCABS = ("LOINC",)
DIAGNOSIS_VOCABS = ("SNOMED", "ICD10CM", "ICD9CM")
DRUG_VOCABS = ("RxNorm", "RxNorm Extension", "ATC", "NDC")
PROCEDURE_VOCABS = ("CPT4", "ICD10PCS", "ICD9Proc", "HCPCS")


def _time_text(t: datetime | None) -> str | None:
    return None if t is None else pd.Timestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def event_item(code: str, description: str, numeric: float | None, text: str | None) -> tuple[str, dict] | None:
    """(project event table, item) for one MEDS measurement; None for codes the prompt leaves out."""
    vocab = code.split("/", 1)[0]
    # MEDS stores float32: print its shortest repr (4.9, not 4.900000095367432)
    value = "nan" if numeric is None else str(float(str(np.float32(numeric))))
    if code.startswith("Visit/"):
        return "admissions", {"admission_type": description, "admission_location": "nan", "admission_info": "nan"}
    if vocab in LAB_VOCABS:
        return "labevents", {"item_name": description, "valuenum": value, "valueuom": text or "nan",
                             "ref_range_lower": "nan", "ref_range_upper": "nan", "flag": "nan", "comments": "nan"}
    if vocab in DIAGNOSIS_VOCABS:
        return "diagnoses_icd", {"diagnoses": description, "CCS Type": "nan"}
    if vocab in DRUG_VOCABS:
        return "prescriptions", {"drug": description, "ATC Type": "nan", "prod_strength": text or "nan",
                                 "dose_val_rx": value, "dose_unit_rx": "nan"}
    if vocab in PROCEDURE_VOCABS:
        return "procedures_icd", {"procedures": description, "CCS Type": "nan"}
    return None


def render_subject(events: Sequence, prediction_time: datetime, descriptions: dict[str, str],
                   max_events: int) -> str:
    """The markdown EHR of one subject up to (and including) ``prediction_time``."""
    from data_pipeline.render import render_events

    birth, gender, timed = None, "nan", []
    for e in events:
        if e.code == "MEDS_BIRTH":
            birth = e.time
        elif e.code.startswith("Gender/"):
            gender = e.code.split("/", 1)[1]
        elif e.time is not None and e.time <= prediction_time:
            timed.append(e)
    timed = timed[-max_events:]
    age = "nan" if birth is None else str(int((prediction_time - birth).days // 365.25))
    out: list[dict] = [{"file_name": "patients", "starttime": None, "items": [{"anchor_age": age, "gender": gender}]}]
    for e in timed:
        mapped = event_item(e.code, descriptions.get(e.code) or e.code, e.numeric_value, e.text_value)
        if mapped is None:
            continue
        table, item = mapped
        when = _time_text(e.time)
        last = out[-1]
        if last["file_name"] == table and last["starttime"] == when:
            last["items"].append(item)  # same table, same time: one event with a table of items
        else:
            out.append({"file_name": table, "starttime": when, "items": [item]})
    return render_events(out)


def _reader_db(root: Path, num_threads: int = 1):
    import meds_reader

    stamp = "|".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted((root / "data").rglob(
        "*.parquet")))
    key = hashlib.sha256(f"{root.resolve()}|{stamp}".encode()).hexdigest()[:16]
    cache = Path(os.environ.get("EHR_R1_MEDS_READER_CACHE", Path.home() / ".cache" / "ehr_r1" / "meds_reader")) / key
    if not (cache / "meds_reader.version").is_file():
        tmp = cache.with_name(cache.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        exe = shutil.which("meds_reader_convert") or str(Path(os.sys.executable).parent / "meds_reader_convert")
        log.info("converting %s for meds_reader -> %s", root, cache)
        proc = subprocess.run([exe, str(root), str(tmp), "--num_threads", str(num_threads)], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise SampleDataError(f"{root}: meds_reader_convert failed ({proc.stderr.strip()[-500:]}); is it a MEDS "
                                  "dataset (data/*.parquet, metadata/codes.parquet)?")
        shutil.rmtree(cache, ignore_errors=True)
        os.replace(tmp, cache)
    return meds_reader.SubjectDatabase(str(cache), num_threads=num_threads)


def read_labels(labels_dir: Path, tasks: Sequence[str]) -> dict[str, pd.DataFrame]:
    """``labels/<task>/*.parquet`` (or ``labels/<task>.parquet``) in MEDS LabelSchema, per known task."""
    import pyarrow.parquet as pq

    out = {}
    for task in tasks:
        files = sorted((labels_dir / task).glob("*.parquet")) if (labels_dir / task).is_dir() else \
            [labels_dir / f"{task}.parquet"] if (labels_dir / f"{task}.parquet").is_file() else []
        if not files:
            continue
        frame = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
        missing = [c for c in ("subject_id", "prediction_time") if c not in frame]
        value = next((c for c in ("boolean_value", "integer_value") if c in frame), None)
        if missing or value is None:
            raise SampleDataError(f"{files[0]}: not a MEDS LabelSchema file (needs subject_id, prediction_time and "
                                  f"boolean_value or integer_value; missing {missing or [value]})")
        bad = frame[frame[value].isna()]
        if len(bad):
            raise SampleDataError(f"{files[0]}: row {int(bad.index[0])} has no {value}; every label needs a value")
        frame["positive"] = frame[value].astype(bool) if value == "boolean_value" else frame[value].astype(int) > 0
        out[task] = frame.sort_values(["subject_id", "prediction_time"]).reset_index(drop=True)
    return out


def load_ehrshot(root: str | Path, *, labels: str | None = None, split: str | None = "held_out",
                 max_events: int = 400, tasks: Sequence[str] | None = None,
                 max_per_task: int | None = None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    root = Path(root).expanduser()
    for need in ("data", "metadata/codes.parquet"):
        if not (root / need).exists():
            raise SampleDataError(f"{root}: no {need}; point benchmark.paths at the unpacked EHRSHOT MEDS release")
    unknown = sorted(set(tasks or []) - set(TASKS))
    if unknown:
        raise SampleDataError(f"unknown EHRSHOT task(s) {unknown}; known: {sorted(TASKS)}")
    label_frames = read_labels(Path(labels).expanduser() if labels else root / "labels", list(tasks or TASKS))
    if not label_frames:
        raise SampleDataError(f"{labels or root / 'labels'}: no label files for the EHRSHOT tasks {sorted(TASKS)}")
    if split is not None:
        splits_path = root / "metadata" / "subject_splits.parquet"
        if not splits_path.is_file():
            raise SampleDataError(f"{splits_path}: missing; set benchmark.ehrshot.split: null to use every subject")
        splits = pq.read_table(splits_path).to_pandas()
        keep = set(splits.loc[splits["split"] == split, "subject_id"])
        label_frames = {t: f[f["subject_id"].isin(keep)].reset_index(drop=True) for t, f in label_frames.items()}
    if max_per_task is not None:
        label_frames = {t: f.head(max_per_task) for t, f in label_frames.items()}
    codes = pq.read_table(root / "metadata" / "codes.parquet").to_pandas()
    descriptions = dict(zip(codes["code"], codes["description"].fillna("")))
    db = _reader_db(root)
    rows = []
    for task, frame in label_frames.items():
        family, instruction, yes_is_positive = TASKS[task]
        for rec in frame.itertuples(index=False):
            sid = int(rec.subject_id)
            try:
                subject = db[sid]
            except (KeyError, IndexError):
                raise SampleDataError(f"labels of {task}: subject_id {sid} is not in {root / 'data'}") from None
            when = pd.Timestamp(rec.prediction_time).to_pydatetime()
            label = int(bool(rec.positive) == yes_is_positive)
            rows.append({"sample_id": f"ehrshot:{task}:{sid}:{when.isoformat()}", "benchmark": "ehrshot",
                         "task": task, "family": f"risk: {family}", "kind": "risk", "metric": "aucroc",
                         "input": render_subject(subject.events, when, descriptions, max_events),
                         "instruction": instruction + ANSWER_SUFFIX, "candidates": ["yes", "no"],
                         "target": ["yes" if label else "no"], "label": label, "grading": "",
                         "patient": str(sid)})
    if not rows:
        raise SampleDataError(f"{root}: no EHRSHOT samples (after the split={split!r} filter)")
    return make_frame(rows)
