"""Sample assembly: an :class:`Instance` plus its patient's timeline -> ``input``, ``instruction``, ``output``.

``input`` is the reference's ``"\\n\\n".join([demographics, previous_discharge_note, admission_event] +
context_events)``: the patient demographics, the latest discharge note of a different earlier admission (the
"medical history"), the same-admission admission event (omitted for the ``admissions`` task and ED tasks, and
whenever the admission happened after the prediction time), then the context events minus admissions, patients
and the task's banned events. Absent header parts are empty strings, as in the reference (and as the renderer's
empty ``hcpcsevents``/``drgcodes`` events are), so the text has the shape the published weights were trained on.
The prompt is ``input + "\\n" + instruction``; that join belongs to the prompt builder downstream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from data_pipeline.events import Event
from data_pipeline.tasks.history import TimelineIndex, context_indices
from data_pipeline.tasks.spec import Instance, TaskSpec

SEPARATOR = "\n\n"
RenderFn = Callable[[Event], str]


def _default_render() -> RenderFn:
    from data_pipeline.render import render_event

    return render_event


@dataclass
class SampleParts:
    """The rendered pieces of one sample, kept apart so truncation can drop whole events."""

    demographics: str
    previous_discharge: str
    admission: str
    context: list[str] = field(default_factory=list)
    #: Timeline indices of ``context`` (provenance), aligned with it.
    context_ids: list[int] = field(default_factory=list)

    def header(self) -> list[str]:
        return [self.demographics, self.previous_discharge, self.admission]

    def text(self) -> str:
        return SEPARATOR.join(self.header() + self.context)


def sample_context(ix: TimelineIndex, inst: Instance, spec: TaskSpec) -> list[int]:
    """Timeline indices shown as context for ``inst``: the window minus removed/banned and not-yet-visible events."""
    t: datetime = datetime.fromisoformat(inst.prediction_time)
    return context_indices(ix, inst.context_begin, inst.context_end, t, spec.removed_from_context,
                           anchor=inst.anchor, anchor_in_context=inst.anchor_in_context, family=spec.window,
                           hadm=inst.hadm_id)


def assemble_parts(ix: TimelineIndex, inst: Instance, spec: TaskSpec, render: RenderFn | None = None) -> SampleParts:
    render = render or _default_render()
    demo = next((render(e) for e in ix.events if e.file_name == "patients"), "")
    prev = render(ix.events[inst.last_discharge_id]) if inst.last_discharge_id >= 0 else ""
    adm = render(ix.events[inst.admissions_id]) if spec.show_admission and inst.admissions_id >= 0 else ""
    ids = sample_context(ix, inst, spec)
    return SampleParts(demo, prev, adm, [render(ix.events[k]) for k in ids], ids)


def output_text(labels: tuple[str, ...] | list[str]) -> str:
    """Labels one per line (decision making) or the single ``yes``/``no`` (risk prediction)."""
    return "\n".join(labels)
