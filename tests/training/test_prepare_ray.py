"""SFT rows built on Ray Data (``training.prepare``): the same rows as the in-memory reference, in training order,
written as shards atomically, reused by fingerprint, and bad records named by file and line."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import transformers

import training.prepare as prepare
from training.config import DataSpec
from training.data import build_rows
from training.prepare import plan_chunks, prepare_rows, read_rows, shard_files
from training.tiny_model import build_tiny_model
from training.toy_data import write_toy_data


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ins")
    plain = write_toy_data(tmp / "plain.jsonl", n=150, seed=1)
    reasoning = write_toy_data(tmp / "reasoning.jsonl", n=90, reasoning=True, seed=2)
    records = [json.loads(line) for line in plain.read_text().splitlines()]
    table = pa.Table.from_pylist([{"instruction": r["instruction"], "input": r["input"], "task_info": {"task": r["task_info"].get("task", "")},
                                   "output": "\n".join(r["output"]) if isinstance(r["output"], list) else r["output"]}
                                  for r in records])
    pq.write_table(table, tmp / "plain.parquet", row_group_size=40)
    return {"plain": plain, "reasoning": reasoning, "parquet": tmp / "plain.parquet"}


@pytest.fixture()
def small_chunks(monkeypatch):
    monkeypatch.setattr(prepare, "RECORDS_PER_CHUNK", 32)  # many chunks and actors' batches, as at scale


@pytest.mark.parametrize("case", ["sampled_packed", "curriculum_two_sources", "unpacked_truncated", "parquet",
                                  "many_groups_and_buckets"])
def test_rows_equal_the_in_memory_reference(ray_session, files, model_dir, tmp_path, small_chunks, case):
    spec = {
        "sampled_packed": DataSpec(paths=[str(files["plain"])], max_seq_length=512, max_samples=70, pack_chunk=25),
        "curriculum_two_sources": DataSpec(paths=[str(files["reasoning"]), str(files["plain"])], format="reasoning",
                                           mix="curriculum", max_seq_length=400, pack_chunk=40),
        "unpacked_truncated": DataSpec(paths=[str(files["plain"])], max_seq_length=200, packing=False,
                                       completion_only_loss=True),
        "parquet": DataSpec(paths=[str(files["parquet"])], max_seq_length=512, max_samples=100),
        # a 1 MB budget at 8k tokens: one file chunk per tokenize task, three packing chunks per bucket
        "many_groups_and_buckets": DataSpec(paths=[str(files["plain"])], max_seq_length=8192, pack_chunk=5,
                                            prep_block_mb=1),
    }[case]
    if case == "many_groups_and_buckets":
        assert prepare._layout(spec, 5) == (1, 3)
    rows_dir, stats = prepare_rows(spec, model_dir, tmp_path / "prep", seed=5)
    assert not (tmp_path / "prep" / "tok").exists()  # the intermediate files are gone
    expected, ref_stats = build_rows(transformers.AutoTokenizer.from_pretrained(model_dir), spec, seed=5)
    assert read_rows(rows_dir) == expected  # same rows, same (training) order
    for key in ("records", "examples", "rows", "truncated", "input_tokens_cut", "real_tokens", "dropped_too_long"):
        assert stats[key] == getattr(ref_stats, key), key
    assert stats["shards"] == len(shard_files(rows_dir)) == -(-stats["records"] // spec.pack_chunk)


def test_reused_by_fingerprint_and_rebuilt_when_the_data_changes(ray_session, files, model_dir, tmp_path):
    spec = DataSpec(paths=[str(files["plain"])], max_seq_length=512, max_samples=40)
    rows_dir, stats = prepare_rows(spec, model_dir, tmp_path / "prep", seed=0)
    stamp = (tmp_path / "prep" / "stats.json").stat().st_mtime_ns
    _, again = prepare_rows(spec.model_copy(update={"prep_concurrency": 1}), model_dir, tmp_path / "prep", seed=0)
    assert again == stats and (tmp_path / "prep" / "stats.json").stat().st_mtime_ns == stamp
    _, changed = prepare_rows(spec.model_copy(update={"packing": False}), model_dir, tmp_path / "prep", seed=0)
    assert changed["fingerprint"] != stats["fingerprint"] and changed["rows"] == changed["examples"] == 40
    assert not list(tmp_path.glob("prep.tmp*"))  # built aside, renamed into place


@pytest.mark.parametrize(("line", "match"), [
    ('{"instruction": "x", "input": "y"}', r"line 3 lacks \['output'\]"),
    ('{"instruction": "x", "input": ', r"line 3 is not valid JSON"),
])
def test_a_bad_record_is_named_by_file_and_line(ray_session, model_dir, tmp_path, line, match):
    good = json.dumps({"instruction": "i", "input": "e", "output": "no"})
    path = tmp_path / "ins.jsonl"
    path.write_text(f"{good}\n\n{line}\n{good}\n")
    with pytest.raises(Exception, match=f"{path}.*{match}"):
        prepare_rows(DataSpec(paths=[str(path)]), model_dir, tmp_path / "prep", seed=0)
    assert not (tmp_path / "prep").exists()


@pytest.mark.parametrize(("text", "per_chunk", "firsts"), [
    ("a\nb\nc\nd\ne\n", 2, [1, 3, 5]),
    ("a\nb\nc\nd", 2, [1, 3]),  # no final newline: the last line still belongs to a chunk
    ("a\n", 5, [1]),
])
def test_jsonl_chunks_cover_every_line_once(tmp_path, text, per_chunk, firsts):
    path = tmp_path / "f.jsonl"
    path.write_text(text)
    chunks = plan_chunks(path, 0, per_chunk)
    assert [c["first_line"] for c in chunks] == firsts
    raw = path.read_bytes()
    assert b"".join(raw[c["start"]:c["end"]] for c in chunks) == raw
