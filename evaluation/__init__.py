"""Evaluation: the scoring functions shared by evaluation metrics and RL rewards (one implementation for both)."""
