"""Read a UMLS release's RRF files (MRCONSO, MRSTY, MRREL) into compact arrays, unchanged for real or made-up data.

* :func:`read_rrf` reads a pipe-separated RRF file with pyarrow (multi-threaded, no quoting: UMLS strings may
  hold quote characters), only the needed columns.
* :class:`UmlsVocabulary`: English strings -> CUI, exact then normalised (:func:`normalise`), the preferred
  name of each CUI, the semantic types (TUIs).
* :class:`RelationGraph` (:mod:`paths`) is built from MRREL as integer arrays (CSR), never dicts of strings.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

#: Column layouts of the RRF files (UMLS Reference Manual); every line ends with a trailing "|".
MRCONSO_COLUMNS = ["CUI", "LAT", "TS", "LUI", "STT", "SUI", "ISPREF", "AUI", "SAUI", "SCUI", "SDUI", "SAB", "TTY",
                   "CODE", "STR", "SRL", "SUPPRESS", "CVF"]
MRSTY_COLUMNS = ["CUI", "TUI", "STN", "STY", "ATUI", "CVF"]
MRREL_COLUMNS = ["CUI1", "AUI1", "STYPE1", "REL", "CUI2", "AUI2", "STYPE2", "RELA", "RUI", "SRUI", "SAB", "SL",
                 "RG", "DIR", "SUPPRESS", "CVF"]

_NON_WORD = re.compile(r"[^0-9a-z%]+")


def normalise(text: str) -> str:
    """Case-, accent-, punctuation- and spacing-insensitive form of a term.

    >>> normalise("  CefTRIAXone ") == normalise("ceftriaxone"), normalise("Calcium, Total")
    (True, 'calcium total')
    """
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    return " ".join(_NON_WORD.sub(" ", text).split())


def rrf_path(umls_dir: str | Path, name: str) -> Path:
    """``<dir>/<name>.RRF`` or ``<dir>/META/<name>.RRF`` (the layout of an unpacked release)."""
    base = Path(umls_dir)
    for p in (base / f"{name}.RRF", base / "META" / f"{name}.RRF"):
        if p.is_file():
            return p
    raise FileNotFoundError(f"{base}: no {name}.RRF (looked in {base} and {base / 'META'}); point umls.path at "
                            "a UMLS release's META folder, or use the made-up one (umls.path: null)")


def read_rrf(path: str | Path, columns: list[str], keep: list[str]) -> pa.Table:
    """The ``keep`` columns of a pipe-separated RRF file (all strings)."""
    from pyarrow import csv

    names = [*columns, "_trailing"]
    try:
        return csv.read_csv(
            path, read_options=csv.ReadOptions(column_names=names, block_size=16 << 20),
            parse_options=csv.ParseOptions(delimiter="|", quote_char=False, escape_char=False),
            convert_options=csv.ConvertOptions(include_columns=keep,
                                               column_types={c: pa.string() for c in keep},
                                               strings_can_be_null=False))
    except pa.ArrowInvalid as exc:
        raise ValueError(f"{path}: not a {Path(path).stem} RRF file with the columns {'|'.join(columns)}| "
                         f"({exc}); check the file is an uncompressed UMLS release file") from None


@dataclass
class UmlsVocabulary:
    """English strings of the concepts, looked up exactly and normalised; preferred names and semantic types."""

    exact: dict[str, str]
    normalised: dict[str, str]
    preferred: dict[str, str]
    semtypes: dict[str, frozenset[str]]

    def lookup(self, term: str) -> str | None:
        """The CUI of ``term``: exact string first, then the normalised form; None if unknown."""
        cui = self.exact.get(term)
        if cui is None:
            cui = self.normalised.get(normalise(term))
        return cui

    def name(self, cui: str) -> str:
        return self.preferred.get(cui, cui)

    @classmethod
    def from_rrf(cls, umls_dir: str | Path, languages: tuple[str, ...] = ("ENG",),
                 sources: tuple[str, ...] | None = None) -> "UmlsVocabulary":
        import pyarrow.compute as pc

        conso = read_rrf(rrf_path(umls_dir, "MRCONSO"), MRCONSO_COLUMNS,
                         ["CUI", "LAT", "TS", "ISPREF", "STT", "SAB", "STR", "SUPPRESS"])
        mask = pc.and_(pc.is_in(conso["LAT"], pa.array(list(languages))), pc.not_equal(conso["SUPPRESS"], "O"))
        if sources:
            mask = pc.and_(mask, pc.is_in(conso["SAB"], pa.array(list(sources))))
        conso = conso.filter(mask)
        cuis, strs = conso["CUI"].to_pylist(), conso["STR"].to_pylist()
        rank = pc.add(pc.add(pc.cast(pc.equal(conso["TS"], "P"), pa.int8()),
                             pc.cast(pc.equal(conso["STT"], "PF"), pa.int8())),
                      pc.cast(pc.equal(conso["ISPREF"], "Y"), pa.int8())).to_numpy(zero_copy_only=False)
        exact: dict[str, str] = {}
        norm: dict[str, str] = {}
        preferred: dict[str, str] = {}
        best: dict[str, int] = {}
        # first-seen wins for an ambiguous string; preferred strings (TS=P, STT=PF, ISPREF=Y) go first
        for i in np.argsort(-rank, kind="stable"):
            cui, s = cuis[i], strs[i]
            exact.setdefault(s, cui)
            norm.setdefault(normalise(s), cui)
            if rank[i] > best.get(cui, -1):
                best[cui], preferred[cui] = int(rank[i]), s
        sty = read_rrf(rrf_path(umls_dir, "MRSTY"), MRSTY_COLUMNS, ["CUI", "TUI"])
        types: dict[str, set[str]] = {}
        for cui, tui in zip(sty["CUI"].to_pylist(), sty["TUI"].to_pylist()):
            types.setdefault(cui, set()).add(tui)
        return cls(exact, norm, preferred, {k: frozenset(v) for k, v in types.items()})


def relation_label(rel: str, rela: str) -> str:
    """What a path shows for an MRREL row: the RELA in words, or the REL when RELA is empty.

    >>> relation_label("RO", "may_treat"), relation_label("RB", "")
    ('may treat', 'has broader relationship')
    """
    if rela:
        return rela.replace("_", " ")
    return _REL_NAMES.get(rel, rel)


_REL_NAMES = {"RB": "has broader relationship", "RN": "has narrower relationship", "PAR": "has parent",
              "CHD": "has child", "SIB": "has sibling", "RO": "has relationship", "RL": "is similar to",
              "RQ": "is possibly synonymous with", "SY": "is synonym of", "AQ": "allowed qualifier",
              "QB": "can be qualified by", "RU": "related, unspecified", "XR": "not related"}
