"""The optional-engine guard (tests/engines.py): a broken engine fails, an absent one skips only outside CI."""

from __future__ import annotations

import sys

import pytest

from tests.engines import REQUIRE_ENV, engines_required, is_absent, require_engine

SKIP, FAIL = pytest.skip.Exception, pytest.fail.Exception


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """Three fake packages on sys.path: one that imports, one whose import raises (a broken wheel), one whose
    import fails on a missing dependency of its own (ModuleNotFoundError from inside: installed, broken)."""
    for name, body in {"ehr_fake_ok": "VALUE = 1\n",
                       "ehr_fake_broken": "raise ImportError('libcuda.so.1: cannot open shared object file')\n",
                       "ehr_fake_missing_dep": "import ehr_fake_nowhere_to_be_found\n"}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    for env in ("CI", REQUIRE_ENV):
        monkeypatch.delenv(env, raising=False)
    yield monkeypatch
    for name in list(sys.modules):
        if name.startswith("ehr_fake_"):
            del sys.modules[name]


@pytest.mark.parametrize("env,required", [
    ({}, False), ({"CI": "true"}, True), ({"CI": "1"}, True), ({"CI": "false"}, False), ({REQUIRE_ENV: "1"}, True),
    ({REQUIRE_ENV: "0"}, False), ({REQUIRE_ENV: "0", "CI": "true"}, True), ({REQUIRE_ENV: ""}, False),
])
def test_engines_required(env, required):
    assert engines_required(env) is required


def test_an_importable_engine_is_returned(packages):
    assert require_engine("ehr_fake_ok", "pip install ok").VALUE == 1


def test_an_absent_engine_skips_with_the_real_error_outside_ci(packages):
    assert is_absent("ehr_fake_absent") and is_absent("ehr_fake_ok.absent_sub")
    with pytest.raises(SKIP, match=r"No module named 'ehr_fake_absent'.*pip install absent"):
        require_engine("ehr_fake_absent", "pip install absent")
    with pytest.raises(SKIP, match=r"No module named 'ehr_fake_ok.absent_sub'"):
        require_engine("ehr_fake_ok.absent_sub", "pip install ok")


@pytest.mark.parametrize("env", [{"CI": "true"}, {REQUIRE_ENV: "1"}])
def test_an_absent_engine_fails_when_ci_requires_it(packages, env):
    for k, v in env.items():
        packages.setenv(k, v)
    with pytest.raises(FAIL, match=r"not installed, but this run requires the engines.*No module named"):
        require_engine("ehr_fake_absent", "pip install absent")


@pytest.mark.parametrize("module,error", [
    ("ehr_fake_broken", "ImportError: libcuda.so.1"),
    ("ehr_fake_missing_dep", "ModuleNotFoundError: No module named 'ehr_fake_nowhere_to_be_found'"),
    ("ehr_fake_broken.sub", "ImportError: libcuda.so.1"),  # a submodule of a broken package: broken, not absent
])
def test_a_broken_engine_fails_even_outside_ci(packages, module, error):
    assert not is_absent(module)
    with pytest.raises(FAIL, match="installed but does not import: " + error.replace(".", r"\.")):
        require_engine(module, "make install-vllm")
