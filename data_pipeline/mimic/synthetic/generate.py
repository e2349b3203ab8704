"""Generate a synthetic MIMIC-IV v2.2 cohort folder (hosp/, icu/, ed/, note/, mappings/) atomically.

The cohort is written into a temporary sibling folder and renamed into place only when complete; the last file
written is ``_SYNTHETIC.json`` (config + row counts). A folder whose manifest matches the requested config is
returned as is (idempotent); anything else at the target that looks like a previous cohort is replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

from tqdm.auto import tqdm

from data_pipeline.mimic.schema import MAPPINGS, MAPPINGS_DIR, MODULES, TABLES
from data_pipeline.mimic.synthetic.config import SyntheticCohortConfig
from data_pipeline.mimic.synthetic.context import Ctx, make_caregivers, make_providers
from data_pipeline.mimic.synthetic.dictionaries import dictionary_rows, mapping_rows
from data_pipeline.mimic.synthetic.patient_rows import write_patient_rows
from data_pipeline.mimic.synthetic.writer import CohortWriter

MANIFEST = "_SYNTHETIC.json"
GENERATOR_VERSION = 1
_OWNED = set(MODULES) | {MAPPINGS_DIR, MANIFEST}


def read_manifest(out_dir: str | Path) -> dict | None:
    path = Path(out_dir) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_complete(out_dir: str | Path, cfg: SyntheticCohortConfig) -> bool:
    """True when ``out_dir`` holds a finished cohort generated with ``cfg`` by this generator version."""
    manifest = read_manifest(out_dir)
    if not manifest or manifest.get("generator_version") != GENERATOR_VERSION:
        return False
    if manifest.get("config") != cfg.manifest_key():
        return False
    return all((Path(out_dir) / rel).is_file() for rel in manifest.get("rows", {}))


def generate_cohort_from_config(cfg: SyntheticCohortConfig, out_dir: str | Path, progress: bool = True) -> Path:
    out = Path(out_dir).resolve()
    if is_complete(out, cfg):
        return out
    _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{threading.get_ident()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        started = time.perf_counter()
        rows = _write_all(cfg, tmp, progress)
        elapsed = time.perf_counter() - started
        manifest = {"generator_version": GENERATOR_VERSION, "config": cfg.manifest_key(), "rows": rows,
                    "total_rows": sum(rows.values())}
        tmp_manifest = tmp / (MANIFEST + ".tmp")
        tmp_manifest.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        os.replace(tmp_manifest, tmp / MANIFEST)
        _move_into_place(tmp, out, cfg)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if progress:
        total = manifest["total_rows"]
        print(f"synthetic cohort: {cfg.num_patients} patients, {total} rows in {elapsed:.1f}s "
              f"({total / max(elapsed, 1e-9):,.0f} rows/s) -> {out}")
    return out


def generate_cohort(out_dir: str | Path, num_patients: int | None = None, seed: int | None = None,
                    volume: str | None = None, modules: tuple[str, ...] | None = None, progress: bool = False,
                    **config) -> Path:
    """Write a synthetic MIMIC-IV v2.2 cohort to ``out_dir`` and return its path (see module docstring).

    Arguments left as None take the :class:`SyntheticCohortConfig` defaults (200 patients, seed 0, ``demo``
    volume, all modules); ``config`` passes any other config field (``chunk_size``, ``compresslevel``)."""
    given = dict(num_patients=num_patients, seed=seed, volume=volume, modules=modules)
    cfg = SyntheticCohortConfig(**{k: v for k, v in given.items() if v is not None}, **config)
    return generate_cohort_from_config(cfg, out_dir, progress=progress)


def _move_into_place(tmp: Path, out: Path, cfg: SyntheticCohortConfig) -> None:
    """Rename the finished temp folder to ``out``. If a concurrent run with the same config finished first, its
    (byte-identical) cohort is kept and ours is dropped."""
    if is_complete(out, cfg):
        shutil.rmtree(tmp)
        return
    if out.exists():
        shutil.rmtree(out)
    try:
        os.replace(tmp, out)
    except OSError:
        if not is_complete(out, cfg):
            raise
        shutil.rmtree(tmp)


def _check_replaceable(out: Path) -> None:
    """Only an empty folder or a previous synthetic cohort (it has our manifest) may be replaced: never a real
    MIMIC-IV download or anything else a user put there."""
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder; choose another output path for the cohort")
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    foreign = [name for name in entries if name not in _OWNED]
    if foreign or MANIFEST not in entries:
        raise FileExistsError(
            f"{out} is not a synthetic cohort (no {MANIFEST}"
            + (f"; holds {foreign[:5]}" if foreign else "") + "); refusing to replace it. "
            "Choose an empty or new output folder, or delete it yourself if it is disposable.")


def _write_all(cfg: SyntheticCohortConfig, root: Path, progress: bool) -> dict[str, int]:
    tables = {rel: spec.column_names for rel, spec in TABLES.items() if spec.module in cfg.modules}
    providers, caregivers = make_providers(cfg.seed), make_caregivers(cfg.seed)
    writer = CohortWriter(root, tables, cfg.compresslevel)
    try:
        for rel, row in dictionary_rows(providers, caregivers):
            writer.add(rel, **row)
        ctx = Ctx(cfg.seed, writer, cfg.preset, providers, caregivers)
        with tqdm(total=cfg.num_patients, unit="patient", desc="synthetic MIMIC-IV", disable=not progress) as bar:
            for start in range(0, cfg.num_patients, cfg.chunk_size):
                stop = min(start + cfg.chunk_size, cfg.num_patients)
                for idx in range(start, stop):
                    write_patient_rows(ctx, idx)
                writer.flush()
                bar.update(stop - start)
    finally:
        counts = writer.close()
    rows = {f"{rel}.csv.gz": n for rel, n in counts.items()}
    mapping_tables = {f"{MAPPINGS_DIR}/{m.name}": m.columns for m in MAPPINGS.values()}
    mwriter = CohortWriter(root, mapping_tables, cfg.compresslevel)
    try:
        for name, row in mapping_rows():
            mwriter.add(f"{MAPPINGS_DIR}/{name}", **row)
    finally:
        mcounts = mwriter.close()
    rows.update({f"{rel}.csv.gz": n for rel, n in mcounts.items()})
    return dict(sorted(rows.items()))
