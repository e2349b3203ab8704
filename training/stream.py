"""How a Ray Train worker reads its share of the prepared rows: Ray Data's dataset iterator, epoch after epoch.

The driver hands the trainer ``datasets={"train": read_parquet(shards)}``; Ray Train splits it with
``streaming_split(num_workers, equal=True)``, so every worker sees ``rows // num_workers`` rows per epoch, in the
prepared (training) order, and no worker ever holds the whole dataset. The HF Trainer gets :class:`RowStream`, one
unbroken iterable over all epochs: it has no length, so the step count is planned here (:func:`planned_steps`) and
HF's resume (skip the batches already trained on) counts batches from the start of training, not of an epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader, IterableDataset

from training.collate import SFTCollator

ROW_COLUMNS = ("input_ids", "labels", "position_ids")


def _read_shard(batch: dict, columns: list[str]):
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa.concat_tables([pq.read_table(str(path), columns=columns) for path in batch["path"]])


def rows_dataset(files: list[str], columns: list[str], readers: int = 2):
    """The prepared shards as a Ray Dataset whose tasks take no CPU slot.

    The Train workers hold the node's CPUs (on a CPU cluster all of them) and Ray Train leaves Ray Data only what
    they do not hold, so a task that waits for a CPU -- including ``read_parquet``'s own file-listing task -- stalls
    every worker for good. The shards are named by the driver (no listing) and read by zero-CPU tasks, at most
    ``readers`` at a time: zero-CPU tasks are not bounded by the node's CPUs, and each one is a worker process."""
    import ray.data

    return (ray.data.from_items([{"path": f} for f in files], override_num_blocks=len(files))
            .map_batches(_read_shard, batch_size=1, batch_format="numpy", num_cpus=0,
                         compute=ray.data.TaskPoolStrategy(size=readers), fn_kwargs={"columns": columns}))


def planned_steps(rows: int, num_workers: int, per_device_batch: int, grad_accum: int, epochs: float,
                  max_steps: int) -> int:
    """Optimizer steps of the run: ``max_steps`` when > 0, else ``epochs`` passes over each worker's share."""
    if max_steps > 0:
        return max_steps
    per_worker = rows // num_workers
    if per_worker == 0:
        raise ValueError(f"data: {rows} prepared rows cannot be split over scaling.num_workers={num_workers}; "
                         f"add data or use fewer workers")
    batches = math.ceil(per_worker / per_device_batch)
    return max(1, math.ceil(epochs * batches / grad_accum))


class RowStream(IterableDataset):
    """Collated batches from this worker's Ray Data shard, epoch after epoch, without end (HF stops at max_steps)."""

    def __init__(self, shard: Any, batch_size: int, collator: SFTCollator):
        self.shard, self.batch_size, self.collator = shard, batch_size, collator

    def __iter__(self) -> Iterator[dict]:
        while True:
            n = 0
            for batch in self.shard.iter_batches(batch_size=self.batch_size, batch_format="numpy"):
                columns = [k for k in ROW_COLUMNS if k in batch]
                rows = len(batch["input_ids"])
                n += rows
                yield self.collator([{k: batch[k][i].tolist() for k in columns} for i in range(rows)])
            if n == 0:
                raise RuntimeError("this worker's share of the training data is empty")


def _first(items: list) -> Any:
    return items[0]


def stream_loader(stream: RowStream) -> DataLoader:
    """The loader HF iterates: batches come collated from the stream (one stream item = one batch)."""
    return DataLoader(stream, batch_size=1, collate_fn=_first, num_workers=0)
