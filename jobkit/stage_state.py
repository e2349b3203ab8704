"""Whether a training stage's run directory holds work for *this* config: done, resumable, or stale.

Every training run directory holds ``stage.json``: the stage's key (its resolved config minus the settings that do
not change the result, plus a fingerprint of every input file or model directory) and whether it finished. On
start (:func:`begin_stage`):

- same key, finished          -> ``"done"``: the caller returns the finished model;
- same key, not finished      -> ``"resume"``: Ray Train resumes from the latest checkpoint;
- no run directory            -> ``"fresh"``;
- only ``extendable`` keys changed (a larger ``max_steps``) -> ``"resume"``: training goes on from the latest
  checkpoint to the new length, as HF Trainer's ``resume_from_checkpoint`` does;
- a different key (or a run directory without ``stage.json``) -> the changed keys are named and, with
  ``on_change: rerun``, the stale run is moved aside to ``<run>.replaced-N`` (nothing is deleted) and the stage runs
  afresh; with ``on_change: refuse`` it stops with a message naming the keys.

An input's fingerprint is the size and modification time of its files (a model directory: its config, weights and
tokenizer files), so a retrained upstream model -- written atomically, with a new mtime -- re-runs the stages after
it without hashing gigabytes of weights.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)
STATE_FILE = "stage.json"
Status = Literal["done", "resume", "fresh"]


class StageChanged(RuntimeError):
    """The run directory holds a run of another config and ``on_change`` is ``refuse``."""


def path_fingerprint(path: str | Path) -> str:
    """``size:mtime_ns`` of a file, or of every file directly in a directory (sorted), as one string."""
    path = Path(path).expanduser()
    if path.is_file():
        st = path.stat()
        return f"{st.st_size}:{st.st_mtime_ns}"
    if path.is_dir():
        parts = [f"{p.name}={p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(path.iterdir()) if p.is_file()]
        return ";".join(parts) or "empty"
    return "missing"


def _drop(config: Mapping[str, Any], volatile: Iterable[str]) -> dict[str, Any]:
    """``config`` without the dotted keys in ``volatile`` (e.g. ``run.max_failures``)."""
    out = json.loads(json.dumps(dict(config), default=str))
    for dotted in volatile:
        node, *path = dotted.split(".")
        holder: Any = out
        for part in [node, *path][:-1]:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if isinstance(holder, dict):
            holder.pop(dotted.split(".")[-1], None)
    return out


def stage_key(config: Mapping[str, Any], inputs: Mapping[str, str | Path], volatile: Iterable[str] = ()) -> dict:
    """What decides a stage's result: its config (minus ``volatile`` keys) and its inputs' fingerprints."""
    return {"config": _drop(config, volatile),
            "inputs": {name: path_fingerprint(p) for name, p in sorted(inputs.items())}}


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        name = f"{prefix}{k}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_keys(a, b, name + ".")
        elif a != b:
            out.append(name)
    return out


def free_name(path: Path, tag: str) -> Path:
    """``<path>.<tag>-N`` for the smallest N not taken."""
    n = 1
    while (candidate := path.with_name(f"{path.name}.{tag}-{n}")).exists():
        n += 1
    return candidate


def _write(run_dir: Path, state: dict) -> None:
    tmp = run_dir / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(tmp, run_dir / STATE_FILE)


def begin_stage(run_dir: str | Path, key: dict, on_change: str = "rerun", what: str = "stage",
                done_marker: str = "final_model/config.json", extendable: Iterable[str] = ()) -> Status:
    """Decide done / resume / fresh for ``run_dir`` (see the module doc); writes ``stage.json`` for this key."""
    run_dir = Path(run_dir)
    state_file = run_dir / STATE_FILE
    if run_dir.is_dir() and any(run_dir.iterdir()):
        old = json.loads(state_file.read_text()) if state_file.is_file() else None
        if old is not None and old.get("key") == key:
            if old.get("done") and (run_dir / done_marker).is_file():
                log.info("%s already finished with this config and these inputs: %s", what, run_dir)
                return "done"
            log.info("%s: resuming %s (same config and inputs)", what, run_dir)
            return "resume"
        changed = changed_keys(old["key"], key) if old is not None else [f"(no {STATE_FILE}: run of unknown config)"]
        if changed and {f"config.{k}" for k in extendable} >= set(changed):
            log.info("%s: %s changed; training goes on from the latest checkpoint in %s", what, ", ".join(changed),
                     run_dir)
            _write(run_dir, {"key": key, "done": False})
            return "resume"
        shown = ", ".join(changed[:12]) + (f" and {len(changed) - 12} more" if len(changed) > 12 else "")
        if on_change == "refuse":
            raise StageChanged(f"{run_dir} holds a {what} run of another config or other inputs (changed: {shown}); "
                               "use a new run.name, or set run.on_change: rerun to move that run aside and re-run")
        aside = free_name(run_dir, "replaced")
        os.replace(run_dir, aside)
        log.warning("%s: config or inputs changed (%s); the earlier run is kept at %s and the stage re-runs",
                    what, shown, aside)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write(run_dir, {"key": key, "done": False})
    return "fresh"


def finish_stage(run_dir: str | Path) -> None:
    """Mark the run in ``run_dir`` finished (after its final model was written)."""
    run_dir = Path(run_dir)
    state = json.loads((run_dir / STATE_FILE).read_text())
    _write(run_dir, {**state, "done": True})
