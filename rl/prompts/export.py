"""Export the RL prompts of a job: read every source, mix (seeded shuffle), validate, write jsonl atomically."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from rl.config import PromptSourceSpec
from rl.prompts.schema import RLPrompt, write_prompts
from rl.prompts.sources import ehr_ins_prompts, ehrshot_prompts, medcalc_prompts, trial_matching_prompts

log = logging.getLogger(__name__)


def source_prompts(spec: PromptSourceSpec) -> Iterator[RLPrompt]:
    if spec.kind == "ehr_ins":
        records = ehr_ins_prompts(spec.path, set(spec.tasks) if spec.tasks else None,
                                  think=spec.thinking == "task_default")
    elif spec.kind == "medcalc":
        records = medcalc_prompts(spec.path)
    elif spec.kind == "trial_matching":
        records = trial_matching_prompts(spec.path, spec.qrels)
    else:
        records = ehrshot_prompts(spec.path, spec.tasks, spec.labels, spec.split, spec.reweight_classes)
    return stratified(records, spec.max_samples) if spec.max_samples else records


def stratified(records: Iterator[RLPrompt], limit: int, seed: int = 0) -> list[RLPrompt]:
    """``limit`` prompts, one task at a time round-robin over a seeded shuffle of each task's prompts."""
    by_task: dict[str, list[RLPrompt]] = {}
    for r in records:
        by_task.setdefault(r.task, []).append(r)
    rng = random.Random(seed)
    queues = [by_task[t] for t in sorted(by_task)]
    rng.shuffle(queues)  # fewer prompts than tasks: a seeded draw of tasks, not the alphabetically first ones
    for q in queues:
        rng.shuffle(q)
    out: list[RLPrompt] = []
    depth = 0
    while len(out) < limit and any(depth < len(q) for q in queues):
        out += [q[depth] for q in queues if depth < len(q)][:limit - len(out)]
        depth += 1
    return out


def export_prompts(sources: Sequence[PromptSourceSpec], out_path: str | Path, seed: int = 0) -> dict[str, int]:
    """Write the mixed prompts of ``sources`` to ``out_path``; returns the count per source kind and task."""
    records: list[RLPrompt] = []
    for spec in sources:
        if not Path(spec.path).exists():
            raise FileNotFoundError(f"data.sources: {spec.kind} path {spec.path} does not exist")
        records.extend(source_prompts(spec))
    if not records:
        raise ValueError("data.sources: no prompts; check the paths, tasks and max_samples")
    random.Random(seed).shuffle(records)
    write_prompts(records, out_path)
    counts = Counter(f"{r.source}/{r.task}" for r in records)
    log.info("exported %d RL prompts to %s (%s)", len(records), out_path,
             ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    return dict(counts)
