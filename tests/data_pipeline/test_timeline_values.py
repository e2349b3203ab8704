"""Value conventions: every timeline value is the string the reference's pandas ``str(cell)`` printed."""

from __future__ import annotations

import pyarrow as pa
import pytest

from data_pipeline.mimic.values import ValueFormatError, normalise_column


@pytest.mark.parametrize("raw,dtype,expected", [
    ("1.5", "float", "1.5"), ("1.50", "float", "1.5"), ("143", "float", "143.0"), ("0.00001", "float", "1e-05"),
    ("12345678901234567", "float", "1.2345678901234568e+16"), ("-0", "float", "-0.0"), ("0.0001", "float", "0.0001"),
    ("123456789012", "float", "123456789012.0"), (" 7 ", "float", "7.0"), ("", "float", None),
    ("52", "int", "52"), ("52.0", "int", "52"), ("", "int", None),
    ("2180-06-27 05:10:00", "datetime", "2180-06-27 05:10:00"),
    ("2142-08-03 21:06:00.090", "datetime", "2142-08-03 21:06:00"),
    ("2180-06-27", "datetime", "2180-06-27 00:00:00"), ("2180-06-27", "date", "2180-06-27"),
    ("___", "str", "___"), ("", "str", None),
])
def test_normalise_column(raw, dtype, expected):
    text, _ = normalise_column(pa.array([raw], pa.string()).cast(pa.string()), dtype) if raw != "" else \
        normalise_column(pa.array([None], pa.string()), dtype)
    assert text.to_pylist() == [expected]


@pytest.mark.parametrize("raw", [
    # kept as is / ".0" appended by the pattern fast path
    "7.4", "-3.25", "0.5", "0.001", "0.0001", "-0.0001", "100", "-0", "0", "999999999999999", "12345678901234.5",
    # parsed and re-formatted: trailing/leading zeros, exponents, too many digits, below 1e-4, signs, specials
    "100.0", "0.1000", "0.0", "007", "+5", ".5", "5.", "1e5", "1E-3", "0.00001", "-0.00001", "9999999999999999",
    "123456789012345.5", "0.1234567890123456", "1.000000000000001", "nan", "inf", "-inf", " 7 ",
])
def test_float_text_matches_python_repr(raw):
    text, _ = normalise_column(pa.array(["1", None, raw]), "float")
    assert text.to_pylist() == ["1.0", None, repr(float(raw))]


@pytest.mark.parametrize("raw", ["1_000", "1.2.3", "seven"])
def test_bad_float_reports_its_row_in_the_whole_column(raw):
    with pytest.raises(ValueFormatError) as err:
        normalise_column(pa.array(["1.5", "143", None, raw, "2"]), "float")
    assert err.value.row == 3 and err.value.value == raw


@pytest.mark.parametrize("value", [1.5, 143.0, 1e-05, 2.5e-07, 1e16, 1e22, 0.1, 123456789012.0, 98.6, 1 / 3])
def test_floats_print_like_python(value):
    text, _ = normalise_column(pa.array([value], pa.float64()), "float")
    assert text.to_pylist() == [repr(value)]


@pytest.mark.parametrize("arr,dtype", [
    (pa.array([1, None], pa.int64()), "int"), (pa.array([1.0, None], pa.float64()), "int"),
])
def test_typed_parquet_ints(arr, dtype):
    assert normalise_column(arr, dtype)[0].to_pylist() == ["1", None]


@pytest.mark.parametrize("raw,dtype,expected", [
    ("2180-13-01 00:00:00", "datetime", "timestamp"), ("27/06/2180", "datetime", "timestamp"),
    ("2180-06-27 05:10:00xyz", "datetime", "timestamp"), ("2180-02-30", "date", "date"), ("1.2.3", "float", "number"),
])
def test_bad_values_report_row_and_value(raw, dtype, expected):
    with pytest.raises(ValueFormatError) as err:
        normalise_column(pa.array(["2180-01-01" if dtype != "float" else "1", raw]), dtype)
    assert err.value.row == 1 and err.value.value == raw and expected in err.value.expected


def test_float_text_matches_python_repr_on_random_decimals():
    """The one-pass rewrite of plain decimals (float_text) against Python, on many shapes of number."""
    import random

    rng = random.Random(0)
    raw = []
    for _ in range(5000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 18)))
        frac = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 18)))
        text = rng.choice(["", "-", "+"]) + digits + (rng.choice([".", ""]) + frac if frac or rng.random() < 0.2
                                                      else "")
        if any(c.isdigit() for c in text):
            raw.append(rng.choice(["", " "]) + text + rng.choice(["", " ", "\t"]))
    text, _ = normalise_column(pa.array(raw), "float")
    assert text.to_pylist() == [repr(float(v)) for v in raw]


def test_float_text_keeps_nulls_of_a_sliced_column():
    arr = pa.array(["9", None, "1.50", None, "2e3", "0.00001"]).slice(1)
    text, _ = normalise_column(arr, "float")
    assert text.to_pylist() == [None, "1.5", None, "2000.0", "1e-05"]
