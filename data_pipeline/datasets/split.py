"""Patient-level train/test split, deterministic from ``subject_id`` alone.

A patient's side is decided by a SHA-256 hash of ``"<salt>:<subject_id>"`` (never Python's per-process
randomised ``hash()``), so every sample of a patient lands on the same side, in every worker and every re-run,
whatever order the shards are read in. EHR-Ins is built from the train side, EHR-Bench from the test side.
"""

from __future__ import annotations

import hashlib

TRAIN, TEST = "train", "test"
_SCALE = float(1 << 64)


def patient_unit(subject_id: int, salt: str = "ehr-r1") -> float:
    """A stable pseudo-random number in [0, 1) for one patient."""
    digest = hashlib.sha256(f"{salt}:{int(subject_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def patient_split(subject_id: int, test_ratio: float, salt: str = "ehr-r1") -> str:
    """``"test"`` for about ``test_ratio`` of the patients, ``"train"`` for the rest.

    >>> patient_split(10000032, 0.0), patient_split(10000032, 1.0)
    ('train', 'test')
    """
    if not 0.0 <= test_ratio <= 1.0:
        raise ValueError(f"test_ratio={test_ratio} must be in [0, 1]")
    return TEST if patient_unit(subject_id, salt) < test_ratio else TRAIN
