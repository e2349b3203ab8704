"""The leakage auditor: zero leaks on a cohort with MIMIC-IV's real timing for all 46 tasks, and it finds the
two published leaks (discharge note in the Inpatient_Mortality window; the admission's orders, eMAR and ICU stay
in ED windows) when the rules are switched off."""

from __future__ import annotations

from collections import Counter

import pytest

from data_pipeline.datasets.audit import AuditReport, audit_sample, format_audit
from data_pipeline.events import PatientTimeline
from data_pipeline.tasks import all_tasks, get_task
from data_pipeline.tasks.assembly import assemble_parts
from data_pipeline.tasks.availability import LeakageRules
from data_pipeline.tasks.generate import generate_instances
from data_pipeline.tasks.history import TimelineIndex
from tests.data_pipeline.tasks.test_leakage import TIMELINES
from tests.data_pipeline.tasks.test_windows import boarding_timeline

OFF = LeakageRules(availability=False, window_rules=False)


def audit_all(timelines: list[PatientTimeline], rules: LeakageRules | None = None) -> AuditReport:
    """Every candidate instance of every task, assembled with ``rules`` and audited with the full rules."""
    report = AuditReport()
    for tl in timelines:
        built, full = TimelineIndex(tl, rules), TimelineIndex(tl)
        for n, inst in enumerate(generate_instances(tl, rules=rules)):
            spec = get_task(inst.task)
            parts = assemble_parts(built, inst, spec, render=lambda e: "x")
            report.add(spec.name, n, audit_sample(
                full, spec, anchor=inst.anchor, hadm_id=inst.hadm_id, context_ids=parts.context_ids,
                admissions_id=inst.admissions_id if spec.show_admission else -1,
                last_discharge_id=inst.last_discharge_id, prediction_time=inst.prediction_time))
    return report


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> list[PatientTimeline]:
    """A synthetic cohort with MIMIC-IV's timing (date-only discharge notes, storetimes, ED boarding)."""
    from data_pipeline.mimic.synthetic.generate import generate_cohort
    from tests.data_pipeline.tiny_mimic import build_local

    base = tmp_path_factory.mktemp("audit")
    root = generate_cohort(base / "mimic", num_patients=60, seed=3)
    events = build_local(root, base / "work")
    return [PatientTimeline.from_row({"subject_id": s, "events": e}) for s, e in sorted(events.items())]


def test_no_sample_of_any_task_leaks_on_a_cohort_with_real_timing(cohort):
    report = audit_all(cohort)
    assert set(report.samples) == {t.name for t in all_tasks()}, "every one of the 46 tasks is audited"
    assert report.total_leaking == 0, format_audit(report)


def test_the_auditor_finds_the_published_leaks_when_the_rules_are_off(cohort):
    report = audit_all(cohort, OFF)
    print(format_audit(report))
    # the admission's own discharge note (charted at the discharge date 00:00) in the first-24 h window
    assert report.reasons["Inpatient_Mortality"]["window: discharge"] > 0
    assert report.reasons["Inpatient_Mortality"]["not yet available: discharge"] > 0
    # the admit order / eMAR / ICU stay of the boarding patient in ED windows
    ed = Counter()
    for task in ("ED_Hospitalization", "ED_ICU_Transfer_12hour", "ED_Critical_Outcomes"):
        assert report.leaking[task] > 0
        ed.update(report.reasons[task])
    for table in ("poe", "emar", "icustays"):
        assert ed[f"window: {table} of the admission the ED stay led to"] > 0, (table, ed)


@pytest.mark.parametrize("rules", [LeakageRules(availability=False), LeakageRules(window_rules=False)],
                         ids=["availability-off", "window-rules-off"])
def test_each_rule_matters_on_the_boarding_timeline(rules):
    on = audit_all([boarding_timeline()])
    off = audit_all([boarding_timeline()], rules)
    assert on.total_leaking == 0, format_audit(on)
    assert off.total_leaking > 0


@pytest.mark.parametrize("timeline", TIMELINES + [boarding_timeline()], ids=["example", "died", "messy", "boarding"])
def test_hand_made_timelines_do_not_leak(timeline):
    report = audit_all([timeline])
    assert report.total_leaking == 0, format_audit(report)


def test_audit_sample_names_each_kind_of_leak():
    tl = boarding_timeline()
    ix = TimelineIndex(tl)
    ed, adm = get_task("ED_Hospitalization"), get_task("Inpatient_Mortality")
    leaks = audit_sample(ix, ed, anchor=1, hadm_id="7", context_ids=[1, 2, 7, 9], admissions_id=-1,
                         last_discharge_id=-1, prediction_time="2180-05-01 12:00:00")
    assert leaks == ["window: emar of the admission the ED stay led to",
                     "window: icustays of the admission the ED stay led to"]
    leaks = audit_sample(ix, adm, anchor=5, hadm_id="7", context_ids=[6, 12], admissions_id=5,
                         last_discharge_id=-1, prediction_time="2180-05-02 09:00:00")
    assert leaks[0].startswith("not yet available: discharge (available 2180-05-02 18:00:00")
    assert "window: discharge (outcome document) of the same admission" in leaks
    dm = get_task("labevents")
    assert audit_sample(ix, dm, anchor=8, hadm_id="7", context_ids=[8], admissions_id=-1, last_discharge_id=-1,
                        prediction_time="2180-05-01 09:40:00") == ["anchor: the predicted labevents event is in "
                                                                   "the input"]
