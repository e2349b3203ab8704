"""Concepts of each timeline event (pure functions + the Ray Data actor that holds one QuickUMLS matcher).

A concept is keyed by its CUI when the vocabulary knows it, else by ``~`` + the normalised name (so items
absent from UMLS still count in the co-occurrence statistics; they just have no relation path).

* Structured events contribute the decision-making label strings of that event (the reference's
  ``item_info_process``): for every DM task anchored on the event's table, the task's ``target_key`` values
  (:func:`data_pipeline.tasks.decision_making.item_labels`), looked up exactly, then normalised.
* Free text (the reference's: the admission's ``admission_info``, radiology and discharge note ``text``) goes
  through QuickUMLS and keeps every matched span.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import pyarrow as pa

from data_pipeline.thinking_graph.umls import UmlsVocabulary, normalise

#: Tables whose free text goes through QuickUMLS, and the fields read (the reference's choice).
DEFAULT_TEXT_FIELDS = {"admissions": ["admission_info"], "radiology": ["text"], "discharge": ["text"]}
#: DM tasks that are not concept-labelled (generation, event-type prediction), as in the reference.
NON_CONCEPT_TASKS = ("discharge", "next_event")

SPAN = pa.struct([("event", pa.int32()), ("start", pa.int32()), ("end", pa.int32()), ("cui", pa.string()),
                  ("similarity", pa.float32())])
NAME = pa.struct([("name", pa.string()), ("key", pa.string())])
#: One row per patient: concept keys per timeline event (aligned with the events), every text span, and the
#: key of every structured item name seen (so the labels of the patient's samples map to the same keys).
CONCEPTS_SCHEMA = pa.schema([("subject_id", pa.int64()), ("concepts", pa.list_(pa.list_(pa.string()))),
                             ("spans", pa.list_(SPAN)), ("names", pa.list_(NAME))])


def concept_key(name: str, vocab: UmlsVocabulary) -> str:
    cui = vocab.lookup(name)
    return cui if cui is not None else "~" + normalise(name)


@lru_cache(maxsize=1)
def structured_keys_by_table() -> dict[str, tuple[str, ...]]:
    """Event table -> the target keys of the DM tasks anchored on it."""
    from data_pipeline.tasks import all_tasks

    out: dict[str, list[str]] = {}
    for spec in all_tasks("decision_making"):
        if spec.name in NON_CONCEPT_TASKS or spec.anchor_table == "*":
            continue
        keys = out.setdefault(spec.anchor_table, [])
        if spec.target_key not in keys:
            keys.append(spec.target_key)
    return {k: tuple(v) for k, v in out.items()}


def structured_names(event) -> list[str]:
    from data_pipeline.tasks.decision_making import item_labels

    names: list[str] = []
    for key in structured_keys_by_table().get(event.file_name, ()):
        for name in item_labels(event.items, key):
            if name not in names:
                names.append(name)
    return names


class ConceptExtractor:
    """Concept keys of events: a vocabulary lookup for item names, QuickUMLS for free text."""

    def __init__(self, vocab: UmlsVocabulary, matcher, text_fields: dict[str, list[str]] | None = None):
        self.vocab = vocab
        self.matcher = matcher
        self.text_fields = DEFAULT_TEXT_FIELDS if text_fields is None else text_fields
        self._keys: dict[str, str] = {}

    def key(self, name: str) -> str:
        k = self._keys.get(name)
        if k is None:
            k = self._keys[name] = concept_key(name, self.vocab)
        return k

    def event_concepts(self, event) -> tuple[list[str], list[dict]]:
        """(concept keys in first-seen order, every matched text span) of one event."""
        from data_pipeline.thinking_graph.matcher import match_spans

        keys = [self.key(n) for n in structured_names(event)]
        spans: list[dict] = []
        fields = self.text_fields.get(event.file_name, ())
        if fields and self.matcher is not None:
            for row in event.items:
                for field in fields:
                    text = row.get(field)
                    if text and text not in ("nan", "None"):
                        spans.extend(match_spans(self.matcher, text))
            keys.extend(s["cui"] for s in spans)
        return list(dict.fromkeys(keys)), spans

    def patient_row(self, timeline) -> dict:
        concepts, spans, names = [], [], {}
        for k, event in enumerate(timeline.events):
            for name in structured_names(event):
                names[name] = self.key(name)
            keys, found = self.event_concepts(event)
            concepts.append(keys)
            spans.extend({"event": k, "start": s["start"], "end": s["end"], "cui": s["cui"],
                          "similarity": s["similarity"]} for s in found)
        return {"subject_id": timeline.subject_id, "concepts": concepts, "spans": spans,
                "names": [{"name": n, "key": k} for n, k in names.items()]}


class ConceptWorker:
    """Ray Data UDF (one per actor): timeline rows -> one row of per-event concepts per patient.

    Builds (or reuses) the QuickUMLS index and loads one matcher in ``__init__``; only patients in
    ``subjects`` (an ObjectRef in a one-element list, or None = all) are processed.
    """

    def __init__(self, umls_dir: str, cache_dir: str, settings, text_fields, subjects=None):
        from data_pipeline.thinking_graph.matcher import build_index, load_matcher

        self.subjects = _deref(subjects)
        vocab = UmlsVocabulary.from_rrf(umls_dir)
        matcher = load_matcher(build_index(umls_dir, cache_dir, settings), settings)
        self.extractor = ConceptExtractor(vocab, matcher, text_fields)

    def __call__(self, batch: pa.Table) -> pa.Table:
        from data_pipeline.events import PatientTimeline

        rows = []
        for sid, events in zip(batch.column("subject_id").to_pylist(), batch.column("events").to_pylist()):
            if self.subjects is not None and sid not in self.subjects:
                continue
            rows.append(self.extractor.patient_row(PatientTimeline.from_row({"subject_id": sid, "events": events})))
        return pa.Table.from_pylist(rows, schema=CONCEPTS_SCHEMA)


def iter_event_texts(timelines: Iterator, text_fields: dict[str, list[str]] | None = None) -> Iterator[str]:
    """The free texts concept extraction reads (for the benchmark)."""
    fields = DEFAULT_TEXT_FIELDS if text_fields is None else text_fields
    for tl in timelines:
        for event in tl.events:
            for row in event.items:
                for f in fields.get(event.file_name, ()):
                    if row.get(f) and row[f] not in ("nan", "None"):
                        yield row[f]


def _deref(value):
    if isinstance(value, list) and len(value) == 1:
        import ray

        if isinstance(value[0], ray.ObjectRef):
            return ray.get(value[0])
    return value
