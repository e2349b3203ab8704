"""Per-shard selection files, per-shard rendered parts and their streaming export (pure pieces, no Ray)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_pipeline.datasets.export import DatasetWriter
from data_pipeline.datasets.shards import (RENDERED_SCHEMA, SELECTED_SCHEMA, _slices, empty_export_stats,
                                           export_parts, in_order, read_shard_selection, render_shard,
                                           selection_table, shard_of_rows, write_shard_selections)
from data_pipeline.datasets.stages import TABLES_ROW, RenderWorker, index_batch
from data_pipeline.tasks import task_names
from data_pipeline.tasks.examples import example_timeline

SUBJECTS = list(range(10000030, 10000042))


def _frames(n_datasets: int) -> list[tuple[str, pd.DataFrame]]:
    """Numbered selections of ``n_datasets`` datasets over SUBJECTS, each in a task-major order (as
    ``selection.number_selection``), so a patient's rows are spread over the frame."""
    timelines = pa.Table.from_pylist([example_timeline(subject_id=s).to_row() for s in SUBJECTS])
    index = index_batch(timelines, task_names(), test_ratio=0.5, salt="ehr-r1").to_pandas()
    index = index[index["task"] != TABLES_ROW].sort_values(["task", "subject_id", "anchor"], kind="stable")
    out = []
    for d in range(n_datasets):
        frame = index.iloc[d::n_datasets].reset_index(drop=True)
        out.append((f"ds{d}", frame.assign(idx=np.arange(len(frame), dtype="int64"))))
    return out


def _shards(tmp_path, groups: list[list[int]]) -> list[str]:
    paths = []
    for i, sids in enumerate(groups):
        path = tmp_path / f"part-{i:05d}.parquet"
        pq.write_table(pa.table({"subject_id": pa.array(sids, pa.int64()), "events": pa.array([[]] * len(sids))}),
                       path)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("n_datasets", [1, 2])
@pytest.mark.parametrize("groups", [[SUBJECTS], [SUBJECTS[:5], SUBJECTS[5:]],
                                    [SUBJECTS[::3], [], SUBJECTS[1::3], SUBJECTS[2::3]]])
def test_shard_selection_files_partition_the_selection_in_order(tmp_path, n_datasets, groups):
    frames = _frames(n_datasets)
    selection = selection_table(frames)
    files = write_shard_selections(selection, _shards(tmp_path, groups), tmp_path / "selected")

    # one file per shard with selected rows, named after the shard, no temporary file left behind
    assert sorted(files) == [p for p, g in zip(_shards(tmp_path, groups), groups) if g]
    assert sorted(p.name for p in (tmp_path / "selected").iterdir()) == sorted(
        f"part-{i:05d}.parquet" for i, g in enumerate(groups) if g)
    parts = [pq.read_table(f) for f in files.values()]
    assert all(t.schema.equals(SELECTED_SCHEMA) for t in parts)
    assert sum(t.num_rows for t in parts) == selection.num_rows
    for shard_sids, table in zip([g for g in groups if g], parts):
        assert set(table["subject_id"].to_pylist()) <= set(shard_sids)

    # per patient: the rows of every dataset in dataset order, each in idx order (what the renderer used to get)
    expected: dict[int, list[tuple[str, int]]] = {}
    for name, frame in frames:
        for sid, idx in zip(frame["subject_id"], frame["idx"]):
            expected.setdefault(int(sid), []).append((name, int(idx)))
    got = {}
    for path in files.values():
        for sid, rows in read_shard_selection(path).items():
            assert sid not in got
            got[sid] = [(r["dataset"], r["idx"]) for r in rows]
    assert got == expected


@pytest.mark.parametrize("sids,shards,expected", [
    ([1, 2, 3], [[1, 2, 3]], [0, 0, 0]),
    ([5, 1, 5, 9, 2], [[9], [1, 2], [], [5]], [3, 1, 3, 0, 1]),
    ([7, 8], [[1], [2]], [-1, -1]),
    ([], [[1]], []),
])
def test_shard_of_rows(sids, shards, expected):
    table = pa.table({"subject_id": pa.array(sids, pa.int64())})
    assert shard_of_rows(table, shards).tolist() == expected


def test_selected_patient_outside_every_shard_is_an_error(tmp_path):
    selection = selection_table(_frames(1))
    with pytest.raises(ValueError, match="no timeline shard"):
        write_shard_selections(selection, _shards(tmp_path, [SUBJECTS[:3]]), tmp_path / "selected")


@pytest.mark.parametrize("completion", [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]])
@pytest.mark.parametrize("missing", [None, 0, 2, 3])
def test_in_order_releases_parts_in_shard_order(completion, missing):
    order = [f"s{i}" for i in range(4)]
    done = [(order[i], f"p{i}") for i in completion if i != missing]
    seen = []

    def reported():
        for item in done:
            seen.append(item)
            yield item

    released = []
    for part in in_order(reported(), order):
        # streamed: a part is released as soon as every earlier shard is done, not after the last one
        assert all(f"s{int(p[1:])}" in {s for s, _ in seen} for p in released + [part])
        released.append(part)
    assert released == [f"p{i}" for i in range(4) if i != missing]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Two datasets' selections over 12 patients, rendered shard by shard into parts (3 shards of 4 patients)."""
    tmp = tmp_path_factory.mktemp("rendered")
    frames = _frames(2)
    groups = [SUBJECTS[0:4], SUBJECTS[4:8], SUBJECTS[8:12]]
    timelines = []
    for i, sids in enumerate(groups):
        path = tmp / f"part-{i:05d}.parquet"
        pq.write_table(pa.Table.from_pylist([example_timeline(subject_id=s).to_row() for s in sids]), path)
        timelines.append(str(path))
    files = write_shard_selections(selection_table(frames), timelines, tmp / "selected")
    parts = []
    for shard in timelines:
        worker = RenderWorker(read_shard_selection(files[shard]), {}, max_input_tokens=300, tokenizer_path=None,
                              seed=0, max_candidates=20)
        out = tmp / "rendered" / f"{shard.rsplit('/', 1)[-1]}"
        out.parent.mkdir(exist_ok=True)
        # patient batches of two: two row groups per part
        rows = render_shard(worker, shard, out, batch_rows=2)
        assert rows == pq.ParquetFile(out).metadata.num_rows
        parts.append(str(out))
    return tmp, parts


def _export(tmp, parts, max_bytes):
    writers = {n: DatasetWriter(tmp, n) for n in ("ds0", "ds1")}
    stats = {n: empty_export_stats() for n in writers}
    kept = export_parts(parts, writers, stats, max_bytes=max_bytes)
    out = {n: w.tmp for n, w in writers.items()}
    rows = {n: w.rows for n, w in writers.items()}
    return kept, out, rows, stats


@pytest.mark.parametrize("max_bytes", [1, 1 << 30])
def test_export_streams_parts_in_the_given_order(rendered, max_bytes):
    tmp, parts = rendered
    assert all(pq.ParquetFile(p).metadata.num_row_groups == 2 for p in parts)  # one per patient batch
    kept, out, rows, stats = _export(tmp, parts, max_bytes)
    samples = pa.concat_tables([pq.read_table(p) for p in parts])
    assert kept == sum(rows.values()) == sum(samples["fits"].to_pylist())
    for name in ("ds0", "ds1"):
        mine = samples.filter(pa.compute.and_(pa.compute.equal(samples["dataset"], name), samples["fits"]))
        lines = (out[name] / f"{name}.jsonl").read_text().splitlines()
        # the parts' rows, fitting ones only, in part order then row order; jsonl, parquet and provenance agree
        assert [json.loads(line)["idx"] for line in lines] == mine["idx"].to_pylist()
        assert pq.read_table(out[name] / f"{name}.parquet")["idx"].to_pylist() == mine["idx"].to_pylist()
        assert pq.read_table(out[name] / "provenance.parquet")["idx"].to_pylist() == mine["idx"].to_pylist()
        st = stats[name]
        assert sum(st["samples"].values()) == mine.num_rows
        assert sum(st["too_long"].values()) == sum(1 for d, f in zip(samples["dataset"].to_pylist(),
                                                                     samples["fits"].to_pylist())
                                                   if d == name and not f)
        n_groups = pq.ParquetFile(out[name] / f"{name}.parquet").metadata.num_row_groups
        # row groups merged per part up to max_bytes, never across parts
        assert n_groups == (2 * len(parts) if max_bytes == 1 else len(parts))


def test_export_output_does_not_depend_on_part_order_of_completion(rendered):
    """Same bytes whichever order the actors report their parts in (:func:`in_order` restores shard order)."""
    tmp, parts = rendered
    order = [f"s{i}" for i in range(len(parts))]
    outputs = []
    for completion in ([0, 1, 2], [2, 0, 1]):
        released = list(in_order([(order[i], parts[i]) for i in completion], order))
        _, out, _, _ = _export(tmp, released, 1 << 30)
        outputs.append({n: [(d / f).read_bytes() for f in (f"{n}.jsonl", f"{n}.parquet", "provenance.parquet")]
                        for n, d in out.items()})
    assert outputs[0] == outputs[1]


def test_rendered_parts_keep_their_patient_batches(rendered):
    _, parts = rendered
    for p in parts:
        table = pq.read_table(p).cast(RENDERED_SCHEMA)
        assert table.schema.equals(RENDERED_SCHEMA)
        # one row group per batch of two patients here (small samples), numbered in shard order
        f = pq.ParquetFile(p)
        assert [f.read_row_group(i)["batch"].unique().to_pylist() for i in range(f.num_row_groups)] == [[0], [1]]
        assert [len(set(f.read_row_group(i)["subject_id"].to_pylist())) for i in range(f.num_row_groups)] == [2, 2]


@pytest.mark.parametrize("n_rows,max_bytes", [(10, 1), (10, 1 << 30), (1000, 5000), (1, 1)])
def test_slices_cover_the_table_in_order(n_rows, max_bytes):
    table = pa.table({"x": pa.array(range(n_rows), pa.int64())})
    pieces = list(_slices(table, max_bytes))
    assert pa.concat_tables(pieces)["x"].to_pylist() == list(range(n_rows))
    assert all(p.nbytes <= max(max_bytes, 8) for p in pieces)


@pytest.mark.parametrize("max_bytes", [1, 1 << 30])
def test_export_does_not_depend_on_the_parts_row_group_size(rendered, tmp_path, max_bytes):
    """Parts cut into one row group per sample give the same files: output row groups end only at the end of a
    patient batch (once ``max_bytes`` is reached) or of a part."""
    tmp, parts = rendered
    recut = []
    for p in parts:
        table = pq.read_table(p).cast(RENDERED_SCHEMA)
        out = tmp_path / p.rsplit("/", 1)[-1]
        with pq.ParquetWriter(out, RENDERED_SCHEMA) as w:
            for i in range(table.num_rows):
                w.write_table(table.slice(i, 1))
        recut.append(str(out))
    files = []
    for group in (parts, recut):
        _, out, _, _ = _export(tmp, group, max_bytes)
        files.append({n: [(d / f).read_bytes() for f in (f"{n}.jsonl", f"{n}.parquet", "provenance.parquet")]
                      for n, d in out.items()})
    assert files[0] == files[1]
