"""EHR-R1's reasoning data engine (the "thinking graph"): stage-2 reasoning records from timelines and EHR-Ins.

``umls`` (RRF loader) / ``fake_umls`` (made-up UMLS for tests and demos) / ``matcher`` (offline QuickUMLS) /
``concepts`` (per-event concepts, the Ray Data actor) / ``cooccurrence`` (counts, lift, top-k) / ``paths`` (CSR
relation graph, bidirectional search) / ``reasoning`` (prompt, filter rules, LLM-free chains) / ``synthesis``
(OpenAI-compatible endpoint) / ``records`` (the stage-2 dataset) / ``pipeline`` (the stages on Ray Data) /
``config`` (the job's strict config). Entry point: ``python -m ray_jobs.thinking_graph``.
"""
