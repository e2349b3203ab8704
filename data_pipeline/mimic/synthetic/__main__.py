"""CLI: ``python -m data_pipeline.mimic.synthetic --out DIR --patients N --seed S --volume realistic``."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from data_pipeline.mimic.schema import MODULES
from data_pipeline.mimic.synthetic.config import SyntheticCohortConfig
from data_pipeline.mimic.synthetic.generate import generate_cohort_from_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_pipeline.mimic.synthetic",
                                     description="Write a synthetic MIMIC-IV v2.2 cohort (gzip CSV, real layout).")
    parser.add_argument("--out", required=True, help="output folder (created; a previous cohort there is replaced)")
    parser.add_argument("--patients", type=int, help="number of patients (config default: 200)")
    parser.add_argument("--seed", type=int, help="random seed (config default: 0)")
    parser.add_argument("--volume", choices=("demo", "realistic"), help="row density preset (default: demo)")
    parser.add_argument("--modules", help=f"comma-separated subset of {','.join(MODULES)} (default: all)")
    parser.add_argument("--chunk-size", type=int, help="patients per writer flush (bounds memory)")
    args = parser.parse_args(argv)
    given = {"num_patients": args.patients, "seed": args.seed, "volume": args.volume, "chunk_size": args.chunk_size,
             "modules": tuple(m for m in args.modules.split(",") if m) if args.modules is not None else None}
    try:
        cfg = SyntheticCohortConfig(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        print(f"error: invalid arguments:\n{exc}", file=sys.stderr)
        return 2
    generate_cohort_from_config(cfg, args.out, progress=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
