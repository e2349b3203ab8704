"""Synthetic time: integer seconds since 2100-01-01 00:00:00, formatted the MIMIC-IV way.

MIMIC-IV shifts every date into 2110-2210; all synthetic times stay inside that window.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

import numpy as np

EPOCH = datetime(2100, 1, 1)
HOUR = 3600
DAY = 86400


def year_start(year: int) -> int:
    """Seconds from EPOCH to 1 January of ``year``."""
    return int((datetime(year, 1, 1) - EPOCH).total_seconds())


@lru_cache(maxsize=1 << 16)
def _day(day: int) -> str:
    return (EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")


def ts(seconds: float | int) -> str:
    """``YYYY-MM-DD HH:MM:00``: like most MIMIC-IV timestamps, times are charted to the minute."""
    s = int(seconds)
    day, rest = divmod(s, DAY)
    return f"{_day(day)} {rest // HOUR:02d}:{rest % HOUR // 60:02d}:00"


def date(seconds: float | int) -> str:
    """``YYYY-MM-DD``."""
    return _day(int(seconds) // DAY)


def midnight(seconds: float | int) -> int:
    """Start of the day that contains ``seconds``."""
    return int(seconds) - int(seconds) % DAY


_HHMM = np.array([f" {h:02d}:{m:02d}:00" for h in range(24) for m in range(60)], dtype=object)


def ts_array(seconds: np.ndarray) -> np.ndarray:
    """Vectorised :func:`ts` -> object array of strings (distinct days formatted once)."""
    seconds = np.asarray(seconds, dtype=np.int64)
    days, inverse = np.unique(seconds // DAY, return_inverse=True)
    day_text = np.array([_day(d) for d in days.tolist()], dtype=object)[inverse]
    return day_text + _HHMM[(seconds % DAY) // 60]


def num_array(values: np.ndarray, decimals: int) -> np.ndarray:
    """Round and format numbers (``decimals=0`` prints integers: ``88``; else the shortest repr: ``36.7``)
    -> object array of strings; distinct values are formatted once."""
    values = np.round(np.asarray(values, dtype=np.float64), decimals)
    uniq, inverse = np.unique(values, return_inverse=True)
    if decimals == 0:
        text = [str(int(x)) for x in uniq.tolist()]
    else:
        text = [repr(x) for x in uniq.tolist()]
    return np.array(text, dtype=object)[inverse]


def int_array(values: np.ndarray) -> np.ndarray:
    """Integers -> object array of their decimal strings."""
    return np.array(list(map(str, np.asarray(values, dtype=np.int64).tolist())), dtype=object)


def num(value: float, decimals: int) -> str:
    """Scalar :func:`num_array`."""
    if decimals == 0:
        return str(int(round(value)))
    return repr(round(float(value), decimals))
