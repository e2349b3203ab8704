"""Shared state of one generation run: the writers, the volume preset, the global row-id counters and the
provider / caregiver pools. Patients are processed strictly in order, so sequential counters are deterministic
and independent of the chunk size."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from data_pipeline.mimic.synthetic.config import VolumePreset
from data_pipeline.mimic.synthetic.writer import CohortWriter

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#: first value of each global id sequence (MIMIC ids of these kinds are 6-8 digit integers)
_ID_START = {"labevent_id": 1, "specimen_id": 10_000_001, "microevent_id": 1, "micro_specimen_id": 1_000_001,
             "pharmacy_id": 10_000_001, "transfer_id": 30_000_001, "orderid": 1_000_001}


def make_providers(seed: int, n: int = 400) -> tuple[str, ...]:
    rng = np.random.default_rng([seed, 9_001])
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        pid = "P" + "".join(_ALNUM[i] for i in rng.integers(0, len(_ALNUM), 5))
        if pid not in seen:
            seen.add(pid)
            out.append(pid)
    return tuple(out)


def make_caregivers(seed: int, n: int = 300) -> tuple[int, ...]:
    rng = np.random.default_rng([seed, 9_002])
    return tuple(int(x) for x in np.sort(rng.choice(np.arange(10_000, 100_000), size=n, replace=False)))


@dataclass
class Ctx:
    seed: int
    writer: CohortWriter
    preset: VolumePreset
    providers: tuple[str, ...]
    caregivers: tuple[int, ...]
    counters: dict[str, int] = field(default_factory=lambda: dict(_ID_START))

    def next_id(self, name: str) -> int:
        value = self.counters[name]
        self.counters[name] = value + 1
        return value

    def id_block(self, name: str, n: int) -> np.ndarray:
        start = self.counters[name]
        self.counters[name] = start + n
        return np.arange(start, start + n, dtype=np.int64)

    def provider(self, rng: np.random.Generator) -> str:
        return self.providers[int(rng.integers(len(self.providers)))]

    def caregiver(self, rng: np.random.Generator) -> int:
        return self.caregivers[int(rng.integers(len(self.caregivers)))]

    def wants(self, relpath: str) -> bool:
        return relpath in self.writer
