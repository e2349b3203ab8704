"""The tiny model loads offline, its tokenizer/template follow the shared chat format, and builds are reproducible."""

from __future__ import annotations

import hashlib

import pytest
import transformers  # a core dependency: a broken install fails here, it is never skipped

from training.chat_format import build_messages, format_assistant
from training.tiny_model import MARKER, build_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def tok(tiny):
    return transformers.AutoTokenizer.from_pretrained(tiny)


def test_model_loads_offline_with_expected_shape(tiny, tok):
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny)
    cfg = model.config
    assert (cfg.model_type, cfg.hidden_size, cfg.num_hidden_layers) == ("qwen3", 64, 2)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim) == (2, 1, 64)
    assert cfg.tie_word_embeddings and cfg.max_position_embeddings == 2048
    assert cfg.vocab_size == len(tok)
    assert cfg.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert cfg.pad_token_id == tok.pad_token_id


@pytest.mark.parametrize("token", ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<pad>",
                                   "yes", "no"])
def test_single_tokens(tok, token):
    assert len(tok.encode(token, add_special_tokens=False)) == 1


def test_think_tags_survive_skip_special_tokens(tok):
    ids = tok.encode("<|im_start|>assistant\n<think>\nr\n</think>\n\nyes<|im_end|>", add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == "assistant\n<think>\nr\n</think>\n\nyes"


PROMPT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nEHR\nQ{switch}<|im_end|>\n"
          "<|im_start|>assistant\n")


@pytest.mark.parametrize(
    ("thinking", "kwargs", "expected"),
    [
        (None, {}, PROMPT.format(switch="")),
        (True, {}, PROMPT.format(switch="\n/think")),
        (False, {}, PROMPT.format(switch="\n/no_think") + "<think>\n\n</think>\n\n"),  # soft switch honoured
        (None, {"enable_thinking": False}, PROMPT.format(switch="") + "<think>\n\n</think>\n\n"),
        (None, {"enable_thinking": True}, PROMPT.format(switch="")),
        (False, {"enable_thinking": True}, PROMPT.format(switch="\n/no_think")),  # the explicit kwarg wins
    ],
)
def test_generation_prompt(tok, thinking, kwargs, expected):
    msgs = build_messages("EHR", "Q", thinking)
    assert tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, **kwargs) == expected


@pytest.mark.parametrize(("answer", "reasoning"), [("A\nB", "why"), ("yes", None)])
def test_training_render_is_prompt_plus_assistant(tok, answer, reasoning):
    msgs = build_messages("EHR", "Q", True if reasoning else None)
    prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(msgs + [{"role": "assistant", "content": format_assistant(answer, reasoning)}],
                                   tokenize=False)
    assert full == prompt + format_assistant(answer, reasoning) + "<|im_end|>\n"


def _digest(path):
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(path.iterdir()) if f.is_file()}


def test_deterministic_and_idempotent(tiny, tmp_path):
    again = build_tiny_model(tmp_path / "again")
    assert _digest(again) == _digest(tiny)
    before = (again / MARKER).stat().st_mtime_ns
    assert build_tiny_model(tmp_path / "again") == again  # reused, not rebuilt
    assert (again / MARKER).stat().st_mtime_ns == before


def test_other_parameters_refuse_to_overwrite(tiny):
    with pytest.raises(FileExistsError, match="seed"):
        build_tiny_model(tiny, seed=1)


def test_foreign_directory_is_not_overwritten(tmp_path):
    (tmp_path / "x.txt").write_text("not a model")
    with pytest.raises(FileExistsError, match="not a complete tiny model"):
        build_tiny_model(tmp_path)


def test_custom_corpus_keeps_answer_words_single(tmp_path):
    out = build_tiny_model(tmp_path / "c", corpus=["abc def"] * 3, vocab_size=300)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    assert [len(tok.encode(w, add_special_tokens=False)) for w in ("yes", "no")] == [1, 1]
