"""Vectorised value normalisation: raw MIMIC-IV columns -> the string conventions of ``data_pipeline.events``.

Every timeline value is a string (the reference casts every pandas cell with ``str``):

* missing -> ``"nan"``;
* ``int`` columns -> ``"52"`` (a ``"52.0"`` written by a pandas round-trip is accepted and printed ``"52"``);
* ``float`` columns -> what Python's ``repr(float)`` prints (``"1.5"``, ``"143.0"``, ``"1e-05"``);
* ``datetime`` columns -> ``YYYY-MM-DD HH:MM:SS`` (milliseconds dropped, a bare date gets ``00:00:00``);
* ``date`` columns -> ``YYYY-MM-DD``; ``str`` columns unchanged.

Pure functions over pyarrow arrays (no per-row Python except for the rare floats that Python prints in scientific
notation; float text is canonicalised by a small numba kernel). Bad numbers or timestamps raise :class:`ValueFormatError` carrying the offending row index and value;
the reader turns that into a message naming the file.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_pipeline.events import TIME_FORMAT

DATE_FORMAT = "%Y-%m-%d"


class ValueFormatError(ValueError):
    """A value that cannot be read as its schema type: ``row`` is the index inside the array given."""

    def __init__(self, row: int, value: object, expected: str):
        self.row, self.value, self.expected = row, value, expected
        super().__init__(f"row {row}: {self.shown} is not {expected}")

    @property
    def shown(self) -> str:
        """The value for messages: timestamps are shown; other values are record content and are withheld."""
        return repr(self.value) if "date" in self.expected or "timestamp" in self.expected else "the value"


def as_string(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Any arrow array -> a (nullable) string array; empty strings count as missing."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_timestamp(t):
        arr = pc.strftime(arr, format=TIME_FORMAT)
    elif pa.types.is_date(t):
        arr = pc.strftime(arr, format=DATE_FORMAT)
    elif pa.types.is_dictionary(t):
        arr = as_string(arr.dictionary_decode())
    elif not pa.types.is_string(t):
        arr = arr.cast(pa.string())
    return arr


def empty_to_null(arr: pa.Array) -> pa.Array:
    """``""`` -> null (the CSV reader already does this; parquet sources need it)."""
    if pc.any(pc.equal(arr, "")).as_py():
        return pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)
    return arr


def parse_float(arr: pa.Array) -> pa.Array:
    """String/numeric array -> float64, raising :class:`ValueFormatError` at the first unparsable value."""
    if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type):
        return arr.cast(pa.float64())
    try:
        return pc.cast(arr, pa.float64())
    except pa.ArrowInvalid:
        pass
    try:
        return pc.cast(pc.utf8_trim_whitespace(arr), pa.float64())
    except pa.ArrowInvalid:
        for i, v in enumerate(arr.to_pylist()):  # the first value Arrow refuses (error path only)
            try:
                if v is not None:
                    pc.cast(pa.array([v.strip()]), pa.float64())
            except pa.ArrowInvalid:
                raise ValueFormatError(i, v, "a number") from None
        raise


def append_suffix(arr: pa.Array, suffix: str, where: np.ndarray | None = None) -> pa.Array:
    """``value + suffix`` for every value of a string array (or those ``where`` is true); nulls stay null.

    Numpy on the raw buffers: Arrow's ``binary_join_element_wise`` with a literal is several times slower for
    this one job.
    """
    if arr.offset or not pa.types.is_string(arr.type):
        arr = pa.concat_arrays([arr.cast(pa.string())])
    n = len(arr)
    extra = np.frombuffer(suffix.encode(), dtype=np.uint8)
    k = len(extra)
    validity, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[: n + 1].astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    grow_rows = np.ones(n, dtype=bool) if arr.null_count == 0 else pc.is_valid(arr).to_numpy(zero_copy_only=False)
    if where is not None:
        grow_rows = grow_rows & where
    grow = np.concatenate([[0], np.cumsum(np.where(grow_rows, k, 0))])
    new_off = offsets - offsets[0] + grow
    if new_off[-1] >= 2**31:
        joined = pc.binary_join_element_wise(arr, suffix, "")
        return joined if where is None else pc.if_else(pa.array(grow_rows), joined, arr)
    out = np.empty(int(new_off[-1]), dtype=np.uint8)
    ends = new_off[1:][grow_rows]
    pos = (ends[:, None] - k + np.arange(k)).ravel()
    keep = np.ones(len(out), dtype=bool)
    keep[pos] = False
    out[keep] = data[offsets[0]: offsets[-1]]
    out[pos] = np.tile(extra, len(ends))
    return pa.StringArray.from_buffers(n, pa.py_buffer(new_off.astype(np.int32)), pa.py_buffer(out), validity,
                                       arr.null_count)


@numba.njit(cache=True, nogil=True)
def _decimal_text(offsets, data, valid, out_offsets, out, fallback):
    """Python's ``repr(float(text))`` of plain decimals, written straight from the text; ``fallback[r]`` marks
    the values left to the slow path (exponents, specials, over 15 digits, below 1e-4, anything else).

    A decimal of at most 15 significant digits is the shortest text of the double nearest to it (15 digits
    always survive a round trip through a double, so no shorter text can reach the same double), and Python
    prints it positionally when 1e-4 <= |x| < 1e16: the repr is the sign, the integer digits without leading
    zeros (or "0"), ".", and the fraction digits without trailing zeros (or "0").
    """
    p = 0
    for r in range(len(offsets) - 1):
        out_offsets[r] = p
        if not valid[r]:
            continue
        i, j = offsets[r], offsets[r + 1]
        while i < j and (data[i] == 32 or 9 <= data[i] <= 13):
            i += 1
        while j > i and (data[j - 1] == 32 or 9 <= data[j - 1] <= 13):
            j -= 1
        negative = False
        if i < j and (data[i] == 43 or data[i] == 45):  # + -
            negative = data[i] == 45
            i += 1
        int_start = i
        while i < j and 48 <= data[i] <= 57:
            i += 1
        int_end = i
        frac_start = frac_end = i
        if i < j and data[i] == 46:  # .
            i += 1
            frac_start = i
            while i < j and 48 <= data[i] <= 57:
                i += 1
            frac_end = i
        if i != j or (int_end == int_start and frac_end == frac_start):
            fallback[r] = True
            continue
        while int_start < int_end and data[int_start] == 48:
            int_start += 1
        while frac_end > frac_start and data[frac_end - 1] == 48:
            frac_end -= 1
        if int_end > int_start:
            ok = (int_end - int_start) + (frac_end - frac_start) <= 15
        else:
            lead = frac_start
            while lead < frac_end and data[lead] == 48:
                lead += 1
            ok = frac_end == frac_start or (lead - frac_start <= 3 and frac_end - lead <= 15)
        if not ok:
            fallback[r] = True
            continue
        if negative:
            out[p] = 45
            p += 1
        p = _digits_or_zero(out, p, data, int_start, int_end)
        out[p] = 46
        p += 1
        p = _digits_or_zero(out, p, data, frac_start, frac_end)
    out_offsets[len(offsets) - 1] = p


@numba.njit(cache=True, nogil=True, inline="always")
def _digits_or_zero(out, p, data, start, end):
    """Copy ``data[start:end]`` to ``out[p:]`` ("0" when empty); return the new end."""
    if end == start:
        out[p] = 48
        return p + 1
    for k in range(start, end):
        out[p] = data[k]
        p += 1
    return p


def float_text(arr: pa.Array) -> pa.Array:
    """Float values given as text -> Python ``repr`` text (nulls kept); raises :class:`ValueFormatError` at the
    first value that is not a number.

    Plain decimals (nearly every MIMIC-IV value) are rewritten by :func:`_decimal_text` in one pass over the
    bytes; the rest are parsed and formatted by :func:`format_float`.
    """
    arr = as_string(arr)
    if arr.offset:
        arr = pa.concat_arrays([arr])  # offset 0, so the validity bitmap can be reused as it is
    n = len(arr)
    validity, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[: n + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    valid = np.ones(n, bool) if arr.null_count == 0 else pc.is_valid(arr).to_numpy(zero_copy_only=False)
    size = int(offsets[-1] - offsets[0]) + 2 * n  # a value grows by two bytes at most ("5" -> "5.0")
    if size >= 2**31:
        return format_float(parse_float(arr))
    out_offsets_buf, out_buf = pa.allocate_buffer(4 * (n + 1)), pa.allocate_buffer(max(size, 1))
    out_offsets = np.frombuffer(out_offsets_buf, dtype=np.int32)
    fallback = np.zeros(n, dtype=bool)
    _decimal_text(offsets, data, valid, out_offsets, np.frombuffer(out_buf, dtype=np.uint8), fallback)
    text = pa.StringArray.from_buffers(n, out_offsets_buf, out_buf, validity, arr.null_count)
    if not fallback.any():
        return text
    rows = np.flatnonzero(fallback)
    try:
        slow = format_float(parse_float(arr.take(pa.array(rows))))
    except ValueFormatError as exc:
        raise ValueFormatError(int(rows[exc.row]), exc.value, exc.expected) from None
    return pc.replace_with_mask(text, pa.array(fallback), slow)


def format_float(values: pa.Array) -> pa.Array:
    """float64 array -> Python ``repr`` strings (``"143.0"``, ``"1e-05"``, ``"nan"`` for NaN), null stays null.

    Arrow's float -> string cast prints the same shortest round-trip digits as Python; it only differs on
    integral values (``"143"``: ``.0`` is appended) and on where it switches to exponent notation (those, and
    -0.0, nan and inf, rare in clinical data, are formatted by Python itself).
    """
    x = values.to_numpy(zero_copy_only=False)
    valid = np.ones(len(x), bool) if values.null_count == 0 else pc.is_valid(values).to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        ax = np.abs(x)
        finite = np.isfinite(x)
        positional = finite & (ax < 1e16) & ((ax >= 1e-4) | (ax == 0)) & ~((x == 0) & np.signbit(x))
        integral = positional & (np.floor(x) == x)
    text = pc.cast(values, pa.string())
    exponent = pc.fill_null(pc.match_substring(text, "e"), False).to_numpy(zero_copy_only=False)
    text = append_suffix(text, ".0", where=integral & ~exponent)
    odd = valid & (~positional | exponent)
    if odd.any():
        idx = np.flatnonzero(odd)
        py = [repr(float(x[i])) for i in idx]
        text = pc.replace_with_mask(text, pa.array(odd), pa.array(py, pa.string()))
    return text


def normalise_int(arr: pa.Array) -> pa.Array:
    if pa.types.is_floating(arr.type):
        return pc.cast(pc.cast(arr, pa.int64(), safe=False), pa.string())
    arr = as_string(arr)
    if pc.any(pc.match_substring(arr, ".")).as_py():
        arr = pc.replace_substring_regex(arr, r"\.0*$", "")
    return arr


def _datetime_text(arr: pa.Array, date_only: bool) -> tuple[pa.Array, pa.Array]:
    """(normalised text, timestamp[s]) of a string array of dates/timestamps; raises ValueFormatError.

    Fast path: Arrow's strict ISO-8601 cast (rejects 2180-02-30, hour 25, ...); the text is the input itself
    whenever it is already ``YYYY-MM-DD HH:MM:SS``, so no per-value formatting is needed.
    """
    n = pc.utf8_length(arr)
    lo, hi = (v.as_py() for v in pc.min_max(n).values())
    if lo is None:  # all null
        return arr, pa.nulls(len(arr), pa.timestamp("s"))
    head = arr
    if hi > 19:  # fractional seconds: keep the first 19 characters, the rest must be ".digits"
        long = pc.greater(n, 19)
        bad_tail = pc.and_(long, pc.invert(pc.match_substring_regex(arr, r"^.{19}\.[0-9]+$")))
        if pc.any(bad_tail).as_py():
            _raise_first(arr, pc.invert(bad_tail), date_only)
        head = pc.if_else(long, pc.utf8_slice_codeunits(arr, 0, 19), arr)
    try:
        parsed = pc.cast(head, pa.timestamp("s"))
    except pa.ArrowInvalid:
        ok = pc.is_valid(pc.strptime(head, format=TIME_FORMAT, unit="s", error_is_null=True))
        ok = pc.or_(ok, pc.is_valid(pc.strptime(head, format=DATE_FORMAT, unit="s", error_is_null=True)))
        _raise_first(arr, _strict_ok(head, ok), date_only)
    if date_only:
        return (pc.utf8_slice_codeunits(head, 0, 10) if hi > 10 else head), parsed
    if lo == 10 or (lo < 19 and hi >= 10):
        head = pc.if_else(pc.equal(pc.utf8_length(head), 10), pc.binary_join_element_wise(head, " 00:00:00", ""), head)
    return head, parsed


def _strict_ok(head: pa.Array, ok: pa.Array) -> pa.Array:
    """Refine ``ok`` row by row with Arrow's strict cast (strptime rolls 2180-02-30 over to March)."""
    values = head.to_pylist()
    okl = ok.to_pylist()
    for i, v in enumerate(values):
        if v is not None and okl[i]:
            try:
                pc.cast(pa.array([v]), pa.timestamp("s"))
            except pa.ArrowInvalid:
                okl[i] = False
                break
    return pa.array(okl)


def _raise_first(arr: pa.Array, ok: pa.Array, date_only: bool) -> None:
    bad = pc.and_(pc.is_valid(arr), pc.invert(pc.fill_null(ok, False)))
    i = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
    raise ValueFormatError(i, arr[i].as_py(), "a date (YYYY-MM-DD)" if date_only
                           else "a timestamp (YYYY-MM-DD HH:MM:SS)")


def parse_datetime(arr: pa.Array, date_only: bool = False) -> pa.Array:
    """String array -> timestamp[s]. Accepts ``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM:SS`` and trailing fractions.

    Raises :class:`ValueFormatError` at the first value that is none of these.
    """
    return _checked_datetime(arr, date_only)[1]


def _checked_datetime(arr: pa.Array, date_only: bool) -> tuple[pa.Array, pa.Array]:
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        ts = arr.cast(pa.timestamp("s"), safe=False)
        return pc.strftime(ts, format=TIME_FORMAT), ts
    return _datetime_text(as_string(arr), date_only)


def normalise_column(arr: pa.Array | pa.ChunkedArray, dtype: str) -> tuple[pa.Array, pa.Array | None]:
    """Normalise one column to timeline strings (nulls kept) and, for time types, also return timestamp[s]."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if dtype == "int":
        return normalise_int(arr), None
    if dtype == "float":
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            return float_text(arr), None
        return format_float(parse_float(arr)), None
    if dtype in ("datetime", "date"):
        text, ts = _checked_datetime(arr, date_only=dtype == "date")
        return (text if dtype == "datetime" else pc.utf8_slice_codeunits(text, 0, 10)), ts
    return as_string(arr), None
