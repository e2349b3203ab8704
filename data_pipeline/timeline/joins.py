"""Dictionary and code-mapping joins that add the display fields of ``data_pipeline.events`` to event rows.

Each join is a vectorised exact-key lookup (``pyarrow.compute.index_in`` + ``take``); a key that is missing or
not in the dictionary yields ``"None"`` (the "lookup found nothing" convention). Keys are normalised on both
sides: ids and ICD versions as integer text, ICD codes trimmed and upper-cased, NDCs zero-padded to 11 digits
(the reference's NDC -> ATC rule).

Joins that need another *per-patient* table (admissions ``admission_info``, radiology
``exam_name`` from radiology_detail) are done per bucket in :mod:`data_pipeline.timeline.build`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from data_pipeline.events import UNMAPPED
from data_pipeline.mimic.reader import SourcePlan, read_table
from data_pipeline.mimic.schema import MAPPINGS, TABLES
from data_pipeline.mimic.values import as_string, normalise_int

ICU_ITEM_TABLES = ("chartevents", "datetimeevents", "ingredientevents", "inputevents", "outputevents",
                   "procedureevents")


def _code(arr: pa.Array) -> pa.Array:
    return pc.utf8_upper(pc.utf8_trim_whitespace(as_string(arr)))


def _ndc(arr: pa.Array) -> pa.Array:
    return pc.utf8_lpad(normalise_int(arr), 11, "0")


def _icd_key(code: pa.Array, version: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(normalise_int(version), _code(code), "|")


@dataclass(frozen=True)
class JoinSpec:
    """``field`` <- ``source``'s ``value`` column, matching ``row_keys`` of the event row to ``source_keys``."""

    field: str
    source: str                  # table relpath ("hosp/d_labitems") or mapping name ("ndc_atc")
    row_keys: tuple[str, ...]
    source_keys: tuple[str, ...]
    value: str

    def key(self, columns: list[pa.Array]) -> pa.Array:
        return _KEYERS[self.row_keys](*columns)


_KEYERS: dict[tuple[str, ...], Callable[..., pa.Array]] = {
    ("itemid",): normalise_int,
    ("icd_code", "icd_version"): _icd_key,
    ("ndc",): _ndc,
}

_ITEM_LAB = JoinSpec("item_name", "hosp/d_labitems", ("itemid",), ("itemid",), "label")
_ITEM_ICU = JoinSpec("item_name", "icu/d_items", ("itemid",), ("itemid",), "label")
_ICD = ("icd_code", "icd_version")
_ATC = JoinSpec("ATC Type", "ndc_atc", ("ndc",), ("ndc",), "atc_name")

#: event table -> display fields it gets, in the order they are appended to each row.
JOINS: dict[str, tuple[JoinSpec, ...]] = {
    "labevents": (_ITEM_LAB,),
    **{t: (_ITEM_ICU,) for t in ICU_ITEM_TABLES},
    "procedures_icd": (JoinSpec("procedures", "hosp/d_icd_procedures", _ICD, _ICD, "long_title"),
                       JoinSpec("CCS Type", "ccs_procedures", _ICD, _ICD, "ccs_name")),
    "diagnoses_icd": (JoinSpec("diagnoses", "hosp/d_icd_diagnoses", _ICD, _ICD, "long_title"),
                      JoinSpec("CCS Type", "ccs_diagnoses", _ICD, _ICD, "ccs_name")),
    "diagnosis": (JoinSpec("CCS Type", "ccs_diagnoses", _ICD, _ICD, "ccs_name"),),
    "prescriptions": (_ATC,),
    "medrecon": (_ATC,),
}
#: Fields added per bucket from other per-patient tables (see build.py).
BUCKET_FIELDS: dict[str, tuple[str, ...]] = {"admissions": ("admission_info",), "radiology": ("exam_name",)}


def display_fields(table: str) -> tuple[str, ...]:
    return tuple(j.field for j in JOINS.get(table, ())) + BUCKET_FIELDS.get(table, ())


@dataclass(frozen=True)
class Lookup:
    """Normalised keys -> values; the first row wins for a duplicated key."""

    keys: pa.Array
    values: pa.Array

    def __call__(self, keys: pa.Array) -> pa.Array:
        idx = pc.index_in(keys, value_set=self.keys)
        return pc.fill_null(pc.take(self.values, idx), UNMAPPED)

    @classmethod
    def empty(cls) -> "Lookup":
        return cls(pa.array([], pa.string()), pa.array([], pa.string()))


def build_lookup(spec: JoinSpec, table: pa.Table) -> Lookup:
    keys = spec.key([table.column(k).combine_chunks() for k in spec.source_keys])
    values = as_string(table.column(spec.value))
    keep = pc.is_valid(keys)
    keys, values = keys.filter(keep), values.filter(keep)
    # de-duplicate keeping the first occurrence, so index_in's "first match" is well defined and small
    uniq = pc.unique(keys)
    first = pc.index_in(uniq, value_set=keys)
    return Lookup(uniq, pc.take(values, first))


def load_lookups(plan: SourcePlan, table: str) -> dict[str, Lookup]:
    """The lookups ``table``'s joins need, read from the plan's files; absent sources give empty lookups."""
    out: dict[str, Lookup] = {}
    for spec in JOINS.get(table, ()):
        if spec.source in TABLES:
            sf = plan.get(spec.source)
        else:
            sf = plan.mappings.get(spec.source)
            assert spec.source in MAPPINGS, spec.source
        if sf is None:
            out[spec.field] = Lookup.empty()
            continue
        out[spec.field] = build_lookup(spec, read_table(sf, [*spec.source_keys, spec.value]))
    return out


def apply_joins(table_name: str, columns: dict[str, pa.Array], lookups: dict[str, Lookup]) -> dict[str, pa.Array]:
    """Return the display-field arrays for a batch whose normalised source ``columns`` are given by name."""
    return {spec.field: lookups.get(spec.field, Lookup.empty())(spec.key([columns[k] for k in spec.row_keys]))
            for spec in JOINS.get(table_name, ())}
