"""Evaluation: the answer parser and scorers shared with serving and the RL rewards (one implementation for all),
benchmark adapters (EHR-Bench, EHRSHOT, MedCalc-Bench), Ray Data batch inference, metrics and reports."""
