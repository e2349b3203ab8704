"""Sample assembly with the real renderer: header order, omissions, the reference's "\\n\\n" join."""

from __future__ import annotations

import pytest

from data_pipeline.render import render_event
from data_pipeline.tasks import get_task
from data_pipeline.tasks.assembly import assemble_parts, output_text
from data_pipeline.tasks.examples import IDX, example_timeline
from data_pipeline.tasks.history import TimelineIndex

I = IDX


def build(task: str, anchor: int):
    ix = TimelineIndex(example_timeline())
    spec = get_task(task)
    inst = next(i for i in spec.generate(ix) if i.anchor == anchor)
    return ix, inst, assemble_parts(ix, inst, spec)


def test_header_then_context_joined_like_the_reference():
    ix, inst, parts = build("prescriptions", I["prescriptions"])
    expected = "\n\n".join([render_event(ix.events[0]), render_event(ix.events[I["old_note"]]),
                            render_event(ix.events[I["admission"]])] + [render_event(ix.events[k]) for k in
                                                                        parts.context_ids])
    assert parts.text() == expected
    assert parts.text().startswith("## Patient Demographics [None]\n- Anchor_Age: 60\n- Gender: F\n\n## Discharge")
    assert "## Admissions [2180-01-01 12:00:00]" in parts.text()
    assert "## Prescriptions" not in parts.text()  # the anchor (the answer) is not shown


@pytest.mark.parametrize("task,anchor,has_admission,has_previous", [
    ("admissions", I["admission"], False, True),        # the admission is the answer
    ("ED_Hospitalization", I["edstays"], False, True),  # admission = the outcome
    ("labevents", I["lab_ed"], False, True),            # the admission comes after the lab
    ("labevents", I["lab_day3"], True, True),
    ("omr", I["omr"], False, True),
    ("Readmission_30day", I["old_note"], False, False),  # no earlier admission's note
])
def test_header_parts(task, anchor, has_admission, has_previous):
    _, _, parts = build(task, anchor)
    assert (parts.admission != "") == has_admission
    assert (parts.previous_discharge != "") == has_previous
    assert parts.text().count("## Admissions") == int(has_admission)  # never as a context event either


def test_absent_header_parts_keep_the_reference_blank_lines():
    _, _, parts = build("admissions", I["admission"])
    assert parts.admission == "" and "Old discharge summary.\n\n\n\n## EDstays" in parts.text()


@pytest.mark.parametrize("labels,expected", [(("yes",), "yes"), (("Glucose", "Sodium"), "Glucose\nSodium")])
def test_output_text(labels, expected):
    assert output_text(labels) == expected
