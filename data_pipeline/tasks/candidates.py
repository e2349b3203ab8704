"""Candidate lists for baseline prompting (shown only to baselines, never in SFT prompts).

The reference drew candidates from a precomputed ``cache/similar_item/{task}.csv`` whose construction is not
published. Here a task's *vocabulary* is every label of its training-split candidate instances, and an item's
*neighbours* are the items that most often appear in the same anchor event (co-occurrence counts, ties broken
by name): a lab's neighbours are the rest of its panel, a drug's the drugs ordered with it. Rules:

* risk prediction: ``["yes", "no"]``; ``discharge`` (generation): no candidates;
* ``next_event``: the event-type list (the reference looked it up under a key that never matched);
* other decision-making tasks: the whole vocabulary when it has at most ``cap`` items, else the labels plus
  neighbours of the labels (round robin over the labels, most frequent co-occurrence first), topped up with
  random vocabulary items, up to ``cap`` (100). The list is shuffled with a per-sample seed.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from data_pipeline.tasks.spec import TaskSpec

MAX_NEIGHBOURS = 100


def event_types() -> list[str]:
    """next_event's candidates: exactly the tables its anchors come from (timed, rendered to text)."""
    from data_pipeline.tasks.decision_making import NEXT_EVENT_TABLES

    return list(NEXT_EVENT_TABLES)


@dataclass
class Vocabulary:
    items: list[str] = field(default_factory=list)
    neighbours: dict[str, list[str]] = field(default_factory=dict)


def build_vocabulary(label_lists: Iterable[Iterable[str]], max_neighbours: int = MAX_NEIGHBOURS) -> Vocabulary:
    """One task's vocabulary (most frequent first) and co-occurrence neighbours from its label lists."""
    freq: Counter[str] = Counter()
    co: dict[str, Counter[str]] = defaultdict(Counter)
    for labels in label_lists:
        uniq = list(dict.fromkeys(labels))
        freq.update(uniq)
        for a in uniq:
            for b in uniq:
                if a != b:
                    co[a][b] += 1
    items = sorted(freq, key=lambda x: (-freq[x], x))
    neighbours = {a: [b for b, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:max_neighbours]]
                  for a, c in co.items()}
    return Vocabulary(items, neighbours)


def make_candidates(spec: TaskSpec, labels: Iterable[str], vocab: Vocabulary | None, seed: int,
                    cap: int = 100) -> list[str]:
    """The candidate list of one sample (deterministic for ``seed``); always contains every label."""
    labels = list(dict.fromkeys(labels))
    if spec.answer_space is not None:
        return list(spec.answer_space)
    if spec.name == "discharge":
        return []
    rng = random.Random(seed)
    if spec.name == "next_event":
        pool = list(dict.fromkeys(event_types() + labels))
        rng.shuffle(pool)
        return pool
    items = vocab.items if vocab else []
    every = list(dict.fromkeys(labels + items))
    if len(every) <= cap:
        rng.shuffle(every)
        return every
    chosen = list(labels)
    seen = set(chosen)
    queues = [list((vocab.neighbours if vocab else {}).get(lab, [])) for lab in labels]
    while len(chosen) < cap and any(queues):
        for q in queues:
            while q and q[0] in seen:
                q.pop(0)
            if q and len(chosen) < cap:
                seen.add(q[0])
                chosen.append(q.pop(0))
    rest = [x for x in items if x not in seen]
    chosen += rng.sample(rest, min(cap - len(chosen), len(rest))) if len(chosen) < cap else []
    rng.shuffle(chosen)
    return chosen
