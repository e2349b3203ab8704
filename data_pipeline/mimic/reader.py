"""Find, validate and stream the tables of a MIMIC-IV root (``hosp/ icu/ ed/ note/`` + optional ``mappings/``).

* Each table may be ``<name>.csv``, ``<name>.csv.gz`` or ``<name>.parquet``; header case is normalised to lower case
  (v2.2 writes ``ORIGINALAMOUNT``); only the schema's columns are read, extra columns are ignored.
* :func:`plan_source` checks every header *before* any heavy work and raises one :class:`MimicDataError` listing
  every missing required table or column with its fix. Missing optional modules (icu, ed, note) and missing code
  mappings only produce one WARNING each, naming the tasks that become unavailable.
* :func:`iter_batches` streams a table in record batches (pyarrow's streaming CSV reader, all columns as strings);
  a truncated or corrupt gzip file becomes an error telling the user to re-download or re-generate it.

A module can live outside the root (MIMIC-IV-Note and -ED are separate PhysioNet projects): give
``module_roots={"note": "/data/.../mimic-iv-note/2.2/note"}``.
"""

from __future__ import annotations

import csv
import gzip
import logging
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from data_pipeline.mimic.schema import MAPPINGS, MAPPINGS_DIR, MODULES, OPTIONAL_MODULES, TABLES, MappingSpec, TableSpec
from data_pipeline.mimic.values import empty_to_null

log = logging.getLogger(__name__)

#: Preferred first when several formats of one table exist (fastest to read first).
FORMATS = (".parquet", ".csv", ".csv.gz")
#: Tables the timeline builder reads besides the event tables: dictionaries and the one detail table it joins.
JOINED_TABLES = ("hosp/d_labitems", "hosp/d_icd_diagnoses", "hosp/d_icd_procedures", "icu/d_items",
                 "note/radiology_detail")
#: A dictionary that must be present whenever its module is (its module's events cannot be named without it).
MODULE_DICTIONARIES = {"icu/d_items": "icu"}


class MimicDataError(ValueError):
    """Source data that cannot be used; the message names the file, the row/column and the fix."""


@dataclass(frozen=True)
class SourceLayout:
    """Where the modules live: ``root/<module>`` unless ``module_roots`` overrides a module's folder."""

    root: Path
    module_roots: Mapping[str, Path] = field(default_factory=dict)
    mappings_dir: Path | None = None

    def module_dir(self, module: str) -> Path:
        return Path(self.module_roots.get(module, Path(self.root) / module))

    def mapping_dir(self) -> Path:
        return Path(self.mappings_dir) if self.mappings_dir else Path(self.root) / MAPPINGS_DIR


@dataclass(frozen=True)
class SourceFile:
    """One located file: its path and its header as written (``names``) and lower-cased (``columns``)."""

    path: Path
    names: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(n.lower() for n in self.names)

    @property
    def is_parquet(self) -> bool:
        return self.path.name.endswith(".parquet")

    def original_names(self, columns: Iterable[str]) -> list[str]:
        lower = {n.lower(): n for n in self.names}
        return [lower[c] for c in columns]


@dataclass
class SourcePlan:
    layout: SourceLayout
    tables: dict[str, SourceFile]          # relpath ("hosp/labevents") -> file
    mappings: dict[str, SourceFile]        # mapping name -> file
    missing_modules: list[str]
    warnings: list[str]

    def get(self, relpath: str) -> SourceFile | None:
        return self.tables.get(relpath)

    def event_tables(self) -> list[tuple[TableSpec, SourceFile]]:
        """Present event tables (and ``patients``) in schema order."""
        return [(TABLES[rp], f) for rp, f in self.tables.items() if TABLES[rp].kind == "event"]

    def total_bytes(self) -> int:
        return sum(f.path.stat().st_size for f in [*self.tables.values(), *self.mappings.values()])


def find_file(folder: Path, name: str) -> Path | None:
    found = [folder / f"{name}{ext}" for ext in FORMATS if (folder / f"{name}{ext}").is_file()]
    if len(found) > 1:
        log.info("%s: several formats present (%s); reading %s", folder / name,
                 ", ".join(p.name for p in found), found[0].name)
    return found[0] if found else None


def corrupt_gzip_error(path: Path, exc: BaseException) -> MimicDataError:
    return MimicDataError(
        f"{path}: the gzip stream is truncated or corrupt ({type(exc).__name__}: {exc}). The file was probably cut "
        f"short while downloading or writing; re-download it from PhysioNet (or re-generate the synthetic cohort) "
        f"and run again.")


def read_header(path: Path) -> tuple[str, ...]:
    """The column names of a csv / csv.gz / parquet file, as written."""
    if path.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            return tuple(pq.read_schema(path).names)
        except (OSError, pa.ArrowInvalid) as exc:
            raise MimicDataError(f"{path}: not a readable parquet file ({exc}); re-export it and run again") from None
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
                row = next(csv.reader(fh), None)
        else:
            with open(path, encoding="utf-8", newline="") as fh:
                row = next(csv.reader(fh), None)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise corrupt_gzip_error(path, exc) from None
    except UnicodeDecodeError as exc:
        raise MimicDataError(f"{path}: header is not UTF-8 text ({exc}); MIMIC-IV files are UTF-8 CSV") from None
    if not row:
        raise MimicDataError(f"{path}: empty file (no header row); re-download or re-generate it")
    return tuple(c.strip() for c in row)


def _tasks_needing(tables: Iterable[str]) -> list[str]:
    from data_pipeline.tasks import tasks_needing_tables

    return list(tasks_needing_tables(list(tables)))


def _needed(spec: TableSpec) -> bool:
    return spec.kind == "event" or spec.relpath in JOINED_TABLES


def plan_source(layout: SourceLayout) -> SourcePlan:
    """Locate every table the timeline builder needs and validate all headers; no data rows are read."""
    errors: list[str] = []
    warnings: list[str] = []
    tables: dict[str, SourceFile] = {}
    if not layout.module_dir("hosp").is_dir():
        raise MimicDataError(
            f"{layout.module_dir('hosp')}: the hosp module folder does not exist. mimic_root must be the folder that "
            f"contains hosp/ (e.g. /data/physionet.org/files/mimiciv/2.2), or set module_roots.hosp.")
    present_modules = [m for m in MODULES if layout.module_dir(m).is_dir()]
    missing_modules = [m for m in OPTIONAL_MODULES if m not in present_modules]
    for module in missing_modules:
        names = [t.name for t in TABLES.values() if t.module == module and t.kind == "event"]
        warnings.append(f"module {module!r} not found at {layout.module_dir(module)}: its tables ({', '.join(names)}) "
                        f"are skipped; unavailable tasks: {', '.join(_tasks_needing(names)) or 'none'}. "
                        f"Set module_roots.{module} if it lives elsewhere.")
    for relpath, spec in TABLES.items():
        if spec.module not in present_modules or not _needed(spec):
            continue
        path = find_file(layout.module_dir(spec.module), spec.name)
        if path is None:
            where = layout.module_dir(spec.module) / spec.name
            if spec.required or MODULE_DICTIONARIES.get(relpath) == spec.module:
                errors.append(f"{where}.csv.gz: required table {relpath} is missing; copy it from the MIMIC-IV "
                              f"release (as .csv, .csv.gz or .parquet) or re-generate the synthetic cohort")
            elif spec.kind == "event":
                warnings.append(f"table {relpath} not found in {layout.module_dir(spec.module)}: skipped; unavailable "
                                f"tasks: {', '.join(_tasks_needing([spec.name])) or 'none'}")
            else:
                warnings.append(f"table {relpath} not found in {layout.module_dir(spec.module)}: its joined fields "
                                f"print as 'None'")
            continue
        sf = _checked_source(path, spec.column_names, errors,
                             f"the file must have the MIMIC-IV v2.2 columns ({', '.join(spec.column_names)}) - "
                             "re-export or re-download the table")
        if sf is not None:
            tables[relpath] = sf
    mappings = _plan_mappings(layout, errors, warnings)
    if errors:
        raise MimicDataError(f"{len(errors)} problem(s) with the MIMIC-IV source:\n  - " + "\n  - ".join(errors))
    for w in warnings:
        log.warning(w)
    return SourcePlan(layout, tables, mappings, missing_modules, warnings)


def _checked_source(path: Path, expected: Iterable[str], errors: list[str], fix: str) -> SourceFile | None:
    """The file with its header read, or None after appending one error per unreadable file / missing column."""
    try:
        sf = SourceFile(path, read_header(path))
    except MimicDataError as exc:
        errors.append(str(exc))
        return None
    missing = [c for c in expected if c.lower() not in sf.columns]
    errors.extend(f"{path}: column {col!r} is missing from the header; {fix}" for col in missing)
    return None if missing else sf


def _plan_mappings(layout: SourceLayout, errors: list[str], warnings: list[str]) -> dict[str, SourceFile]:
    out: dict[str, SourceFile] = {}
    folder = layout.mapping_dir()
    absent: list[MappingSpec] = []
    for name, spec in MAPPINGS.items():
        path = find_file(folder, name) if folder.is_dir() else None
        if path is None:
            absent.append(spec)
            continue
        sf = _checked_source(path, spec.columns, errors,
                             f"a {name} mapping needs columns {', '.join(spec.columns)} - rebuild the mapping file")
        if sf is not None:
            out[name] = sf
    if absent:
        tasks = sorted({t for m in absent for t in m.used_by})
        warnings.append(f"code mappings {', '.join(m.name for m in absent)} not found in {folder}: 'CCS Type'/'ATC "
                        f"Type' print as 'None' and these tasks are unavailable: {', '.join(tasks)}")
    return out


def iter_batches(sf: SourceFile, columns: list[str], block_bytes: int = 16 << 20
                 ) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Stream ``columns`` (lower-case names) of one file as ``(first_row_index, batch)``; CSV values are strings.

    Batches are renamed to the lower-case names. Decompression and parse failures become :class:`MimicDataError`.
    """
    names = sf.original_names(columns)
    offset = 0
    if sf.is_parquet:
        import pyarrow.parquet as pq

        rows = max(1024, block_bytes // 256)
        try:
            for batch in pq.ParquetFile(sf.path).iter_batches(batch_size=rows, columns=names):
                arrays = [empty_to_null(a) if pa.types.is_string(a.type) else a for a in batch.columns]
                yield offset, pa.RecordBatch.from_arrays(arrays, names=columns)
                offset += batch.num_rows
        except (OSError, pa.ArrowInvalid) as exc:
            raise MimicDataError(f"{sf.path}: cannot read parquet near row {offset} ({exc}); re-export it") from None
        return
    import pyarrow.csv as pv

    reader = None
    try:
        reader = pv.open_csv(
            sf.path,
            read_options=pv.ReadOptions(block_size=block_bytes, use_threads=True),
            # quoted values may span lines (note text, lab comments): the chunker must respect quotes
            parse_options=pv.ParseOptions(newlines_in_values=True),
            convert_options=pv.ConvertOptions(include_columns=names, column_types={n: pa.string() for n in names},
                                              strings_can_be_null=True, quoted_strings_can_be_null=True,
                                              null_values=[""]))
        for batch in reader:
            yield offset, batch.rename_columns(columns)
            offset += batch.num_rows
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise corrupt_gzip_error(sf.path, exc) from None
    except (OSError, pa.ArrowInvalid) as exc:
        text = str(exc).lower()
        if sf.path.name.endswith(".gz") and any(k in text for k in ("gzip", "compress", "truncat", "end of", "eof")):
            raise corrupt_gzip_error(sf.path, exc) from None
        raise MimicDataError(f"{sf.path}: cannot parse the CSV after data row {offset} ({exc}); check the file is "
                             f"an unmodified MIMIC-IV table, or re-download / re-generate it") from None
    finally:
        if reader is not None:
            reader.close()


def read_table(sf: SourceFile, columns: list[str]) -> pa.Table:
    """A whole (small) table, e.g. a dictionary, as strings with lower-case names."""
    batches = [b for _, b in iter_batches(sf, columns)]
    if not batches:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    return pa.Table.from_batches(batches)


def describe_plan(plan: SourcePlan) -> str:
    return ", ".join(sorted(plan.tables)) + (f"; mappings: {', '.join(sorted(plan.mappings))}" if plan.mappings
                                             else "; no mappings")


__all__ = ["SourceLayout", "SourceFile", "SourcePlan", "MimicDataError", "plan_source", "iter_batches",
           "read_table", "read_header", "find_file", "describe_plan"]
