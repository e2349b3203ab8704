"""Text assembly in native code: strings made of literals and Arrow string values, each byte written once.

Phase 2 writes about 370 bytes of JSON and 70 of markdown per source row. Built from pyarrow string kernels
(fill_null, element-wise join, concatenation, take) every byte was copied four or five times, and those kernels
cost more per value than per byte: together they were half of phase 2 (BENCHMARKS.md). Here:

* a *template* is a list of fields, each a literal followed by an optional string column value (with the text to
  print when the value is null, and optionally in double quotes);
* a *layout* lists, for every output string, its pieces in order, each a (template, row) pair;
* a numba kernel measures every output string, then writes the pieces straight from the Arrow buffers (offsets,
  data and validity bitmaps read in place: no conversion, no fill_null) into one buffer that becomes the result.

The kernels address Arrow buffers by their memory address; the :class:`TextBuilder` keeps every registered array
alive until it is dropped. Compiled code is cached next to this file (numba ``cache=True``), so only the first
process after an install or an edit compiles (a few seconds).
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from data_pipeline.events import MISSING

#: Largest byte offset a ``string`` (32-bit offsets) array can hold; beyond it the result is ``large_string``.
MAX_STRING_BYTES = 2**31 - 1


def _load(bits: int, signed: bool):
    """A numba intrinsic ``load(address, index) -> int64`` reading element ``index`` of a raw integer array."""

    @intrinsic
    def load(typingctx, address, index):
        def codegen(context, builder, signature, args):
            ptr = builder.inttoptr(args[0], ir.IntType(bits).as_pointer())
            value = builder.load(builder.gep(ptr, [args[1]]))
            if bits == 64:
                return value
            return builder.sext(value, ir.IntType(64)) if signed else builder.zext(value, ir.IntType(64))
        return types.int64(types.int64, types.int64), codegen

    return load


_load_i32, _load_i64, _load_u8 = _load(32, True), _load(64, True), _load(8, False)


@intrinsic
def _copy(typingctx, dst, src, n):
    """``memcpy(dst, src, n)`` between raw addresses."""
    def codegen(context, builder, signature, args):
        byte_ptr = ir.IntType(8).as_pointer()
        cgutils.raw_memcpy(builder, builder.inttoptr(args[0], byte_ptr), builder.inttoptr(args[1], byte_ptr),
                           args[2], 1)
        return context.get_dummy_value()
    return types.void(types.int64, types.int64, types.int64), codegen


@numba.njit(cache=True, nogil=True)
def _value(c_offsets, c_wide, c_valid, c_bit, c, i):
    """(start, end) of value ``i`` of column ``c`` in its data buffer; (-1, -1) when it is null."""
    valid = c_valid[c]
    if valid != 0:
        b = c_bit[c] + i
        if (_load_u8(valid, b >> 3) >> (b & 7)) & 1 == 0:
            return -1, -1
    if c_wide[c]:
        return _load_i64(c_offsets[c], i), _load_i64(c_offsets[c], i + 1)
    return _load_i32(c_offsets[c], i), _load_i32(c_offsets[c], i + 1)


@numba.njit(cache=True, nogil=True)
def _measure(t_first, f_lit, f_col, f_null, f_quote, c_offsets, c_wide, c_valid, c_bit,
             templates, rows, bounds, out_offsets):
    """``out_offsets[o + 1]``: end of output string ``o`` (pieces ``bounds[o]:bounds[o + 1]``)."""
    total = 0
    out_offsets[0] = 0
    for o in range(len(bounds) - 1):
        for q in range(bounds[o], bounds[o + 1]):
            k = templates[q]
            i = rows[q]
            for f in range(t_first[k], t_first[k + 1]):
                total += f_lit[f, 1]
                c = f_col[f]
                if c >= 0:
                    s, e = _value(c_offsets, c_wide, c_valid, c_bit, c, i)
                    if s < 0:
                        total += f_null[f, 1]
                    else:
                        total += e - s + 2 * f_quote[f]
        out_offsets[o + 1] = total


@numba.njit(cache=True, nogil=True)
def _write(out, lits, t_first, f_lit, f_col, f_null, f_quote, c_offsets, c_data, c_wide, c_valid, c_bit,
           templates, rows):
    """Write every piece, in order, from address ``out`` on; literals are at address ``lits``."""
    p = out
    for q in range(len(templates)):
        k = templates[q]
        i = rows[q]
        for f in range(t_first[k], t_first[k + 1]):
            n = f_lit[f, 1]
            _copy(p, lits + f_lit[f, 0], n)
            p += n
            c = f_col[f]
            if c >= 0:
                s, e = _value(c_offsets, c_wide, c_valid, c_bit, c, i)
                if s < 0:
                    n = f_null[f, 1]
                    _copy(p, lits + f_null[f, 0], n)
                    p += n
                else:
                    if f_quote[f]:
                        _copy(p, lits, 1)  # the literal pool starts with '"'
                        p += 1
                    _copy(p, c_data[c] + s, e - s)
                    p += e - s
                    if f_quote[f]:
                        _copy(p, lits, 1)
                        p += 1
    return p - out


class TextBuilder:
    """Register string columns and templates, then :meth:`build` output strings from a layout of pieces.

    >>> tb = TextBuilder()
    >>> name = tb.column(pa.array(["a", None]))
    >>> row = tb.template("<", name, ">")
    >>> tb.build(np.array([row, row]), np.array([0, 1]), np.array([0, 1, 2])).to_pylist()
    ['<a>', '<nan>']
    """

    def __init__(self) -> None:
        self._arrays: list[pa.Array] = []  # keeps the addressed buffers alive
        self._columns: list[tuple[int, int, int, int, int]] = []  # offsets, data, wide, validity, bit offset
        self._lits = bytearray(b'"')  # the kernel's quote character is byte 0
        self._lit_at: dict[bytes, int] = {}
        self._fields: list[tuple[int, int, int, int, int, int]] = []  # lit off/len, col, null off/len, quote
        self._first: list[int] = [0]
        self._ids: dict[int, int] = {}  # id(array) -> column id: one array registered twice is one column

    def column(self, values: pa.Array | pa.ChunkedArray) -> int:
        """Register a ``string``/``large_string`` column; returns its id for :meth:`template`."""
        if id(values) in self._ids:
            return self._ids[id(values)]
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            raise TypeError(f"TextBuilder columns must be string or large_string, not {values.type}")
        wide = pa.types.is_large_string(values.type)
        validity, offsets, data = values.buffers()
        width = 8 if wide else 4
        self._arrays.append(values)
        self._columns.append((offsets.address + values.offset * width if offsets is not None else 0,
                              data.address if data is not None and data.size else 0, int(wide),
                              validity.address if validity is not None and values.null_count else 0,
                              values.offset))
        self._ids[id(values)] = len(self._columns) - 1
        return len(self._columns) - 1

    def _literal(self, text: str) -> tuple[int, int]:
        raw = text.encode()
        if raw not in self._lit_at:
            self._lit_at[raw] = len(self._lits)
            self._lits += raw
        return self._lit_at[raw], len(raw)

    def template(self, *parts: str | int, null: str = MISSING, quoted: tuple[int, ...] = ()) -> int:
        """A template of literals (``str``) and column ids (``int``), in order; returns its id.

        A null value prints ``null``; a column listed in ``quoted`` prints its (non-null) value in double quotes.
        """
        literal = ""
        null_at = self._literal(null)
        for part in parts:
            if isinstance(part, str):
                literal += part
                continue
            if not 0 <= part < len(self._columns):
                raise ValueError(f"unknown column id {part}")
            self._fields.append((*self._literal(literal), part, *null_at, int(part in quoted)))
            literal = ""
        if literal or not parts or not isinstance(parts[-1], str):
            self._fields.append((*self._literal(literal), -1, 0, 0, 0))
        self._first.append(len(self._fields))
        return len(self._first) - 2

    def build(self, templates: np.ndarray, rows: np.ndarray, bounds: np.ndarray) -> pa.Array:
        """Output string ``o`` = pieces ``bounds[o]:bounds[o + 1]``; piece ``q`` = template ``templates[q]`` with
        the values of row ``rows[q]`` of its columns. ``string`` unless the text passes 2 GiB."""
        if len(templates) != len(rows) or (len(bounds) and bounds[-1] > len(templates)):
            raise ValueError("layout arrays disagree: templates, rows and bounds must describe the same pieces")
        fields = np.array(self._fields, dtype=np.int64).reshape(-1, 6)
        cols = np.array(self._columns, dtype=np.int64).reshape(-1, 5)
        t_first = np.array(self._first, dtype=np.int64)
        templates = np.ascontiguousarray(templates, dtype=np.int64)
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        bounds = np.ascontiguousarray(bounds, dtype=np.int64)
        if len(templates) and (templates.min() < 0 or templates.max() >= len(t_first) - 1):
            raise ValueError("a piece names a template that was not registered")
        lit_span, null_span = np.ascontiguousarray(fields[:, 0:2]), np.ascontiguousarray(fields[:, 3:5])
        f_col, f_quote = np.ascontiguousarray(fields[:, 2]), np.ascontiguousarray(fields[:, 5])
        c_offsets, c_data, c_wide, c_valid, c_bit = (np.ascontiguousarray(cols[:, j]) for j in range(5))
        n_out = max(len(bounds) - 1, 0)
        out_offsets = np.zeros(n_out + 1, dtype=np.int64)
        if n_out:
            _measure(t_first, lit_span, f_col, null_span, f_quote, c_offsets, c_wide, c_valid, c_bit,
                     templates, rows, bounds, out_offsets)
        total = int(out_offsets[-1])
        data = pa.allocate_buffer(max(total, 1))
        lits = np.frombuffer(bytes(self._lits), dtype=np.uint8)
        first, last = (int(bounds[0]), int(bounds[-1])) if n_out else (0, 0)
        written = 0
        if total:
            written = _write(data.address, lits.ctypes.data, t_first, lit_span, f_col, null_span, f_quote,
                             c_offsets, c_data, c_wide, c_valid, c_bit, templates[first:last], rows[first:last])
        if written != total:  # the two passes disagree: a bug, never silently wrong text
            raise RuntimeError(f"TextBuilder wrote {written} bytes, measured {total}")
        if total <= MAX_STRING_BYTES:
            return pa.Array.from_buffers(pa.string(), n_out, [None, pa.py_buffer(out_offsets.astype(np.int32)),
                                                               data])
        return pa.Array.from_buffers(pa.large_string(), n_out, [None, pa.py_buffer(out_offsets), data])
