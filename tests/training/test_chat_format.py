"""Prompt building shared by every stage: table tests on exact strings."""

from __future__ import annotations

import sys

import pytest

from training.chat_format import (
    SYSTEM_PROMPT,
    build_messages,
    build_user_content,
    format_assistant,
    parse_answer_items,
    split_reasoning,
)


@pytest.mark.parametrize(
    ("inp", "instruction", "thinking", "expected"),
    [
        ("EHR", "Predict.", None, "EHR\nPredict."),
        ("EHR", "Predict.", True, "EHR\nPredict.\n/think"),
        ("EHR", "Predict.", False, "EHR\nPredict.\n/no_think"),
        ("", "Q", None, "\nQ"),
        ("a\nb", "Q?", True, "a\nb\nQ?\n/think"),
    ],
)
def test_build_user_content(inp, instruction, thinking, expected):
    assert build_user_content(inp, instruction, thinking) == expected
    msgs = build_messages(inp, instruction, thinking)
    assert msgs == [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": expected}]


def test_system_prompt_is_the_reference_one():
    assert SYSTEM_PROMPT == "You are a helpful assistant."


@pytest.mark.parametrize(
    ("answer", "reasoning", "expected"),
    [
        ("yes", None, "<think>\n\n</think>\n\nyes"),
        ("yes", "", "<think>\n\n</think>\n\nyes"),
        ("A\nB", "step 1\nstep 2", "<think>\nstep 1\nstep 2\n</think>\n\nA\nB"),
        ("A", "\nwhy\n\n", "<think>\nwhy\n</think>\n\nA"),  # Qwen3 strips newlines around the reasoning
        ("", "why", "<think>\nwhy\n</think>\n\n"),
    ],
)
def test_format_assistant(answer, reasoning, expected):
    assert format_assistant(answer, reasoning) == expected


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>\nwhy\n</think>\n\nA\nB", ("why", "A\nB")),
        ("<think>\n\n</think>\n\nyes", ("", "yes")),
        ("why\n</think>\n\nA", ("why", "A")),  # opening tag pre-filled by the prompt
        ("<think>a</think>b</think>\n\nC", ("a</think>b", "C")),  # split at the LAST </think>
        ("<think>\nstill thinking", ("still thinking", "")),  # cut off: no answer
        ("  A\nB  ", (None, "A\nB")),  # no tags at all
        ("", (None, "")),
    ],
)
def test_split_reasoning(completion, expected):
    assert split_reasoning(completion) == expected


@pytest.mark.parametrize(("answer", "reasoning"), [("A\nB", "r1\nr2"), ("yes", None), ("no", "x")])
def test_split_inverts_format(answer, reasoning):
    assert split_reasoning(format_assistant(answer, reasoning)) == (reasoning or "", answer)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("A\nB\nC", ["A", "B", "C"]),
        (" A \n\nB\n A\n", ["A", "B"]),
        ("a\nA", ["a"]),  # spelling of the first kept; duplicates are case-insensitive like the scorer
        ("A\\nB\\nA", ["A", "B"]),  # literal backslash-n, as the reference scorer accepts
        ("A\nx\\ny", ["A", "x", "y"]),  # literal and real newlines both separate (evaluation.answers)
        ("", []),
        ("  \n ", []),
    ],
)
def test_parse_answer_items(answer, expected):
    assert parse_answer_items(answer) == expected


def test_import_is_cheap():
    import subprocess

    mods = "training, training.chat_format, training.config, training.sequences, training.mixing, training.data, " \
           "training.sft, training.tiny_model, training.toy_data, training.deepspeed, ray_jobs.train_sft"
    code = f"import sys, {mods}; print(sorted(m for m in ('torch', 'transformers', 'ray', 'deepspeed') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
