"""Leakage auditor: checks exported samples against the availability and window rules, per task.

A sample leaks when its input shows anything the model could not have known at the prediction time ``t``, or
anything its task family must never show (:mod:`data_pipeline.tasks.windows`):

* a context event not available strictly before ``t`` (:mod:`data_pipeline.tasks.availability`; the discharge
  note of a readmission sample, which *is* the input, excepted);
* a context event of a table the task bans, or one its family's window rule forbids (ED windows: anything of
  the admission the ED stay led to; admission/ICU windows: that admission's discharge note, diagnoses, DRG);
* the anchor event itself in a decision-making sample (it is the answer; a risk sample starts at its anchor);
* an admission header that starts at or after ``t``, or any admission header in an ED sample (being admitted
  is the ED_Hospitalization outcome); a previous-admission discharge note not available before ``t`` or of
  the same admission.

The rules are always the full ones (:class:`LeakageRules` defaults), whatever the dataset was built with, so
a dataset built with the rules switched off shows its leaks. The dataset build calls :func:`audit_sample` on
every sample as it renders it and refuses to finish when any leaks (``audit.allow_leaks`` overrides);
``ray_jobs.audit_dataset`` audits an exported dataset against its timelines (:func:`audit_dataset`).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from data_pipeline.events import PatientTimeline
from data_pipeline.tasks import all_tasks, get_task
from data_pipeline.tasks.history import TimelineIndex
from data_pipeline.tasks.spec import TaskSpec
from data_pipeline.tasks.windows import window_violation

log = logging.getLogger(__name__)


def audit_sample(ix: TimelineIndex, spec: TaskSpec, *, anchor: int, hadm_id: str | None, context_ids: list[int],
                 admissions_id: int, last_discharge_id: int, prediction_time: str,
                 previous_discharge_shown: bool = True) -> list[str]:
    """The leaks of one sample (empty when clean). ``ix`` must carry the full rules (``TimelineIndex(tl)``)."""
    t = datetime.fromisoformat(prediction_time)
    hadm = hadm_id or None
    leaks: list[str] = []
    for k in context_ids:
        name = ix.events[k].file_name
        if k == anchor and not spec.is_risk:
            leaks.append(f"anchor: the predicted {name} event is in the input")
            continue
        if k == anchor and spec.window == "note":
            continue  # the readmission sample's discharge note is its input
        avail = ix.avail[k]
        if avail is None or avail >= t:
            leaks.append(f"not yet available: {name} (available {avail}, prediction time {t})")
        if name in spec.removed_from_context:
            leaks.append(f"banned: {name}")
        why = window_violation(ix, k, spec.window, hadm)
        if why:
            leaks.append(f"window: {why}")
    if spec.show_admission and admissions_id >= 0:
        if spec.window == "ed":
            leaks.append("window: admission header in an ED sample")
        elif ix.times[admissions_id] is None or ix.times[admissions_id] >= t:
            leaks.append("not yet available: admission header")
    if previous_discharge_shown and last_discharge_id >= 0:
        avail = ix.avail[last_discharge_id]
        if avail is None or avail >= t:
            leaks.append(f"not yet available: previous discharge note (available {avail})")
        if hadm is not None and ix.hadms[last_discharge_id] == hadm:
            leaks.append("window: previous discharge note of the same admission")
    return leaks


def leak_kind(reason: str) -> str:
    """The reason's category and table (``not yet available: discharge``) for the per-task table."""
    head, _, rest = reason.partition(": ")
    return f"{head}: {rest.split(' (')[0]}"


@dataclass
class AuditReport:
    samples: Counter = field(default_factory=Counter)
    leaking: Counter = field(default_factory=Counter)
    reasons: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    #: A few leaking samples per task: (idx, first reason).
    examples: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, task: str, idx: int, leaks: list[str]) -> None:
        self.samples[task] += 1
        if leaks:
            self.leaking[task] += 1
            for kind in dict.fromkeys(leak_kind(r) for r in leaks):
                self.reasons[task][kind] += 1
            if len(self.examples[task]) < 3:
                self.examples[task].append((idx, leaks[0]))

    @property
    def total_leaking(self) -> int:
        return sum(self.leaking.values())

    def to_dict(self) -> dict:
        return {"samples": sum(self.samples.values()), "leaking": self.total_leaking,
                "tasks": {t: {"samples": self.samples[t], "leaking": self.leaking[t],
                              "reasons": dict(self.reasons.get(t, {})),
                              "examples": [list(e) for e in self.examples.get(t, [])]}
                          for t in self.ordered_tasks()}}

    def ordered_tasks(self) -> list[str]:
        order = [t.name for t in all_tasks()]
        return [t for t in order if t in self.samples] + sorted(t for t in self.samples if t not in order)


def format_audit(report: AuditReport, title: str = "leakage audit") -> str:
    """The per-task table: samples, leaking samples, and the most frequent leak kinds."""
    lines = [f"{title}: {report.total_leaking} leaking of {sum(report.samples.values())} samples",
             f"{'task':<26} {'samples':>8} {'leaking':>8}  most frequent leaks"]
    for task in report.ordered_tasks():
        top = ", ".join(f"{k} ({n})" for k, n in report.reasons.get(task, Counter()).most_common(3))
        lines.append(f"{task:<26} {report.samples[task]:>8} {report.leaking[task]:>8}  {top}")
    return "\n".join(lines)


AUDIT_COLUMNS = ["idx", "task", "subject_id", "hadm_id", "anchor", "context_ids", "admissions_id",
                 "last_discharge_id", "prediction_time", "dropped_previous_discharge"]


def _load_samples(dataset_dir: Path) -> dict[int, list[dict]]:
    import pyarrow.parquet as pq

    path = dataset_dir / "provenance.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no provenance file; is {dataset_dir} a dataset written by "
                                "ray_jobs.build_datasets (it holds <name>.parquet and provenance.parquet)?")
    by_subject: dict[int, list[dict]] = defaultdict(list)
    for row in pq.read_table(path, columns=AUDIT_COLUMNS).to_pylist():
        by_subject[int(row["subject_id"])].append(row)
    return by_subject


def audit_patient(timeline: PatientTimeline, rows: list[dict], report: AuditReport) -> None:
    """Audit the exported samples (provenance rows) of one patient into ``report``."""
    ix = TimelineIndex(timeline)
    for row in rows:
        spec = get_task(row["task"])
        leaks = audit_sample(ix, spec, anchor=int(row["anchor"]), hadm_id=row["hadm_id"],
                             context_ids=list(row["context_ids"]), admissions_id=int(row["admissions_id"]),
                             last_discharge_id=int(row["last_discharge_id"]),
                             prediction_time=row["prediction_time"],
                             previous_discharge_shown=not row["dropped_previous_discharge"])
        report.add(spec.name, int(row["idx"]), leaks)


def audit_dataset(dataset_dir: str | Path, timelines_dir: str | Path) -> AuditReport:
    """Audit every sample of an exported dataset against the timelines it was built from."""
    from tqdm import tqdm

    from data_pipeline.datasets.schemas import read_shard

    dataset_dir, timelines_dir = Path(dataset_dir), Path(timelines_dir)
    if not any(timelines_dir.glob("part-*.parquet")) and (timelines_dir / "timelines").is_dir():
        timelines_dir = timelines_dir / "timelines"  # the build_timelines output folder was given
    shards = sorted(timelines_dir.glob("part-*.parquet"))
    if not shards:
        raise FileNotFoundError(f"{timelines_dir}: no part-*.parquet timeline shards (the timelines the dataset "
                                "was built from)")
    by_subject = _load_samples(dataset_dir)
    report = AuditReport()
    for shard in tqdm(shards, desc=f"audit {dataset_dir.name}", unit="shard"):
        for batch in read_shard(str(shard)):
            for sid, events in zip(batch.column("subject_id").to_pylist(), batch.column("events").to_pylist()):
                rows = by_subject.pop(int(sid), None)
                if rows:
                    audit_patient(PatientTimeline.from_row({"subject_id": sid, "events": events}), rows, report)
    if by_subject:
        missing = sorted(by_subject)[:5]
        raise ValueError(f"{dataset_dir}: samples of patients absent from {timelines_dir} (e.g. subject_id "
                         f"{missing}); audit a dataset against the timelines it was built from")
    return report


class LeakageFound(RuntimeError):
    """The audited datasets hold leaking samples."""


def run_audit(cfg) -> dict[str, AuditReport]:
    """Audit every dataset of an :class:`config.AuditDatasetConfig`; prints the per-task tables, writes the JSON
    report and raises :class:`LeakageFound` on leaks when ``fail_on_leaks``."""
    import json

    from data_pipeline.datasets.export import atomic_write_text

    root = Path(cfg.datasets_dir)
    missing = [n for n in cfg.datasets if not (root / n).is_dir()]
    if missing:
        raise FileNotFoundError(f"{root}: no dataset folder(s) {missing}; set datasets to the names of the folders "
                                "ray_jobs.build_datasets wrote (e.g. ehr_ins, ehr_bench)")
    reports = {}
    for name in cfg.datasets:
        reports[name] = audit_dataset(root / name, cfg.resolved_timelines_dir())
        print(format_audit(reports[name], f"leakage audit of {name}"), flush=True)
    report_path = Path(cfg.report_path) if cfg.report_path else root / "audit.json"
    atomic_write_text(report_path, json.dumps({n: r.to_dict() for n, r in reports.items()}, indent=2))
    total = sum(r.total_leaking for r in reports.values())
    print(f"audit report: {report_path} ({total} leaking samples)", flush=True)
    if total and cfg.fail_on_leaks:
        raise LeakageFound(f"{total} leaking samples in {', '.join(n for n, r in reports.items() if r.total_leaking)}"
                           f"; see the table above and {report_path}")
    return reports
