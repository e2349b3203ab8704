"""Batch collation for the HF Trainer, counting real vs computed tokens (throughput and padding metrics)."""

from __future__ import annotations

import time

import torch

from training.sequences import pad_rows


class SFTCollator:
    """Pads prepared rows (``training.data``) to the longest row of the batch and keeps token counters.

    ``real`` = tokens of examples, ``computed`` = rows x padded width (what the forward pass pays for).
    """

    def __init__(self, pad_id: int):
        self.pad_id = pad_id
        self.real = 0
        self.computed = 0
        self.total_real = 0
        self.total_computed = 0
        self._since = time.perf_counter()

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        rows = [{k: list(v) for k, v in f.items()} for f in features]
        batch = pad_rows(rows, self.pad_id)
        real = sum(len(r["input_ids"]) for r in rows)
        computed = len(rows) * len(batch["input_ids"][0])
        self.real += real
        self.computed += computed
        self.total_real += real
        self.total_computed += computed
        return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}

    def pop_metrics(self) -> dict[str, float]:
        """Metrics since the previous call: tokens/s of this worker and the padding fraction of its batches."""
        now = time.perf_counter()
        elapsed = max(now - self._since, 1e-9)
        out = {
            "tokens_per_sec_per_worker": self.real / elapsed,
            "padding_fraction": 1 - self.real / self.computed if self.computed else 0.0,
        }
        self.real = self.computed = 0
        self._since = now
        return out
