"""SFT stages of EHR-R1 on Ray Train. Importing the package is cheap (no torch, transformers or ray).

- ``chat_format``   the prompt/answer format every stage shares (pure strings)
- ``tiny_model``    a tiny random Qwen3 + BPE tokenizer for CPU tests and demos
- ``config``        the strict job config (``SFTJobConfig``)
- ``sequences``     truncation, loss masks, packing on token level (pure)
- ``mixing``        stage-2 dataset mixing: shuffle or curriculum (pure)
- ``data``          records -> prepared token rows (driver side)
- ``collate``       batch padding + token counters (torch)
- ``worker``        the Ray Train worker loop (HF Trainer, checkpoints, resume, metrics)
- ``sft``           the driver: preflight, data preparation, TorchTrainer (``run_sft``)
- ``deepspeed``     ZeRO-3 config and its CPU variant
- ``toy_data``      synthetic EHR-Ins-shaped records for demos and tests
"""
