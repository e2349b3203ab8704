"""Streaming gzip CSV writers that reproduce the MIMIC-IV file format byte-for-byte deterministically.

One :class:`TableWriter` per ``*.csv.gz``: header = the schema columns in file order, comma separated, minimal
quoting, ``\\n`` line ends, missing values as empty fields. The gzip header carries ``mtime=0`` and the bare file
name, so the same rows always give the same bytes. Rows are buffered as text and compressed at :meth:`flush`,
which keeps memory bounded by the chunk of patients being generated, not by the cohort size.

Callers write either one row at a time (:meth:`TableWriter.add`, keyword columns) or a whole block of columns
as numpy string arrays (:meth:`TableWriter.add_columns`) for the high-volume tables.
"""

from __future__ import annotations

import csv
import gzip
import io
from itertools import repeat
from pathlib import Path
from typing import Mapping

import numpy as np

_SPECIAL = (",", '"', "\n", "\r")
#: a table's text buffer is compressed once it holds this many characters (bounds memory per table)
FLUSH_CHARS = 4 << 20


class TableWriter:
    def __init__(self, path: Path, columns: tuple[str, ...], compresslevel: int):
        self.path = path
        self.columns = columns
        self._index = {c: i for i, c in enumerate(columns)}
        self._raw = open(path, "wb")
        inner_name = path.name[:-3] if path.name.endswith(".gz") else path.name
        self._gz = gzip.GzipFile(filename=inner_name, mode="wb", fileobj=self._raw, mtime=0,
                                 compresslevel=compresslevel)
        self._buf = io.StringIO()
        self._csv = csv.writer(self._buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        self._csv.writerow(columns)
        self.rows = 0

    def add(self, **values) -> None:
        """One row; unknown column names raise (typos never silently drop a value). Missing -> empty."""
        row: list = [None] * len(self.columns)
        for key, value in values.items():
            try:
                row[self._index[key]] = value
            except KeyError:
                raise KeyError(f"{self.path.name}: no column {key!r}; columns are {list(self.columns)}") from None
        self._csv.writerow(row)
        self.rows += 1
        if self._buf.tell() > FLUSH_CHARS:
            self.flush()

    def add_columns(self, n: int, columns: Mapping[str, object]) -> None:
        """``n`` rows given column-wise: each value is a length-``n`` numpy array of strings (str or object
        dtype), a scalar string, or None (empty). Columns absent from ``columns`` are empty."""
        if n == 0:
            return
        unknown = set(columns) - set(self._index)
        if unknown:
            raise KeyError(f"{self.path.name}: no column(s) {sorted(unknown)}; columns are {list(self.columns)}")
        parts = [_as_field(columns.get(name), n, self.path.name, name) for name in self.columns]
        if all(isinstance(x, str) for x in parts):
            line = ",".join(parts)
            self._buf.write((line + "\n") * n)
        else:
            lists = [repeat(x, n) if isinstance(x, str) else x for x in parts]
            self._buf.write("\n".join(map(",".join, zip(*lists))))
            self._buf.write("\n")
        self.rows += n
        if self._buf.tell() > FLUSH_CHARS:
            self.flush()

    def flush(self) -> None:
        text = self._buf.getvalue()
        if text:
            self._gz.write(text.encode("utf-8"))
            self._buf.seek(0)
            self._buf.truncate(0)

    def close(self) -> None:
        self.flush()
        self._gz.close()
        self._raw.close()


def _quote_scalar(value: str) -> str:
    if any(ch in value for ch in _SPECIAL):
        return '"' + value.replace('"', '""') + '"'
    return value


def _as_field(value, n: int, table: str, name: str) -> str | list[str]:
    """A column as a scalar string or a list of ``n`` CSV-ready strings (quoted where needed)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _quote_scalar(value)
    arr = np.asarray(value)
    if arr.shape != (n,):
        raise ValueError(f"{table}.{name}: expected {n} values, got shape {arr.shape}")
    if arr.dtype.kind not in "UTO":
        raise TypeError(f"{table}.{name}: format the values as strings first (got dtype {arr.dtype})")
    values = arr.tolist()  # object arrays must hold str: str.join below rejects anything else
    joined = "".join(values)
    if any(ch in joined for ch in _SPECIAL):
        values = [_quote_scalar(v) for v in values]
    return values


class CohortWriter:
    """All table writers of one cohort folder; ``tables`` maps ``relpath`` (``hosp/labevents``) to columns."""

    def __init__(self, root: Path, tables: Mapping[str, tuple[str, ...]], compresslevel: int):
        self.root = root
        self._writers: dict[str, TableWriter] = {}
        for relpath, columns in tables.items():
            path = root / f"{relpath}.csv.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writers[relpath] = TableWriter(path, tuple(columns), compresslevel)

    def __contains__(self, relpath: str) -> bool:
        return relpath in self._writers

    def table(self, relpath: str) -> TableWriter | None:
        """The writer of ``relpath``, or None when its module is not being written."""
        return self._writers.get(relpath)

    def add(self, relpath: str, **values) -> None:
        w = self._writers.get(relpath)
        if w is not None:
            w.add(**values)

    def add_columns(self, relpath: str, n: int, columns: Mapping[str, object]) -> None:
        w = self._writers.get(relpath)
        if w is not None:
            w.add_columns(n, columns)

    def flush(self) -> None:
        for w in self._writers.values():
            w.flush()

    def close(self) -> dict[str, int]:
        """Close every file; returns the row count per table."""
        counts = {}
        for relpath, w in self._writers.items():
            w.close()
            counts[relpath] = w.rows
        return counts
