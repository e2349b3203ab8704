"""Label rule and 24 h history cut of every decision-making task, on the hand-made example patient."""

from __future__ import annotations

import pytest

from data_pipeline.tasks import get_task, task_names
from data_pipeline.tasks.assembly import sample_context
from data_pipeline.tasks.decision_making import item_labels, split_values
from data_pipeline.tasks.examples import IDX, ev, example_timeline
from data_pipeline.tasks.history import TimelineIndex
from data_pipeline.events import PatientTimeline

I = IDX
ED_WINDOW = [I["edstays"], I["triage"], I["vitalsign"], I["pyxis"], I["medrecon"]]

# task, anchor, labels, shown context (timeline indices), admission header index
CASES = [
    ("admissions", I["admission"], ["EW EMER."], ED_WINDOW + [I["lab_ed"]], -1),
    ("omr", I["omr"], ["Blood Pressure"], [], -1),
    ("procedures_icd", I["procedures_icd"], ["Insertion of central venous line"],
     list(range(I["icustays"], I["procedureevents"] + 1)), I["admission"]),
    ("procedures_ccs", I["procedures_icd"], ["Other vascular catheterization"],
     list(range(I["icustays"], I["procedureevents"] + 1)), I["admission"]),
    # untimed: predicted at dischtime; the discharge note (2 h before) is banned
    ("diagnoses_icd", I["diagnoses_icd"], ["Sepsis, unspecified organism", "Pneumonia, unspecified organism"],
     [I["lab_day6"]], I["admission"]),
    ("diagnoses_ccs", I["diagnoses_icd"], ["Septicemia", "Pneumonia"], [I["lab_day6"]], I["admission"]),
    ("labevents", I["lab_ed"], ["Glucose", "Sodium"], ED_WINDOW, -1),
    ("microbiologyevents", I["micro"], ["Blood Culture, Routine"],
     ED_WINDOW + [I["lab_ed"]] + list(range(I["transfers"], I["emar"] + 1)), I["admission"]),
    ("services", I["services"], ["MED"], ED_WINDOW + [I["lab_ed"], I["transfers"], I["radiology"],
                                                      I["ed_diagnosis"]], I["admission"]),
    # the admission shares the transfer's minute: not before the prediction time, so no header
    ("transfers", I["transfers"], ["Medicine"], ED_WINDOW + [I["lab_ed"]], -1),
    ("emar", I["emar"], ["Heparin"], ED_WINDOW + [I["lab_ed"]] + list(range(I["transfers"], I["emar"])),
     I["admission"]),
    ("poe", I["poe"], ["Medications", "Lab"], ED_WINDOW + [I["lab_ed"]] + list(range(I["transfers"], I["poe"])),
     I["admission"]),
    ("prescriptions", I["prescriptions"], ["Heparin", "Aspirin"],
     ED_WINDOW + [I["lab_ed"]] + list(range(I["transfers"], I["prescriptions"])), I["admission"]),
    # the unmapped ATC value ("nan") is dropped, never printed as a label
    ("prescriptions_atc", I["prescriptions"], ["HEPARIN GROUP"],
     ED_WINDOW + [I["lab_ed"]] + list(range(I["transfers"], I["prescriptions"])), I["admission"]),
    ("radiology", I["radiology"], ["CHEST (PA & LAT)"], ED_WINDOW + [I["lab_ed"], I["transfers"]], I["admission"]),
    ("discharge", I["note"], ["Discharge summary text."], [I["lab_day6"]], I["admission"]),
    ("medrecon", I["medrecon"], ["Lisinopril"], ED_WINDOW[:-1], -1),
    ("medrecon_atc", I["medrecon"], ["ACE INHIBITORS, PLAIN"], ED_WINDOW[:-1], -1),
    ("pyxis", I["pyxis"], ["Acetaminophen", "Ondansetron"], ED_WINDOW[:3], -1),
    ("diagnosis", I["ed_diagnosis"], ["Chest pain, unspecified"],
     ED_WINDOW + [I["lab_ed"], I["transfers"], I["radiology"]], I["admission"]),
    ("diagnosis_ccs", I["ed_diagnosis"], ["Nonspecific chest pain"],
     ED_WINDOW + [I["lab_ed"], I["transfers"], I["radiology"]], I["admission"]),
    # the window holds events starting less than 24 h before the anchor: exactly 24 h before is out
    ("chartevents", I["chartevents"], ["Heart Rate", "O2 saturation pulseoxymetry"],
     list(range(I["transfers"], I["chartevents"])), I["admission"]),
    # inputevents starts at the same minute as the anchor: not yet visible
    ("ingredientevents", I["ingredientevents"], ["Free Water"],
     list(range(I["radiology"], I["inputevents"])), I["admission"]),
    ("inputevents", I["inputevents"], ["NaCl 0.9%"], list(range(I["radiology"], I["inputevents"])), I["admission"]),
    ("outputevents", I["outputevents"], ["Foley"], list(range(I["ed_diagnosis"], I["outputevents"])), I["admission"]),
    ("datetimeevents", I["datetimeevents"], ["Last dialysis"],
     list(range(I["services"], I["datetimeevents"])), I["admission"]),
    ("procedureevents", I["procedureevents"], ["Arterial Line"],
     list(range(I["poe"], I["procedureevents"])), I["admission"]),
    ("next_event", I["micro"], ["microbiologyevents"],
     ED_WINDOW + [I["lab_ed"]] + list(range(I["transfers"], I["emar"] + 1)), I["admission"]),
]


def test_every_decision_making_task_has_a_case():
    assert sorted({c[0] for c in CASES}) == sorted(task_names("decision_making"))
    assert len(task_names("decision_making")) == 28


@pytest.mark.parametrize("task,anchor,labels,context,header", CASES, ids=[c[0] for c in CASES])
def test_label_and_history_cut(task, anchor, labels, context, header):
    tl = example_timeline()
    ix = TimelineIndex(tl)
    spec = get_task(task)
    by_anchor = {inst.anchor: inst for inst in spec.generate(ix)}
    inst = by_anchor[anchor]
    assert list(inst.labels) == labels
    assert sample_context(ix, inst, spec) == context
    assert inst.admissions_id == header
    assert inst.last_discharge_id == (I["old_note"] if anchor > I["old_note"] else -1)


@pytest.mark.parametrize("task,table", [("labevents", "labevents"), ("prescriptions", "prescriptions"),
                                        ("chartevents", "chartevents"), ("discharge", "discharge")])
def test_anchor_table_events_only(task, table):
    ix = TimelineIndex(example_timeline())
    anchors = [inst.anchor for inst in get_task(task).generate(ix)]
    assert anchors and all(ix.events[a].file_name == table for a in anchors)


def test_next_event_anchors_every_timed_rendered_event():
    ix = TimelineIndex(example_timeline())
    insts = list(get_task("next_event").generate(ix))
    # not the demographics (0) and not the untimed diagnoses (billed after discharge, no time to anchor at)
    assert [i.anchor for i in insts] == [k for k in range(1, len(ix.events)) if k != IDX["diagnoses_icd"]]
    assert all(i.labels == (ix.events[i.anchor].file_name,) for i in insts)


def test_next_event_skips_tables_rendered_empty_and_its_candidates_are_its_anchor_tables():
    from data_pipeline.events import PatientTimeline
    from data_pipeline.tasks.candidates import event_types, make_candidates
    from data_pipeline.tasks.decision_making import NEXT_EVENT_TABLES

    tl = example_timeline()
    tl = PatientTimeline(tl.subject_id, [*tl.events[:3], ev("hcpcsevents", "2179-12-16 00:00:00", None, {}),
                                         ev("drgcodes", None, "100", {}), *tl.events[3:]])
    anchors = {tl.events[i.anchor].file_name for i in get_task("next_event").generate(TimelineIndex(tl))}
    assert not anchors & {"hcpcsevents", "drgcodes", "patients", "diagnoses_icd"}
    assert anchors <= set(NEXT_EVENT_TABLES)
    assert set(event_types()) == set(NEXT_EVENT_TABLES)
    assert sorted(make_candidates(get_task("next_event"), ["labevents"], None, 0)) == sorted(NEXT_EVENT_TABLES)


@pytest.mark.parametrize("rows,key,fallback,expected", [
    ([{"drug": "A"}, {"drug": "B"}, {"drug": "A"}], "drug", None, ["A", "B"]),      # dedup, order kept
    ([{"drug": "nan"}, {"drug": "None"}, {"drug": " "}], "drug", None, []),          # missing/unmapped dropped
    ([{"careunit": "nan", "eventtype": "discharge"}], "careunit", "eventtype", ["discharge"]),
    ([{"careunit": "MICU", "eventtype": "transfer"}], "careunit", "eventtype", ["MICU"]),
    ([{"exam_name": "['CT HEAD', 'CHEST']"}, {"exam_name": "['CT HEAD']"}], "exam_name", None, ["CT HEAD", "CHEST"]),
    ([{}], "drug", None, []),
])
def test_item_labels(rows, key, fallback, expected):
    assert item_labels(rows, key, fallback) == expected


@pytest.mark.parametrize("value,expected", [("['A', 'B']", ["A", "B"]), ("[not python", ["[not python"]),
                                            ("x", ["x"]), (None, [])])
def test_split_values(value, expected):
    assert split_values(value) == expected


def test_chartevents_keeps_only_anchors_with_fewer_than_10_labels():
    rows = [{"item_name": f"item {k}"} for k in range(10)]
    tl = PatientTimeline(1, [ev("patients", None, None, {"gender": "M", "anchor_age": 50}),
                             ev("chartevents", "2180-01-01 10:00:00", "1", *rows[:9]),
                             ev("chartevents", "2180-01-01 11:00:00", "1", *rows)])
    anchors = [i.anchor for i in get_task("chartevents").generate(TimelineIndex(tl))]
    assert anchors == [1]


def test_anchor_without_labels_yields_no_sample():
    tl = PatientTimeline(1, [ev("patients", None, None, {}), ev("prescriptions", "2180-01-01 10:00:00", "1",
                                                                {"drug": "Heparin", "ATC Type": "None"})])
    ix = TimelineIndex(tl)
    assert list(get_task("prescriptions_atc").generate(ix)) == []
    assert len(list(get_task("prescriptions").generate(ix))) == 1
