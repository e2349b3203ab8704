"""Patient-level split: deterministic from subject_id, no patient on both sides."""

from __future__ import annotations

import subprocess
import sys

import pytest

from data_pipeline.datasets.split import TEST, TRAIN, patient_split, patient_unit


@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5])
def test_ratio_is_respected_and_sides_are_disjoint(ratio):
    ids = range(10_000_000, 10_004_000)
    sides = {sid: patient_split(sid, ratio) for sid in ids}
    test = {s for s, side in sides.items() if side == TEST}
    train = {s for s, side in sides.items() if side == TRAIN}
    assert not test & train and len(test) + len(train) == 4000
    assert abs(len(test) / 4000 - ratio) < 0.03


def test_samples_of_one_patient_share_a_side():
    rows = [(sid, task) for sid in range(1, 200) for task in ("labevents", "ICU_Stay_7day", "next_event")]
    side = {}
    for sid, _ in rows:
        side.setdefault(sid, set()).add(patient_split(sid, 0.3))
    assert all(len(v) == 1 for v in side.values())


def test_stable_across_processes_and_salts_differ():
    code = "from data_pipeline.datasets.split import patient_unit; print(patient_unit(10000032))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd=None).stdout.strip()
    assert float(other) == patient_unit(10000032)
    assert patient_unit(10000032, "a") != patient_unit(10000032, "b")


@pytest.mark.parametrize("ratio", [-0.1, 1.5])
def test_bad_ratio_is_refused(ratio):
    with pytest.raises(ValueError, match="test_ratio"):
        patient_split(1, ratio)
