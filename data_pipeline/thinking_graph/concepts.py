"""Concepts of each timeline event (pure functions + the Ray Data actor that holds one QuickUMLS matcher).

A concept is keyed by its CUI when the vocabulary knows it, else by ``~`` + the normalised name (so items
absent from UMLS still count in the co-occurrence statistics; they just have no relation path).

* Structured events contribute the decision-making label strings of that event (the reference's
  ``item_info_process``): for every DM task anchored on the event's table, the task's ``target_key`` values
  (:func:`data_pipeline.tasks.decision_making.item_labels`), looked up exactly, then normalised.
  An item name the vocabulary does not know goes through QuickUMLS (the reference's fallback): its best match,
  if any, gives the CUI.
* Free text (the reference's: the admission's ``admission_info``, radiology and discharge note ``text``) goes
  through QuickUMLS and keeps every matched span.

Memory: the vocabulary is built once, on the driver, for the item names the cohort has (:func:`names_of_batch`
collects them on Ray Data; :meth:`UmlsVocabulary.from_rrf` streams MRCONSO), and the actors share that small
name -> CUI map through the object store (:class:`NameMap`) instead of each loading the release.
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


class NameMap(dict):
    """Item name -> CUI for the names the vocabulary knows (what the actors share); ``lookup`` as the vocabulary's."""

    def lookup(self, name: str) -> str | None:
        return self.get(name)


def best_match_cui(matcher, name: str) -> str | None:
    """QuickUMLS's best match for an item name (highest similarity, then the longest span), or None."""
    from data_pipeline.thinking_graph.matcher import match_spans

    spans = match_spans(matcher, name)
    if not spans:
        return None
    return max(spans, key=lambda m: (m["similarity"], m["end"] - m["start"], -m["start"]))["cui"]


class ConceptExtractor:
    """Concept keys of events: a vocabulary lookup for item names (QuickUMLS's best match for the names it does not
    know, when ``name_fallback``), QuickUMLS for free text."""

    def __init__(self, vocab: UmlsVocabulary | NameMap, matcher, text_fields: dict[str, list[str]] | None = None,
                 name_fallback: bool = True):
        self.vocab = vocab
        self.matcher = matcher
        self.text_fields = DEFAULT_TEXT_FIELDS if text_fields is None else text_fields
        self.name_fallback = name_fallback
        self._keys: dict[str, str] = {}

    def key(self, name: str) -> str:
        k = self._keys.get(name)
        if k is None:
            cui = self.vocab.lookup(name)
            if cui is None and self.name_fallback and self.matcher is not None:
                cui = best_match_cui(self.matcher, name)
            k = self._keys[name] = cui if cui is not None else "~" + normalise(name)
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

    def __init__(self, umls_dir: str, cache_dir: str, settings, text_fields, subjects=None, names=None,
                 name_fallback: bool = True):
        from data_pipeline.thinking_graph.matcher import build_index, load_matcher

        self.subjects = _deref(subjects)
        names = _deref(names)
        # the driver's shared map of the cohort's names; a full vocabulary only when none is given (tests)
        vocab = NameMap(names) if names is not None else UmlsVocabulary.from_rrf(umls_dir)
        matcher = load_matcher(build_index(umls_dir, cache_dir, settings), settings)
        self.extractor = ConceptExtractor(vocab, matcher, text_fields, name_fallback)

    def __call__(self, batch: pa.Table) -> pa.Table:
        from data_pipeline.events import PatientTimeline

        rows = []
        for sid, events in zip(batch.column("subject_id").to_pylist(), batch.column("events").to_pylist()):
            if self.subjects is not None and sid not in self.subjects:
                continue
            rows.append(self.extractor.patient_row(PatientTimeline.from_row({"subject_id": sid, "events": events})))
        return pa.Table.from_pylist(rows, schema=CONCEPTS_SCHEMA)


NAMES_SCHEMA = pa.schema([("name", pa.string())])


def names_of_batch(batch: pa.Table, subjects=None) -> pa.Table:
    """The distinct structured item names of a batch of timelines (patients in ``subjects`` only)."""
    from data_pipeline.events import PatientTimeline

    wanted = _deref(subjects)
    seen: dict[str, None] = {}
    for sid, events in zip(batch.column("subject_id").to_pylist(), batch.column("events").to_pylist()):
        if wanted is not None and sid not in wanted:
            continue
        for event in PatientTimeline.from_row({"subject_id": sid, "events": events}).events:
            for name in structured_names(event):
                seen.setdefault(name)
    return pa.table({"name": pa.array(list(seen), pa.string())}, schema=NAMES_SCHEMA)


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
