"""Generic leakage check over every task: nothing at or after the prediction time reaches the input."""

from __future__ import annotations

import re

import pytest

from data_pipeline.events import PatientTimeline, parse_time
from data_pipeline.tasks import all_tasks, generate_instances, get_task
from data_pipeline.tasks.assembly import assemble_parts
from data_pipeline.tasks.examples import ev, example_timeline
from data_pipeline.tasks.history import TimelineIndex


def tagged_renderer(ix: TimelineIndex):
    """Render event k as ``<<k>>`` so the input text tells exactly which events it shows."""
    pos = {id(e): k for k, e in enumerate(ix.events)}
    return lambda e: f"<<{pos[id(e)]}>>"


def messy_timeline() -> PatientTimeline:
    """Ties at the anchor minute, an untimed diagnoses event, a note written before dischtime, a late lab."""
    return PatientTimeline(2, [
        ev("patients", None, None, {"gender": "M", "anchor_age": 70, "dod": "2180-05-03"}),
        ev("edstays", "2180-05-01 06:00:00", "7", {"intime": "2180-05-01 06:00:00", "outtime": "2180-05-01 09:00:00"}),
        ev("labevents", "2180-05-01 07:00:00", "7", {"item_name": "Troponin"}),
        ev("admissions", "2180-05-01 08:00:00", "7", {"admittime": "2180-05-01 08:00:00",
                                                      "dischtime": "2180-05-03 18:00:00", "admission_type": "EW"}),
        ev("prescriptions", "2180-05-01 08:00:00", "7", {"drug": "Aspirin"}),
        ev("labevents", "2180-05-01 08:00:00", "7", {"item_name": "Lactate"}),
        ev("icustays", "2180-05-01 09:30:00", "7", {"intime": "2180-05-01 09:30:00",
                                                    "outtime": "2180-05-03 12:00:00"}),
        ev("chartevents", "2180-05-01 10:00:00", "7", {"item_name": "Heart Rate"}, end="2180-05-01 11:00:00"),
        ev("chartevents", "2180-05-02 09:30:00", "7", {"item_name": "Heart Rate"}),
        ev("discharge", "2180-05-03 00:00:00", "7", {"text": "Died of sepsis."}),
        ev("labevents", "2180-05-03 06:00:00", "7", {"item_name": "Sodium"}),
        ev("diagnoses_icd", None, "7", {"diagnoses": "Sepsis", "CCS Type": "Septicemia"}),
    ])


TIMELINES = [example_timeline(), example_timeline(dod="2180-01-06", icu_intime="2180-01-02 01:00:00"),
             messy_timeline()]


@pytest.mark.parametrize("timeline", TIMELINES, ids=["example", "example-died", "messy"])
def test_no_event_at_or_after_prediction_time_reaches_the_input(timeline):
    ix = TimelineIndex(timeline)
    instances = generate_instances(timeline)
    assert {i.task for i in instances}  # the timelines do produce samples
    for inst in instances:
        spec = get_task(inst.task)
        t = parse_time(inst.prediction_time)
        parts = assemble_parts(ix, inst, spec, render=tagged_renderer(ix))
        shown = [int(k) for k in re.findall(r"<<(\d+)>>", parts.text())]
        for k in shown:
            if (k == inst.anchor and inst.anchor_in_context) or ix.events[k].file_name == "patients":
                continue  # the pre-discharge-note window shows its note; demographics are timeless
            assert ix.ends[k] is not None and ix.ends[k] < t, (inst.task, inst.anchor, k)
            if k != inst.last_discharge_id:  # the previous admission's note is history, not this stay's note
                assert ix.events[k].file_name not in spec.banned, (inst.task, k)
            else:
                assert ix.hadms[k] != inst.hadm_id
        if spec.kind == "decision_making":
            assert inst.anchor not in shown, inst.task  # the predicted event itself is never shown
        else:
            # nothing after the anchor's window end either
            assert all(k < inst.context_end or k in (inst.admissions_id, inst.last_discharge_id, 0) for k in shown)


def test_every_task_is_exercised_by_the_leakage_timelines():
    seen = {i.task for tl in TIMELINES for i in generate_instances(tl)}
    assert seen == {t.name for t in all_tasks()}


def test_untimed_diagnoses_are_predicted_at_discharge_without_the_note():
    tl = messy_timeline()
    ix = TimelineIndex(tl)
    inst = next(iter(get_task("diagnoses_icd").generate(ix)))
    assert inst.prediction_time == "2180-05-03 18:00:00"
    parts = assemble_parts(ix, inst, get_task("diagnoses_icd"), render=tagged_renderer(ix))
    assert "<<9>>" not in parts.text()          # the discharge note is banned
    assert "<<10>>" in parts.text()             # the last lab before discharge is shown
