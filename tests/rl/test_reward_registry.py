"""The reward registry: duplicate guard, import-path fallback, clear errors."""

from __future__ import annotations

import pytest

from rl.rewards import get_reward, register
from rl.rewards.registry import _REGISTRY, as_text


def test_duplicate_name_is_rejected_but_re_registering_the_same_function_is_not():
    def first(completions, labels, **kw):
        return [0.0] * len(completions)

    def second(completions, labels, **kw):
        return [1.0] * len(completions)

    try:
        register("test_dup")(first)
        register("test_dup")(first)  # idempotent (module re-import)
        with pytest.raises(ValueError, match="already registered"):
            register("test_dup")(second)
    finally:
        _REGISTRY.pop("test_dup", None)


def test_builtin_name_cannot_be_taken():
    with pytest.raises(ValueError, match="'ehr_yes_no' is already registered"):
        register("ehr_yes_no")(lambda c, labels, **kw: [])


def test_import_path_fallback():
    fn = get_reward("rl.rewards.ehr_r1:ehr_yes_no")
    assert fn(["yes"], [{"target": "yes"}]) == [1.0]


@pytest.mark.parametrize("name, fragment", [
    ("no_such_reward", "unknown reward 'no_such_reward'; registered rewards: "),
    ("no_such_module_xyz:fn", "cannot import module 'no_such_module_xyz'"),
    ("rl.rewards.ehr_r1:missing", "has no callable 'missing'"),
])
def test_unknown_names_fail_clearly(name, fragment):
    with pytest.raises(KeyError, match=fragment):
        get_reward(name)


@pytest.mark.parametrize("value, text", [
    (None, ""), ("x", "x"), (b"x", "x"),
    ([{"role": "assistant", "content": "yes"}], "yes"),
    ([{"role": "assistant", "content": "yes", "reasoning_content": "why"}], "<think>\nwhy\n</think>\n\nyes"),
    ({"content": None}, ""), (3, "3"),
])
def test_as_text(value, text):
    assert as_text(value) == text
