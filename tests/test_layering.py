"""The layering a newcomer reads top-down: ``ray_jobs`` (entrypoints) -> libraries -> ``jobkit``.

Static (ast) checks over every project module, so they hold for code paths the other tests never import:
no library module imports ``ray_jobs``, ``jobkit`` imports no other project package, and no two project modules
import each other, directly or through others (lazy imports inside functions count: they run too).
"""

from __future__ import annotations

import pytest

from tests.project_imports import LIBRARY_PACKAGES, PROJECT_PACKAGES, import_cycles, imports_of, module_files

# Known exceptions, each with the reason and the change that removes it. Keep this empty.
LIBRARY_IMPORTS_RAY_JOBS_PENDING: set[str] = set()

MODULES = module_files()


def test_the_project_is_found():
    packages = {name.split(".")[0] for name in MODULES}
    assert {"jobkit", "data_pipeline", "training", "serving", "ray_jobs"} <= packages <= set(PROJECT_PACKAGES)


@pytest.mark.parametrize("package", LIBRARY_PACKAGES)
def test_libraries_never_import_ray_jobs(package):
    offenders = {m: sorted(i for i in imports_of(m)[0] if i.split(".")[0] == "ray_jobs")
                 for m in MODULES if m.split(".")[0] == package}
    offenders = {m: i for m, i in offenders.items() if i and m not in LIBRARY_IMPORTS_RAY_JOBS_PENDING}
    assert not offenders, ("library modules import the entrypoint package ray_jobs; import jobkit.config / "
                           f"jobkit.ray_runtime instead: {offenders}")


def test_pending_exceptions_are_still_needed():
    """An exception that no longer applies must be dropped from the list, so the list cannot rot."""
    for module in LIBRARY_IMPORTS_RAY_JOBS_PENDING:
        if module in MODULES:
            assert any(i.startswith("ray_jobs") for i in imports_of(module)[0]), f"{module}: drop the exception"


def test_jobkit_sits_below_every_other_package():
    offenders = {m: sorted(i for i in imports_of(m)[0] if not i.startswith("jobkit"))
                 for m in MODULES if m.startswith("jobkit")}
    assert not any(offenders.values()), offenders


def test_no_import_cycles_among_project_modules():
    cycles = import_cycles()
    assert not cycles, "import cycles (move the shared part into a module both can import): " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_the_cycle_detector_finds_a_cycle(tmp_path, monkeypatch):
    """The detector itself: two modules importing each other lazily are a cycle."""
    import tests.project_imports as pi

    pkg = tmp_path / "data_pipeline"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from data_pipeline.b import g\n")
    (pkg / "b.py").write_text("from data_pipeline import a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from data_pipeline.a import f\n")
    monkeypatch.setattr(pi, "REPO", tmp_path)
    pi.imports_of.cache_clear()
    try:
        assert pi.import_cycles() == [["data_pipeline.a", "data_pipeline.b"]]
    finally:
        pi.imports_of.cache_clear()
