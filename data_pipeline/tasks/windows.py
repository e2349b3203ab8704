"""Window rules per task family: which events of a window a sample of that family may show.

Availability (:mod:`availability`) says *when* an event may be shown; these rules say *which* events a family
must never show even when they were available, because they are produced by the very outcome predicted:

==========  ========================================================================================
family      rule
==========  ========================================================================================
``ed``      ED-module events of the stay (``edstays``, ``triage``, ``vitalsign``, ``medrecon``, ``pyxis``,
            ``diagnosis``) and events of no / another admission; **nothing of the admission the ED stay led
            to** (its admission row, orders, eMAR, pharmacy, prescriptions, transfers, services, labs, ICU
            stay): patients board in the ED after the admit decision, so those events start before the ED
            ``outtime`` and would give away ED_Hospitalization / ED_ICU_Transfer_12hour / ED_Critical_Outcomes.
            The reference showed them.
``admission``, ``icu``  nothing of the admission's outcome documents: its ``discharge`` note, ``diagnoses_icd``
            and ``drgcodes`` (the reference showed the discharge note whenever discharge fell on the next
            calendar day, because the note is charted at the discharge date 00:00).
``note``    (readmission) the discharge note itself is the input; no extra rule.
``dm``      decision making: the task's banned tables (diagnosis tasks ban discharge notes), nothing extra.
==========  ========================================================================================

One predicate, :func:`allowed_in_window`, is used by the history cut and by the leakage auditor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from data_pipeline.tasks.history import TimelineIndex

ED_MODULE = frozenset({"edstays", "triage", "vitalsign", "medrecon", "pyxis", "diagnosis"})
OUTCOME_DOCUMENTS = frozenset({"discharge", "diagnoses_icd", "drgcodes"})
FAMILIES = ("dm", "ed", "admission", "icu", "note")


def allowed_in_window(ix: "TimelineIndex", k: int, family: str, hadm: str | None) -> bool:
    """Whether event ``k`` may be shown in a window of ``family`` anchored on admission ``hadm``."""
    event_hadm = ix.hadms[k]
    name = ix.events[k].file_name
    if family == "ed":
        return name in ED_MODULE or hadm is None or event_hadm != hadm
    if family in ("admission", "icu"):
        return not (name in OUTCOME_DOCUMENTS and hadm is not None and event_hadm == hadm)
    return True


def window_violation(ix: "TimelineIndex", k: int, family: str, hadm: str | None) -> str | None:
    """Why event ``k`` breaks the ``family`` rule (for the auditor's report), or None."""
    if allowed_in_window(ix, k, family, hadm):
        return None
    name = ix.events[k].file_name
    if family == "ed":
        return f"{name} of the admission the ED stay led to"
    return f"{name} (outcome document) of the same admission"
