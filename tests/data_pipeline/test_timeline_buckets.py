"""Patient -> bucket ranges, spill files grouped by bucket, and how phases 1 and 2 split their work."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import pytest

from data_pipeline.mimic.reader import MimicDataError, SourceLayout, plan_source
from data_pipeline.timeline.buckets import Buckets, plan_buckets
from data_pipeline.timeline.partition import (INDEX, clear_failed, mark_failed, table_dir, wait_until_staged,
                                              write_spill)
from data_pipeline.timeline.pipeline import buckets_per_task, tables_to_stream
from tests.data_pipeline.tiny_mimic import ROWS, write_table, write_tiny_root


@pytest.mark.parametrize("ids,count,bounds", [
    ([10, 11, 12, 13], 2, (12,)),                   # two patients each
    ([13, 10, 12, 11, 10], 2, (12,)),               # order and duplicates do not matter
    ([10, 11, 12, 13, 14, 15], 3, (12, 14)),
    ([10], 3, (10, 10)),                            # fewer patients than buckets: empty buckets
    ([], 3, (0, 0)),
    ([5, 6, 7], 1, ()),
])
def test_split_points_give_equal_patient_counts(ids, count, bounds):
    assert Buckets.from_subjects(np.array(ids, dtype=np.int64), count).bounds == bounds


@pytest.mark.parametrize("bounds,ids,expected", [
    ((12,), [10, 11, 12, 13, 99], [0, 0, 1, 1, 1]),
    ((12, 14), [1, 12, 13, 14, 10**12], [0, 1, 1, 2, 2]),   # ids outside every patient still land in a range
    ((), [3, 4], [0, 0]),
])
def test_bucket_of_an_id_is_its_range(bounds, ids, expected):
    assert Buckets(bounds).of(np.array(ids, dtype=np.int64)).tolist() == expected


def test_digest_tells_bucketings_apart():
    assert Buckets((12,)).digest() == Buckets((12,)).digest() != Buckets((13,)).digest()


def test_plan_buckets_reads_the_patients_table(tmp_path):
    plan = plan_source(SourceLayout(write_tiny_root(tmp_path / "src")))
    ids = sorted({int(r["subject_id"]) for r in ROWS["hosp/patients"]})
    buckets = plan_buckets(plan, 2)
    assert buckets.count == 2 and buckets.bounds == (ids[len(ids) // 2],)


def test_plan_buckets_names_the_file_for_a_bad_subject_id(tmp_path):
    root = write_tiny_root(tmp_path / "src")
    rows = [dict(r) for r in ROWS["hosp/patients"]]
    rows[0]["subject_id"] = "ten"
    path = write_table(root, "hosp/patients", rows)
    with pytest.raises(MimicDataError, match=f"{path}.*'subject_id'.*integer"):
        plan_buckets(plan_source(SourceLayout(root)), 2)


def _spill_batches(path) -> list[list[tuple[int, int]]]:
    reader = pa.ipc.open_file(pa.memory_map(str(path)))
    return [list(zip(reader.get_batch(i).column("_sid").to_pylist(), reader.get_batch(i).column("_row").to_pylist()))
            for i in range(reader.num_record_batches)]


@pytest.mark.parametrize("sids", [
    [10, 10, 11, 12, 12, 13],    # subject order (MIMIC-IV files): cut into slices, no re-ordering
    [12, 10, 13, 10, 11, 12],    # any order: stably grouped by bucket
])
def test_spill_holds_one_batch_per_bucket_in_file_order(tmp_path, sids):
    table = pa.Table.from_batches([pa.record_batch({"_sid": pa.array(sids[:3], pa.int64()),
                                                    "_row": pa.array(range(3), pa.int64())}),
                                   pa.record_batch({"_sid": pa.array(sids[3:], pa.int64()),
                                                    "_row": pa.array(range(3, 6), pa.int64())})])
    present = write_spill(table, tmp_path / "s.arrow", Buckets((12,)))
    assert present == [0, 1]
    expected = [[(s, r) for r, s in enumerate(sids) if (s >= 12) == b] for b in (0, 1)]
    assert _spill_batches(tmp_path / "s.arrow") == expected


@pytest.mark.parametrize("todo,parallel,configured,expected", [
    (23, 2, None, 4),      # ~3 tasks per CPU
    (6, 2, None, 1),
    (1, 8, None, 1),
    (1000, 2, None, 16),   # at most 16 buckets a task
    (23, 2, 5, 5),         # the config wins
])
def test_buckets_per_task(todo, parallel, configured, expected):
    assert buckets_per_task(todo, parallel, configured) == expected


MB = 2**20


@pytest.mark.parametrize("sizes,cpus,expected", [
    ({"chartevents": 600 * MB, "labevents": 300 * MB, "rest": 100 * MB}, 2, ["chartevents"]),
    ({"chartevents": 400 * MB, "labevents": 300 * MB, "rest": 300 * MB}, 2, []),   # no table outlasts the rest
    ({"chartevents": 400 * MB, "labevents": 300 * MB, "rest": 200 * MB}, 4, ["chartevents", "labevents"]),
    ({"chartevents": 200 * MB, "rest": 10 * MB}, 8, []),                            # under four 64 MB chunks
])
def test_only_tables_that_would_outlast_the_phase_are_streamed(sizes, cpus, expected):
    assert tables_to_stream(sizes, cpus, 64 * MB) == expected


def test_wait_until_staged_returns_once_every_table_has_its_index(tmp_path):
    tables = ["hosp/labevents", "icu/chartevents"]
    for rp in tables:
        table_dir(tmp_path, rp).mkdir(parents=True)
    (table_dir(tmp_path, tables[0]) / INDEX).write_text("{}")
    later = threading.Timer(0.2, lambda: (table_dir(tmp_path, tables[1]) / INDEX).write_text("{}"))
    later.start()
    assert wait_until_staged(tmp_path, tables, poll_s=0.01) >= 0.1


def test_wait_until_staged_gives_up_when_the_driver_marks_phase1_failed(tmp_path):
    threading.Timer(0.1, mark_failed, args=(tmp_path,)).start()
    with pytest.raises(RuntimeError, match="phase 1 failed"):
        wait_until_staged(tmp_path, ["hosp/labevents"], poll_s=0.01)
    clear_failed(tmp_path)  # a re-run starts without the marker
    assert not any(tmp_path.iterdir())
