"""Reasoning text from the evidence graph: the LLM prompt, the LLM-free template and the reference's filter rules.

Shape of every chain (what SFT stage 2 trains on, the reference's required sections)::

    ## Extraction
    **<Event Name> [<time>]**: <what the event shows>
    ## Reasoning
    ...
    ## Final Results
    <label 1>
    <label 2>

LLM-free mode renders the evidence itself (the history concepts with the highest lift and their UMLS relation
paths to each label) in that shape; those records carry ``reasoning_source = "template"``.
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
    flat = " ".join(p.strip(" |-") for p in body.splitlines() if p.strip(" |-") and set(p) - set("|- "))
    flat = re.sub(r"\s*\|\s*", "; ", flat)
    if needle:
        at = flat.lower().find(needle.lower())
        if at > SNIPPET // 2:
            flat = "..." + flat[at - SNIPPET // 4:]
    return flat[:SNIPPET] + ("..." if len(flat) > SNIPPET else "")


def template_reasoning(ehr: str, instruction: str, labels: list[str], evidence: list[dict]) -> str:
    """LLM-free chain: the events that mention the evidence concepts, the lift/path reasoning, the labels."""
    events = [e for e in split_events(ehr) if e[0] != "Patient Demographics"]
    cited: list[tuple[str, str, str, str]] = []
    for ev in evidence:
        name = ev.get("history_name") or ""
        for ename, time, body in reversed(events):
            if name and name.lower() in body.lower():
                if not any(c[:2] == (ename, time) for c in cited):
                    cited.append((ename, time, body, name))
                break
        if len(cited) >= MAX_EXTRACTED:
            break
    if not cited:
        cited = [(n, t, b, "") for n, t, b in events[-2:]]
    lines = ["## Extraction"]
    lines += [f"**{n} [{t}]**: {_snippet(b, needle or None)}" for n, t, b, needle in cited]
    if not cited:
        lines.append("No prior events are recorded in the current window.")
    lines += ["", "## Reasoning"]
    task = instruction.split("please", 1)[-1].strip().rstrip(".") if "please" in instruction else instruction.strip()
    lines.append(f"The task is to {task}.")
    seen: set[str] = set()
    # one line per label, its highest-lift evidence (the list is ranked), a path when there is one
    best: dict[str, dict] = {}
    for ev in evidence:
        if ev["target"] not in best or (ev.get("path") and not best[ev["target"]].get("path")):
            best[ev["target"]] = ev
    for ev in list(best.values())[:MAX_REASONING_LINES]:
        if ev.get("path"):
            lines.append(f"{path_text(ev['path'])}.")
        elif ev["target"] not in seen:
            lines.append(f"{ev['history_name']} in this record is strongly associated with {ev['target']} "
                         f"(lift {ev['lift']:.1f} over {ev['count']} similar cases).")
        seen.add(ev["target"])
    rest = [label for label in labels if label not in seen]
    if rest:
        lines.append(f"Given the course so far, the next items also include {', '.join(rest)}.")
    lines += ["", "## Final Results", *labels]
    return "\n".join(lines)
