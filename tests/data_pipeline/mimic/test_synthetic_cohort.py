"""The default synthetic cohort (200 patients, seed 0) has the real MIMIC-IV v2.2 layout, value formats,
coherent links between tables, and both classes for every EHR-R1 risk-prediction label.

The cohort is generated once for the module; every test reads the files back as raw strings."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pandas as pd
import pytest

from data_pipeline.mimic.schema import MAPPINGS, TABLES
from data_pipeline.mimic.synthetic import MANIFEST, generate_cohort, read_manifest

N_PATIENTS = 200


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return generate_cohort(tmp_path_factory.mktemp("synthetic") / "mimic", num_patients=N_PATIENTS, seed=0)


_CACHE: dict[tuple[str, str], pd.DataFrame] = {}


def raw(root, rel: str) -> pd.DataFrame:
    """A table as raw strings (empty field -> "")."""
    key = (str(root), rel)
    if key not in _CACHE:
        _CACHE[key] = pd.read_csv(root / f"{rel}.csv.gz", dtype=str, keep_default_na=False)
    return _CACHE[key]


def times(df: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_datetime(df[col].replace("", None), format="mixed")


# ---- layout -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", sorted(TABLES))
def test_every_table_present_with_schema_header(root, rel):
    with gzip.open(root / f"{rel}.csv.gz", "rt", encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split(",")
    assert header == list(TABLES[rel].column_names)


def test_procedureevents_keeps_v22_uppercase_headers(root):
    header = raw(root, "icu/procedureevents").columns.tolist()
    assert header[-2:] == ["ORIGINALAMOUNT", "ORIGINALRATE"]


@pytest.mark.parametrize("name", sorted(MAPPINGS))
def test_mapping_files_present(root, name):
    df = raw(root, f"mappings/{name}")
    assert df.columns.tolist() == list(MAPPINGS[name].columns)
    assert len(df) > 0
    assert not df.duplicated(list(MAPPINGS[name].key)).any()


@pytest.mark.parametrize("rel", ["hosp/admissions", "hosp/labevents", "icu/chartevents", "icu/inputevents",
                                 "ed/edstays", "note/discharge", "note/radiology", "hosp/prescriptions",
                                 "hosp/microbiologyevents", "hosp/transfers", "hosp/omr"])
def test_event_tables_are_not_empty(root, rel):
    assert len(raw(root, rel)) > 0


def test_manifest_counts_match_files(root):
    manifest = read_manifest(root)
    assert manifest["config"]["num_patients"] == N_PATIENTS
    assert (root / MANIFEST).is_file()
    for rel in ("hosp/patients", "hosp/labevents", "icu/chartevents"):
        assert manifest["rows"][f"{rel}.csv.gz"] == len(raw(root, rel))


# ---- value formats --------------------------------------------------------------------------------------------

DATETIME = re.compile(r"^(2\d{3})-(0[1-9]|1[0-2])-([0-2]\d|3[01]) ([01]\d|2[0-3]):[0-5]\d:[0-5]\d$")
DATE = re.compile(r"^(2\d{3})-(0[1-9]|1[0-2])-([0-2]\d|3[01])$")
INT = re.compile(r"^-?\d+$")

# column -> regex every non-empty value must match (checked in every table that has the column)
COLUMN_FORMATS = {
    "subject_id": r"^1\d{7}$",
    "hadm_id": r"^2\d{7}$",
    "icd_code": r"^[A-Z0-9]{3,7}$",
    "icd_version": r"^(9|10)$",
    "gender": r"^[FM]$",
    "anchor_year_group": r"^\d{4} - \d{4}$",
    "hospital_expire_flag": r"^[01]$",
    "flag": r"^abnormal$",
    "priority": r"^(ROUTINE|STAT)$",
    "interpretation": r"^[SRIP]$",
    "admit_provider_id": r"^P[A-Z0-9]{5}$",
    "order_provider_id": r"^P[A-Z0-9]{5}$",
    "ndc": r"^\d{11}$",
}
TABLE_FORMATS = {
    ("icu/icustays", "stay_id"): r"^3\d{7}$",
    ("ed/edstays", "stay_id"): r"^3\d{7}$",
    ("hosp/emar", "emar_id"): r"^1\d{7}-\d+$",
    ("hosp/poe", "poe_id"): r"^1\d{7}-\d+$",
    ("note/discharge", "note_id"): r"^1\d{7}-DS-\d+$",
    ("note/radiology", "note_id"): r"^1\d{7}-RR-\d+$",
    ("note/discharge", "note_type"): r"^DS$",
    ("note/radiology", "note_type"): r"^RR$",
}


@pytest.mark.parametrize("rel", sorted(TABLES))
def test_typed_columns_have_mimic_formats(root, rel):
    df = raw(root, rel)
    spec = TABLES[rel]
    for col, typ in spec.columns:
        values = df[col][df[col] != ""]
        if values.empty:
            continue
        if typ == "datetime":
            bad = values[~values.str.match(DATETIME)]
            years = values.str.slice(0, 4).astype(int)
            assert years.between(2110, 2210).all(), (rel, col, values[~years.between(2110, 2210)].head())
        elif typ == "date":
            bad = values[~values.str.match(DATE)]
            years = values.str.slice(0, 4).astype(int)
            assert years.between(2110, 2210).all(), (rel, col)
        elif typ == "int":
            bad = values[~values.str.match(INT)]
        elif typ == "float":
            bad = values[pd.to_numeric(values, errors="coerce").isna()]
        else:
            continue
        assert bad.empty, f"{rel}.{col} ({typ}): {bad.head().tolist()}"


@pytest.mark.parametrize("col,pattern", sorted(COLUMN_FORMATS.items()))
def test_column_value_formats(root, col, pattern):
    checked = 0
    for rel, spec in TABLES.items():
        if col not in spec.column_names:
            continue
        values = raw(root, rel)[col]
        values = values[values != ""]
        bad = values[~values.str.match(pattern)]
        assert bad.empty, f"{rel}.{col}: {bad.head().tolist()}"
        checked += len(values)
    assert checked > 0


@pytest.mark.parametrize("rel,col", sorted(TABLE_FORMATS))
def test_table_specific_formats(root, rel, col):
    values = raw(root, rel)[col]
    assert len(values) > 0
    bad = values[~values.str.match(TABLE_FORMATS[(rel, col)])]
    assert bad.empty, bad.head().tolist()


def test_icd_codes_have_no_dot_and_titles_exist(root):
    for rel in ("hosp/diagnoses_icd", "hosp/procedures_icd", "ed/diagnosis"):
        assert not raw(root, rel)["icd_code"].str.contains(".", regex=False).any()


def test_anchor_year_group_and_ids_unique(root):
    pat = raw(root, "hosp/patients")
    assert pat["subject_id"].is_unique
    assert raw(root, "hosp/admissions")["hadm_id"].is_unique
    assert raw(root, "icu/icustays")["stay_id"].is_unique
    assert raw(root, "ed/edstays")["stay_id"].is_unique
    assert "2011 - 2013" in set(pat["anchor_year_group"])
    for rel, col in (("hosp/labevents", "labevent_id"), ("hosp/emar", "emar_id"), ("hosp/poe", "poe_id"),
                     ("hosp/transfers", "transfer_id"), ("note/discharge", "note_id")):
        assert raw(root, rel)[col].is_unique, (rel, col)


# ---- coherence ------------------------------------------------------------------------------------------------


def test_admission_times_and_death_consistent(root):
    adm = raw(root, "hosp/admissions")
    admit, disch, death = times(adm, "admittime"), times(adm, "dischtime"), times(adm, "deathtime")
    assert (disch > admit).all()
    died = adm["hospital_expire_flag"] == "1"
    assert died.any() and (~died).any()
    assert (death[died] == disch[died]).all()
    assert death[~died].isna().all()
    assert (adm.loc[died, "discharge_location"] == "DIED").all()
    dod = adm["subject_id"].map(raw(root, "hosp/patients").set_index("subject_id")["dod"])
    assert (dod[died] == adm.loc[died, "deathtime"].str.slice(0, 10)).all()
    # nobody is admitted after their date of death, and survivors die (if ever) after the discharge day
    dod_t = pd.to_datetime(dod.replace("", None))
    assert not (admit > dod_t + pd.Timedelta(days=1)).any()
    assert (dod_t[~died].dropna() > disch[~died][dod_t[~died].notna()]).all()
    assert dod_t[~died].notna().any()


def test_ed_arrivals_link_to_admissions(root):
    ed = raw(root, "ed/edstays")
    adm = raw(root, "hosp/admissions").set_index("hadm_id")
    linked = ed[ed["hadm_id"] != ""]
    assert len(linked) > 0 and (ed["hadm_id"] == "").any()
    assert linked["hadm_id"].isin(adm.index).all()
    a = adm.loc[linked["hadm_id"]]
    assert (a["subject_id"].to_numpy() == linked["subject_id"].to_numpy()).all()
    assert (a["edregtime"].to_numpy() == linked["intime"].to_numpy()).all()
    assert (a["edouttime"].to_numpy() == linked["outtime"].to_numpy()).all()
    assert (linked["disposition"] == "ADMITTED").all()
    assert (ed.loc[ed["hadm_id"] == "", "disposition"] != "ADMITTED").all()
    # admissions without an ED visit have no ED times
    no_ed = ~adm.index.isin(linked["hadm_id"])
    assert (adm.loc[no_ed, "edregtime"] == "").all()
    assert set(raw(root, "ed/triage")["stay_id"]) == set(ed["stay_id"])


def _within_admission(root, rel: str, col: str) -> None:
    """Every row with a hadm_id lies between the ED registration (or admission) and the discharge."""
    df = raw(root, rel)
    df = df[df["hadm_id"] != ""]
    assert len(df) > 0
    a = raw(root, "hosp/admissions").set_index("hadm_id").loc[df["hadm_id"]].reset_index()
    t = times(df, col).to_numpy()
    start = np.minimum(times(a, "admittime").to_numpy(), times(a, "edregtime").fillna(times(a, "admittime")).to_numpy())
    end = times(a, "dischtime").to_numpy()
    assert ((t >= start) & (t <= end)).all(), rel
    assert (df["subject_id"].to_numpy() == a["subject_id"].to_numpy()).all()


@pytest.mark.parametrize("rel,col", [("hosp/labevents", "charttime"), ("hosp/prescriptions", "starttime"),
                                     ("hosp/prescriptions", "stoptime"), ("hosp/emar", "scheduletime"),
                                     ("hosp/microbiologyevents", "charttime"), ("icu/icustays", "intime"),
                                     ("icu/icustays", "outtime"), ("icu/chartevents", "charttime"),
                                     ("icu/inputevents", "starttime"), ("hosp/services", "transfertime")])
def test_rows_fall_within_their_admission(root, rel, col):
    _within_admission(root, rel, col)


def test_ed_only_labs_fall_within_an_ed_stay(root):
    lab = raw(root, "hosp/labevents")
    ed_labs = lab[lab["hadm_id"] == ""]
    assert len(ed_labs) > 0
    ed = raw(root, "ed/edstays")
    ed = ed[ed["hadm_id"] == ""]
    merged = ed_labs.merge(ed, on="subject_id")
    t = times(merged, "charttime")
    inside = (t >= times(merged, "intime")) & (t <= times(merged, "outtime"))
    assert set(merged.loc[inside, "labevent_id"]) == set(ed_labs["labevent_id"])


def test_lab_flag_matches_reference_range(root):
    lab = raw(root, "hosp/labevents")
    v = lab["valuenum"].astype(float)
    outside = (v < lab["ref_range_lower"].astype(float)) | (v > lab["ref_range_upper"].astype(float))
    assert ((lab["flag"] == "abnormal") == outside).all()
    assert outside.any() and (~outside).any()
    assert (lab["value"] == lab["valuenum"]).all()


@pytest.mark.parametrize("rel,dict_rel", [("hosp/diagnoses_icd", "hosp/d_icd_diagnoses"),
                                          ("hosp/procedures_icd", "hosp/d_icd_procedures"),
                                          ("ed/diagnosis", "hosp/d_icd_diagnoses")])
def test_every_icd_code_has_dictionary_and_ccs_rows(root, rel, dict_rel):
    used = set(zip(raw(root, rel)["icd_code"], raw(root, rel)["icd_version"]))
    d = raw(root, dict_rel)
    assert used <= set(zip(d["icd_code"], d["icd_version"]))
    ccs = raw(root, "mappings/ccs_procedures" if "procedures" in rel else "mappings/ccs_diagnoses")
    assert used <= set(zip(ccs["icd_code"], ccs["icd_version"]))


@pytest.mark.parametrize("rel", ["hosp/prescriptions", "ed/medrecon"])
def test_every_ndc_maps_to_atc(root, rel):
    used = set(raw(root, rel)["ndc"]) - {""}
    assert used and used <= set(raw(root, "mappings/ndc_atc")["ndc"])


def test_itemids_resolve_in_dictionaries(root):
    assert set(raw(root, "hosp/labevents")["itemid"]) <= set(raw(root, "hosp/d_labitems")["itemid"])
    items = raw(root, "icu/d_items")
    for table in ("chartevents", "inputevents", "outputevents", "procedureevents", "datetimeevents",
                  "ingredientevents"):
        used = set(raw(root, f"icu/{table}")["itemid"])
        assert used and used <= set(items.loc[items["linksto"] == table, "itemid"]), table
    assert set(raw(root, "hosp/hcpcsevents")["hcpcs_cd"]) <= set(raw(root, "hosp/d_hcpcs")["code"])


def test_medication_tables_share_ids(root):
    rx, ph, poe = raw(root, "hosp/prescriptions"), raw(root, "hosp/pharmacy"), raw(root, "hosp/poe")
    assert set(rx["pharmacy_id"]) == set(ph["pharmacy_id"])
    assert set(rx["poe_id"]) <= set(poe.loc[poe["order_type"] == "Medications", "poe_id"])
    emar = raw(root, "hosp/emar")
    assert set(emar["pharmacy_id"]) <= set(ph["pharmacy_id"])
    assert set(raw(root, "hosp/emar_detail")["emar_id"]) <= set(emar["emar_id"])
    assert set(raw(root, "hosp/poe_detail")["poe_id"]) <= set(poe["poe_id"])


def test_discharge_notes_one_per_admission_charted_at_the_discharge_date(root):
    notes = raw(root, "note/discharge")
    adm = raw(root, "hosp/admissions").set_index("hadm_id")
    assert sorted(notes["hadm_id"]) == sorted(adm.index)
    disch = times(adm.loc[notes["hadm_id"]].reset_index(), "dischtime")
    chart, store = times(notes, "charttime"), times(notes, "storetime")
    # MIMIC-IV-Note: charttime = discharge date 00:00:00, signed (storetime) later that day or after
    assert (chart.to_numpy() == disch.dt.normalize().to_numpy()).all()
    assert (notes["charttime"].str.endswith(" 00:00:00")).all()
    assert (store.to_numpy() > chart.to_numpy()).all()
    assert (store.to_numpy() > disch.to_numpy()).mean() > 0.5
    assert (store.to_numpy() < disch.to_numpy()).any()  # some are signed before the patient leaves
    assert notes["text"].str.contains("___", regex=False).all()
    assert notes["text"].str.contains(r"(?m)^Chief Complaint:", regex=True).all()
    assert notes["text"].str.contains("History of Present Illness:", regex=False).all()
    assert set(raw(root, "note/discharge_detail")["note_id"]) == set(notes["note_id"])


def test_radiology_notes_have_exam_names(root):
    rad, detail = raw(root, "note/radiology"), raw(root, "note/radiology_detail")
    names = detail[detail["field_name"] == "exam_name"]
    assert set(names["note_id"]) == set(rad["note_id"])
    assert names["field_value"].nunique() > 3
    assert (rad["hadm_id"] == "").any() and (rad["hadm_id"] != "").any()


def test_transfers_cover_ed_ward_icu_and_discharge(root):
    tr = raw(root, "hosp/transfers")
    assert {"ED", "admit", "transfer", "discharge"} <= set(tr["eventtype"])
    assert (tr.loc[tr["eventtype"] == "discharge", "careunit"] == "").all()
    assert tr["careunit"].str.contains("Intensive Care").any()
    adm = raw(root, "hosp/admissions")
    dis = tr[(tr["eventtype"] == "discharge") & (tr["hadm_id"] != "")].set_index("hadm_id")
    assert (dis.loc[adm["hadm_id"], "intime"].to_numpy() == adm["dischtime"].to_numpy()).all()


def test_icustays_los_is_fractional_days(root):
    icu = raw(root, "icu/icustays")
    los = icu["los"].astype(float)
    span = (times(icu, "outtime") - times(icu, "intime")).dt.total_seconds() / 86400
    assert np.allclose(los, span, atol=1 / 1440 + 1e-4)
    assert (los % 1 != 0).any()


def test_omr_and_micro_vocabulary(root):
    omr = raw(root, "hosp/omr")
    assert {"Blood Pressure", "Weight (Lbs)", "BMI (kg/m2)"} <= set(omr["result_name"])
    bp = omr.loc[omr["result_name"] == "Blood Pressure", "result_value"]
    assert bp.str.match(r"^\d{2,3}/\d{2,3}$").all()
    micro = raw(root, "hosp/microbiologyevents")
    assert {"S", "R"} <= set(micro["interpretation"])
    assert (micro["ab_name"] != "").any()


def test_conditions_drive_labs(root):
    """Patients with a sepsis diagnosis have higher lactate and WBC than the rest (the tasks carry signal)."""
    dx = raw(root, "hosp/diagnoses_icd")
    sepsis = set(dx.loc[dx["icd_code"].isin(["A419", "0389"]), "hadm_id"])
    lab = raw(root, "hosp/labevents")
    wbc = lab[lab["itemid"] == "51301"]
    is_sepsis = wbc["hadm_id"].isin(sepsis)
    assert is_sepsis.any() and (~is_sepsis).any()
    value = wbc["valuenum"].astype(float)
    assert value[is_sepsis].median() > value[~is_sepsis].median()
    assert (wbc.loc[is_sepsis, "flag"] == "abnormal").mean() > (wbc.loc[~is_sepsis, "flag"] == "abnormal").mean()


def test_severity_is_visible_before_the_outcome(root):
    """Outcomes follow severity, and severity shows in the early context: admitted ED patients have a more
    urgent triage acuity (1 = most urgent) and patients who die have more abnormal labs."""
    ed, triage = raw(root, "ed/edstays"), raw(root, "ed/triage").set_index("stay_id")
    acuity = ed["stay_id"].map(triage["acuity"]).astype(float)
    admitted = ed["hadm_id"] != ""
    assert acuity[admitted].mean() < acuity[~admitted].mean()
    adm, lab = raw(root, "hosp/admissions"), raw(root, "hosp/labevents")
    abnormal = (lab[lab["hadm_id"] != ""].assign(ab=lambda d: d["flag"] == "abnormal")
                .groupby("hadm_id")["ab"].mean())
    died = adm.set_index("hadm_id")["hospital_expire_flag"] == "1"
    assert abnormal[died[died].index].mean() > abnormal[died[~died].index].mean()


# ---- EHR-R1 risk labels: both classes, computed from the tables as the reference does -----------------------


def _risk_labels(root) -> dict[str, pd.Series]:
    adm = raw(root, "hosp/admissions").copy()
    for c in ("admittime", "dischtime"):
        adm[c] = times(adm, c)
    dod = pd.to_datetime(raw(root, "hosp/patients").set_index("subject_id")["dod"].replace("", None))
    ed = raw(root, "ed/edstays").copy()
    ed["intime"], ed["outtime"] = times(ed, "intime"), times(ed, "outtime")
    icu = raw(root, "icu/icustays").copy()
    icu["intime"], icu["outtime"] = times(icu, "intime"), times(icu, "outtime")
    notes = raw(root, "note/discharge").copy()
    notes["charttime"] = times(notes, "charttime")
    by_hadm = adm.set_index("hadm_id")
    out: dict[str, pd.Series] = {}
    linked = ed["hadm_id"] != ""
    out["ED_Hospitalization"] = linked
    ed_dod = ed["subject_id"].map(dod)
    ed_disch = ed["hadm_id"].map(by_hadm["dischtime"])
    out["ED_Inpatient_Mortality"] = linked & ed_dod.notna() & (ed_dod <= ed_disch)
    first_icu = icu.groupby("hadm_id")["intime"].min()
    gap = ed["hadm_id"].map(first_icu) - ed["outtime"]
    out["ED_ICU_Tranfer_12hour"] = linked & gap.notna() & (gap < pd.Timedelta(hours=12))
    eds = ed.sort_values(["subject_id", "intime"])
    nxt = eds.groupby("subject_id")["intime"].shift(-1)
    out["ED_Reattendance_3day"] = (nxt - eds["outtime"]) < pd.Timedelta(hours=72)
    adm_sorted = adm.sort_values("admittime")
    for days in (30, 60):
        flags = []
        for subject, t in zip(notes["subject_id"], notes["charttime"]):
            later = adm_sorted.loc[(adm_sorted["subject_id"] == subject) & (adm_sorted["admittime"] > t), "admittime"]
            flags.append(bool(len(later)) and (later.iloc[0] - t) < pd.Timedelta(days=days))
        out[f"Readmission_{days}day"] = pd.Series(flags)
    adm_dod = adm["subject_id"].map(dod)
    out["Inpatient_Mortality"] = adm_dod.notna() & (adm_dod <= adm["dischtime"])
    los = adm["dischtime"] - adm["admittime"]
    out["LengthOfStay_3day"] = los > pd.Timedelta(days=3)
    out["LengthOfStay_7day"] = los > pd.Timedelta(days=7)
    icu_dod = icu["subject_id"].map(dod)
    context_end = np.minimum(icu["intime"] + pd.Timedelta(hours=24), icu["outtime"])
    for n in (1, 2, 3, 7, 14):
        out[f"ICU_Mortality_{n}day"] = icu_dod.notna() & ((icu_dod - context_end) < pd.Timedelta(days=n))
    stay = icu["outtime"] - icu["intime"]
    out["ICU_Stay_7day"] = stay >= pd.Timedelta(days=7)
    out["ICU_Stay_14day"] = stay >= pd.Timedelta(days=14)
    icus = icu.sort_values(["hadm_id", "intime"])
    out["ICU_Readmission"] = icus.groupby("hadm_id")["intime"].shift(-1).notna()
    return out


RISK_TASKS = ["ED_Hospitalization", "ED_Inpatient_Mortality", "ED_ICU_Tranfer_12hour", "ED_Reattendance_3day",
              "Readmission_30day", "Readmission_60day", "Inpatient_Mortality", "LengthOfStay_3day",
              "LengthOfStay_7day", "ICU_Mortality_1day", "ICU_Mortality_2day", "ICU_Mortality_3day",
              "ICU_Mortality_7day", "ICU_Mortality_14day", "ICU_Stay_7day", "ICU_Stay_14day", "ICU_Readmission"]


@pytest.fixture(scope="module")
def risk_labels(root):
    return _risk_labels(root)


@pytest.mark.parametrize("task", RISK_TASKS)
def test_risk_label_has_both_classes(risk_labels, task):
    labels = risk_labels[task].astype(bool)
    positives = int(labels.sum())
    assert positives >= 3, f"{task}: only {positives} positives"
    assert positives <= len(labels) - 3, f"{task}: only {len(labels) - positives} negatives"


def test_ed_critical_outcome_has_both_classes(risk_labels):
    critical = risk_labels["ED_ICU_Tranfer_12hour"] | risk_labels["ED_Inpatient_Mortality"]
    assert critical.any() and (~critical).any()


def test_results_and_reports_are_stored_after_they_are_charted(root):
    lab = raw(root, "hosp/labevents")
    assert (times(lab, "storetime") > times(lab, "charttime")).all()
    rad = raw(root, "note/radiology")
    assert (times(rad, "storetime") > times(rad, "charttime")).all()


def test_ed_boarding_admission_and_icu_start_before_ed_outtime(root):
    ed = raw(root, "ed/edstays")
    ed = ed[ed["hadm_id"] != ""].set_index("hadm_id")
    adm = raw(root, "hosp/admissions").set_index("hadm_id").loc[ed.index]
    assert (times(adm, "admittime").to_numpy() < times(ed, "outtime").to_numpy()).all()
    icu = raw(root, "icu/icustays")
    first = icu.assign(t=times(icu, "intime")).groupby("hadm_id")["t"].min()
    linked = first[first.index.isin(ed.index)]
    assert (linked.to_numpy() < times(ed.loc[linked.index], "outtime").to_numpy()).any()
