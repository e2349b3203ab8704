"""A made-up UMLS in RRF format (MRCONSO, MRSTY, MRREL) for tests and the demo. NOT real UMLS content.

Everything here is invented: the CUIs (``CZ`` + 6 digits, a prefix real UMLS never uses), the source
abbreviation (``FAKEUMLS``) and the relations. Only the *strings* are chosen to match the synthetic MIMIC-IV
cohort's items (:mod:`data_pipeline.mimic.synthetic`: lab and chart item labels, drug names, ICD titles, CCS and
ATC names, radiology exams, chief complaints), so concept extraction, co-occurrence and path search have
something to find. The relation graph links each synthetic condition to the labs, drugs, procedures, exams and
complaints the generator ties to it, with the RELA names real UMLS sources use (``may_treat``,
``has_manifestation``, ...), both directions as in the real MRREL, plus a few ``concept_in_subset`` and
``has_contraindicated_drug`` shortcuts that the path search must ignore (the reference's exclusions).

The files have the exact column layout of a UMLS release (pipe-separated, trailing ``|``), so the loader in
:mod:`umls` reads them and a licensed release the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

SAB = "FAKEUMLS"
CUI_PREFIX = "CZ"
#: Semantic types (TUI, STY) used for each kind of synthetic item.
SEMTYPES = {
    "disease": ("T047", "Disease or Syndrome"),
    "symptom": ("T184", "Sign or Symptom"),
    "drug": ("T121", "Pharmacologic Substance"),
    "drug_class": ("T121", "Pharmacologic Substance"),
    "lab": ("T059", "Laboratory Procedure"),
    "attribute": ("T201", "Clinical Attribute"),
    "procedure": ("T061", "Therapeutic or Preventive Procedure"),
    "diagnostic": ("T060", "Diagnostic Procedure"),
    "category": ("T033", "Finding"),
    "organism": ("T007", "Bacterium"),
    "subset": ("T170", "Intellectual Product"),
}
#: (RELA, inverse RELA, REL) of the relation kinds the graph uses.
RELATIONS = {
    "treats": ("may_treat", "may_be_treated_by", "RO"),
    "manifests": ("manifestation_of", "has_manifestation", "RO"),
    "measured": ("associated_finding_of", "has_associated_finding", "RO"),
    "diagnoses": ("may_diagnose", "may_be_diagnosed_by", "RO"),
    "isa": ("isa", "inverse_isa", "CHD"),
    "member": ("has_member", "member_of", "RO"),
    "causes": ("cause_of", "due_to", "RO"),
    # present in the files, excluded by the path search (the reference's exclusion list)
    "subset": ("concept_in_subset", "subset_includes_concept", "RO"),
    "contraindicated": ("has_contraindicated_drug", "contraindicated_with_disease", "RO"),
}


class _Builder:
    def __init__(self) -> None:
        self.cui_of: dict[str, str] = {}          # concept key -> CUI
        self.strings: list[tuple[str, str, bool]] = []  # (cui, string, preferred)
        self.semtype: dict[str, tuple[str, str]] = {}
        self.edges: list[tuple[str, str, str, str]] = []  # (cui1, rel, rela, cui2)
        self._seen: set[tuple[str, str]] = set()

    def concept(self, key: str, kind: str, *names: str) -> str:
        """The CUI of ``key`` (created on first use) with ``names`` as its strings (first = preferred)."""
        if key not in self.cui_of:
            self.cui_of[key] = f"{CUI_PREFIX}{len(self.cui_of) + 1:06d}"
            self.semtype[self.cui_of[key]] = SEMTYPES[kind]
        cui = self.cui_of[key]
        for name in names:
            name = " ".join(str(name).split())
            if name and (cui, name) not in self._seen:
                self._seen.add((cui, name))
                self.strings.append((cui, name, not any(c == cui for c, _, _ in self.strings)))
        return cui

    def relate(self, a: str, kind: str, b: str) -> None:
        """``b`` <RELA> ``a`` and its inverse (MRREL reads "CUI2 has RELA CUI1"); both rows, as in real UMLS."""
        rela, inverse, rel = RELATIONS[kind]
        if a != b:
            self.edges.append((a, rel, rela, b))
            self.edges.append((b, "RO" if rel == "RO" else "PAR", inverse, a))


def build_fake_umls() -> _Builder:
    """The made-up vocabulary and relation graph, derived from the synthetic cohort's dictionaries."""
    from data_pipeline.mimic.synthetic.drugs import DRUGS
    from data_pipeline.mimic.synthetic.measurements import (ARTERIAL, ASSESSMENTS, DATETIME_ITEMS, EXAMS,
                                                            INGREDIENT_ITEMS, INPUT_ITEMS, LABS, ORGANISMS,
                                                            OUTPUT_ITEMS, PROCEDURE_ITEMS, SPECIMENS, VITALS)
    from data_pipeline.mimic.synthetic.vocabulary import CHRONIC, CONDITIONS, DIAGNOSES, PROCEDURES

    b = _Builder()
    for key, code in DIAGNOSES.items():
        cui = b.concept(f"dx:{key}", "disease", code.title10, code.title9, key.replace("_", " "))
        ccs = b.concept(f"ccs:{code.ccs_name}", "category", code.ccs_name)
        b.relate(ccs, "isa", cui)
    for chronic in CHRONIC:
        b.concept(f"dx:{chronic.key}", "disease", chronic.history)
    for key, code in PROCEDURES.items():
        cui = b.concept(f"px:{key}", "procedure", code.title10, code.title9)
        ccs = b.concept(f"ccs:{code.ccs_name}", "category", code.ccs_name)
        b.relate(ccs, "isa", cui)
    for key, drug in DRUGS.items():
        cui = b.concept(f"drug:{key}", "drug", drug.name, drug.pyxis, key.replace("_", " "))
        atc = b.concept(f"atc:{drug.atc_name}", "drug_class", drug.atc_name)
        b.relate(atc, "isa", cui)
        b.relate(b.concept(f"etc:{drug.etc[1]}", "drug_class", drug.etc[1]), "member", cui)
    for table in (LABS,):
        for key, m in table.items():
            b.concept(f"lab:{key}", "lab", m.label)
    for table in (VITALS, ASSESSMENTS, ARTERIAL):
        for key, m in table.items():
            b.concept(f"chart:{key}", "attribute", m.label)
    for key, row in INPUT_ITEMS.items():
        cui = b.concept(f"input:{key}", "drug", row[1])
        if key in DRUGS:
            b.relate(b.cui_of[f"drug:{key}"], "isa", cui)
    for group, kind in ((INGREDIENT_ITEMS, "attribute"), (OUTPUT_ITEMS, "attribute"),
                        (PROCEDURE_ITEMS, "procedure"), (DATETIME_ITEMS, "attribute")):
        for key, row in group.items():
            b.concept(f"{kind}:{row[1]}", kind, row[1])
    for key, (_, exam, *_rest) in EXAMS.items():
        b.concept(f"exam:{key}", "diagnostic", exam)
    for key, (_, spec, _, test, organisms) in SPECIMENS.items():
        test_cui = b.concept(f"micro:{key}", "lab", test, spec)
        for org in organisms:
            b.relate(test_cui, "diagnoses", b.concept(f"org:{org}", "organism", ORGANISMS[org][1]))
    for cond in CONDITIONS.values():
        dx = b.cui_of[f"dx:{cond.key}"]
        for complaint in cond.complaints:
            b.relate(dx, "manifests", b.concept(f"sx:{complaint.lower()}", "symptom", complaint))
        for lab, _ in cond.labs:
            if f"lab:{lab}" in b.cui_of:
                b.relate(dx, "measured", b.cui_of[f"lab:{lab}"])
        for vital, _ in cond.vitals:
            if f"chart:{vital}" in b.cui_of:
                b.relate(dx, "measured", b.cui_of[f"chart:{vital}"])
        for drug in (*cond.drugs, *cond.ed_meds):
            if f"drug:{drug}" in b.cui_of:
                b.relate(dx, "treats", b.cui_of[f"drug:{drug}"])
        for proc in cond.procedures:
            b.relate(dx, "treats", b.cui_of[f"px:{proc}"])
        for exam in cond.exams:
            b.relate(dx, "diagnoses", b.cui_of[f"exam:{exam}"])
        for micro in cond.micro:
            b.relate(dx, "diagnoses", b.cui_of[f"micro:{micro}"])
        for other in cond.secondary:
            b.relate(dx, "causes", b.cui_of[f"dx:{other}"])
    # shortcuts a correct search must not take: every condition "in" one subset, one contraindication pair
    subset = b.concept("subset:core", "subset", "Made-up core problem list subset")
    for cond in CONDITIONS.values():
        b.relate(subset, "subset", b.cui_of[f"dx:{cond.key}"])
    b.relate(b.cui_of["dx:gi_bleed"], "contraindicated", b.cui_of["drug:heparin_iv"])
    return b


def write_fake_umls(out_dir: str | Path) -> Path:
    """Write ``MRCONSO.RRF``, ``MRSTY.RRF``, ``MRREL.RRF`` and a README into ``out_dir`` (atomic per file)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    b = build_fake_umls()
    conso = []
    for n, (cui, name, preferred) in enumerate(b.strings, start=1):
        # CUI|LAT|TS|LUI|STT|SUI|ISPREF|AUI|SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF|
        conso.append(f"{cui}|ENG|{'P' if preferred else 'S'}|LZ{n:07d}|PF|SZ{n:07d}|{'Y' if preferred else 'N'}|"
                     f"AZ{n:07d}|||{cui}|{SAB}|{'PT' if preferred else 'SY'}|{cui}|{name}|0|N||")
    sty = [f"{cui}|{tui}|A0.0.0|{name}|ATZ{n:07d}||" for n, (cui, (tui, name)) in enumerate(b.semtype.items(), 1)]
    rel = [f"{c1}|A{c1}|CUI|{r}|{c2}|A{c2}|CUI|{rela}|RZ{n:07d}||{SAB}|{SAB}|||N||"
           for n, (c1, r, rela, c2) in enumerate(b.edges, start=1)]
    for name, lines in (("MRCONSO.RRF", conso), ("MRSTY.RRF", sty), ("MRREL.RRF", rel)):
        tmp = out / f".{name}.tmp-{os.getpid()}"
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, out / name)
    (out / "README.txt").write_text(
        "MADE-UP UMLS for tests and demos: invented CUIs (CZ######), source FAKEUMLS, invented relations.\n"
        "Not UMLS content. Generated by data_pipeline.thinking_graph.fake_umls.write_fake_umls.\n")
    return out
