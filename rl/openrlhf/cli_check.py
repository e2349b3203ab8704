"""Run OpenRLHF's own argument parser (and its post-parse checks) on an argv, without starting training.

``openrlhf/cli/train_ppo_ray.py`` builds its parser inside ``if __name__ == "__main__":`` and imports GPU-only
modules (vLLM engines, DeepSpeed actors, flash-attn) at the top, so neither importing it nor ``--help`` works on a
CPU machine. This module reads that file's source, takes its standard-library imports and the statements of its ``__main__`` block up to (not
including) the final ``train(args)`` call, and executes them with the argv: OpenRLHF's real ``add_argument``
calls, ``parse_args``, ``hierarchize`` and its assertions on the parsed values. Unknown or renamed flags exit 2
(argparse), inconsistent values raise AssertionError -- both become :class:`OpenRLHFArgvError`.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import sys
from pathlib import Path
from types import SimpleNamespace

MODULE = "openrlhf.cli.train_ppo_ray"


class OpenRLHFArgvError(ValueError):
    """OpenRLHF's parser rejected the argv."""


def openrlhf_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("openrlhf")
    except Exception:  # noqa: BLE001 - not installed
        return None


def _main_block(source: str, filename: str) -> ast.Module:
    tree = ast.parse(source, filename)
    # The parser code uses the module's standard-library imports (argparse, os, datetime); its openrlhf/ray
    # imports are the GPU-only training stack and are not needed to parse.
    light = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)) and not any(
        (name or "").split(".")[0] in ("openrlhf", "ray") for name in
        ([node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]))]
    for node in tree.body:
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"):
            body = list(node.body)
            last = body[-1]
            if not (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
                    and getattr(last.value.func, "id", None) == "train"):
                raise RuntimeError(f"{filename}: the __main__ block no longer ends with train(args); "
                                   "rl.openrlhf.cli_check needs updating for this OpenRLHF version")
            return ast.Module(body=[*light, *body[:-1]], type_ignores=[])
    raise RuntimeError(f"{filename}: no `if __name__ == '__main__':` block; OpenRLHF changed its CLI layout")


def parse_openrlhf_argv(argv: list[str]) -> SimpleNamespace:
    """The hierarchical args OpenRLHF's ``train_ppo_ray`` would train with, or OpenRLHFArgvError."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("openrlhf is not installed; `pip install --no-deps openrlhf==0.11.2` "
                                  "(see rl/README.md)")
    code = compile(_main_block(Path(spec.origin).read_text(), spec.origin), spec.origin, "exec")
    namespace: dict = {"__name__": "openrlhf_argv_check"}
    old_argv, stderr = sys.argv, io.StringIO()
    sys.argv = [MODULE, *argv]
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            exec(code, namespace)  # OpenRLHF's own parser code (trusted, from the installed package)
    except SystemExit as exc:
        raise OpenRLHFArgvError(f"OpenRLHF's parser rejected the argv (exit {exc.code}): "
                                f"{stderr.getvalue().strip().splitlines()[-1:]}") from None
    except AssertionError as exc:
        raise OpenRLHFArgvError(f"OpenRLHF's argument checks failed: {exc}") from None
    finally:
        sys.argv = old_argv
    return namespace["args"]


def driver_env_vars() -> set[str]:
    """The env var names OpenRLHF's driver passes to its own ``ray.init(runtime_env={"env_vars": ...})``.

    Read from the installed ``train()`` source: Ray refuses to merge a job's runtime env that sets any of them
    ("Failed to merge the Job's runtime env"), so :mod:`rl.openrlhf.runtime_env` checks jobs against this set.
    """
    spec = importlib.util.find_spec(MODULE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("openrlhf is not installed; `pip install --no-deps openrlhf==0.11.2` "
                                  "(see rl/README.md)")
    names: set[str] = set()
    for node in ast.walk(ast.parse(Path(spec.origin).read_text(), spec.origin)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "init"
                and getattr(node.func.value, "id", None) == "ray"):
            continue
        for kw in node.keywords:
            if kw.arg != "runtime_env" or not isinstance(kw.value, ast.Dict):
                continue
            for key, value in zip(kw.value.keys, kw.value.values):
                if isinstance(key, ast.Constant) and key.value == "env_vars" and isinstance(value, ast.Dict):
                    names |= {k.value for k in value.keys if isinstance(k, ast.Constant)}
    return names
