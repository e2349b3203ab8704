"""Dictionary tables (d_*, provider, caregiver) and the code mappings (ICD -> CCS, NDC -> ATC) of the cohort.

They list every code the generator can emit, so every ICD/NDC/itemid in an event table resolves.
"""

from __future__ import annotations

from typing import Iterator

from data_pipeline.mimic.synthetic.drugs import DRUGS
from data_pipeline.mimic.synthetic.hosp_core import HCPCS
from data_pipeline.mimic.synthetic.measurements import (ARTERIAL, ASSESSMENTS, DATETIME_ITEMS, GCS, INGREDIENT_ITEMS,
                                                        INPUT_ITEMS, LABS, OUTPUT_ITEMS, PROCEDURE_ITEMS, RHYTHM_ITEM,
                                                        VITALS)
from data_pipeline.mimic.synthetic.vocabulary import DIAGNOSES, PROCEDURES, Code


def _icd_rows(codes: dict[str, Code]) -> list[tuple[str, int, str, int, str]]:
    """(icd_code, icd_version, long_title, ccs_category, ccs_name), unique by (code, version), sorted."""
    rows: dict[tuple[str, int], tuple[str, int, str, int, str]] = {}
    for c in codes.values():
        rows.setdefault((c.icd9, 9), (c.icd9, 9, c.title9, c.ccs, c.ccs_name))
        rows.setdefault((c.icd10, 10), (c.icd10, 10, c.title10, c.ccs, c.ccs_name))
    return [rows[k] for k in sorted(rows, key=lambda k: (k[1], k[0]))]


def dictionary_rows(providers: tuple[str, ...], caregivers: tuple[int, ...]) -> Iterator[tuple[str, dict]]:
    """(relpath, row) for every dictionary / ignored table."""
    for code, category, long_desc, short_desc in sorted(HCPCS):
        yield "hosp/d_hcpcs", dict(code=code, category=category, long_description=long_desc,
                                   short_description=short_desc)
    for code, version, title, _, _ in _icd_rows(DIAGNOSES):
        yield "hosp/d_icd_diagnoses", dict(icd_code=code, icd_version=version, long_title=title)
    for code, version, title, _, _ in _icd_rows(PROCEDURES):
        yield "hosp/d_icd_procedures", dict(icd_code=code, icd_version=version, long_title=title)
    for m in sorted(LABS.values(), key=lambda m: m.itemid):
        yield "hosp/d_labitems", dict(itemid=m.itemid, label=m.label, fluid=m.fluid, category=m.category)
    for pid in sorted(providers):
        yield "hosp/provider", dict(provider_id=pid)
    for cid in sorted(caregivers):
        yield "icu/caregiver", dict(caregiver_id=cid)
    for row in sorted(_d_items(), key=lambda r: r["itemid"]):
        yield "icu/d_items", row


def _d_items() -> list[dict]:
    rows = []
    for m in list(VITALS.values()) + list(ASSESSMENTS.values()) + list(ARTERIAL.values()):
        rows.append(dict(itemid=m.itemid, label=m.label, abbreviation=m.abbreviation, linksto="chartevents",
                         category=m.category, unitname=m.unit, param_type="Numeric", lownormalvalue=m.lo,
                         highnormalvalue=m.hi))
    for itemid, label, _ in GCS:
        rows.append(dict(itemid=itemid, label=label, abbreviation=label, linksto="chartevents",
                         category="Neurological", param_type="Text"))
    rows.append(dict(itemid=RHYTHM_ITEM[0], label=RHYTHM_ITEM[1], abbreviation=RHYTHM_ITEM[1], linksto="chartevents",
                     category="Routine Vital Signs", param_type="Text"))
    for itemid, label, unit, category, _, _, _ in INPUT_ITEMS.values():
        rows.append(dict(itemid=itemid, label=label, abbreviation=label, linksto="inputevents", category=category,
                         unitname=unit, param_type="Solution"))
    for itemid, label, unit, category in INGREDIENT_ITEMS.values():
        rows.append(dict(itemid=itemid, label=label, abbreviation=label, linksto="ingredientevents",
                         category=category, unitname=unit, param_type="Ingredient"))
    for itemid, label, unit in OUTPUT_ITEMS.values():
        rows.append(dict(itemid=itemid, label=label, abbreviation=label, linksto="outputevents", category="Output",
                         unitname=unit, param_type="Numeric"))
    for itemid, label, unit, category, _, _, _ in PROCEDURE_ITEMS.values():
        rows.append(dict(itemid=itemid, label=label, abbreviation=label, linksto="procedureevents",
                         category=category, unitname=unit if unit != "None" else None, param_type="Processes"))
    for itemid, label, category in DATETIME_ITEMS.values():
        rows.append(dict(itemid=itemid, label=label, abbreviation=label, linksto="datetimeevents",
                         category=category, param_type="Date and time"))
    return rows


def mapping_rows() -> Iterator[tuple[str, dict]]:
    """(mapping name, row) for ``mappings/{ccs_diagnoses,ccs_procedures,ndc_atc}.csv.gz``."""
    for code, version, _, ccs, name in _icd_rows(DIAGNOSES):
        yield "ccs_diagnoses", dict(icd_code=code, icd_version=version, ccs_category=ccs, ccs_name=name)
    for code, version, _, ccs, name in _icd_rows(PROCEDURES):
        yield "ccs_procedures", dict(icd_code=code, icd_version=version, ccs_category=ccs, ccs_name=name)
    seen = {}
    for d in DRUGS.values():
        seen.setdefault(d.ndc, (d.atc_code, d.atc_name))
    for ndc in sorted(seen):
        yield "ndc_atc", dict(ndc=ndc, atc_code=seen[ndc][0], atc_name=seen[ndc][1])
