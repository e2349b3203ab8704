"""Run the task generators over one patient: the per-patient unit of work of the dataset build."""

from __future__ import annotations

from collections.abc import Iterable

from data_pipeline.events import PatientTimeline
from data_pipeline.tasks.availability import LeakageRules
from data_pipeline.tasks.history import TimelineIndex
from data_pipeline.tasks.spec import Instance, TaskSpec, all_tasks


def generate_instances(timeline: PatientTimeline, tasks: Iterable[TaskSpec] | None = None,
                       rules: LeakageRules | None = None) -> list[Instance]:
    """Every candidate instance of every task (default: all registered tasks) for one patient, in task order."""
    ix = TimelineIndex(timeline, rules)
    out: list[Instance] = []
    for spec in (all_tasks() if tasks is None else tasks):
        out.extend(spec.generate(ix))
    return out
