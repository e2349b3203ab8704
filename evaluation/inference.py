"""Batch inference on Ray Data, resumable by sample id.

Predictions stream back to the driver and are written as they arrive, one parquet part per batch, each written
to a temporary name and renamed (atomic), under ``<run_dir>/predictions/``. A re-run reads the parts, keeps every
sample whose status is ``ok`` or ``skipped`` and sends only the rest (never-run samples and ``error`` ones) to the
model. So an endpoint or worker that fails mid-run costs its retries and a re-run, never the samples already
scored. Ray Data retries a failed task on a lost worker; data errors still stop the run at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from evaluation.backends import PREDICTION_COLUMNS

log = logging.getLogger(__name__)

DONE_STATUSES = ("ok", "skipped")
#: what a stored prediction was made from; a prediction is reused only when its sample's digest is unchanged
DIGEST_COLUMN = "input_sha256"
STORED_COLUMNS = [*PREDICTION_COLUMNS, DIGEST_COLUMN]
INPUT_COLUMNS = ["sample_id", "task", "kind", "input", "prompt_instruction", "messages", "thinking", "max_new_tokens"]


@dataclass
class InferenceSummary:
    total: int
    reused: int
    ran: int
    errors: int
    seconds: float

    @property
    def complete(self) -> bool:
        return self.errors == 0


def read_predictions(pred_dir: Path) -> pd.DataFrame:
    """All written parts, the latest row per sample id (a retried sample supersedes its error row)."""
    parts = sorted(pred_dir.glob("part-*.parquet"), key=lambda p: p.stat().st_mtime_ns)
    if not parts:
        return pd.DataFrame(columns=STORED_COLUMNS)
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    for column, empty in (("finish_reason", ""), ("dropped_events", 0), (DIGEST_COLUMN, "")):  # parts written before these existed
        frame[column] = frame[column].fillna(empty) if column in frame else empty
    frame["p_yes"] = frame["p_yes"].astype("float64")  # plain NaN for "no p(yes)", whatever dtype a backend used
    return frame.drop_duplicates("sample_id", keep="last").reset_index(drop=True)


def _write_part(pred_dir: Path, frame: pd.DataFrame, seq: int) -> None:
    name = f"part-{seq:06d}-{uuid.uuid4().hex[:8]}.parquet"
    tmp = pred_dir / f".{name}.tmp"
    frame = frame[STORED_COLUMNS].copy()
    frame["p_yes"] = frame["p_yes"].astype("float64")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, pred_dir / name)


def input_digests(samples: pd.DataFrame) -> pd.Series:
    """Per sample: a digest of exactly what the backend is sent (chat messages, thinking switch, token budget)."""
    def one(row) -> str:
        text = f"{row['messages']}\x1f{row['thinking']}\x1f{row['max_new_tokens']}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    return samples.apply(one, axis=1) if len(samples) else pd.Series([], dtype=object)


def run_inference(samples: pd.DataFrame, backend, run_dir: Path, *, batch_size: int,
                  progress: bool = True) -> InferenceSummary:
    """Predict every sample not yet done; ``samples`` must have :data:`INPUT_COLUMNS` (see samples.add_prompts)."""
    import time

    import ray.data

    pred_dir = Path(run_dir) / "predictions"
    pred_dir.mkdir(parents=True, exist_ok=True)
    existing = read_predictions(pred_dir)
    digests = dict(zip(samples["sample_id"], input_digests(samples)))
    done = existing[existing["status"].isin(DONE_STATUSES)]
    done_ids = {sid for sid, d in zip(done["sample_id"], done[DIGEST_COLUMN]) if digests.get(sid) == d}
    stale = len(done) - len(done_ids)
    if stale:
        log.info("%d stored predictions were made from another prompt or budget; they are predicted again", stale)
    todo = samples[~samples["sample_id"].isin(done_ids)][INPUT_COLUMNS].reset_index(drop=True)
    reused = len(samples) - len(todo)
    if reused:
        log.info("resuming: %d of %d samples already predicted (%s); %d to go", reused, len(samples), pred_dir,
                 len(todo))
    start = time.perf_counter()
    if todo.empty:
        return InferenceSummary(len(samples), reused, 0, 0, 0.0)
    todo["thinking"] = todo["thinking"].astype(object).where(todo["thinking"].notna(), None)
    # one block per batch, built on the driver: a repartition task would need a whole CPU that an engine actor
    # may already hold on a small node
    chunks = [todo.iloc[i:i + batch_size] for i in range(0, len(todo), max(batch_size, 1))]
    ds = ray.data.from_pandas(chunks)
    out = backend.apply(ds)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="evaluate", unit="sample")
    seq = len(list(pred_dir.glob("part-*.parquet")))
    ran = errors = 0
    try:
        for batch in out.iter_batches(batch_size=None, batch_format="pandas"):
            if batch.empty:
                continue
            batch = batch[PREDICTION_COLUMNS].copy()
            batch[DIGEST_COLUMN] = batch["sample_id"].map(digests)
            _write_part(pred_dir, batch, seq)
            seq += 1
            ran += len(batch)
            errors += int((batch["status"] == "error").sum())
            if bar is not None:
                bar.update(len(batch))
                bar.set_postfix(errors=errors)
    finally:
        if bar is not None:
            bar.close()
    return InferenceSummary(len(samples), reused, ran, errors, time.perf_counter() - start)
