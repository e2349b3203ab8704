"""Reasoning text from the evidence graph: the LLM prompt, the LLM-free template and the reference's filter rules.

Shape of every chain (what SFT stage 2 trains on, the reference's required sections)::

    ## Extraction
    **<Event Name> [<time>]**: <what the event shows>
    ## Reasoning
    ...
    ## Final Results
    <label 1>
    <label 2>

LLM-free mode renders the evidence itself in that shape: for each label, the finding in the record that
connects to it (a short UMLS path through relations a clinician reads, else its co-occurrence lift), the events
that show those findings, and a plain statement for the labels no finding explains; those records carry
``reasoning_source = "template"``.
"""

from __future__ import annotations

import re

SECTIONS = ("## Extraction", "## Reasoning", "## Final Results")
#: The reference's filter: >= 70% of labels after "Final Results"; never "ground truth"; none of these headings.
MIN_LABEL_RECALL = 0.7
BANNED_HEADINGS = ("Extraction and Analysis", "Reasoning and Summary")
HEDGES = ("maybe", "possible", "though")
MAX_EXTRACTED = 4
#: Evidence lines per chain (the highest-lift pairs first, as ranked by the co-occurrence stage).
MAX_REASONING_LINES = 3
SNIPPET = 120
_HEADING = re.compile(r"^## (?P<name>.+?) \[(?P<time>[^\]]*)\]$", re.MULTILINE)


def split_events(markdown: str) -> list[tuple[str, str, str]]:
    """(event name, time, body) for each ``## Name [time]`` block of a rendered EHR, in order."""
    matches = list(_HEADING.finditer(markdown))
    out = []
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(markdown)
        out.append((m["name"], m["time"], markdown[m.end():end].strip()))
    return out


def path_text(path: list[str]) -> str:
    """``[A, rel, B, rel2, C]`` -> ``A --rel--> B --rel2--> C``."""
    parts = [path[0]]
    for i in range(1, len(path), 2):
        parts.append(f"--{path[i]}--> {path[i + 1]}")
    return " ".join(parts)


def knowledge_lines(evidence: list[dict]) -> list[str]:
    return [path_text(e["path"]) for e in evidence if e.get("path")]


def build_prompt(ehr: str, instruction: str, labels: list[str], evidence: list[dict],
                 with_knowledge: bool = True) -> str:
    """The reference's prompt sections: context, retrieved knowledge (one path per line), ground truth, task."""
    knowledge = knowledge_lines(evidence) if with_knowledge else []
    parts = ["# Patient EHR Context #", ehr.strip(), ""]
    if knowledge:
        parts += ["# Retrieved Medical Knowledge #", *knowledge, ""]
    parts += ["# Ground Truth #", *labels, "", "# Task #", instruction.strip(), "",
              "Write the clinical reasoning that leads from this patient's record to the answer, in exactly three "
              "sections:",
              "## Extraction: the relevant events, one per line as **Event Name [Event Time]**: finding.",
              "## Reasoning: how these findings lead to the answer.",
              "## Final Results: the answer items, one per line, using exactly the ground-truth strings.",
              "Rules: state conclusions firmly (do not write maybe, possible or though); never mention the ground "
              "truth or the retrieved knowledge; derive everything from the patient's record."]
    return "\n".join(parts)


def final_results(text: str) -> str:
    at = text.rfind("Final Results")
    return text[at + len("Final Results"):] if at >= 0 else ""


def rejection_reason(text: str, labels: list[str], min_recall: float = MIN_LABEL_RECALL) -> str | None:
    """Why a candidate chain fails the filter, or None if it passes.

    Rules (reference ``filter_reasoning.py`` plus the required sections): the three section headings are
    present; at least ``min_recall`` of the labels appear (as substrings) after "Final Results"; "ground truth"
    never appears (any case); no "Extraction and Analysis" / "Reasoning and Summary" heading.
    """
    if not text or not text.strip():
        return "empty"
    missing = [s for s in SECTIONS if s not in text]
    if missing:
        return f"missing section {missing[0]!r}"
    if "ground truth" in text.lower():
        return "mentions the ground truth"
    for heading in BANNED_HEADINGS:
        if heading in text:
            return f"heading {heading!r}"
    tail = final_results(text)
    found = sum(1 for label in labels if label in tail)
    if not labels or found < min_recall * len(labels):
        return f"final results name {found}/{len(labels)} labels"
    return None


def _snippet(body: str, needle: str | None) -> str:
    """The event's text around ``needle``, flattened, at most about ``SNIPPET`` characters, cut at word
    boundaries (never mid-word: "...tformin")."""
    flat = " ".join(p.strip(" |-") for p in body.splitlines() if p.strip(" |-") and set(p) - set("|- "))
    flat = re.sub(r"\s*\|\s*", "; ", flat)
    lead = ""
    if needle:
        at = flat.lower().find(needle.lower())
        if at > SNIPPET // 2:
            start = flat.rfind(" ", 0, at - SNIPPET // 4)
            flat, lead = flat[start + 1 if start >= 0 else at:], "..."
    if len(flat) <= SNIPPET:
        return lead + flat
    cut = flat.rfind(" ", 0, SNIPPET)
    return lead + flat[:cut if cut > 0 else SNIPPET].rstrip(" ;,") + "..."


#: Relations too vague to explain anything to a clinician: a path through them is not used as a reason.
VAGUE_RELATIONS = frozenset({"has relationship", "related, unspecified", "has sibling", "is similar to",
                             "is possibly synonymous with", "not related", "allowed qualifier",
                             "can be qualified by"})
#: Paths longer than this (edges) read as non sequiturs and are not used as reasons.
MAX_REASON_HOPS = 3


def hops(path: list[str] | None) -> int:
    return (len(path) - 1) // 2 if path else 0


def readable_path(path: list[str] | None) -> bool:
    """A path a clinician can follow: at most ``MAX_REASON_HOPS`` edges, none of them vague."""
    return bool(path) and hops(path) <= MAX_REASON_HOPS and not any(
        path[i] in VAGUE_RELATIONS for i in range(1, len(path), 2))


def _in_record(events: list[tuple[str, str, str]], name: str) -> tuple[str, str, str] | None:
    """The latest event whose text mentions ``name`` (what the record shows of that finding)."""
    if not name:
        return None
    for event in reversed(events):
        if name.lower() in event[2].lower():
            return event
    return None


def explain_labels(labels: list[str], evidence: list[dict], events: list[tuple[str, str, str]]) -> dict[str, dict]:
    """For each label, the evidence that explains it best: a finding the record shows, linked to the label by a
    short readable path; then any readable path; then the strongest association. Labels absent: no evidence."""
    best: dict[str, tuple[tuple, dict]] = {}
    for ev in evidence:
        shown = _in_record(events, ev.get("history_name") or "")
        path = ev.get("path")
        rank = (not readable_path(path), shown is None, hops(path) if readable_path(path) else 99, -ev["lift"])
        if ev["target"] not in best or rank < best[ev["target"]][0]:
            best[ev["target"]] = (rank, {**ev, "event": shown, "readable": readable_path(path)})
    return {label: best[label][1] for label in labels if label in best}


def template_reasoning(ehr: str, instruction: str, labels: list[str], evidence: list[dict]) -> str:
    """LLM-free chain: per label, the finding in the record that connects to it (a short UMLS path, else its
    association strength), the events that show those findings, and a plain statement for labels without
    evidence."""
    events = [e for e in split_events(ehr) if e[0] != "Patient Demographics"]
    explained = explain_labels(labels, evidence, events)
    cited: list[tuple[str, str, str, str]] = []
    for ev in explained.values():
        shown = ev["event"]
        if shown is not None and not any(c[:2] == shown[:2] for c in cited) and len(cited) < MAX_EXTRACTED:
            cited.append((*shown, ev["history_name"]))
    if not cited:
        cited = [(n, t, b, "") for n, t, b in events[-2:]]
    lines = ["## Extraction"]
    lines += [f"**{n} [{t}]**: {_snippet(b, needle or None)}" for n, t, b, needle in cited]
    if not cited:
        lines.append("No prior events are recorded in the current window.")
    lines += ["", "## Reasoning"]
    task = instruction.split("please", 1)[-1].strip().rstrip(".") if "please" in instruction else instruction.strip()
    lines.append(f"The task is to {task}.")
    unexplained = [label for label in labels if label not in explained]
    shown_lines = 0
    for label in labels:
        ev = explained.get(label)
        if ev is None or shown_lines >= MAX_REASONING_LINES:
            continue
        finding = ev["history_name"]
        where = f" ({ev['event'][0]}, {ev['event'][1]})" if ev["event"] is not None else ""
        if ev["readable"]:
            lines.append(f"{finding}{where} connects to {label}: {path_text(ev['path'])}.")
        else:
            lines.append(f"{finding}{where} is strongly associated with {label} (lift {ev['lift']:.1f} over "
                         f"{ev['count']} similar cases).")
        shown_lines += 1
    more = [label for label in labels if label in explained][shown_lines:]
    if more:
        lines.append(f"The same findings support {', '.join(more)}.")
    if unexplained:
        lines.append(f"No finding in this record links to {', '.join(unexplained)}; "
                     f"{'it follows' if len(unexplained) == 1 else 'they follow'} from the usual course of care "
                     "for this stay rather than from a specific finding.")
    lines += ["", "## Final Results", *labels]
    return "\n".join(lines)
