"""The reference's second lookup for an item name: full-text search over the UMLS strings (SQLite FTS5).

The reference's ``term_to_cui`` tries the exact string, then ``MRCONSO MATCH <term> ORDER BY rank`` on an FTS
table, then QuickUMLS's best match. Here the FTS table is built once per vocabulary on disk (like the QuickUMLS
index), streamed from MRCONSO in blocks with the same language / SUPPRESS / source filters as the vocabulary, so
no process holds the release; lookups run on the driver for the few names the exact and normalised lookups miss.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)
INDEX_VERSION = 1
_TOKEN = re.compile(r"[0-9A-Za-z]+")


def index_path(umls_dir: str | Path, cache_dir: str | Path, languages, sources, suppress) -> Path:
    from data_pipeline.thinking_graph.umls import rrf_path

    conso = rrf_path(umls_dir, "MRCONSO")
    st = conso.stat()
    key = f"v{INDEX_VERSION}:{conso.resolve()}:{st.st_size}:{st.st_mtime_ns}:{languages}:{sources}:{suppress}"
    return Path(cache_dir) / f"umls-fts-{hashlib.sha256(key.encode()).hexdigest()[:16]}.sqlite"


def build_fulltext_index(umls_dir: str | Path, cache_dir: str | Path, languages: tuple[str, ...] = ("ENG",),
                         sources: tuple[str, ...] | None = None, suppress: tuple[str, ...] = ("N",),
                         block_bytes: int = 4 << 20) -> Path:
    """The FTS5 table ``atoms(str, cui)`` of the filtered MRCONSO strings (built now unless it exists)."""
    import pyarrow.compute as pc

    from data_pipeline.thinking_graph.umls import CONSO_KEEP, MRCONSO_COLUMNS, _conso_mask, iter_rrf, rrf_path

    final = index_path(umls_dir, cache_dir, languages, sources, suppress)
    if final.is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    log.info("building the UMLS full-text index of %s into %s (once per vocabulary)", umls_dir, final)
    con = sqlite3.connect(tmp)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("CREATE VIRTUAL TABLE atoms USING fts5(str, cui UNINDEXED)")
        for batch in iter_rrf(rrf_path(umls_dir, "MRCONSO"), MRCONSO_COLUMNS, CONSO_KEEP, block_bytes):
            conso = batch.filter(_conso_mask(batch, languages, sources, suppress))
            con.executemany("INSERT INTO atoms(str, cui) VALUES (?, ?)",
                            zip(conso["STR"].to_pylist(), conso["CUI"].to_pylist()))
            con.commit()
        con.execute("INSERT INTO atoms(atoms) VALUES ('optimize')")
        con.commit()
    finally:
        con.close()
    os.replace(tmp, final)
    return final


def fts_query(name: str) -> str | None:
    """The name's word tokens, each quoted (an implicit AND; no FTS syntax from the item string gets through)."""
    tokens = _TOKEN.findall(name)
    return " ".join(f'"{t}"' for t in tokens) if tokens else None


def fulltext_lookup(index: str | Path, names) -> dict[str, str]:
    """name -> the CUI of its best-ranked (bm25) atom containing all its words, for the names that have one."""
    out: dict[str, str] = {}
    con = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
    try:
        for name in names:
            query = fts_query(name)
            if query is None:
                continue
            row = con.execute("SELECT cui FROM atoms WHERE atoms MATCH ? ORDER BY rank LIMIT 1", (query,)).fetchone()
            if row is not None:
                out[name] = row[0]
    finally:
        con.close()
    return out
