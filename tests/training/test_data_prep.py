"""Records -> token rows with the real tiny tokenizer, and packed attention really being block-diagonal on CPU."""

from __future__ import annotations

import json

import pytest
import torch  # core dependencies: a broken install fails here, it is never skipped
import transformers

from training.config import DataSpec
from training.data import build_rows, read_records, render_segments
from training.sequences import IGNORE_INDEX
from training.tiny_model import build_tiny_model

EHR = "## Labotary Test Events [2180-06-27 05:10:00]\n| Creatinine | 2.1 | mg/dL | abnormal |"
RECORDS = [
    {"instruction": "Predict the diagnoses.", "input": EHR, "output": "Acute kidney failure\nSepsis",
     "reasoning": "## Extraction\nHigh creatinine.\n## Final Results", "candidates": [], "task_info": {}, "idx": 0},
    {"instruction": "Will the patient be readmitted?", "input": EHR * 3, "output": "no", "idx": 1},
    {"instruction": "Predict the medications.", "input": EHR * 2, "output": ["Heparin", "Insulin"], "idx": 2},
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def tok(model_dir):
    return transformers.AutoTokenizer.from_pretrained(model_dir)


@pytest.fixture()
def data_file(tmp_path):
    path = tmp_path / "ins.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return path


HEAD = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"


@pytest.mark.parametrize(
    ("idx", "fmt", "suffix", "completion"),
    [
        # stage 1 (plain) trains the prompt evaluation and serving send with thinking off: /no_think and the
        # pre-filled empty think block, as stage 2's records without reasoning
        (0, "plain", "\nPredict the diagnoses.\n/no_think<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
         "Acute kidney failure\nSepsis<|im_end|>\n"),
        (0, "reasoning", "\nPredict the diagnoses.\n/think<|im_end|>\n<|im_start|>assistant\n",
         "<think>\n## Extraction\nHigh creatinine.\n## Final Results\n</think>\n\nAcute kidney failure\nSepsis<|im_end|>\n"),
        # no reasoning in stage 2: /no_think; the tiny template pre-fills the empty think block in the prompt
        (1, "reasoning", "\nWill the patient be readmitted?\n/no_think<|im_end|>\n<|im_start|>assistant\n"
                         "<think>\n\n</think>\n\n", "no<|im_end|>\n"),
        (2, "plain", "\nPredict the medications.\n/no_think<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
         "Heparin\nInsulin<|im_end|>\n"),
    ],
)
def test_render_segments(tok, idx, fmt, suffix, completion):
    prefix, inp, suf, comp = render_segments(tok, RECORDS[idx], fmt)
    assert (prefix, inp, suf, comp) == (HEAD, RECORDS[idx]["input"], suffix, completion)


def _decode_labels(tok, labels):
    return tok.decode([t for t in labels if t != IGNORE_INDEX])


@pytest.mark.parametrize("completion_only", [True, False])
def test_truncation_keeps_answer_and_latest_input(tok, data_file, completion_only):
    spec = DataSpec(paths=[str(data_file)], max_seq_length=60, packing=False, completion_only_loss=completion_only)
    cols, stats = build_rows(tok, spec, seed=0)
    assert stats.records == 3 and stats.truncated >= 1 and stats.dropped_too_long == 0
    assert len(cols["input_ids"]) == len(RECORDS)
    for ids, labels in zip(cols["input_ids"], cols["labels"], strict=True):  # rows come in (shuffled) training order
        assert len(ids) <= 60
        text = tok.decode(ids)
        assert text.startswith(HEAD) and text.endswith("<|im_end|>\n")
        [rec] = [r for r in RECORDS if r["instruction"] in text]  # instruction never cut
        assert "abnormal |" + "\n" + rec["instruction"] in text  # the LATEST input tokens are kept
        if completion_only:
            assert _decode_labels(tok, labels) == "\n".join(rec["output"]) + "<|im_end|>\n" if isinstance(
                rec["output"], list) else _decode_labels(tok, labels).endswith("<|im_end|>\n")
            assert "You are a helpful" not in _decode_labels(tok, labels)


def test_too_long_is_dropped_and_counted(tok, data_file):
    spec = DataSpec(paths=[str(data_file)], max_seq_length=30, packing=False)
    with pytest.raises(ValueError, match="no example fits max_seq_length=30"):
        build_rows(tok, spec, seed=0)


def test_packing_fills_rows(tok, data_file):
    spec = DataSpec(paths=[str(data_file)], max_seq_length=512, packing=True)
    cols, stats = build_rows(tok, spec, seed=0)
    assert stats.rows == 1 and stats.examples == 3
    assert cols["position_ids"][0].count(0) == 3


def test_missing_key_is_named(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instruction": "x", "input": "y"}) + "\n")
    with pytest.raises(ValueError, match=r"record 0 lacks \['output'\]"):
        read_records(bad)


def test_parquet_records(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "ins.parquet"
    pq.write_table(pa.Table.from_pylist([{k: r[k] for k in ("instruction", "input", "output")} for r in RECORDS[:2]]),
                   path)
    assert [r["output"] for r in read_records(path)] == [RECORDS[0]["output"], "no"]


def test_packed_attention_is_block_diagonal(model_dir):
    """Logits of each example inside a packed row equal the logits of that example alone (no cross-attention),
    for the model as the workers load it (KV cache off: with a cache transformers ignores the packing)."""
    from training.worker import load_model_for_training

    model = load_model_for_training(model_dir).eval()
    a, b = list(range(10, 30)), list(range(40, 53))
    with torch.no_grad():
        alone_a = model(input_ids=torch.tensor([a])).logits[0]
        alone_b = model(input_ids=torch.tensor([b])).logits[0]
        pos = torch.tensor([list(range(len(a))) + list(range(len(b)))])
        packed = model(input_ids=torch.tensor([a + b]), position_ids=pos).logits[0]
    torch.testing.assert_close(packed[: len(a)], alone_a, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(packed[len(a):], alone_b, atol=1e-5, rtol=1e-4)


def test_packed_loss_equals_separate_losses(model_dir):
    """Same summed loss packed vs one example at a time: no label leaks across example boundaries."""
    from training.sequences import build_labels, concat_row, pad_rows
    from training.worker import load_model_for_training

    model = load_model_for_training(model_dir).eval()
    examples = [build_labels(list(range(10, 22)), [60, 61, 62], True), build_labels(list(range(30, 37)), [70, 71], True)]

    def summed_loss(batch):
        batch = {k: torch.tensor(v) for k, v in batch.items()}
        n = (batch["labels"][:, 1:] != IGNORE_INDEX).sum()
        with torch.no_grad():
            return model(**batch).loss * n

    packed = summed_loss(pad_rows([concat_row(examples)], pad_id=0))
    separate = sum(summed_loss(pad_rows([{"input_ids": i, "labels": lab}], pad_id=0)) for i, lab in examples)
    torch.testing.assert_close(packed, separate, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("limit, tasks, expect_tasks", [(6, {"a": 10, "b": 2, "c": 5}, 3), (17, {"a": 10, "b": 2, "c": 5}, 3),
                                                       (2, {t: 3 for t in "abcdefgh"}, 2), (100, {"a": 4}, 1)])
def test_max_samples_is_a_task_stratified_seeded_sample(limit, tasks, expect_tasks):
    from collections import Counter

    from training.data import stratified_by_task

    records = [{"task_info": {"task": t}, "n": i} for t, n in tasks.items() for i in range(n)]
    picked = stratified_by_task(records, limit, seed=0)
    counts = Counter(r["task_info"]["task"] for r in picked)
    assert len(picked) == min(limit, len(records)) and len(counts) == expect_tasks
    if limit >= len(tasks):  # every task gets its share (or all it has) before any task gets more
        assert min(counts.values()) >= min(min(tasks.values()), limit // len(tasks))
    assert picked == stratified_by_task(records, limit, seed=0)
    assert [r["n"] for r in picked] == [r["n"] for r in records if r in picked]  # file order kept


def test_a_small_limit_draws_tasks_not_the_alphabetically_first():
    from training.data import stratified_by_task

    records = [{"task_info": {"task": t}} for t in "ABCDEFGHabcdefgh"]
    draws = {frozenset(r["task_info"]["task"] for r in stratified_by_task(records, 4, seed=s)) for s in range(6)}
    assert len(draws) > 1 and all(len(d) == 4 for d in draws)
