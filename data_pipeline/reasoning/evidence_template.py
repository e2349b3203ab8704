"""Template reasoning chains in the EHR-R1 output shape (``## Extraction`` / ``## Reasoning`` / ``## Final Results``).

For a decision-making sample the chain cites the context events whose text mentions a label (the evidence a
clinician would point at), falling back to the most recent events, then states the conclusion with the exact label
strings, as the reference's reasoning filter requires (>= 70% of labels after "Final Results", no mention of a
"ground truth"). Risk-prediction samples are left out: EHR-R1 trains and serves them with thinking off.

The record format is the EHR-Ins one plus a ``reasoning`` string, which is what ``training`` reads for stage 2.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

_HEADING = re.compile(r"^## (?P<name>.+?) \[(?P<time>[^\]]*)\]$", re.MULTILINE)
MAX_EVIDENCE = 4
FALLBACK_EVENTS = 2
SNIPPET_CHARS = 160


def split_events(markdown: str) -> list[tuple[str, str, str]]:
    """(event name, time, body) for each ``## Name [time]`` block of a rendered EHR, in order."""
    matches = list(_HEADING.finditer(markdown))
    out = []
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(markdown)
        out.append((m["name"], m["time"], markdown[m.end():end].strip()))
    return out


def _snippet(body: str, needle: str | None) -> str:
    """A one-line excerpt of an event body, centred on the mention when there is one."""
    flat = " ".join(part.strip(" |-") for part in body.splitlines() if part.strip(" |-") and set(part) - set("|- "))
    flat = re.sub(r"\s*\|\s*", "; ", flat)
    if needle:
        at = flat.lower().find(needle.lower())
        if at > SNIPPET_CHARS // 2:
            flat = "..." + flat[at - SNIPPET_CHARS // 4:]
    return flat[:SNIPPET_CHARS] + ("..." if len(flat) > SNIPPET_CHARS else "")


def template_reasoning(input_text: str, instruction: str, labels: list[str]) -> str:
    """A deterministic extraction-style chain that ends with the exact labels."""
    events = [e for e in split_events(input_text) if e[0] != "Patient Demographics"]
    evidence: list[tuple[str, str, str, str | None]] = []
    for label in labels:
        for name, time, body in reversed(events):
            if label.lower() in body.lower():
                if not any(e[:2] == (name, time) for e in evidence):
                    evidence.append((name, time, body, label))
                break
        if len(evidence) >= MAX_EVIDENCE:
            break
    cited = {label for *_, label in evidence}
    if not evidence:
        evidence = [(n, t, b, None) for n, t, b in events[-FALLBACK_EVENTS:]]
    lines = ["## Extraction"]
    lines += [f"**{name} [{time}]**: {_snippet(body, needle)}" for name, time, body, needle in evidence]
    if not evidence:
        lines.append("No prior events are recorded in the current window.")
    lines.append("")
    lines.append("## Reasoning")
    task = instruction.split("please", 1)[-1].strip().rstrip(".") if "please" in instruction else instruction.strip()
    if cited:
        lines.append(f"The record already points to {', '.join(sorted(cited))}; the task is to {task}.")
    else:
        lines.append(f"The latest events describe the patient's current state; the task is to {task}.")
    uncited = [label for label in labels if label not in cited]
    if uncited:
        lines.append(f"Given this course, the expected next items also include {', '.join(uncited)}.")
    lines.append("")
    lines.append("## Final Results")
    lines.extend(labels)
    return "\n".join(lines)


def reasoning_records(records: Iterable[dict]) -> Iterator[dict]:
    """EHR-Ins records -> the same records plus ``reasoning``, decision-making tasks with labels only."""
    for rec in records:
        info = rec.get("task_info") or {}
        labels = list(info.get("target") or [x for x in rec["output"].split("\n") if x.strip()])
        if info.get("metric") in ("aucroc", "rouge", "rouge1") or not labels:
            continue
        yield {**rec, "reasoning": template_reasoning(rec["input"], rec["instruction"], labels)}


def write_reasoning_dataset(ehr_ins_jsonl: str | Path, out_path: str | Path, max_samples: int | None = None) -> Path:
    """Write template reasoning records for the decision-making samples of an EHR-Ins jsonl (atomic)."""
    src, out = Path(ehr_ins_jsonl), Path(out_path)
    if not src.is_file():
        raise FileNotFoundError(f"{src} does not exist; build EHR-Ins first (python -m ray_jobs.build_datasets)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    written = 0
    with src.open() as fin, tmp.open("w") as fout:
        for rec in reasoning_records(json.loads(line) for line in fin if line.strip()):
            fout.write(json.dumps(rec, ensure_ascii=False) + "\n")
            written += 1
            if max_samples is not None and written >= max_samples:
                break
    os.replace(tmp, out)
    log.info("wrote %d template reasoning records to %s", written, out)
    return out
