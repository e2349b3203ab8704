"""Task specifications, the candidate-instance record and the task registry (with a duplicate-name guard).

A task is a small pure generator ``TimelineIndex -> Iterable[Instance]`` plus the metadata every later stage
needs (kind, metric, target key, the tables it needs, the events banned from its context). Generators live in
:mod:`data_pipeline.tasks.decision_making` and :mod:`data_pipeline.tasks.risk_prediction`; importing
:mod:`data_pipeline.tasks` registers all 46 of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # pragma: no cover
    from data_pipeline.tasks.history import TimelineIndex

DECISION_MAKING = "decision_making"
RISK_PREDICTION = "risk_prediction"
TaskKind = Literal["decision_making", "risk_prediction"]

#: Events never shown as context: the demographics and admission headers are rendered separately.
ALWAYS_REMOVED = ("patients", "admissions")


@dataclass(frozen=True)
class Instance:
    """One candidate sample, before sampling and rendering: indices into the patient's event list.

    ``context_begin``/``context_end`` delimit a half-open slice of the timeline; the assembly removes admissions,
    patients and the task's banned events from it, and any event whose (effective) time is at or after
    ``prediction_time`` except the anchor itself when ``anchor_in_context`` (the pre-discharge-note window shows
    the note). ``admissions_id``/``last_discharge_id`` are the header events (-1 = none).
    """

    task: str
    subject_id: int
    hadm_id: str | None
    anchor: int
    context_begin: int
    context_end: int
    prediction_time: str
    labels: tuple[str, ...]
    admissions_id: int = -1
    last_discharge_id: int = -1
    anchor_in_context: bool = False

    def to_row(self) -> dict:
        return {
            "task": self.task, "subject_id": int(self.subject_id), "hadm_id": self.hadm_id or "",
            "anchor": self.anchor, "context_begin": self.context_begin, "context_end": self.context_end,
            "prediction_time": self.prediction_time, "labels": list(self.labels),
            "admissions_id": self.admissions_id, "last_discharge_id": self.last_discharge_id,
            "anchor_in_context": self.anchor_in_context,
        }

    @classmethod
    def from_row(cls, row: dict) -> "Instance":
        return cls(row["task"], int(row["subject_id"]), row["hadm_id"] or None, int(row["anchor"]),
                   int(row["context_begin"]), int(row["context_end"]), row["prediction_time"],
                   tuple(row["labels"]), int(row["admissions_id"]), int(row["last_discharge_id"]),
                   bool(row["anchor_in_context"]))


Generator = Callable[["TimelineIndex"], Iterable[Instance]]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: TaskKind
    #: The event table (``Event.file_name``) whose events anchor a sample; "*" = any event (next_event).
    anchor_table: str
    #: The published ``task_info.target_key``: the item field the label is read from.
    target_key: str
    metric: str
    instruction: str
    generate: Generator
    #: Tables (bare names) and mapping names (``schema.MAPPINGS``) without which the task cannot be built.
    requires: tuple[str, ...]
    #: Event tables removed from this task's context (leakage bans), on top of ``ALWAYS_REMOVED``.
    banned: tuple[str, ...] = ()
    #: Other names the task is known by (e.g. the reference's misspelt ``ED_ICU_Tranfer_12hour``).
    aliases: tuple[str, ...] = ()
    #: Whether the same-admission admission event is rendered as a header (never for leaks of the label).
    show_admission: bool = True
    #: Fixed answer space (RP: yes/no) or None when candidates come from the training vocabulary.
    answer_space: tuple[str, ...] | None = None
    notes: str = ""
    #: Window family (:mod:`data_pipeline.tasks.windows`): ``dm``, ``ed``, ``admission``, ``icu`` or ``note``.
    window: str = "dm"
    #: The reference's 24 h-covers-the-admission filter applies (procedure and diagnosis tasks).
    admission_window_filter: bool = False

    @property
    def is_risk(self) -> bool:
        return self.kind == RISK_PREDICTION

    @property
    def removed_from_context(self) -> frozenset[str]:
        return frozenset(ALWAYS_REMOVED) | frozenset(self.banned)


class TaskRegistryError(KeyError):
    pass


_REGISTRY: dict[str, TaskSpec] = {}
_ALIASES: dict[str, str] = {}


def register(spec: TaskSpec) -> TaskSpec:
    """Add a task; a name or alias that is already taken raises (two tasks must never share a name)."""
    for name in (spec.name, *spec.aliases):
        if name in _REGISTRY or name in _ALIASES:
            owner = _ALIASES.get(name, name)
            raise TaskRegistryError(f"task name {name!r} is already registered (by task {owner!r}); "
                                    "rename the new task or remove the duplicate registration")
    _REGISTRY[spec.name] = spec
    for alias in spec.aliases:
        _ALIASES[alias] = spec.name
    return spec


def get_task(name: str) -> TaskSpec:
    """Look a task up by name or alias."""
    key = _ALIASES.get(name, name)
    try:
        return _REGISTRY[key]
    except KeyError:
        raise TaskRegistryError(f"unknown task {name!r}; known tasks: {', '.join(_REGISTRY)}") from None


def canonical_name(name: str) -> str:
    return get_task(name).name


def all_tasks(kind: TaskKind | None = None) -> list[TaskSpec]:
    """Registered tasks in registration order (decision making first, as in the reference's task_info)."""
    return [t for t in _REGISTRY.values() if kind is None or t.kind == kind]


def task_names(kind: TaskKind | None = None) -> list[str]:
    return [t.name for t in all_tasks(kind)]


def _expand_tables(tables: Iterable[str]) -> set[str]:
    """Normalise ``ed/edstays`` -> ``edstays`` and a module name (``icu``) to all of its tables."""
    from data_pipeline.mimic.schema import MODULES, TABLES

    out: set[str] = set()
    for raw in tables:
        name = str(raw).strip().strip("/")
        if name in MODULES:
            out.update(t.name for t in TABLES.values() if t.module == name)
        else:
            out.add(name.rsplit("/", 1)[-1])
    return out


def tasks_needing_tables(tables: Iterable[str]) -> list[str]:
    """Names of the tasks that cannot be built without any of ``tables``.

    ``tables`` may hold bare table names (``edstays``), module-qualified ones (``ed/edstays``), module names
    (``icu``) or mapping names (``ndc_atc``).

    >>> tasks_needing_tables(["ndc_atc"])
    ['prescriptions_atc', 'medrecon_atc']
    """
    missing = _expand_tables(tables)
    return [t.name for t in all_tasks() if missing.intersection(t.requires)]


def missing_requirements(spec: TaskSpec, available: Iterable[str]) -> list[str]:
    """The requirements of ``spec`` absent from ``available`` (tables, modules or mapping names)."""
    have = _expand_tables(available)
    return [r for r in spec.requires if r not in have]
