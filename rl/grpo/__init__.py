"""GRPO that runs here: TRL's GRPOTrainer under Ray Train (CPU workers, or GPUs with vLLM generation)."""
