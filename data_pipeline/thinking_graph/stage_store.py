"""Resumable stage outputs of the thinking graph: a parquet folder written to a temporary name, renamed into
place, and a marker holding the inputs' fingerprint (a stage whose marker matches is done and skipped)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class Stage:
    """A folder of parquet parts written by Ray Data to a temporary name, renamed into place, with a marker."""

    def __init__(self, work: Path, name: str, fingerprint: str, overwrite: bool):
        self.dir, self.marker, self.fp = work / name, work / f"{name}.json", fingerprint
        self.done = (not overwrite and self.marker.is_file()
                     and json.loads(self.marker.read_text()).get("fp") == fingerprint and self.dir.is_dir())

    def write(self, ds, **info) -> None:
        tmp = self.dir.with_name(f".{self.dir.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        ds.write_parquet(str(tmp))
        self.marker.unlink(missing_ok=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.replace(tmp, self.dir)
        atomic_text(self.marker, json.dumps({"fp": self.fp, **info}))

    def write_table(self, table: pa.Table, **info) -> None:
        """A small driver-side table (one file, even when empty) in the same layout."""
        tmp = self.dir.with_name(f".{self.dir.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        pq.write_table(table, tmp / "part-00000.parquet")
        self.marker.unlink(missing_ok=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.replace(tmp, self.dir)
        atomic_text(self.marker, json.dumps({"fp": self.fp, **info}))

    def read(self, **kwargs):
        import ray

        return ray.data.read_parquet(str(self.dir), **kwargs)


def atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
