"""Reasoning data for SFT stage 2.

`evidence_template` writes deterministic, extraction-style chains from a sample's own context; it needs no LLM and
no UMLS, so the demo and CI can run stage 2 end to end. The thinking-graph pipeline (QuickUMLS concepts,
co-occurrence lift, UMLS paths, LLM-written chains) produces the real reasoning set in the same record format.
"""
