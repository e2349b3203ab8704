"""Read a UMLS release's RRF files (MRCONSO, MRSTY, MRREL) into compact arrays, unchanged for real or made-up data.

* :func:`read_rrf` reads a small pipe-separated RRF file with pyarrow (no quoting: UMLS strings may hold quote
  characters), only the needed columns; :func:`iter_rrf` streams a release's files in blocks.
* :class:`UmlsVocabulary`: English strings -> CUI, exact then normalised (:func:`normalise`), the preferred
  name of each CUI, the semantic types (TUIs), built for the strings a cohort has by one streamed pass.
* Atoms and relations are kept by SUPPRESS flag (default ``N`` only: the suppressible E/Y and obsolete O rows
  of a release are left out, as the UMLS's own default subset does).
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


def iter_rrf(path: str | Path, columns: list[str], keep: list[str], block_bytes: int = 4 << 20):
    """The ``keep`` columns of a pipe-separated RRF file as record batches of about ``block_bytes`` each: a
    release's MRCONSO / MRREL (tens of millions of rows) is read in bounded memory (~300 MB at 4 MB blocks,
    measured; 16 MB blocks read no faster and hold more)."""
    from pyarrow import csv

    names = [*columns, "_trailing"]
    try:
        reader = csv.open_csv(
            path, read_options=csv.ReadOptions(column_names=names, block_size=block_bytes),
            parse_options=csv.ParseOptions(delimiter="|", quote_char=False, escape_char=False),
            convert_options=csv.ConvertOptions(include_columns=keep, column_types={c: pa.string() for c in keep},
                                               strings_can_be_null=False))
        for batch in reader:
            yield batch
    except pa.ArrowInvalid as exc:
        raise ValueError(f"{path}: not a {Path(path).stem} RRF file with the columns {'|'.join(columns)}| "
                         f"({exc}); check the file is an uncompressed UMLS release file") from None


def fast_normalise(strings: pa.Array) -> pa.Array:
    """:func:`normalise` of every string, vectorised for ASCII strings (Arrow kernels), in Python for the rest
    (accents need Unicode decomposition). Equal to ``[normalise(s) for s in strings]``."""
    import pyarrow.compute as pc

    ascii_mask = pc.string_is_ascii(strings)
    out = pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.utf8_lower(strings), r"[^0-9a-z%]+", " "))
    if pc.all(ascii_mask).as_py() is not False:
        return out
    rest = pc.invert(ascii_mask)
    fixed = pa.array([normalise(x) for x in pc.filter(strings, rest).to_pylist()], pa.string())
    return pc.replace_with_mask(out, rest, fixed)


def _conso_mask(batch: pa.RecordBatch, languages, sources, suppress):
    import pyarrow.compute as pc

    mask = pc.and_(pc.is_in(batch["LAT"], pa.array(list(languages))),
                   pc.is_in(batch["SUPPRESS"], pa.array(list(suppress))))
    if sources:
        mask = pc.and_(mask, pc.is_in(batch["SAB"], pa.array(list(sources))))
    return mask


def _rank(conso) -> pa.Array:
    """Preferred strings first: TS=P, STT=PF, ISPREF=Y each add one."""
    import pyarrow.compute as pc

    return pc.add(pc.add(pc.cast(pc.equal(conso["TS"], "P"), pa.int8()),
                         pc.cast(pc.equal(conso["STT"], "PF"), pa.int8())),
                  pc.cast(pc.equal(conso["ISPREF"], "Y"), pa.int8()))


def _first_best(keys: list[str], values: list[str], rank: np.ndarray) -> dict[str, str]:
    """key -> the value of its highest-rank row, the first in file order among equals."""
    out: dict[str, str] = {}
    for i in np.argsort(-rank, kind="stable"):
        out.setdefault(keys[i], values[i])
    return out


CONSO_KEEP = ["CUI", "LAT", "TS", "ISPREF", "STT", "SAB", "STR", "SUPPRESS"]
#: MRCONSO / MRREL SUPPRESS values kept by default: N (not suppressible); O (obsolete), E and Y (suppressible by
#: the editors or a source) are dropped.
DEFAULT_SUPPRESS = ("N",)


@dataclass
class UmlsVocabulary:
    """English strings of the concepts, looked up exactly and normalised; preferred names and semantic types.

    Built for the strings a cohort has (``names``) and the CUIs it needs, by streaming MRCONSO in blocks: the
    maps hold those strings only, not the release's ten million (``names=None`` loads every string, for small
    vocabularies and tests).
    """

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
                 sources: tuple[str, ...] | None = None, names=None,
                 suppress: tuple[str, ...] = DEFAULT_SUPPRESS, block_bytes: int = 4 << 20) -> "UmlsVocabulary":
        """The vocabulary of ``names`` (None = every string) with the preferred names of the CUIs they map to."""
        import pyarrow.compute as pc

        wanted = None if names is None else pa.array(sorted(set(names)), pa.string())
        wanted_norm = None if wanted is None else pc.unique(fast_normalise(wanted))
        keys: list[str] = []       # "=" + exact string, or "~" + normalised string
        cuis: list[str] = []
        ranks: list[np.ndarray] = []
        for batch in iter_rrf(rrf_path(umls_dir, "MRCONSO"), MRCONSO_COLUMNS, CONSO_KEEP, block_bytes):
            conso = batch.filter(_conso_mask(batch, languages, sources, suppress))
            norm = fast_normalise(conso["STR"])
            rank = _rank(conso).to_numpy(zero_copy_only=False)
            for tag, strings in (("=", conso["STR"]), ("~", norm)):
                hit = np.ones(len(conso), bool) if wanted is None else pc.is_in(
                    strings, value_set=wanted if tag == "=" else wanted_norm).to_numpy(zero_copy_only=False)
                keys += [tag + x for x in pc.filter(strings, hit).to_pylist()]
                cuis += pc.filter(conso["CUI"], hit).to_pylist()
                ranks.append(rank[hit])
        best = _first_best(keys, cuis, np.concatenate(ranks) if ranks else np.zeros(0, np.int8))
        exact = {k[1:]: v for k, v in best.items() if k[0] == "="}
        norm_map = {k[1:]: v for k, v in best.items() if k[0] == "~"}
        needed = None if names is None else set(exact.values()) | set(norm_map.values())
        return cls(exact, norm_map, preferred_names(umls_dir, needed, languages, sources, suppress, block_bytes),
                   semantic_types(umls_dir, needed, block_bytes))


def preferred_names(umls_dir: str | Path, cuis=None, languages: tuple[str, ...] = ("ENG",),
                    sources: tuple[str, ...] | None = None, suppress: tuple[str, ...] = DEFAULT_SUPPRESS,
                    block_bytes: int = 4 << 20) -> dict[str, str]:
    """CUI -> its preferred English string (TS=P, STT=PF, ISPREF=Y first), for ``cuis`` (None = all), streamed."""
    import pyarrow.compute as pc

    wanted = None if cuis is None else pa.array(sorted(set(cuis)), pa.string())
    keys: list[str] = []
    strs: list[str] = []
    ranks: list[np.ndarray] = []
    if wanted is not None and len(wanted) == 0:
        return {}
    for batch in iter_rrf(rrf_path(umls_dir, "MRCONSO"), MRCONSO_COLUMNS, CONSO_KEEP, block_bytes):
        mask = _conso_mask(batch, languages, sources, suppress)
        if wanted is not None:
            mask = pc.and_(mask, pc.is_in(batch["CUI"], value_set=wanted))
        conso = batch.filter(mask)
        keys += conso["CUI"].to_pylist()
        strs += conso["STR"].to_pylist()
        ranks.append(_rank(conso).to_numpy(zero_copy_only=False))
    return _first_best(keys, strs, np.concatenate(ranks) if ranks else np.zeros(0, np.int8))


def semantic_types(umls_dir: str | Path, cuis=None, block_bytes: int = 4 << 20) -> dict[str, frozenset[str]]:
    """CUI -> its TUIs (MRSTY), for ``cuis`` (None = all), streamed."""
    import pyarrow.compute as pc

    wanted = None if cuis is None else pa.array(sorted(set(cuis)), pa.string())
    types: dict[str, set[str]] = {}
    for batch in iter_rrf(rrf_path(umls_dir, "MRSTY"), MRSTY_COLUMNS, ["CUI", "TUI"], block_bytes):
        if wanted is not None:
            batch = batch.filter(pc.is_in(batch["CUI"], value_set=wanted))
        for cui, tui in zip(batch["CUI"].to_pylist(), batch["TUI"].to_pylist()):
            types.setdefault(cui, set()).add(tui)
    return {k: frozenset(v) for k, v in types.items()}


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
