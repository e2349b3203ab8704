"""Reinforcement learning (GRPO / RLVR on OpenRLHF-on-Ray). Rewards call `evaluation.metrics`, so the reward a
policy is trained on is exactly the metric it is evaluated with."""
