"""A hand-made, tiny MIMIC-IV root for reader and timeline tests (every value chosen to exercise one rule).

Patient 10000001: an ED visit that leads to admission 20000001 (labs, ICU stay, procedures, diagnoses, drg,
discharge note with a chief complaint, radiology with exam name). Patient 10000002: one admission with only
untimed diagnoses after its labs, plus an outpatient OMR row and a diagnosis of an admission with no timed rows.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

from data_pipeline.mimic.schema import MAPPINGS, TABLES

P1, P2 = 10000001, 10000002
H1, H2, H3 = 20000001, 20000002, 20000003
S_ED, S_ICU = 30000001, 31000001

ROWS: dict[str, list[dict]] = {
    "hosp/patients": [
        {"subject_id": P1, "gender": "F", "anchor_age": 52, "anchor_year": 2180, "anchor_year_group": "2011 - 2013",
         "dod": ""},
        {"subject_id": P2, "gender": "M", "anchor_age": 70, "anchor_year": 2150, "anchor_year_group": "2008 - 2010",
         "dod": "2151-03-04"},
    ],
    "hosp/admissions": [
        {"subject_id": P1, "hadm_id": H1, "admittime": "2180-06-26 18:27:00", "dischtime": "2180-06-30 12:00:00",
         "admission_type": "EW EMER.", "admission_location": "EMERGENCY ROOM", "race": "WHITE",
         "hospital_expire_flag": 0},
        {"subject_id": P2, "hadm_id": H2, "admittime": "2150-01-01 08:00:00", "dischtime": "2150-01-05 08:00:00",
         "admission_type": "ELECTIVE", "admission_location": "PHYSICIAN REFERRAL", "hospital_expire_flag": 0},
    ],
    "hosp/d_icd_diagnoses": [
        {"icd_code": "I10", "icd_version": 10, "long_title": "Essential (primary) hypertension"},
        {"icd_code": "4019", "icd_version": 9, "long_title": "Unspecified essential hypertension"},
    ],
    "hosp/d_icd_procedures": [{"icd_code": "0QS734Z", "icd_version": 10, "long_title": "Reposition left femur"}],
    "hosp/d_labitems": [{"itemid": 51237, "label": "INR(PT)", "fluid": "Blood", "category": "Hematology"},
                        {"itemid": 50912, "label": "Creatinine", "fluid": "Blood", "category": "Chemistry"}],
    "hosp/diagnoses_icd": [
        {"subject_id": P1, "hadm_id": H1, "seq_num": 1, "icd_code": "I10", "icd_version": 10},
        {"subject_id": P2, "hadm_id": H2, "seq_num": 1, "icd_code": "4019", "icd_version": 9},
        {"subject_id": P2, "hadm_id": H3, "seq_num": 1, "icd_code": "9999", "icd_version": 9},
    ],
    "hosp/drgcodes": [{"subject_id": P1, "hadm_id": H1, "drg_type": "HCFA", "drg_code": "123",
                       "description": "HYPERTENSION", "drg_severity": "", "drg_mortality": ""}],
    "hosp/labevents": [
        {"labevent_id": 1, "subject_id": P1, "hadm_id": H1, "itemid": 51237, "charttime": "2180-06-27 05:10:00",
         "storetime": "2180-06-27 06:00:00.090", "value": "1.5", "valuenum": "1.50", "ref_range_lower": "0.9",
         "ref_range_upper": "1.1", "flag": "abnormal"},
        {"labevent_id": 2, "subject_id": P1, "hadm_id": H1, "itemid": 50912, "charttime": "2180-06-27 05:10:00",
         "value": "143", "valuenum": "143", "valueuom": "mg/dL", "comments": 'said "high"\nrecheck'},
        {"labevent_id": 3, "subject_id": P1, "hadm_id": H1, "itemid": 99999, "charttime": "2180-06-28 07:00:00",
         "value": "x", "valuenum": ""},
        {"labevent_id": 4, "subject_id": P2, "hadm_id": H2, "itemid": 50912, "charttime": "2150-01-02 06:00:00",
         "value": "1.1", "valuenum": "1.1"},
    ],
    "hosp/omr": [{"subject_id": P2, "chartdate": "2149-12-20", "seq_num": 1, "result_name": "BMI",
                  "result_value": "31.2"}],
    "hosp/procedures_icd": [{"subject_id": P1, "hadm_id": H1, "seq_num": 1, "chartdate": "2180-06-28",
                             "icd_code": "0QS734Z", "icd_version": 10}],
    "hosp/transfers": [
        {"subject_id": P1, "hadm_id": H1, "transfer_id": 1, "eventtype": "admit", "careunit": "Medicine",
         "intime": "2180-06-26 18:27:00", "outtime": "2180-06-27 01:00:00"},
    ],
    "hosp/prescriptions": [
        {"subject_id": P1, "hadm_id": H1, "pharmacy_id": 1, "starttime": "2180-06-27 08:00:00", "drug": "Aspirin",
         "ndc": "63739052301", "prod_strength": "81mg", "dose_val_rx": "81", "dose_unit_rx": "mg"},
        {"subject_id": P1, "hadm_id": H1, "pharmacy_id": 2, "starttime": "2180-06-27 09:00:00", "drug": "Heparin",
         "ndc": "409672704", "dose_val_rx": "5000"},
    ],
    "icu/d_items": [{"itemid": 220045, "label": "Heart Rate", "linksto": "chartevents"}],
    "icu/icustays": [{"subject_id": P1, "hadm_id": H1, "stay_id": S_ICU, "first_careunit": "MICU",
                      "last_careunit": "MICU", "intime": "2180-06-27 10:00:00", "outtime": "2180-06-28 10:00:00",
                      "los": "1.0"}],
    "icu/chartevents": [
        {"subject_id": P1, "hadm_id": H1, "stay_id": S_ICU, "charttime": "2180-06-27 11:00:00", "itemid": 220045,
         "value": "88", "valuenum": "88", "valueuom": "bpm", "warning": 0},
        {"subject_id": P1, "hadm_id": H1, "stay_id": S_ICU, "charttime": "2180-06-27 12:00:00", "itemid": 220045,
         "value": "90", "valuenum": "90", "valueuom": "bpm", "warning": 0},
    ],
    "ed/edstays": [{"subject_id": P1, "hadm_id": H1, "stay_id": S_ED, "intime": "2180-06-26 15:00:00",
                    "outtime": "2180-06-26 18:30:00", "gender": "F", "race": "WHITE"}],
    "ed/triage": [{"subject_id": P1, "stay_id": S_ED, "temperature": "98.6", "heartrate": "92", "pain": "5",
                   "acuity": "2", "chiefcomplaint": "Chest pain"}],
    "ed/diagnosis": [{"subject_id": P1, "stay_id": S_ED, "seq_num": 1, "icd_code": "I10", "icd_version": 10,
                      "icd_title": "HYPERTENSION"}],
    "note/discharge": [{"note_id": "10000001-DS-1", "subject_id": P1, "hadm_id": H1, "note_type": "DS",
                        "note_seq": 1, "charttime": "2180-06-30 12:00:00", "storetime": "2180-06-30 13:00:00",
                        "text": "Name: ___\n \nChief Complaint:\nChest pain \n \nHistory: ..."}],
    "note/radiology": [{"note_id": "10000001-RR-1", "subject_id": P1, "hadm_id": H1, "note_type": "RR",
                        "note_seq": 1, "charttime": "2180-06-27 14:00:00", "text": "CHEST X-RAY: normal"}],
    "note/radiology_detail": [
        {"note_id": "10000001-RR-1", "subject_id": P1, "field_name": "exam_name", "field_value": "CHEST (PA & LAT)",
         "field_ordinal": 1},
        {"note_id": "10000001-RR-1", "subject_id": P1, "field_name": "cpt_code", "field_value": "71020",
         "field_ordinal": 1},
    ],
    "mappings/ccs_diagnoses": [{"icd_code": "I10", "icd_version": 10, "ccs_category": 98,
                                "ccs_name": "Essential hypertension"}],
    "mappings/ccs_procedures": [{"icd_code": "0QS734Z", "icd_version": 10, "ccs_category": 146,
                                 "ccs_name": "Treatment of fracture"}],
    "mappings/ndc_atc": [{"ndc": "00409672704", "atc_code": "B01AB01", "atc_name": "heparin"}],
}

#: Tables the fixture writes with an empty body (header only) so the reader finds every required file.
EMPTY = ("hosp/emar", "hosp/hcpcsevents", "hosp/microbiologyevents", "hosp/pharmacy", "hosp/poe", "hosp/services",
         "icu/datetimeevents", "icu/ingredientevents", "icu/inputevents", "icu/outputevents",
         "icu/procedureevents", "ed/vitalsign", "ed/pyxis", "ed/medrecon")


def header_of(relpath: str) -> list[str]:
    if relpath.startswith("mappings/"):
        return list(MAPPINGS[relpath.split("/", 1)[1]].columns)
    return list(TABLES[relpath].column_names)


def csv_text(relpath: str, rows: list[dict], upper: bool = False) -> str:
    cols = header_of(relpath)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([c.upper() if upper else c for c in cols])
    for r in rows:
        w.writerow([r.get(c, "") for c in cols])
    return buf.getvalue()


def write_table(root: Path, relpath: str, rows: list[dict], fmt: str = "csv", upper: bool = False) -> Path:
    path = root / f"{relpath}.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = csv_text(relpath, rows, upper)
    if fmt == "csv":
        path.write_text(text)
    elif fmt == "csv.gz":
        path.write_bytes(gzip.compress(text.encode()))
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = header_of(relpath)
        data = {(c.upper() if upper else c): pa.array([None if r.get(c, "") == "" else str(r[c]) for r in rows],
                                                       pa.string()) for c in cols}
        pq.write_table(pa.table(data), path)
    else:
        raise ValueError(fmt)
    return path


def write_tiny_root(root: Path, fmt: str = "csv", upper: bool = False, modules=("hosp", "icu", "ed", "note"),
                    mappings: bool = True) -> Path:
    for relpath, rows in ROWS.items():
        module = relpath.split("/", 1)[0]
        if module == "mappings" and not mappings:
            continue
        if module != "mappings" and module not in modules:
            continue
        write_table(root, relpath, rows, fmt, upper)
    for relpath in EMPTY:
        if relpath.split("/", 1)[0] in modules:
            write_table(root, relpath, [], fmt, upper)
    return root


def staged(table: str, rows: list[dict], lookups: dict | None = None):
    """Rows of bare ``table`` as phase 1 would stage them (normalised strings + keys), without touching disk."""
    import pyarrow as pa

    from data_pipeline.mimic.schema import EVENT_TABLES, TABLES
    from data_pipeline.timeline.partition import normalise_batch

    spec = EVENT_TABLES.get(table) or next(t for t in TABLES.values() if t.name == table)
    cols = [c.lower() for c in spec.column_names]
    batch = pa.RecordBatch.from_pydict(
        {c: pa.array([None if r.get(c, "") in ("", None) else str(r[c]) for r in rows], pa.string()) for c in cols})
    return normalise_batch(spec, batch, 0, lookups or {}, Path(f"{table}.csv"))


def build_local(root: Path, work: Path, num_buckets: int = 2) -> dict[int, str]:
    """Phase 1 + phase 2 without Ray: ``{subject_id: events JSON}`` of every patient under ``root``."""
    return build_local_full(root, work, num_buckets)[0]


def build_local_full(root: Path, work: Path, num_buckets: int = 2) -> tuple[dict[int, str], dict[int, str]]:
    """Like :func:`build_local`, also returning ``{subject_id: markdown}``."""
    from data_pipeline.mimic.reader import SourceLayout, plan_source
    from data_pipeline.timeline.buckets import plan_buckets
    from data_pipeline.timeline.build import build_bucket
    from data_pipeline.timeline.partition import StageTask, read_bucket, stage_table, staged_tables

    plan = plan_source(SourceLayout(root))
    tables = staged_tables(plan)
    buckets = plan_buckets(plan, num_buckets)
    for rp in tables:
        stage_table(StageTask(rp, plan.tables[rp], work, buckets, 1 << 20, 1 << 20), plan)
    out: dict[int, str] = {}
    md: dict[int, str] = {}
    for b in range(num_buckets):
        parts = {rp.split("/", 1)[1]: read_bucket(work, rp, b) for rp in tables}
        built = build_bucket({k: v for k, v in parts.items() if v is not None}, with_markdown=True)
        sids = built.timelines.column("subject_id").to_pylist()
        assert built.markdown.column("subject_id").to_pylist() == sids
        out.update(zip(sids, built.timelines.column("events").to_pylist()))
        md.update(zip(sids, built.markdown.column("markdown").to_pylist()))
    return out, md
