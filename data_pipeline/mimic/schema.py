"""MIMIC-IV v2.2 table layout: every table the platform reads, its columns in file order and their types.

This module is the single source of truth shared by the synthetic generator (which writes exactly these
headers), the reader (which validates them) and the timeline builder (which orders rows by `time_field`).

Column type codes: ``int`` integer id/count, ``float`` measured number, ``str`` text or code,
``datetime`` ``YYYY-MM-DD HH:MM:SS``, ``date`` ``YYYY-MM-DD``. Ids are ``int`` even where a real file may
leave them empty (e.g. ``hadm_id`` of an outpatient lab); readers must tolerate missing values in any column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MODULES = ("hosp", "icu", "ed", "note")
#: Modules a cohort may lack. Their absence only removes the tasks that need them.
OPTIONAL_MODULES = ("icu", "ed", "note")


@dataclass(frozen=True)
class TableSpec:
    module: str
    name: str
    columns: tuple[tuple[str, str], ...]
    #: Column that places a row on the timeline; None for untimed rows (placed after their admission).
    time_field: str | None = None
    #: Dictionary / detail / mapping tables are joined into event rows, never events of their own.
    kind: str = "event"  # "event" | "dictionary" | "detail" | "ignored"
    required: bool = False
    #: For date-only time fields the timeline uses "<date> 00:00:00" (reference behaviour).
    notes: str = ""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    @property
    def relpath(self) -> str:
        return f"{self.module}/{self.name}"

    def dtype(self, column: str) -> str:
        return dict(self.columns)[column]


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    """Parse ``"subject_id:int hadm_id:int admittime:datetime"`` into ((name, type), ...)."""
    out = []
    for token in spec.split():
        name, _, typ = token.partition(":")
        out.append((name, typ or "str"))
    return tuple(out)


_T: list[TableSpec] = [
    # ---- hosp ---------------------------------------------------------------------------------
    TableSpec("hosp", "admissions", _cols(
        "subject_id:int hadm_id:int admittime:datetime dischtime:datetime deathtime:datetime admission_type "
        "admit_provider_id admission_location discharge_location insurance language marital_status race "
        "edregtime:datetime edouttime:datetime hospital_expire_flag:int"), "admittime", required=True),
    TableSpec("hosp", "d_hcpcs", _cols("code category:int long_description short_description"), kind="dictionary"),
    TableSpec("hosp", "d_icd_diagnoses", _cols("icd_code icd_version:int long_title"), kind="dictionary",
              required=True),
    TableSpec("hosp", "d_icd_procedures", _cols("icd_code icd_version:int long_title"), kind="dictionary",
              required=True),
    TableSpec("hosp", "d_labitems", _cols("itemid:int label fluid category"), kind="dictionary", required=True),
    TableSpec("hosp", "diagnoses_icd", _cols("subject_id:int hadm_id:int seq_num:int icd_code icd_version:int"),
              None, required=True),
    TableSpec("hosp", "drgcodes", _cols(
        "subject_id:int hadm_id:int drg_type drg_code description drg_severity:int drg_mortality:int"), None),
    TableSpec("hosp", "emar", _cols(
        "subject_id:int hadm_id:int emar_id emar_seq:int poe_id pharmacy_id:int enter_provider_id "
        "charttime:datetime medication event_txt scheduletime:datetime storetime:datetime"), "charttime"),
    TableSpec("hosp", "emar_detail", _cols(
        "subject_id:int emar_id emar_seq:int parent_field_ordinal:float administration_type pharmacy_id:int "
        "barcode_type reason_for_no_barcode complete_dose_not_given dose_due dose_due_unit dose_given "
        "dose_given_unit will_remainder_of_dose_be_given product_amount_given product_unit product_code "
        "product_description product_description_other prior_infusion_rate infusion_rate "
        "infusion_rate_adjustment infusion_rate_adjustment_amount infusion_rate_unit route infusion_complete "
        "completion_interval new_iv_bag_hung continued_infusion_in_other_location restart_interval side site "
        "non_formulary_visual_verification"), kind="detail"),
    TableSpec("hosp", "hcpcsevents", _cols(
        "subject_id:int hadm_id:int chartdate:date hcpcs_cd seq_num:int short_description"), "chartdate"),
    TableSpec("hosp", "labevents", _cols(
        "labevent_id:int subject_id:int hadm_id:int specimen_id:int itemid:int order_provider_id "
        "charttime:datetime storetime:datetime value valuenum:float valueuom ref_range_lower:float "
        "ref_range_upper:float flag priority comments"), "charttime"),
    TableSpec("hosp", "microbiologyevents", _cols(
        "microevent_id:int subject_id:int hadm_id:int micro_specimen_id:int order_provider_id chartdate:datetime "
        "charttime:datetime spec_itemid:int spec_type_desc test_seq:int storedate:datetime storetime:datetime "
        "test_itemid:int test_name org_itemid:int org_name isolate_num:int quantity ab_itemid:int ab_name "
        "dilution_text dilution_comparison dilution_value:float interpretation comments"), "charttime"),
    TableSpec("hosp", "omr", _cols("subject_id:int chartdate:date seq_num:int result_name result_value"),
              "chartdate"),
    TableSpec("hosp", "patients", _cols(
        "subject_id:int gender anchor_age:int anchor_year:int anchor_year_group dod:date"), None, required=True),
    TableSpec("hosp", "pharmacy", _cols(
        "subject_id:int hadm_id:int pharmacy_id:int poe_id starttime:datetime stoptime:datetime medication "
        "proc_type status entertime:datetime verifiedtime:datetime route frequency disp_sched "
        "infusion_type sliding_scale lockout_interval basal_rate:float one_hr_max doses_per_24_hrs:float "
        "duration:float duration_interval expiration_value:int expiration_unit expirationdate:datetime "
        "dispensation fill_quantity"), "entertime"),
    TableSpec("hosp", "poe", _cols(
        "poe_id poe_seq:int subject_id:int hadm_id:int ordertime:datetime order_type order_subtype "
        "transaction_type discontinue_of_poe_id discontinued_by_poe_id order_provider_id order_status"),
        "ordertime"),
    TableSpec("hosp", "poe_detail", _cols("poe_id poe_seq:int subject_id:int field_name field_value"),
              kind="detail"),
    TableSpec("hosp", "prescriptions", _cols(
        "subject_id:int hadm_id:int pharmacy_id:int poe_id poe_seq:int order_provider_id starttime:datetime "
        "stoptime:datetime drug_type drug formulary_drug_cd gsn ndc prod_strength form_rx dose_val_rx "
        "dose_unit_rx form_val_disp form_unit_disp doses_per_24_hrs:float route"), "starttime"),
    TableSpec("hosp", "procedures_icd", _cols(
        "subject_id:int hadm_id:int seq_num:int chartdate:date icd_code icd_version:int"), "chartdate"),
    TableSpec("hosp", "provider", _cols("provider_id"), kind="ignored"),
    TableSpec("hosp", "services", _cols(
        "subject_id:int hadm_id:int transfertime:datetime prev_service curr_service"), "transfertime"),
    TableSpec("hosp", "transfers", _cols(
        "subject_id:int hadm_id:int transfer_id:int eventtype careunit intime:datetime outtime:datetime"),
        "intime"),
    # ---- icu ----------------------------------------------------------------------------------
    TableSpec("icu", "caregiver", _cols("caregiver_id:int"), kind="ignored"),
    TableSpec("icu", "chartevents", _cols(
        "subject_id:int hadm_id:int stay_id:int caregiver_id:int charttime:datetime storetime:datetime "
        "itemid:int value valuenum:float valueuom warning:int"), "charttime"),
    TableSpec("icu", "d_items", _cols(
        "itemid:int label abbreviation linksto category unitname param_type lownormalvalue:float "
        "highnormalvalue:float"), kind="dictionary"),
    TableSpec("icu", "datetimeevents", _cols(
        "subject_id:int hadm_id:int stay_id:int caregiver_id:int charttime:datetime storetime:datetime "
        "itemid:int value:datetime valueuom warning:int"), "charttime"),
    TableSpec("icu", "icustays", _cols(
        "subject_id:int hadm_id:int stay_id:int first_careunit last_careunit intime:datetime outtime:datetime "
        "los:float"), "intime"),
    TableSpec("icu", "ingredientevents", _cols(
        "subject_id:int hadm_id:int stay_id:int caregiver_id:int starttime:datetime endtime:datetime "
        "storetime:datetime itemid:int amount:float amountuom rate:float rateuom orderid:int linkorderid:int "
        "statusdescription originalamount:float originalrate:float"), "starttime"),
    TableSpec("icu", "inputevents", _cols(
        "subject_id:int hadm_id:int stay_id:int caregiver_id:int starttime:datetime endtime:datetime "
        "storetime:datetime itemid:int amount:float amountuom rate:float rateuom orderid:int linkorderid:int "
        "ordercategoryname secondaryordercategoryname ordercomponenttypedescription ordercategorydescription "
        "patientweight:float totalamount:float totalamountuom isopenbag:int continueinnextdept:int "
        "statusdescription originalamount:float originalrate:float"), "starttime"),
    TableSpec("icu", "outputevents", _cols(
        "subject_id:int hadm_id:int stay_id:int caregiver_id:int charttime:datetime storetime:datetime "
        "itemid:int value:float valueuom"), "charttime"),
    TableSpec("icu", "procedureevents", _cols(
        "subject_id:int hadm_id:int stay_id:int caregiver_id:int starttime:datetime endtime:datetime "
        "storetime:datetime itemid:int value:float valueuom location locationcategory orderid:int "
        "linkorderid:int ordercategoryname ordercategorydescription patientweight:float isopenbag:int "
        "continueinnextdept:int statusdescription ORIGINALAMOUNT:float ORIGINALRATE:float"), "starttime",
        notes="v2.2 writes the last two headers upper-case; readers lower-case every header"),
    # ---- ed -----------------------------------------------------------------------------------
    TableSpec("ed", "edstays", _cols(
        "subject_id:int hadm_id:int stay_id:int intime:datetime outtime:datetime gender race arrival_transport "
        "disposition"), "intime"),
    TableSpec("ed", "triage", _cols(
        "subject_id:int stay_id:int temperature:float heartrate:float resprate:float o2sat:float sbp:float "
        "dbp:float pain acuity:float chiefcomplaint"), None,
        notes="untimed in the file: its time is edstays.intime + 1 s"),
    TableSpec("ed", "vitalsign", _cols(
        "subject_id:int stay_id:int charttime:datetime temperature:float heartrate:float resprate:float "
        "o2sat:float sbp:float dbp:float rhythm pain"), "charttime"),
    TableSpec("ed", "pyxis", _cols("subject_id:int stay_id:int charttime:datetime med_rn:int name gsn_rn:int gsn"),
              "charttime"),
    TableSpec("ed", "medrecon", _cols(
        "subject_id:int stay_id:int charttime:datetime name gsn ndc etc_rn:int etccode etcdescription"),
        "charttime"),
    TableSpec("ed", "diagnosis", _cols("subject_id:int stay_id:int seq_num:int icd_code icd_version:int icd_title"),
              None, notes="untimed in the file: its time is edstays.outtime"),
    # ---- note ---------------------------------------------------------------------------------
    TableSpec("note", "discharge", _cols(
        "note_id subject_id:int hadm_id:int note_type note_seq:int charttime:datetime storetime:datetime text"),
        "charttime"),
    TableSpec("note", "discharge_detail", _cols("note_id subject_id:int field_name field_value field_ordinal:int"),
              kind="detail"),
    TableSpec("note", "radiology", _cols(
        "note_id subject_id:int hadm_id:int note_type note_seq:int charttime:datetime storetime:datetime text"),
        "charttime"),
    TableSpec("note", "radiology_detail", _cols("note_id subject_id:int field_name field_value field_ordinal:int"),
              kind="detail"),
]

TABLES: dict[str, TableSpec] = {t.relpath: t for t in _T}
#: Tables whose rows become timeline events, keyed by bare table name (the event's ``file_name``).
EVENT_TABLES: dict[str, TableSpec] = {t.name: t for t in _T if t.kind == "event"}


@dataclass(frozen=True)
class MappingSpec:
    """Code-mapping tables that MIMIC-IV does not ship but the tasks need (ICD -> CCS, NDC -> ATC).

    They live in ``<root>/mappings/`` (or a separate folder named in the config). Real users build them from the
    public HCUP CCS and WHO ATC crosswalks; the synthetic generator writes coherent ones.
    """

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    value: str
    used_by: tuple[str, ...] = field(default_factory=tuple)


MAPPINGS: dict[str, MappingSpec] = {
    m.name: m
    for m in [
        MappingSpec("ccs_diagnoses", ("icd_code", "icd_version", "ccs_category", "ccs_name"),
                    ("icd_code", "icd_version"), "ccs_name", ("diagnoses_ccs", "diagnosis_ccs")),
        MappingSpec("ccs_procedures", ("icd_code", "icd_version", "ccs_category", "ccs_name"),
                    ("icd_code", "icd_version"), "ccs_name", ("procedures_ccs",)),
        MappingSpec("ndc_atc", ("ndc", "atc_code", "atc_name"), ("ndc",), "atc_name",
                    ("prescriptions_atc", "medrecon_atc")),
    ]
}
MAPPINGS_DIR = "mappings"
