"""Which bucket (output shard) a patient goes to: contiguous ``subject_id`` ranges of about equal patient counts.

Ranges rather than ``subject_id % n`` because MIMIC-IV files (and the synthetic ones) are written in
``subject_id`` order: a chunk of such a file then holds a few whole buckets one after the other, so phase 1 cuts
it into per-bucket slices without re-ordering (a gather of every string column, the largest phase-1 cost), and
each bucket's rows sit in few spill files. Unsorted files still work: their rows are stably sorted by bucket
first. Shards also come out in global ``subject_id`` order (shard 0 holds the smallest ids).

The split points come from the ``patients`` table (every patient has a row there), so rows of a subject missing
from it still land in exactly one bucket (the range their id falls in).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_pipeline.mimic.reader import MimicDataError, SourcePlan, read_table
from data_pipeline.mimic.values import normalise_int


@dataclass(frozen=True)
class Buckets:
    """``count`` buckets; bucket ``b`` holds subject ids ``bounds[b-1] <= id < bounds[b]`` (open at both ends)."""

    bounds: tuple[int, ...]  # count - 1 ascending split points

    @property
    def count(self) -> int:
        return len(self.bounds) + 1

    def of(self, subject_ids: np.ndarray) -> np.ndarray:
        """The bucket of each subject id (uint16/uint32: numpy's stable sort of small ints is a radix sort)."""
        dtype = np.uint16 if self.count <= 2**16 else np.uint32
        return np.searchsorted(np.asarray(self.bounds, dtype=np.int64), subject_ids, side="right").astype(dtype)

    def digest(self) -> str:
        """A short fingerprint, so a resumed build can tell that the patient list changed."""
        return hashlib.sha256(np.asarray(self.bounds, dtype=np.int64).tobytes()).hexdigest()[:16]

    @classmethod
    def from_subjects(cls, subject_ids: np.ndarray, count: int) -> "Buckets":
        """Split points giving each of ``count`` buckets about the same number of distinct subjects."""
        ids = np.unique(np.asarray(subject_ids, dtype=np.int64))
        if len(ids) == 0:
            return cls(tuple([0] * (count - 1)))
        pos = (np.arange(1, count, dtype=np.int64) * len(ids)) // count
        return cls(tuple(int(v) for v in ids[pos]))


def plan_buckets(plan: SourcePlan, count: int) -> Buckets:
    """Buckets for the patients of ``plan`` (its ``hosp/patients`` table, which the plan guarantees)."""
    sf = plan.tables["hosp/patients"]
    ids = normalise_int(read_table(sf, ["subject_id"]).column("subject_id").combine_chunks()).drop_null()
    try:
        values = pc.cast(ids, pa.int64()).to_numpy()
    except pa.ArrowInvalid as exc:
        raise MimicDataError(f"{sf.path}: column 'subject_id' has a non-integer value ({exc}); subject ids must "
                             f"be integers - fix or drop that row") from None
    return Buckets.from_subjects(values, count)
